"""The annotation-consolidation (ACS) step without AWS: a Ground Truth batch in, one response entry per object out.

Two phases, so the Lambda adapter can fetch carried worker skill between them: :func:`read_batch`
(:mod:`truthflow.groundtruth.batch_answers`) parses every dataset object and worker answer, leaving out only what is
bad (an annotation, an answer, a box) with a reason, never raising, then :func:`consolidate_batch` runs the engine
(Dawid-Skene for classes, box consolidation for boxes) and shapes the answer in Ground Truth's own output formats.

An object with no usable answer is returned with a null label, confidence 0 and a ``failure-reason`` in its
metadata: Ground Truth gets exactly one entry per ``datasetObjectId`` and later stages skip it as unlabeled.

Gold questions (classification): ``gold`` maps an object's image (its ``source-ref``, the payload's
``dataObject.s3Uri``) to its known label. The engine fixes those objects' labels and anchors each worker's skill on
them (:func:`~truthflow.consolidation.labels.consolidate_labels`), a gold object nobody answered usably still gets
its known label, and every worker is scored on the gold objects they answered (:attr:`BatchConsolidation.gold`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from truthflow.consolidation.boxes import ConsolidatedBox, ImageAnswers, WorkerAnswer, consolidate_boxes
from truthflow.consolidation.labels import consolidate_labels
from truthflow.consolidation.majority_vote import FloatArray
from truthflow.groundtruth.batch_answers import (
    MAX_BOXES_PER_OBJECT,
    ObjectAnswers,
    ObjectId,
    ParsedBatch,
    Problem,
    add_answer,
    dataset_object_id,
    detect_task_type,
    parse_payload,
    read_batch,
)
from truthflow.groundtruth.events import build_consolidation_response_entry
from truthflow.groundtruth.label_config import TaskType
from truthflow.groundtruth.output_manifest import (
    CLASSIFICATION_TYPE,
    DETECTION_TYPE,
    classification_annotation,
    detection_annotation,
    format_creation_date,
    format_job_name,
)

# Reading a batch lives in batch_answers; its names stay importable from here.
__all__ = [
    "MAX_BOXES_PER_OBJECT",
    "MAX_REASONS_SHOWN",
    "MAX_SKILL_MODEL_BYTES",
    "BatchConsolidation",
    "BatchResult",
    "ObjectAnswers",
    "ObjectId",
    "ParsedBatch",
    "Problem",
    "add_answer",
    "consolidate_batch",
    "consolidate_objects",
    "dataset_object_id",
    "detect_task_type",
    "failed_batch",
    "failed_content",
    "failure_reason",
    "parse_payload",
    "read_batch",
]

# A failed object's failure-reason lists at most this many problems (each object's output line stays small).
MAX_REASONS_SHOWN = 10
# The class model holds a few (workers, K, K) float arrays. Past this size for one of them (e.g. 100 workers x 560
# labels), a batch is consolidated by plurality vote instead, so that a large label set answered by many workers
# cannot exhaust a Lambda's memory.
MAX_SKILL_MODEL_BYTES = 256 << 20


@dataclass(frozen=True)
class BatchResult:
    """The ACS response list, this batch's worker confusion counts (classification), and what went wrong."""

    response: list[dict[str, Any]]
    workers: list[str]
    worker_counts: FloatArray
    problems: list[Problem]
    n_failed: int
    note: str | None = None
    n_gold: int = 0
    """Objects of the batch that are gold questions (their labels are the known ones)."""


@dataclass
class BatchConsolidation:
    """The engine's results for a parsed batch. :meth:`content` shapes one object's Ground Truth content when it is
    asked for, so that a whole job's contents are written one at a time instead of all being held."""

    batch: ParsedBatch
    labels: list[str]
    label_attribute_name: str
    job_name: str
    workers: list[str]
    worker_counts: FloatArray
    problems: list[Problem]
    classes: dict[int, tuple[str, float]] = field(default_factory=dict)
    boxes: dict[int, tuple[list[ConsolidatedBox], tuple[int, int]]] = field(default_factory=dict)
    creation_date: str = field(default_factory=format_creation_date)
    note: str | None = None
    """How the batch was consolidated when not by the worker-skill model, and why."""
    gold_positions: set[int] = field(default_factory=set)
    """Positions (in ``batch.objects``) of the objects that are gold questions."""
    gold: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per worker who answered a gold question: (gold questions answered, answered with the gold label)."""
    _reasons: dict[ObjectId, list[str]] | None = field(default=None, repr=False)

    def consolidated(self, position: int) -> bool:
        return position in self.classes or position in self.boxes

    def content(self, position: int) -> dict[str, Any]:
        """The content of ``batch.objects[position]``: its label, or null and its failure reason."""
        if position in self.classes:
            label, confidence = self.classes[position]
            return classification_annotation(
                label_attribute_name=self.label_attribute_name,
                class_names=self.labels,
                label=label,
                confidence=confidence,
                job_name=self.job_name,
                creation_date=self.creation_date,
            )
        if position in self.boxes:
            boxes, (width, height) = self.boxes[position]
            return detection_annotation(
                label_attribute_name=self.label_attribute_name,
                class_names=self.labels,
                boxes=boxes,
                image_width=width,
                image_height=height,
                job_name=self.job_name,
                creation_date=self.creation_date,
            )
        if self._reasons is None:
            self._reasons = {}
            for problem in self.problems:
                self._reasons.setdefault(problem.dataset_object_id, []).append(problem.reason)
        return failed_content(
            label_attribute_name=self.label_attribute_name,
            task_type=self.batch.task_type,
            job_name=self.job_name,
            reason=failure_reason(self._reasons.get(self.batch.objects[position].dataset_object_id, [])),
            creation_date=self.creation_date,
        )


def consolidate_objects(
    batch: ParsedBatch,
    *,
    labels: Sequence[str],
    label_attribute_name: str,
    job_name: str,
    prior_counts: FloatArray | None = None,
    gold: Mapping[str, str] | None = None,
) -> BatchConsolidation:
    """Run the engine over a parsed batch. ``prior_counts`` (len(batch.workers), K, K): label confusion counts
    carried from earlier batches (the class answered for classification, the box label for boxes). ``gold``: image
    (``source-ref``) -> known label, for classification (see the module docstring; ignored for boxes, and a gold
    label outside ``labels`` is ignored with a note)."""
    labels = list(labels)
    result = BatchConsolidation(
        batch, labels, label_attribute_name, job_name, [], np.zeros((0, len(labels), len(labels))), list(batch.problems)
    )
    # The engine works on string names; positions stand in for the ids (which may mix strings and integers).
    if batch.task_type == "image-classification":
        known = _gold_by_position(batch, labels, gold or {}, result)
        for position in set(known) - {position for position, obj in enumerate(batch.objects) if obj.labels}:
            result.classes[position] = (known[position], 1.0)  # a gold question nobody answered usably
        answered = [position for position, obj in enumerate(batch.objects) if obj.labels]
        model_bytes = len(batch.workers) * len(labels) ** 2 * 8
        if answered and model_bytes > MAX_SKILL_MODEL_BYTES:
            result.note = (
                f"consolidated by plurality vote: a skill model of {len(batch.workers):,} workers x "
                f"{len(labels):,}^2 labels would take {model_bytes / 2**20:,.0f} MiB per array"
            )
            for position in answered:
                result.classes[position] = (
                    (known[position], 1.0)
                    if position in known
                    else _plurality(batch.objects[position].labels.values(), labels)
                )
            result.gold = _gold_counts(batch, known)
        elif answered:
            result.workers = batch.workers
            items = [str(position) for position in answered for _ in batch.objects[position].labels]
            answer_workers = [worker for position in answered for worker in batch.objects[position].labels]
            answer_labels = [label for position in answered for label in batch.objects[position].labels.values()]
            # Workers are coded in first-seen order, which is batch.workers' order: prior_counts lines up.
            classes = consolidate_labels(
                items,
                answer_workers,
                answer_labels,
                label_set=labels,
                prior_counts=prior_counts,
                gold={str(position): label for position, label in known.items() if batch.objects[position].labels},
            )
            result.worker_counts = classes.worker_counts
            for item, label, confidence in zip(classes.item_names, classes.labels, classes.confidence, strict=True):
                result.classes[int(item)] = (label, float(confidence))
            scored = zip(
                classes.worker_names, classes.gold.answers.tolist(), classes.gold.correct.tolist(), strict=True
            )
            result.gold = {worker: (n, right) for worker, n, right in scored if n}
    else:
        sized: dict[int, tuple[int, int]] = {}
        for position, obj in enumerate(batch.objects):
            size = obj.image_size
            if obj.boxes and size is not None:
                sized[position] = size
            elif obj.boxes:
                result.problems.append(Problem(obj.dataset_object_id, None, "no answer reports inputImageProperties"))
        images = [
            ImageAnswers(
                image=str(position),
                width=float(width),
                height=float(height),
                answers=tuple(WorkerAnswer(worker, boxes) for worker, boxes in batch.objects[position].boxes.items()),
            )
            for position, (width, height) in sized.items()
        ]
        carried = None
        if prior_counts is not None:
            carried = {worker: prior_counts[row] for row, worker in enumerate(batch.workers)}
        consolidation = consolidate_boxes(images, label_set=labels, prior_label_counts=carried)
        del images
        result.workers = [worker for worker in batch.workers if worker in consolidation.label_counts]
        result.worker_counts = np.array([consolidation.label_counts[worker] for worker in result.workers]).reshape(
            len(result.workers), len(labels), len(labels)
        )
        for rejected in consolidation.rejected:
            object_id = batch.objects[int(rejected.image)].dataset_object_id
            result.problems.append(Problem(object_id, rejected.worker, rejected.reason))
        for position, size in sized.items():
            result.boxes[position] = (consolidation.boxes[str(position)], size)
    return result


def _gold_by_position(
    batch: ParsedBatch, labels: Sequence[str], gold: Mapping[str, str], result: BatchConsolidation
) -> dict[int, str]:
    """Position -> known label of the batch's gold questions (recorded in ``result.gold_positions``)."""
    if not gold:
        return {}
    allowed = set(labels)
    known: dict[int, str] = {}
    ignored = 0
    for position, obj in enumerate(batch.objects):
        label = gold.get(obj.source_ref) if obj.source_ref is not None else None
        if label is None:
            continue
        if label in allowed:
            known[position] = label
        else:
            ignored += 1
    if ignored:
        note = f"{ignored} gold label(s) outside the job's labels were ignored"
        result.note = f"{result.note}; {note}" if result.note else note
    result.gold_positions = set(known)
    return known


def _gold_counts(batch: ParsedBatch, known: Mapping[int, str]) -> dict[str, tuple[int, int]]:
    """Per worker: gold questions answered and answered right, counted directly (the plurality-vote path)."""
    counts: dict[str, tuple[int, int]] = {}
    for position, label in known.items():
        for worker, answered in batch.objects[position].labels.items():
            n, right = counts.get(worker, (0, 0))
            counts[worker] = (n + 1, right + (answered == label))
    return counts


def _plurality(answers: Iterable[str], labels: Sequence[str]) -> tuple[str, float]:
    """The most frequent answer (ties to the first in label order) and its share of the answers."""
    counts = Counter(answers)
    order = {label: code for code, label in enumerate(labels)}
    label = min(counts, key=lambda name: (-counts[name], order.get(name, len(order))))
    return label, counts[label] / sum(counts.values())


def consolidate_batch(
    batch: ParsedBatch,
    *,
    labels: Sequence[str],
    label_attribute_name: str,
    job_name: str,
    prior_counts: FloatArray | None = None,
    gold: Mapping[str, str] | None = None,
) -> BatchResult:
    """Consolidate a parsed batch into the ACS response (see :func:`consolidate_objects`)."""
    result = consolidate_objects(
        batch,
        labels=labels,
        label_attribute_name=label_attribute_name,
        job_name=job_name,
        prior_counts=prior_counts,
        gold=gold,
    )
    response = [
        build_consolidation_response_entry(obj.dataset_object_id, label_attribute_name, result.content(position))
        for position, obj in enumerate(batch.objects)
    ]
    n_failed = sum(not result.consolidated(position) for position in range(len(batch.objects)))
    return BatchResult(
        response,
        result.workers,
        result.worker_counts,
        result.problems,
        n_failed,
        result.note,
        len(result.gold_positions),
    )


def failed_batch(
    raw_objects: Sequence[Any], *, reason: str, label_attribute_name: str, task_type: TaskType, job_name: str
) -> BatchResult:
    """Every answerable object of the payload returned as failed with ``reason``: for a batch that cannot be
    consolidated at all (its labels cannot be read, an internal error), where raising could fail the labeling job."""
    creation_date = format_creation_date()
    ids = list(dict.fromkeys(i for i in (dataset_object_id(raw) for raw in raw_objects) if i is not None))
    content = failed_content(
        label_attribute_name=label_attribute_name,
        task_type=task_type,
        job_name=job_name,
        reason=reason,
        creation_date=creation_date,
    )
    response = [build_consolidation_response_entry(i, label_attribute_name, content) for i in ids]
    return BatchResult(response, [], np.zeros((0, 0, 0)), [Problem(i, None, reason) for i in ids], len(ids))


def failure_reason(reasons: Sequence[str]) -> str:
    """The problems of a failed object, joined; a long list is cut (the full list is in the logs / quality.json)."""
    if not reasons:
        return "no worker answers"
    shown = "; ".join(reasons[:MAX_REASONS_SHOWN])
    more = len(reasons) - MAX_REASONS_SHOWN
    return f"{shown}; and {more} more" if more > 0 else shown


def failed_content(
    *, label_attribute_name: str, task_type: TaskType, job_name: str, reason: str, creation_date: str
) -> dict[str, Any]:
    """The answer for an object nothing could be consolidated from: null label, confidence 0, and why."""
    return {
        label_attribute_name: None,
        f"{label_attribute_name}-metadata": {
            "type": DETECTION_TYPE if task_type == "bounding-box" else CLASSIFICATION_TYPE,
            "confidence": 0.0,
            "failure-reason": reason,
            "human-annotated": "yes",
            "creation-date": creation_date,
            "job-name": format_job_name(job_name),
        },
    }
