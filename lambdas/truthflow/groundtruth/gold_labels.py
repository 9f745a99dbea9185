"""The run's copy of its gold questions: ``manifests/gold-labels.json``, beside the input manifest.

"Prepare labeling input" checks the job's gold file (:mod:`truthflow.gold_questions`) and writes this document next
to the input manifest, so that both consolidation steps read the same gold answers by the images' S3 URIs::

    {"labeling_jobs": ["tf-pens-v1-1a2b3c4d"], "gold_file": "s3://<bucket>/jobs/pens-v1/gold.csv",
     "labels": {"s3://<bucket>/jobs/pens-v1/images/desk-007.jpg": "pencil", ...}}

The ACS Lambda finds it from the labeling job alone (DescribeLabelingJob -> the input manifest's folder), since its
event names nothing else; "Consolidate whole job" is given its URI by the prepare step. ``labeling_jobs`` ties the
document to the run that wrote it: a later run of the same job (without gold, or with other gold) writes its own
manifests, and a document naming other labeling jobs is not used (:func:`gold_labels_for_job`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GOLD_LABELS_FILE = "gold-labels.json"
# Far above 100,000 gold images (a labeling job's maximum) with long keys; a larger document is not read.
MAX_GOLD_DOCUMENT_BYTES = 64 << 20


def gold_labels_uri(manifest_uri: str) -> str:
    """``gold-labels.json`` in the folder of ``manifest_uri`` (``s3://b/jobs/x/manifests/input.manifest`` ->
    ``s3://b/jobs/x/manifests/gold-labels.json``)."""
    folder, slash, _ = manifest_uri.rpartition("/")
    if not slash or not manifest_uri.startswith("s3://") or folder == "s3:/":
        raise ValueError(f"{manifest_uri[:300]!r} is not the s3:// URI of a manifest")
    return f"{folder}/{GOLD_LABELS_FILE}"


def gold_labels_document(labels: Mapping[str, str], *, labeling_jobs: Sequence[str], gold_file: str) -> dict[str, Any]:
    """The document (see the module docstring); ``labels`` maps image S3 URIs to label names."""
    return {"labeling_jobs": list(labeling_jobs), "gold_file": gold_file, "labels": dict(sorted(labels.items()))}


@dataclass(frozen=True)
class GoldLabels:
    """A read document: the labeling jobs it belongs to, the user's gold file, and image URI -> label."""

    labeling_jobs: tuple[str, ...]
    gold_file: str | None
    labels: dict[str, str]

    def belongs_to(self, labeling_job: str) -> bool:
        # Job names are case-insensitive in SageMaker (and lower case in ours): compare them so.
        return labeling_job.lower() in {job.lower() for job in self.labeling_jobs}


def read_gold_labels(data: str | bytes, *, label_set: Sequence[str] | None = None) -> GoldLabels:
    """Parse a document's text. Raises ``ValueError`` for one that is not of this shape, or, with ``label_set``,
    names a label outside it."""
    if len(data) > MAX_GOLD_DOCUMENT_BYTES:
        raise ValueError(f"more than {MAX_GOLD_DOCUMENT_BYTES:,} bytes")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise ValueError(f"not valid JSON ({str(error)[:200]})") from None
    jobs = document.get("labeling_jobs") if isinstance(document, dict) else None
    labels = document.get("labels") if isinstance(document, dict) else None
    if not isinstance(jobs, list) or not isinstance(labels, dict):
        raise ValueError("expected a JSON object with labeling_jobs (a list) and labels (an object)")
    allowed = None if label_set is None else set(label_set)
    for image, label in labels.items():
        if not isinstance(label, str) or (allowed is not None and label not in allowed):
            raise ValueError(f"image {image[:300]!r}: gold label {str(label)[:100]!r} is not one of the job's labels")
    gold_file = document.get("gold_file")
    return GoldLabels(
        tuple(job for job in jobs if isinstance(job, str)), gold_file if isinstance(gold_file, str) else None, labels
    )


def gold_labels_for_job(
    data: str | bytes, *, labeling_job: str, label_set: Sequence[str] | None = None
) -> dict[str, str]:
    """The gold labels (image URI -> label) of ``labeling_job`` from a document's text; empty when the document
    belongs to other labeling jobs (an earlier or later run of the job). Raises as :func:`read_gold_labels`."""
    document = read_gold_labels(data, label_set=label_set)
    return document.labels if document.belongs_to(labeling_job) else {}
