"""Reading an ACS batch: the payload's dataset objects and each worker's answer, leaving out only what is bad.

:func:`read_batch` parses a Ground Truth consolidation payload (reference §2.3) into :class:`ObjectAnswers` per
``datasetObjectId``; :func:`add_answer` reads one worker's answer (the payload's ``annotationData.content`` or a
worker-response file's ``answerContent``) with the bounded readers of :mod:`truthflow.groundtruth.worker_answers`.
Nothing here raises for what a worker sent: an annotation, an answer or a box that cannot be used becomes a
:class:`Problem` with its reason. :mod:`truthflow.groundtruth.consolidation_batch` consolidates what was read.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from truthflow.groundtruth.bounded_json import encodes_as_utf8
from truthflow.groundtruth.label_config import TaskType
from truthflow.groundtruth.worker_answers import (
    BOUNDING_BOX_ELEMENT_NAMES,
    IMAGE_CLASSIFIER_ELEMENT_NAMES,
    MAX_BOXES_PER_ANSWER,
    AnswerLimitError,
    PixelBox,
    parse_bounding_box_content,
    parse_image_classification_content,
)

ObjectId = str | int
"""A ``datasetObjectId`` as Ground Truth sent it: a string in practice, a number accepted and returned as given."""

# Answers refused as a whole for their size never reach the engine; together with MAX_BOXES_PER_ANSWER this bounds
# the boxes of one image: Ground Truth's maximum of 9 workers per object, each with a full answer.
MAX_BOXES_PER_OBJECT = 9 * MAX_BOXES_PER_ANSWER


@dataclass(frozen=True)
class Problem:
    """Something in the batch that could not be used, and why. ``worker`` is None when no single worker's answer is
    concerned; ``over_limit`` marks an answer refused for its size (too many boxes, too long, nested too deeply)."""

    dataset_object_id: ObjectId
    worker: str | None
    reason: str
    over_limit: bool = False


@dataclass
class ObjectAnswers:
    """One dataset object's usable answers: a label per worker (classification) or boxes per worker, with the image
    size each worker's answer reported."""

    dataset_object_id: ObjectId
    labels: dict[str, str] = field(default_factory=dict)
    boxes: dict[str, tuple[PixelBox, ...]] = field(default_factory=dict)
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    source_ref: str | None = None
    """The object's image (``dataObject.s3Uri``, a manifest line's ``source-ref``): how gold questions find it."""

    @property
    def image_size(self) -> tuple[int, int] | None:
        """Workers see the same image; if their reported sizes ever differ, the most common one wins."""
        return Counter(self.sizes.values()).most_common(1)[0][0] if self.sizes else None

    @property
    def n_boxes(self) -> int:
        return sum(len(boxes) for boxes in self.boxes.values())


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

    @property
    def answer_pairs(self) -> list[tuple[ObjectId, str]]:
        """``(datasetObjectId, worker)`` of every usable answer: the batch's identity for idempotent updates."""
        return [(obj.dataset_object_id, worker) for obj in self.objects for worker in [*obj.labels, *obj.boxes]]


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


def parse_payload(data: str | bytes) -> tuple[list[Any], str | None]:
    """The payload file's list of dataset objects, or ``([], why)`` when it is not a readable JSON list. Ground Truth
    writes this file itself (worker answers are strings inside it), so it is parsed whole; a payload nested too
    deeply for the parser is reported like any unreadable one."""
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError) as error:
        return [], f"not readable JSON ({type(error).__name__}: {str(error)[:200]})"
    if not isinstance(parsed, list):
        return [], f"expected a JSON list of dataset objects, got {_kind(parsed)}"
    return parsed, None


def dataset_object_id(raw: Any) -> ObjectId | None:
    """The entry's ``datasetObjectId`` when it can be answered: a string, or an integer (kept as given)."""
    value = raw.get("datasetObjectId") if isinstance(raw, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return value


def read_batch(raw_objects: Sequence[Any], *, labels: Sequence[str], task_type: TaskType) -> ParsedBatch:
    """Parse the payload list, leaving out only what is bad: an entry without a usable ``datasetObjectId`` cannot be
    answered; an annotation without ``workerId`` or ``annotationData.content`` (a JSON string), an unreadable or
    oversized answer, and a malformed box are each left out with a :class:`Problem`, and everything else is used.
    A repeated id is answered once (its answers are merged); a worker answering one object twice counts once, with
    the last answer."""
    problems: list[Problem] = []
    by_id: dict[ObjectId, ObjectAnswers] = {}
    for position, raw in enumerate(raw_objects):
        object_id = dataset_object_id(raw)
        if object_id is None:
            given = raw.get("datasetObjectId") if isinstance(raw, Mapping) else None
            shown = repr(given)[:80] if isinstance(given, str | int | float | bool | None) else f"a {_kind(given)}"
            reason = f"entry {position} has no usable datasetObjectId (a string or an integer; got {shown})"
            problems.append(Problem(f"<entry {position}>", None, reason))
            continue
        answers = by_id.setdefault(object_id, ObjectAnswers(object_id))
        if answers.source_ref is None:
            answers.source_ref = _source_ref(raw)
        annotations = raw.get("annotations")
        if annotations is None:
            continue
        if not isinstance(annotations, list):
            problems.append(Problem(object_id, None, f"annotations: expected a list, got {_kind(annotations)}"))
            continue
        for index, annotation in enumerate(annotations):
            found = _annotation_content(annotation, f"annotations[{index}]")
            if isinstance(found, Problem):
                problems.append(Problem(object_id, found.worker, found.reason))
                continue
            worker, content = found
            add_answer(answers, worker, content, labels=labels, task_type=task_type, problems=problems)
    return ParsedBatch(task_type, list(by_id.values()), problems)


def _source_ref(raw: Mapping[str, Any]) -> str | None:
    data_object = raw.get("dataObject")
    uri = data_object.get("s3Uri") if isinstance(data_object, Mapping) else None
    return uri if isinstance(uri, str) else None


def _annotation_content(annotation: Any, where: str) -> tuple[str, str] | Problem:
    """``(workerId, content)`` of one payload annotation, or a :class:`Problem` (its object id filled in later)."""
    if not isinstance(annotation, Mapping):
        return Problem("", None, f"{where}: expected an object, got {_kind(annotation)} (left out)")
    worker = annotation.get("workerId")
    if not isinstance(worker, str) or not worker.strip():
        return Problem("", None, f"{where} has no workerId (answer left out)")
    if not worker.isascii() and not encodes_as_utf8(worker):
        return Problem("", None, f"{where}.workerId is not valid Unicode (answer left out)")
    data = annotation.get("annotationData")
    if not isinstance(data, Mapping):
        return Problem("", worker, f"{where}.annotationData: expected an object, got {_kind(data)} (answer left out)")
    content = data.get("content")
    if content is None:
        return Problem("", worker, f"{where}.annotationData has no inline content (answer left out)")
    if not isinstance(content, str):
        return Problem(
            "",
            worker,
            f"{where}.annotationData.content: expected a JSON string, got {_kind(content)} (answer left out)",
        )
    return worker, content


def add_answer(
    answers: ObjectAnswers,
    worker: str,
    content: str | Mapping[str, Any] | Sequence[Any],
    *,
    labels: Sequence[str],
    task_type: TaskType,
    problems: list[Problem],
) -> None:
    """Add one worker's answer (``annotationData.content`` or a worker-response file's ``answerContent``) to an
    object, recording what is left out in ``problems``."""
    object_id = answers.dataset_object_id
    replaced = worker in answers.labels or worker in answers.boxes
    try:
        if task_type == "bounding-box":
            parsed = parse_bounding_box_content(content, labels=labels)
            problems.extend(Problem(object_id, worker, reason) for reason in parsed.problems)
            total = answers.n_boxes - len(answers.boxes.get(worker, ())) + len(parsed.boxes)
            if total > MAX_BOXES_PER_OBJECT:
                reason = (
                    f"answer left out: with its {len(parsed.boxes)} boxes the object would have {total:,}; at most "
                    f"{MAX_BOXES_PER_OBJECT:,} boxes per object are read"
                )
                problems.append(Problem(object_id, worker, reason, over_limit=True))
                return
            answers.boxes[worker] = parsed.boxes
            answers.sizes.pop(worker, None)
            if parsed.image_width and parsed.image_height:
                answers.sizes[worker] = (parsed.image_width, parsed.image_height)
        else:
            answers.labels[worker] = parse_image_classification_content(content, labels=labels).label
    except AnswerLimitError as error:
        problems.append(Problem(object_id, worker, f"{error} (answer left out)", over_limit=True))
        return
    except ValueError as error:
        problems.append(Problem(object_id, worker, f"{error} (answer left out)"))
        return
    if replaced:
        problems.append(Problem(object_id, worker, "the worker answered twice; the last answer is used"))


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
