"""The consolidated dataset of a job, as "Consolidate whole job" writes it, and its quality summary.

Both ways to a consolidated dataset (:func:`~truthflow.groundtruth.job_consolidation.consolidate_job` from the raw
worker responses, :func:`~truthflow.groundtruth.existing_manifest.normalise_existing_manifest` for labels brought
along) write the same three things through a :class:`ConsolidatedDatasetWriter` and return a :class:`DatasetQuality`:

``consolidated.manifest``
    Output-manifest lines (reference §4): the input line (``source-ref`` and any other attributes) plus ``<attr>``
    and ``<attr>-metadata``. Like Ground Truth's own output manifest it has a line for every object, failed ones
    included (``<attr>`` null, ``failure-reason`` in the metadata), which readers skip as unlabeled. In the
    bring-your-own case a line that cannot be parsed is left out (and reported): it would stop every later stage.
``consolidated.csv``
    The columns of the AWS Ground Truth + YOLO blog's table,
    ``img_file,category,box_left,box_top,box_height,box_width,img_width,img_height``, pixels, one row per box
    (an image without boxes has no row). For classification one row per image: ``category`` is the label, the other
    columns are empty. ``img_file`` is the last segment of ``source-ref``.
``quality.json``
    :meth:`DatasetQuality.to_dict` (see there for the definitions of agreement and worker accuracy).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import numpy as np

from truthflow.consolidation.box_metrics import iou_matrix, match_boxes
from truthflow.consolidation.majority_vote import FloatArray
from truthflow.groundtruth.consolidation_batch import ObjectAnswers, Problem
from truthflow.groundtruth.label_config import TaskType
from truthflow.groundtruth.output_manifest import (
    ClassificationRecord,
    DetectionRecord,
    ManifestRecord,
    dump_manifest_line,
    output_manifest_line,
    parse_output_manifest_line,
)
from truthflow.groundtruth.worker_answers import PixelBox
from truthflow.training_data.formats import image_file_name

TABLE_COLUMNS = ("img_file", "category", "box_left", "box_top", "box_height", "box_width", "img_width", "img_height")
# A worker's box "matched" a consolidated box at the PASCAL VOC overlap criterion (IoU >= 0.5, same label).
BOX_MATCH_IOU = 0.5
HISTOGRAM_BINS = 10
# quality.json lists every failed object, but only this many unusable answers (their total is always given).
MAX_LISTED_PROBLEMS = 1000

Source = Literal["worker-responses", "existing-manifest", "annotation-exports"]


# --- the consolidated dataset --------------------------------------------------------------------------------------


class ConsolidatedDatasetWriter:
    """Writes ``consolidated.manifest`` and ``consolidated.csv`` line by line to two text streams."""

    def __init__(self, manifest: IO[str], table: IO[str]) -> None:
        self._manifest = manifest
        self._table = csv.writer(table, lineterminator="\n")
        self._table.writerow(TABLE_COLUMNS)

    def add(self, line: Mapping[str, Any], record: ManifestRecord | None) -> None:
        """One manifest line, and the table rows of its record (none for an unlabeled line)."""
        self._manifest.write(dump_manifest_line(line))
        if record is None:
            return
        image = image_file_name(record.source_ref)
        if isinstance(record, ClassificationRecord):
            self._table.writerow([image, record.label, "", "", "", "", "", ""])
            return
        for box in record.boxes:
            self._table.writerow(
                [
                    image,
                    box.label,
                    _number(box.left),
                    _number(box.top),
                    _number(box.height),
                    _number(box.width),
                    record.image_width,
                    record.image_height,
                ]
            )


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


# --- quality summary -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailedObject:
    """An object of the job without a usable label, and why. ``line`` is its 1-based line in the manifest read."""

    dataset_object_id: str | None
    line: int
    source_ref: str | None
    reason: str


@dataclass
class WorkerQuality:
    """One worker over the whole job; see :meth:`DatasetQuality.to_dict` for ``estimated_accuracy``."""

    worker_id: str
    answers: int = 0
    answers_not_used: int = 0
    boxes: int = 0
    matched_boxes: int = 0
    estimated_accuracy: float | None = None
    gold_answers: int = 0
    gold_correct: int = 0


@dataclass
class GoldSummary:
    """The job's gold questions (:mod:`truthflow.gold_questions`): where they came from, how many of the job's
    objects are gold questions, and how many of those got a usable answer."""

    gold_file: str | None
    n_gold: int = 0
    n_answered: int = 0


@dataclass
class DatasetQuality:
    """What was consolidated and how well the workers agreed; :meth:`to_dict` is ``quality.json``."""

    source: Source
    task_type: TaskType
    label_attribute_name: str
    labels: list[str]
    n_objects: int = 0
    failed: list[FailedObject] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    agreement_sum: float = 0.0
    agreement_count: int = 0
    n_boxes: int = 0
    workers: dict[str, WorkerQuality] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    n_response_files: int = 0
    unmatched_object_ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_machine_labeled: int = 0
    imports: dict[str, Any] | None = None
    """Labels from tool exports: what was read, matched and left out (``quality.json``'s ``import``)."""
    gold: GoldSummary | None = None

    @property
    def n_failed(self) -> int:
        return len(self.failed)

    @property
    def n_consolidated(self) -> int:
        return self.n_objects - self.n_failed

    @property
    def agreement(self) -> float | None:
        return self.agreement_sum / self.agreement_count if self.agreement_count else None

    def to_dict(self) -> dict[str, Any]:
        """The summary. Definitions:

        * ``agreement``: classification, the mean over consolidated objects of the fraction of the object's workers
          whose answer is the consolidated label; boxes, the mean over consolidated boxes of the fraction of the
          image's workers who drew a box matching it (same label, IoU >= 0.5, one box per worker). ``null`` when
          there are no worker responses (bring-your-own manifest) or nothing to average.
        * ``confidence_histogram``: counts of the consolidated confidences (per object for classification, per box
          for boxes) in 10 equal bins over [0, 1] (the last bin includes 1).
        * ``workers[].estimated_accuracy``: classification, the Dawid-Skene model's expected fraction of the worker's
          answers that are the true class (the trace of its expected confusion counts over its answers); boxes, the
          fraction of the worker's boxes that match a kept consolidated box (``null`` for a worker who drew none).
        * With gold questions: ``gold_questions`` (``gold_file``, ``n_gold``: objects of the job that are gold
          questions, ``n_answered``: those with a usable answer), and per worker ``gold_answers`` (gold questions the
          worker answered), ``gold_correct`` (answered with the gold label) and ``gold_accuracy`` (their ratio,
          ``null`` for a worker who answered none), next to ``estimated_accuracy``.
        """
        bin_edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
        counts, _ = np.histogram(np.clip(self.confidences, 0.0, 1.0), bins=bin_edges)
        summary: dict[str, Any] = {
            "source": self.source,
            "task_type": self.task_type,
            "label_attribute_name": self.label_attribute_name,
            "labels": self.labels,
            "n_objects": self.n_objects,
            "n_consolidated": self.n_consolidated,
            "n_machine_labeled": self.n_machine_labeled,
            "n_failed": self.n_failed,
            "failed": [
                {
                    "dataset_object_id": failed.dataset_object_id,
                    "line": failed.line,
                    "source_ref": failed.source_ref,
                    "reason": failed.reason,
                }
                for failed in self.failed
            ],
            "agreement": None if self.agreement is None else round(self.agreement, 4),
            "agreement_basis": "answers" if self.task_type == "image-classification" else "boxes",
            "confidence_histogram": {
                "basis": "objects" if self.task_type == "image-classification" else "boxes",
                "bin_edges": [round(float(edge), 2) for edge in bin_edges],
                "counts": [int(count) for count in counts],
            },
            "n_response_files": self.n_response_files,
            "n_workers": len(self.workers),
            "n_answers": sum(worker.answers for worker in self.workers.values()),
            "workers": [
                _worker_dict(self.workers[name], self.task_type, gold=self.gold is not None)
                for name in sorted(self.workers)
            ],
            "answers_not_used": {
                "count": len(self.problems),
                "over_limit": sum(problem.over_limit for problem in self.problems),
                "listed": [
                    {"dataset_object_id": p.dataset_object_id, "worker": p.worker, "reason": p.reason}
                    for p in self.problems[:MAX_LISTED_PROBLEMS]
                ],
            },
            "responses_without_object": sorted(self.unmatched_object_ids, key=id_order),
            "notes": self.notes,
        }
        if self.task_type == "bounding-box":
            summary["n_boxes"] = self.n_boxes
        if self.imports is not None:
            summary["import"] = self.imports
        if self.gold is not None:
            summary["gold_questions"] = {
                "gold_file": self.gold.gold_file,
                "n_gold": self.gold.n_gold,
                "n_answered": self.gold.n_answered,
            }
        return summary


def _worker_dict(worker: WorkerQuality, task_type: TaskType, *, gold: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "worker_id": worker.worker_id,
        "answers": worker.answers,
        "answers_not_used": worker.answers_not_used,
        "estimated_accuracy": None if worker.estimated_accuracy is None else round(worker.estimated_accuracy, 4),
    }
    if gold:
        entry["gold_answers"] = worker.gold_answers
        entry["gold_correct"] = worker.gold_correct
        entry["gold_accuracy"] = round(worker.gold_correct / worker.gold_answers, 4) if worker.gold_answers else None
    if task_type == "bounding-box":
        entry["boxes"] = worker.boxes
        entry["matched_boxes"] = worker.matched_boxes
    return entry


def id_order(object_id: str) -> tuple[int, int | str]:
    return (0, int(object_id)) if object_id.isdigit() else (1, object_id)


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def score_object(quality: DatasetQuality, record: ManifestRecord, answers: ObjectAnswers | None) -> None:
    """Add one consolidated object to the confidence histogram, the agreement and the per-worker counts."""
    if isinstance(record, ClassificationRecord):
        quality.confidences.append(0.0 if record.confidence is None else record.confidence)
        if answers is None or not answers.labels:
            return
        agreeing = sum(label == record.label for label in answers.labels.values())
        quality.agreement_sum += agreeing / len(answers.labels)
        quality.agreement_count += 1
        return
    quality.n_boxes += len(record.boxes)
    quality.confidences.extend(0.0 if box.confidence is None else box.confidence for box in record.boxes)
    if answers is None or not answers.boxes:
        return
    matched_by = np.zeros(len(record.boxes), dtype=np.int64)
    for worker, matched in box_matches(answers.boxes, record).items():
        stats = quality.workers.setdefault(worker, WorkerQuality(worker))
        stats.boxes += len(answers.boxes[worker])
        stats.matched_boxes += len(matched)
        matched_by[matched] += 1
    if record.boxes:
        quality.agreement_sum += float(np.sum(matched_by / len(answers.boxes)))
        quality.agreement_count += len(record.boxes)


def write_object(
    writer: ConsolidatedDatasetWriter,
    quality: DatasetQuality,
    data_object: Mapping[str, Any],
    content: Mapping[str, Any],
    *,
    object_id: str,
    line_number: int,
    labels: Sequence[str],
    label_attribute_name: str,
    answers: ObjectAnswers | None,
) -> None:
    """One object's output-manifest line written and accounted for: scored when it carries a label, listed as failed
    (with the reason its metadata gives) when not, so that every input line is in one or the other."""
    line = output_manifest_line(data_object, content)
    record = parse_output_manifest_line(line, label_attribute_name=label_attribute_name, class_names=labels)
    if record is None:
        metadata = content.get(f"{label_attribute_name}-metadata") or {}
        reason = str(metadata.get("failure-reason") or "no label")
        source_ref = text_or_none(data_object.get("source-ref"))
        quality.failed.append(FailedObject(object_id, line_number, source_ref, reason))
    else:
        score_object(quality, record, answers)
    writer.add(line, record)


def box_matches(drawn: Mapping[str, Sequence[PixelBox]], record: DetectionRecord) -> dict[str, list[int]]:
    """Per worker, the indices of ``record``'s boxes that the worker's boxes match: same label, IoU >=
    :data:`BOX_MATCH_IOU`, one-to-one (:func:`~truthflow.consolidation.box_metrics.match_boxes`, label by label).
    Worker boxes are clipped to the image first, as consolidation clips them.

    One IoU matrix per image. The assignment is solved only for a worker whose eligible pairs are ambiguous (one box
    eligible for two kept boxes, or the reverse), which is rare; otherwise every eligible pair is a match."""
    workers = list(drawn)
    matches: dict[str, list[int]] = {worker: [] for worker in workers}
    flat = [(code, box) for code, worker in enumerate(workers) for box in drawn[worker]]
    if not flat or not record.boxes:
        return matches
    kept = np.array([_ltwh(box) for box in record.boxes], dtype=np.float64)
    kept_labels = np.array([box.label for box in record.boxes])
    boxes = _clipped([box for _, box in flat], record.image_width, record.image_height)
    labels = np.array([box.label for _, box in flat])
    owner = np.array([code for code, _ in flat])
    eligible = (iou_matrix(boxes, kept) >= BOX_MATCH_IOU) & (labels[:, None] == kept_labels[None, :])
    for code, worker in enumerate(workers):
        rows = np.flatnonzero(owner == code)
        pairs = eligible[rows]
        if (pairs.sum(axis=0) <= 1).all() and (pairs.sum(axis=1) <= 1).all():
            matches[worker] = [int(column) for column in np.flatnonzero(pairs.any(axis=0))]
            continue
        found: list[int] = []
        for label in np.unique(labels[rows]):
            mine, theirs = rows[labels[rows] == label], np.flatnonzero(kept_labels == label)
            _, matched = match_boxes(boxes[mine], kept[theirs], threshold=BOX_MATCH_IOU)
            found.extend(int(theirs[index]) for index in matched)
        matches[worker] = sorted(found)
    return matches


def _ltwh(box: Any) -> tuple[float, float, float, float]:
    return (float(box.left), float(box.top), float(box.width), float(box.height))


def _clipped(boxes: Sequence[PixelBox], width: int, height: int) -> FloatArray:
    array = np.array([_ltwh(box) for box in boxes], dtype=np.float64)
    corners = np.stack([array[:, 0], array[:, 1], array[:, 0] + array[:, 2], array[:, 1] + array[:, 3]], axis=1)
    corners = np.minimum(np.maximum(corners, 0.0), [width, height, width, height])
    clipped: FloatArray = np.stack(
        [corners[:, 0], corners[:, 1], corners[:, 2] - corners[:, 0], corners[:, 3] - corners[:, 1]], axis=1
    )
    return clipped


def add_gold_scores(quality: DatasetQuality, scores: Mapping[str, tuple[int, int]]) -> None:
    """Per worker: (gold questions answered, answered with the gold label), added to the worker's entry."""
    for worker, (answered, correct) in scores.items():
        stats = quality.workers.setdefault(worker, WorkerQuality(worker))
        stats.gold_answers += answered
        stats.gold_correct += correct


def add_worker_accuracy(quality: DatasetQuality, workers: Sequence[str], counts: FloatArray) -> None:
    """Classification: the model's expected share of correct answers per worker, from its (W, K, K) counts."""
    for worker, worker_counts in zip(workers, counts, strict=True):
        answered = float(worker_counts.sum())
        if answered > 0:
            stats = quality.workers.setdefault(worker, WorkerQuality(worker))
            stats.estimated_accuracy = float(np.trace(worker_counts)) / answered
    if quality.task_type == "bounding-box":
        for stats in quality.workers.values():
            stats.estimated_accuracy = stats.matched_boxes / stats.boxes if stats.boxes else None
