"""The report's inputs: :class:`ReportInputs` and the JSON shapes it is made of, checked and typed per task.

:func:`_normalise` turns the plain JSON of a :class:`ReportInputs` into a :class:`_Data` of typed answers per image
and worker, with clear errors for malformed values; the analysis and the page work from that.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

from truthflow.groundtruth.output_manifest import LabeledBox

TaskType = Literal["bounding-box", "image-classification"]
BOUNDING_BOX: TaskType = "bounding-box"
IMAGE_CLASSIFICATION: TaskType = "image-classification"
# Timeline statuses (upper-cased when checked) drawn and listed as failed, or drawn as succeeded.
FAILED_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
SUCCEEDED_STATUSES = frozenset({"SUCCEEDED", "OK"})

DEFAULT_EMULATOR_NOTE = (
    "This run used the embedded AWS emulator and a simulated Ground Truth workforce whose true skills are known. "
    "Training and hosting complete in the emulator without model weights: the training job and the endpoint go "
    "through their states, but no model is trained or served, so there is no model accuracy to report."
)


class BoxDict(TypedDict):
    """One box in pixels (``left``/``top`` is the top-left corner); ``confidence`` on consolidated boxes."""

    label: str
    left: float
    top: float
    width: float
    height: float
    confidence: NotRequired[float]


class ClassResult(TypedDict):
    """The pipeline's consolidated class of one image and its confidence (the Dawid-Skene posterior)."""

    label: str
    confidence: float


class WorkerSkill(TypedDict):
    """A simulated worker's true skill: ``kind`` (e.g. expert, sloppy, spammer), class-label ``accuracy``,
    ``box_jitter`` (edge noise) and ``miss_rate`` (share of objects not boxed)."""

    kind: str
    accuracy: float
    box_jitter: float
    miss_rate: float


# Per image: a class label (image-classification) or a list of boxes (bounding-box).
Answer = str | list[BoxDict]
Consolidated = ClassResult | list[BoxDict]
# One state of the execution: (state name, start seconds, end seconds, status), seconds from any fixed origin (the
# report starts its axis at the first state). Status: a Step Functions status (SUCCEEDED, FAILED, ...) or ok/failed.
StateSpan = tuple[str, float, float, str]


@dataclass
class ReportInputs:
    """Everything the report shows; plain JSON types except ``sample_images`` (encoded image bytes).

    Per image (keys must agree between ``gold``, ``worker_answers`` and ``consolidated``, e.g. all file names or all
    S3 URIs): ``gold`` and each worker's answer are a class label or a list of boxes, ``consolidated`` the
    pipeline's :class:`ClassResult` or boxes with confidences. ``worker_answers`` is image -> worker -> answer.
    A ``sample_images`` key is matched to an image by equal name or as its last path component (a file name).
    ``outputs_location`` is where the run's outputs are (a folder or S3 prefix); ``outputs`` names more locations
    ("output manifest" -> S3 URI, ...). ``estimated_skill`` is the pipeline's quality summary (worker -> accuracy
    estimate); ``true_skill`` is known only for a simulated workforce. ``timeline`` lists the execution's states.
    ``run_seconds`` is the demo's wall-clock time. ``notes`` are shown in the header (default: the emulator note).
    """

    task_type: TaskType
    labels: list[str]
    gold: dict[str, Answer]
    worker_answers: dict[str, dict[str, Answer]]
    consolidated: dict[str, Consolidated]
    dataset: str = ""
    job_id: str = ""
    execution_name: str = ""
    execution_status: str = ""
    outputs_location: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    true_skill: dict[str, WorkerSkill] | None = None
    estimated_skill: dict[str, float] = field(default_factory=dict)
    timeline: list[StateSpan] = field(default_factory=list)
    sample_images: dict[str, bytes] = field(default_factory=dict)
    run_seconds: float | None = None
    notes: list[str] = field(default_factory=lambda: [DEFAULT_EMULATOR_NOTE])
    # Automated labeling: the run's dataset/automated-labeling.json, and the images labeled by the model.
    automated_labeling: dict[str, Any] | None = None
    machine_labeled: list[str] = field(default_factory=list)
    # Gold questions given to the pipeline (job.json gold_labels): their images, which are left out of the scores
    # (the pipeline knows their labels), and each worker's score on them as quality.json gives it
    # ({"answers": n, "correct": m}).
    gold_questions: list[str] = field(default_factory=list)
    gold_question_scores: dict[str, dict[str, int]] = field(default_factory=dict)
    # Every image's encoded bytes (by the keys of ``gold``), for the thumbnails of the images where the pipeline and
    # majority vote disagree.
    images: dict[str, bytes] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------------
# Checking and normalising the inputs
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Data:
    """The inputs checked and typed per task; ``images`` and ``workers`` in order of first appearance."""

    task_type: TaskType
    labels: list[str]
    images: list[str]
    workers: list[str]
    scored: list[str]
    gold_labels: dict[str, str]
    answer_labels: dict[str, dict[str, str]]
    result_labels: dict[str, tuple[str, float]]
    gold_boxes: dict[str, list[LabeledBox]]
    answer_boxes: dict[str, dict[str, list[LabeledBox]]]
    result_boxes: dict[str, list[LabeledBox]]
    n_answers: int
    timeline: list[StateSpan]
    gold_questions: frozenset[str] = frozenset()


def _as_box(value: object, where: str) -> LabeledBox:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: a box must be an object with label, left, top, width, height; got {value!r}")
    try:
        confidence = value.get("confidence")
        return LabeledBox(
            str(value["label"]),
            float(value["left"]),
            float(value["top"]),
            float(value["width"]),
            float(value["height"]),
            None if confidence is None else float(confidence),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{where}: a box needs label and numeric left, top, width, height; got {value!r}") from error


def _as_boxes(value: object, where: str) -> list[LabeledBox]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: a bounding-box report needs a list of boxes, got {type(value).__name__}")
    return [_as_box(box, where) for box in value]


def _as_label(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: an image-classification report needs a class label, got {type(value).__name__}")
    return value


def _as_class_result(value: object, where: str) -> tuple[str, float]:
    if not isinstance(value, Mapping) or not isinstance(value.get("label"), str):
        raise ValueError(f"{where}: expected {{'label': str, 'confidence': float}}, got {value!r}")
    confidence = value.get("confidence")
    return str(value["label"]), float(confidence) if isinstance(confidence, int | float) else math.nan


def _as_spans(timeline: Sequence[Sequence[object]]) -> list[StateSpan]:
    """Timeline entries as (name, start, end, status) with numeric times, an end no earlier than the start, and
    the status upper-cased; lists (a JSON round trip) are accepted as well as tuples."""
    spans: list[StateSpan] = []
    for position, entry in enumerate(timeline):
        try:
            name, start, end, status = entry
            start_seconds, end_seconds = float(str(start)), float(str(end))
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"timeline[{position}]: expected (state name, start, end, status), got {entry!r}"
            ) from error
        spans.append((str(name), start_seconds, max(start_seconds, end_seconds), str(status).upper()))
    return spans


def _normalise(inputs: ReportInputs) -> _Data:
    if inputs.task_type not in (BOUNDING_BOX, IMAGE_CLASSIFICATION):
        raise ValueError(f"task_type must be {BOUNDING_BOX!r} or {IMAGE_CLASSIFICATION!r}, got {inputs.task_type!r}")
    images = list(dict.fromkeys([*inputs.worker_answers, *inputs.consolidated, *inputs.gold]))
    workers = list(dict.fromkeys(worker for answers in inputs.worker_answers.values() for worker in answers))
    n_answers = sum(len(answers) for answers in inputs.worker_answers.values())
    gold_questions = frozenset(inputs.gold_questions)
    scored = [
        image
        for image in images
        if image in inputs.gold and inputs.worker_answers.get(image) and image not in gold_questions
    ]
    gold_labels: dict[str, str] = {}
    answer_labels: dict[str, dict[str, str]] = {}
    result_labels: dict[str, tuple[str, float]] = {}
    gold_boxes: dict[str, list[LabeledBox]] = {}
    answer_boxes: dict[str, dict[str, list[LabeledBox]]] = {}
    result_boxes: dict[str, list[LabeledBox]] = {}
    seen: list[str] = []
    if inputs.task_type == IMAGE_CLASSIFICATION:
        gold_labels = {image: _as_label(value, f"gold[{image!r}]") for image, value in inputs.gold.items()}
        answer_labels = {
            image: {worker: _as_label(value, f"worker_answers[{image!r}][{worker!r}]") for worker, value in row.items()}
            for image, row in inputs.worker_answers.items()
        }
        result_labels = {
            image: _as_class_result(value, f"consolidated[{image!r}]") for image, value in inputs.consolidated.items()
        }
        seen = [*gold_labels.values(), *(label for row in answer_labels.values() for label in row.values())]
        seen += [label for label, _ in result_labels.values()]
    else:
        gold_boxes = {image: _as_boxes(value, f"gold[{image!r}]") for image, value in inputs.gold.items()}
        answer_boxes = {
            image: {worker: _as_boxes(value, f"worker_answers[{image!r}][{worker!r}]") for worker, value in row.items()}
            for image, row in inputs.worker_answers.items()
        }
        result_boxes = {
            image: _as_boxes(value, f"consolidated[{image!r}]") for image, value in inputs.consolidated.items()
        }
        groups: Iterable[list[LabeledBox]] = [
            *gold_boxes.values(),
            *(boxes for row in answer_boxes.values() for boxes in row.values()),
            *result_boxes.values(),
        ]
        seen = [box.label for boxes in groups for box in boxes]
    # A label outside the declared set is shown, not fatal: the report must not fail at the end of a run.
    labels = list(dict.fromkeys([*inputs.labels, *sorted(set(seen) - set(inputs.labels))]))
    return _Data(
        task_type=inputs.task_type,
        labels=labels,
        images=images,
        workers=workers,
        scored=scored,
        gold_labels=gold_labels,
        answer_labels=answer_labels,
        result_labels=result_labels,
        gold_boxes=gold_boxes,
        answer_boxes=answer_boxes,
        result_boxes=result_boxes,
        n_answers=n_answers,
        timeline=_as_spans(inputs.timeline),
        gold_questions=gold_questions,
    )
