"""Machine labels (automated labeling) appended to a job's consolidated dataset."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from truthflow.groundtruth.consolidated_dataset import ConsolidatedDatasetWriter, DatasetQuality
from truthflow.groundtruth.output_manifest import ManifestLineError, parse_output_manifest_line


def add_machine_labels(
    lines: Iterable[str | bytes],
    *,
    writer: ConsolidatedDatasetWriter,
    quality: DatasetQuality,
    labels: Sequence[str],
    skip_sources: Iterable[str] = (),
) -> int:
    """Append machine-labeled manifest lines (``"human-annotated": "no"``) to a consolidated dataset; an image that
    people labeled (``skip_sources``) keeps its human label. A line that is not a labeled output-manifest line of
    ``quality``'s label attribute is a ``ValueError`` naming it (the run itself wrote these lines)."""
    skip = set(skip_sources)
    added = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parsed = json.loads(line)
        try:
            record = parse_output_manifest_line(
                parsed, label_attribute_name=quality.label_attribute_name, class_names=list(labels)
            )
        except ManifestLineError as error:
            raise ValueError(f"machine label line {number}: {error}") from None
        if record is None:
            raise ValueError(f"machine label line {number}: no label")
        if record.source_ref in skip:
            continue
        writer.add(parsed, record)
        quality.n_objects += 1
        quality.n_machine_labeled += 1
        added += 1
    return added
