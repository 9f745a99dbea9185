"""Bring your own labels: an output manifest labeled elsewhere, taken as a job's consolidated dataset.

An output manifest made elsewhere (another Ground Truth job, another tool writing the same format) has no worker
responses; its labels are kept as they are and written like a consolidated job
(:mod:`truthflow.groundtruth.consolidated_dataset`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from truthflow.groundtruth.consolidated_dataset import (
    ConsolidatedDatasetWriter,
    DatasetQuality,
    FailedObject,
    text_or_none,
)
from truthflow.groundtruth.label_config import TaskType
from truthflow.groundtruth.output_manifest import (
    DetectionRecord,
    ManifestLineError,
    find_label_attribute,
    parse_output_manifest_line,
)
from truthflow.training_data.classes import ordered_by_source_id


def normalise_existing_manifest(
    lines: Iterable[str | bytes],
    *,
    writer: ConsolidatedDatasetWriter,
    labels: Sequence[str] | None = None,
    preferred_label_attribute_name: str | None = None,
) -> DatasetQuality:
    """Take an output manifest labeled elsewhere as the consolidated dataset, streaming it line by line.

    Labels are kept as they are (no worker responses exist to consolidate again). The label attribute is the
    file's own (:func:`~truthflow.groundtruth.output_manifest.find_label_attribute` on the first labeled line);
    ``preferred_label_attribute_name`` picks one when lines carry several (chained jobs). Every line must use that
    attribute and the same task type. ``labels`` (the job's label order) names class ids missing from ``class-map``;
    the result's labels are ``labels`` followed by any other class name of the file, ordered by ``class_id`` (only
    the file's names, ordered so, without ``labels``). Unlabeled lines are written and listed
    as failed; lines that do not parse are listed as failed and left out. No labeled line at all is a
    ``ValueError``.
    """
    attribute: str | None = None
    kind: TaskType | None = None
    failed: list[FailedObject] = []
    seen_names: dict[tuple[str, int | None], None] = {}
    confidences: list[float] = []
    n_boxes = 0
    n_objects = 0
    for line_number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        n_objects += 1
        try:
            parsed = json.loads(raw)
            if not isinstance(parsed, dict):
                raise ManifestLineError(f"line {line_number}: expected a JSON object")
            if attribute is None:
                attribute = _label_attribute_of(parsed, preferred_label_attribute_name)
            record = parse_output_manifest_line(
                parsed, label_attribute_name=attribute, class_names=labels, line_number=line_number
            )
        except ValueError as error:  # ManifestLineError and json.JSONDecodeError included
            failed.append(FailedObject(None, line_number, _source_ref_of(raw), _line_error(error, line_number)))
            continue
        if record is not None:
            record_kind: TaskType = "bounding-box" if isinstance(record, DetectionRecord) else "image-classification"
            kind = kind or record_kind
            if record_kind != kind:
                reason = f"line {line_number}: a {record_kind} label, but earlier lines are {kind}"
                failed.append(FailedObject(None, line_number, record.source_ref, reason))
                continue
            if isinstance(record, DetectionRecord):
                n_boxes += len(record.boxes)
                confidences.extend(0.0 if box.confidence is None else box.confidence for box in record.boxes)
                seen_names.update(((box.label, box.class_id), None) for box in record.boxes)
            else:
                confidences.append(0.0 if record.confidence is None else record.confidence)
                seen_names[(record.label, record.class_id)] = None
        else:
            metadata = parsed.get(f"{attribute}-metadata") if attribute is not None else None
            failure = metadata.get("failure-reason") if isinstance(metadata, dict) else None
            failed.append(
                FailedObject(None, line_number, text_or_none(parsed.get("source-ref")), str(failure or "no label"))
            )
        writer.add(parsed, record)
    if attribute is None or kind is None:
        first = f"; first problem: {failed[0].reason}" if failed else ""
        raise ValueError(f"the manifest holds no labeled line ({n_objects} lines read){first}")
    return DatasetQuality(
        source="existing-manifest",
        task_type=kind,
        label_attribute_name=attribute,
        labels=_merged_labels(labels, ordered_by_source_id(seen_names)),
        n_objects=n_objects,
        failed=failed,
        confidences=confidences,
        n_boxes=n_boxes,
    )


def _merged_labels(declared: Sequence[str] | None, seen: Sequence[str]) -> list[str]:
    labels = list(declared or ())
    return labels + [name for name in seen if name not in labels]


def _label_attribute_of(line: Mapping[str, Any], preferred: str | None) -> str | None:
    try:
        return find_label_attribute(line)
    except ManifestLineError:
        if preferred is not None and line.get(preferred) is not None:
            return preferred
        raise


def _line_error(error: Exception, line_number: int) -> str:
    message = str(error)
    if isinstance(error, json.JSONDecodeError):
        return f"line {line_number}: not valid JSON ({message})"
    return message if message.startswith("line ") else f"line {line_number}: {message}"


def _source_ref_of(raw: str | bytes) -> str | None:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return text_or_none(parsed.get("source-ref")) if isinstance(parsed, dict) else None
