"""The annotation-consolidation (ACS) step without AWS: a Ground Truth batch in, one response entry per object out.

Two phases, so the Lambda adapter can fetch carried worker skill between them: :func:`read_batch` parses every
dataset object and worker answer (bad ones are recorded with a reason, never raised), then
:func:`consolidate_batch` runs the engine (Dawid-Skene for classes, box consolidation for boxes) and shapes the
answer in Ground Truth's own output formats.

An object with no usable answer is returned with a null label, confidence 0 and a ``failure-reason`` in its
metadata: Ground Truth gets exactly one entry per ``datasetObjectId`` and later stages skip it as unlabeled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationError

from truthflow.consolidation.boxes import Box, ImageAnswers, WorkerAnswer, consolidate_boxes
from truthflow.consolidation.labels import consolidate_labels
from truthflow.consolidation.majority_vote import FloatArray
from truthflow.groundtruth.events import DatasetObject, build_consolidation_response_entry
from truthflow.groundtruth.label_config import TaskType
from truthflow.groundtruth.output_manifest import (
    CLASSIFICATION_TYPE,
    DETECTION_TYPE,
    classification_annotation,
    detection_annotation,
    format_creation_date,
    format_job_name,
)
from truthflow.groundtruth.worker_answers import (
    BOUNDING_BOX_ELEMENT_NAMES,
    IMAGE_CLASSIFIER_ELEMENT_NAMES,
    PixelBox,
    parse_bounding_box_content,
    parse_image_classification_content,
)


@dataclass(frozen=True)
class Problem:
    """Something in the batch that could not be used; ``answer`` is None when the whole object is affected."""

    dataset_object_id: str
    worker: str | None
    reason: str


@dataclass(frozen=True)
class ObjectAnswers:
    """One dataset object's usable answers: a label per worker (classification) or boxes per worker."""

    dataset_object_id: str
    labels: dict[str, str] = field(default_factory=dict)
    boxes: dict[str, tuple[PixelBox, ...]] = field(default_factory=dict)
    image_size: tuple[int, int] | None = None


@dataclass(frozen=True)
class ParsedBatch:
    """Objects in payload order (each ``datasetObjectId`` once) and every problem met while reading."""

    task_type: TaskType
    objects: list[ObjectAnswers]
    problems: list[Problem]

    @property
    def workers(self) -> list[str]:
        """Workers with a usable answer (a label, or boxes), in order of first appearance."""
        return list(dict.fromkeys(worker for obj in self.objects for worker in [*obj.labels, *obj.boxes]))


@dataclass(frozen=True)
class BatchResult:
    """The ACS response list, this batch's worker confusion counts (classification), and what went wrong."""

    response: list[dict[str, Any]]
    workers: list[str]
    worker_counts: FloatArray
    problems: list[Problem]
    n_failed: int


def detect_task_type(raw_objects: Sequence[Any]) -> TaskType:
    """The task type from the answers themselves: the crowd element's name is the top-level key of each answer."""
    for raw in raw_objects:
        annotations = raw.get("annotations") if isinstance(raw, Mapping) else None
        for annotation in annotations if isinstance(annotations, list) else []:
            data = annotation.get("annotationData") if isinstance(annotation, Mapping) else None
            content = data.get("content") if isinstance(data, Mapping) else None
            if not isinstance(content, str):
                continue
            if any(f'"{name}"' in content for name in BOUNDING_BOX_ELEMENT_NAMES):
                return "bounding-box"
            if any(f'"{name}"' in content for name in IMAGE_CLASSIFIER_ELEMENT_NAMES):
                return "image-classification"
    return "image-classification"


def read_batch(raw_objects: Sequence[Any], *, labels: Sequence[str], task_type: TaskType) -> ParsedBatch:
    """Parse the payload list. Entries without a usable ``datasetObjectId`` cannot be answered and are reported;
    a repeated id is answered once (its answers are merged)."""
    problems: list[Problem] = []
    by_id: dict[str, ObjectAnswers] = {}
    for position, raw in enumerate(raw_objects):
        try:
            dataset_object = DatasetObject.model_validate(raw)
        except ValidationError as error:
            object_id = raw.get("datasetObjectId") if isinstance(raw, Mapping) else None
            if not isinstance(object_id, str) or not object_id:
                problems.append(Problem(f"<entry {position}>", None, f"entry {position} has no datasetObjectId"))
                continue
            # The id is fine but something else is malformed: keep the object, answer it as failed.
            problems.append(Problem(object_id, None, _first_error(error)))
            by_id.setdefault(object_id, ObjectAnswers(object_id))
            continue
        answers = by_id.setdefault(dataset_object.dataset_object_id, ObjectAnswers(dataset_object.dataset_object_id))
        sizes: list[tuple[int, int]] = []
        for annotation in dataset_object.annotations:
            worker = annotation.worker_id
            content = annotation.annotation_data.content
            if content is None:
                problems.append(Problem(answers.dataset_object_id, worker, "annotationData has no inline content"))
                continue
            try:
                if task_type == "bounding-box":
                    parsed_boxes = parse_bounding_box_content(content, labels=labels)
                    answers.boxes[worker] = parsed_boxes.boxes
                    if parsed_boxes.image_width and parsed_boxes.image_height:
                        sizes.append((parsed_boxes.image_width, parsed_boxes.image_height))
                else:
                    answers.labels[worker] = parse_image_classification_content(content, labels=labels).label
            except ValueError as error:
                problems.append(Problem(answers.dataset_object_id, worker, str(error)))
        if sizes and answers.image_size is None:
            # Workers see the same image; if their reported sizes ever differ, the most common one wins.
            by_id[answers.dataset_object_id] = ObjectAnswers(
                answers.dataset_object_id, answers.labels, answers.boxes, Counter(sizes).most_common(1)[0][0]
            )
    return ParsedBatch(task_type, list(by_id.values()), problems)


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    return f"{location}: {first['msg']}"


def consolidate_batch(
    batch: ParsedBatch,
    *,
    labels: Sequence[str],
    label_attribute_name: str,
    job_name: str,
    prior_counts: FloatArray | None = None,
) -> BatchResult:
    """Consolidate a parsed batch. ``prior_counts`` (len(batch.workers), K, K): label confusion counts carried from
    earlier batches (the class answered for classification, the box label for boxes)."""
    creation_date = format_creation_date()
    problems = list(batch.problems)
    contents: dict[str, dict[str, Any]] = {}
    workers: list[str] = []
    worker_counts = np.zeros((0, len(labels), len(labels)))
    if batch.task_type == "image-classification":
        answered = [obj for obj in batch.objects if obj.labels]
        if answered:
            workers = batch.workers
            items = [obj.dataset_object_id for obj in answered for _ in obj.labels]
            answer_workers = [worker for obj in answered for worker in obj.labels]
            answer_labels = [label for obj in answered for label in obj.labels.values()]
            # Workers are coded in first-seen order, which is batch.workers' order: prior_counts lines up.
            result = consolidate_labels(
                items, answer_workers, answer_labels, label_set=labels, prior_counts=prior_counts
            )
            worker_counts = result.worker_counts
            for item, label, confidence in zip(result.item_names, result.labels, result.confidence, strict=True):
                contents[item] = classification_annotation(
                    label_attribute_name=label_attribute_name,
                    class_names=labels,
                    label=label,
                    confidence=float(confidence),
                    job_name=job_name,
                    creation_date=creation_date,
                )
    else:
        sized: list[tuple[ObjectAnswers, tuple[int, int]]] = []
        for obj in batch.objects:
            if obj.boxes and obj.image_size is not None:
                sized.append((obj, obj.image_size))
            elif obj.boxes:
                problems.append(Problem(obj.dataset_object_id, None, "no answer reports inputImageProperties"))
        images = [
            ImageAnswers(
                image=obj.dataset_object_id,
                width=float(width),
                height=float(height),
                answers=tuple(
                    WorkerAnswer(worker, tuple(Box(b.label, b.left, b.top, b.width, b.height) for b in boxes))
                    for worker, boxes in obj.boxes.items()
                ),
            )
            for obj, (width, height) in sized
        ]
        carried = None
        if prior_counts is not None:
            carried = {worker: prior_counts[row] for row, worker in enumerate(batch.workers)}
        consolidation = consolidate_boxes(images, label_set=labels, prior_label_counts=carried)
        workers = [worker for worker in batch.workers if worker in consolidation.label_counts]
        worker_counts = np.array([consolidation.label_counts[worker] for worker in workers]).reshape(
            len(workers), len(labels), len(labels)
        )
        for rejected in consolidation.rejected:
            problems.append(Problem(rejected.image, rejected.worker, rejected.reason))
        for obj, (width, height) in sized:
            contents[obj.dataset_object_id] = detection_annotation(
                label_attribute_name=label_attribute_name,
                class_names=labels,
                boxes=consolidation.boxes[obj.dataset_object_id],
                image_width=width,
                image_height=height,
                job_name=job_name,
                creation_date=creation_date,
            )
    response = []
    n_failed = 0
    for obj in batch.objects:
        content = contents.get(obj.dataset_object_id)
        if content is None:
            n_failed += 1
            reasons = [p.reason for p in problems if p.dataset_object_id == obj.dataset_object_id]
            content = failed_content(
                label_attribute_name=label_attribute_name,
                task_type=batch.task_type,
                job_name=job_name,
                reason="; ".join(reasons) or "no worker answers",
                creation_date=creation_date,
            )
        response.append(build_consolidation_response_entry(obj.dataset_object_id, label_attribute_name, content))
    return BatchResult(response, workers, worker_counts, problems, n_failed)


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
