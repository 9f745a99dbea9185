"""The report the offline run ends with: label quality against gold, worker skill, and the execution's timeline.

:func:`write_report` writes ``report.html`` and the PNG figures it shows into one folder (images referenced by
relative path, CSS inline, so the folder can be opened or copied as it is); :func:`summarize` returns the numbers
alone, for the CLI's printed summary and for tests. Both take a :class:`ReportInputs`, made of plain JSON types.

What is measured (all against the gold labels, on the *scored* images: those with gold and at least one answer):

- **Classification.** Accuracy of the pipeline's consolidated labels (Dawid-Skene, taken as given), of majority
  vote over the same raw answers (computed here with :func:`consolidate_labels`, ``method="mv"``), and of single
  workers: each worker's accuracy on the gold images they answered, averaged over workers, and the best worker.
  A scored image the pipeline gave no label counts as wrong.
- **Bounding boxes.** Micro-averaged precision, recall and F1 at IoU >= 0.5 and >= 0.7
  (:mod:`truthflow.consolidation.box_metrics`), with *class-aware* matching: a box matches a gold box of its own
  label only. Compared: the pipeline's consolidated boxes; a naive majority computed here (the same clustering and
  at-least-half quorum, but per-edge median coordinates, i.e. no worker skill); and single workers, each scored
  alone on the images they saw, averaged over workers, and the best worker (by F1 at IoU >= 0.5, shown at both).

- **Confusion.** Classification: gold x consolidated, and gold x majority vote. Boxes: gold class x consolidated
  class of boxes matched at IoU >= 0.5 regardless of class, plus a "missed" column (gold boxes no consolidated
  box matched) and a "no object" row (consolidated boxes that match no gold box).
- **Worker skill.** The workforce's true skill (simulated workforce) against the pipeline's estimate; also each
  worker's accuracy measured against gold (for boxes: the share of their gold-matched boxes with the right label).

Matplotlib draws on its Agg canvas directly (no pyplot, no display) and is imported only by :func:`write_report`,
so this module imports without it.
"""

from __future__ import annotations

import html
import io
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict

import numpy as np
from numpy.typing import NDArray

from truthflow.consolidation.box_metrics import DetectionScore, match_boxes
from truthflow.consolidation.boxes import Box, ImageAnswers, WorkerAnswer, consolidate_boxes
from truthflow.consolidation.labels import consolidate_labels
from truthflow.training_data.visualize import render_boxes_png

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from PIL import Image as PILImage

TaskType = Literal["bounding-box", "image-classification"]
BOUNDING_BOX: TaskType = "bounding-box"
IMAGE_CLASSIFICATION: TaskType = "image-classification"
IOU_THRESHOLDS: tuple[float, ...] = (0.5, 0.7)
# The IoU at which boxes are matched for the class confusion and for a worker's label accuracy.
MATCH_IOU = 0.5
MAX_SAMPLES = 12
THUMBNAIL_SIDE = 400
MAX_PNG_BYTES = 100_000
DASH = "\u2013"  # shown where a figure is not available
FAILED_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
SUCCEEDED_STATUSES = frozenset({"SUCCEEDED", "OK"})

DEFAULT_EMULATOR_NOTE = (
    "This run used the embedded AWS emulator and a simulated Ground Truth workforce whose true skills are known. "
    "Training and hosting complete in the emulator without model weights: the training job and the endpoint go "
    "through their states, but no model is trained or served, so there is no model accuracy to report."
)

# Method keys of the summary, their display names and bar colours (pipeline first and emphasised).
PIPELINE, MAJORITY, WORKER_MEAN, WORKER_BEST = "pipeline", "majority", "single_worker_mean", "single_worker_best"
_METHOD_NAMES = {
    IMAGE_CLASSIFICATION: {
        PIPELINE: "Dawid-Skene (pipeline)",
        MAJORITY: "Majority vote",
        WORKER_MEAN: "Single worker (mean)",
        WORKER_BEST: "Best single worker",
    },
    BOUNDING_BOX: {
        PIPELINE: "Consolidated (pipeline)",
        MAJORITY: "Naive majority (median edges)",
        WORKER_MEAN: "Single worker (mean)",
        WORKER_BEST: "Best single worker",
    },
}
_METHOD_COLOURS = {PIPELINE: "#0072B2", MAJORITY: "#E69F00", WORKER_MEAN: "#999999", WORKER_BEST: "#56B4E9"}
_KIND_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")

FloatArray = NDArray[np.float64]


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


# ---------------------------------------------------------------------------------------------------------------
# Checking and normalising the inputs
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Box:
    """A box as drawn and scored here; satisfies the ``BoxLike`` protocol of ``render_boxes_png``."""

    label: str
    left: float
    top: float
    width: float
    height: float
    confidence: float | None = None


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
    gold_boxes: dict[str, list[_Box]]
    answer_boxes: dict[str, dict[str, list[_Box]]]
    result_boxes: dict[str, list[_Box]]
    n_answers: int
    timeline: list[StateSpan]


def _as_box(value: object, where: str) -> _Box:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: a box must be an object with label, left, top, width, height; got {value!r}")
    try:
        confidence = value.get("confidence")
        return _Box(
            str(value["label"]),
            float(value["left"]),
            float(value["top"]),
            float(value["width"]),
            float(value["height"]),
            None if confidence is None else float(confidence),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{where}: a box needs label and numeric left, top, width, height; got {value!r}") from error


def _as_boxes(value: object, where: str) -> list[_Box]:
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
    scored = [image for image in images if image in inputs.gold and inputs.worker_answers.get(image)]
    gold_labels: dict[str, str] = {}
    answer_labels: dict[str, dict[str, str]] = {}
    result_labels: dict[str, tuple[str, float]] = {}
    gold_boxes: dict[str, list[_Box]] = {}
    answer_boxes: dict[str, dict[str, list[_Box]]] = {}
    result_boxes: dict[str, list[_Box]] = {}
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
        groups: Iterable[list[_Box]] = [
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
    )


# ---------------------------------------------------------------------------------------------------------------
# Analysis
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Confusion:
    """Counts with gold classes as rows. With ``spurious_row`` the last row holds predictions that match no gold
    object (and the last column gold objects nothing matched)."""

    title: str
    x_label: str
    rows: list[str]
    columns: list[str]
    counts: FloatArray
    spurious_row: bool = False

    def shares(self) -> FloatArray:
        """Colour scale: each gold row's share; the spurious row as a share of its column's predictions."""
        totals = self.counts.sum(axis=1, keepdims=True)
        shares: FloatArray = np.divide(self.counts, totals, out=np.zeros_like(self.counts), where=totals > 0)
        if self.spurious_row:
            columns = self.counts.sum(axis=0)
            shares[-1] = np.divide(self.counts[-1], columns, out=np.zeros_like(columns), where=columns > 0)
        return shares


@dataclass(frozen=True)
class _Analysis:
    data: _Data
    summary: dict[str, Any]
    confusions: list[_Confusion]


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _label_confusion(title: str, x_label: str, labels: list[str], pairs: Iterable[tuple[str, str]]) -> _Confusion:
    index = {label: code for code, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)))
    for gold, predicted in pairs:
        counts[index[gold], index[predicted]] += 1
    return _Confusion(title, x_label, labels, labels, counts)


def _analyse_classification(data: _Data) -> tuple[dict[str, Any], list[_Confusion], dict[str, dict[str, Any]]]:
    answered = [(image, worker, label) for image, row in data.answer_labels.items() for worker, label in row.items()]
    majority: dict[str, str] = {}
    if answered:
        items, workers, labels = (list(column) for column in zip(*answered, strict=True))
        result = consolidate_labels(items, workers, labels, method="mv", label_set=data.labels)
        majority = dict(zip(result.item_names, result.labels, strict=True))
    pipeline = {image: label for image, (label, _) in data.result_labels.items()}
    gold, scored = data.gold_labels, data.scored
    per_worker: dict[str, dict[str, Any]] = {}
    for worker in data.workers:
        answers = [(image, row[worker]) for image, row in data.answer_labels.items() if worker in row]
        on_gold = [label == gold[image] for image, label in answers if image in gold]
        per_worker[worker] = {
            "n_answers": len(answers),
            "n_gold_answers": len(on_gold),
            "gold_accuracy": _ratio(sum(on_gold), len(on_gold)),
        }
    measured = {worker: stats["gold_accuracy"] for worker, stats in per_worker.items()}
    ranked = sorted((value, worker) for worker, value in measured.items() if value is not None)
    accuracy = {
        PIPELINE: _ratio(sum(pipeline.get(image) == gold[image] for image in scored), len(scored)),
        MAJORITY: _ratio(sum(majority.get(image) == gold[image] for image in scored), len(scored)),
        WORKER_MEAN: _mean([value for value, _ in ranked]),
        WORKER_BEST: ranked[-1][0] if ranked else None,
        "best_worker": ranked[-1][1] if ranked else None,
        "n_scored": len(scored),
        "pipeline_missing": sum(image not in pipeline for image in scored),
    }
    confusions = [
        _label_confusion(
            "Dawid-Skene (pipeline) vs gold",
            "consolidated (pipeline)",
            data.labels,
            ((gold[image], pipeline[image]) for image in scored if image in pipeline),
        ),
        _label_confusion(
            "Majority vote vs gold",
            "majority vote",
            data.labels,
            ((gold[image], majority[image]) for image in scored),
        ),
    ]
    return accuracy, confusions, per_worker


def _box_array(boxes: Sequence[_Box]) -> FloatArray:
    return np.array([[box.left, box.top, box.width, box.height] for box in boxes], dtype=np.float64).reshape(-1, 4)


def _class_aware_score(predicted: Sequence[_Box], gold: Sequence[_Box], threshold: float) -> DetectionScore:
    """Counts for one image where a prediction matches only a gold box of its own label."""
    matched = 0
    for label in {box.label for box in predicted} & {box.label for box in gold}:
        mine = _box_array([box for box in predicted if box.label == label])
        theirs = _box_array([box for box in gold if box.label == label])
        matched += int(match_boxes(mine, theirs, threshold=threshold)[0].size)
    return DetectionScore(threshold, matched, len(predicted), len(gold))


def _score_dict(score: DetectionScore) -> dict[str, Any]:
    return {
        "precision": score.precision,
        "recall": score.recall,
        "f1": score.f1,
        "true_positives": score.true_positives,
        "n_predicted": score.n_predicted,
        "n_gold": score.n_gold,
    }


def _total(scores: Iterable[DetectionScore], threshold: float) -> DetectionScore:
    total = DetectionScore(threshold, 0, 0, 0)
    for score in scores:
        total = total + score
    return total


def _naive_majority(data: _Data) -> dict[str, list[_Box]]:
    """Consolidation without worker skill: at-least-half quorum on the same clusters, per-edge median boxes."""
    images = [
        ImageAnswers(
            image,
            None,
            None,
            tuple(
                WorkerAnswer(worker, tuple(Box(b.label, b.left, b.top, b.width, b.height) for b in boxes))
                for worker, boxes in row.items()
            ),
        )
        for image, row in data.answer_boxes.items()
        if row
    ]
    if not images:
        return {}
    result = consolidate_boxes(images, label_set=data.labels, coordinates="median")
    return {
        image: [_Box(b.label, b.left, b.top, b.width, b.height, b.confidence) for b in boxes]
        for image, boxes in result.boxes.items()
    }


def _analyse_boxes(data: _Data) -> tuple[dict[str, Any], list[_Confusion], dict[str, dict[str, Any]]]:
    gold, scored = data.gold_boxes, data.scored
    majority = _naive_majority(data)
    detection: dict[str, Any] = {
        "n_scored": len(scored),
        "pipeline_missing": sum(image not in data.result_boxes for image in scored),
    }
    worker_images = {
        worker: [image for image in scored if worker in data.answer_boxes[image]] for worker in data.workers
    }
    worker_scores = {
        threshold: {
            worker: _total(
                (_class_aware_score(data.answer_boxes[i][worker], gold[i], threshold) for i in images), threshold
            )
            for worker, images in worker_images.items()
            if images
        }
        for threshold in IOU_THRESHOLDS
    }
    # The best single worker by F1 at the matching IoU, shown at every threshold.
    ranked = worker_scores[MATCH_IOU]
    best = max(ranked, key=lambda worker: (ranked[worker].f1, worker)) if ranked else None
    detection["best_worker"] = best
    for threshold in IOU_THRESHOLDS:
        per_image = {
            PIPELINE: [_class_aware_score(data.result_boxes.get(i, []), gold[i], threshold) for i in scored],
            MAJORITY: [_class_aware_score(majority.get(i, []), gold[i], threshold) for i in scored],
        }
        workers = worker_scores[threshold]
        # With nothing scored the counts' 0/0 convention (precision and recall 1) would flatter: no figure instead.
        block: dict[str, Any] = {
            method: _score_dict(_total(scores, threshold)) if scored else None for method, scores in per_image.items()
        }
        block[WORKER_MEAN] = {
            metric: _mean([getattr(score, metric) for score in workers.values()])
            for metric in ("precision", "recall", "f1")
        }
        block[WORKER_BEST] = _score_dict(workers[best]) if best is not None else None
        detection[f"{threshold:g}"] = block
    per_worker: dict[str, dict[str, Any]] = {}
    for worker in data.workers:
        answers = [row[worker] for row in data.answer_boxes.values() if worker in row]
        right = matched = 0
        for image in worker_images[worker]:
            mine, theirs = data.answer_boxes[image][worker], gold[image]
            rows, cols = match_boxes(_box_array(mine), _box_array(theirs), threshold=MATCH_IOU)
            matched += rows.size
            right += sum(mine[r].label == theirs[c].label for r, c in zip(rows.tolist(), cols.tolist(), strict=True))
        score = worker_scores[MATCH_IOU].get(worker)
        per_worker[worker] = {
            "n_answers": len(answers),
            "n_boxes": sum(len(boxes) for boxes in answers),
            "n_gold_answers": len(worker_images[worker]),
            "gold_accuracy": _ratio(right, matched),
            # What the pipeline estimates for boxes (the share of a worker's boxes kept with their label), on gold.
            "gold_box_precision": _ratio(right, sum(len(data.answer_boxes[i][worker]) for i in worker_images[worker])),
            f"f1_at_{MATCH_IOU:g}": score.f1 if score is not None else None,
        }
    return detection, [_box_confusion(data)], per_worker


def _box_confusion(data: _Data) -> _Confusion:
    """Gold class x consolidated class of boxes matched at IoU >= MATCH_IOU whatever their class."""
    labels = data.labels
    n = len(labels)
    counts = np.zeros((n + 1, n + 1))
    index = {label: code for code, label in enumerate(labels)}
    for image in data.scored:
        predicted, gold = data.result_boxes.get(image, []), data.gold_boxes[image]
        rows, cols = match_boxes(_box_array(predicted), _box_array(gold), threshold=MATCH_IOU)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            counts[index[gold[c].label], index[predicted[r].label]] += 1
        for c in sorted(set(range(len(gold))) - set(cols.tolist())):
            counts[index[gold[c].label], n] += 1
        for r in sorted(set(range(len(predicted))) - set(rows.tolist())):
            counts[n, index[predicted[r].label]] += 1
    return _Confusion(
        f"Consolidated boxes vs gold (IoU \u2265 {MATCH_IOU:g})",
        "consolidated class",
        [*labels, "(no object)"],
        [*labels, "(missed)"],
        counts,
        spurious_row=True,
    )


def _timeline_summary(timeline: Sequence[StateSpan]) -> dict[str, Any]:
    if not timeline:
        return {"n_states": 0, "seconds": None, "failed": []}
    start = min(span[1] for span in timeline)
    end = max(span[2] for span in timeline)
    failed = [name for name, _, _, status in timeline if status in FAILED_STATUSES]
    return {"n_states": len(timeline), "seconds": end - start, "failed": failed}


def _analyse(inputs: ReportInputs) -> _Analysis:
    data = _normalise(inputs)
    if data.task_type == IMAGE_CLASSIFICATION:
        accuracy, confusions, per_worker = _analyse_classification(data)
        detection = None
    else:
        detection, confusions, per_worker = _analyse_boxes(data)
        accuracy = None
    true_skill = inputs.true_skill or {}
    # The workforce's order when it is known (true skill), else the order workers first answered.
    worker_names = list(dict.fromkeys([*true_skill, *data.workers, *inputs.estimated_skill]))
    workers: dict[str, dict[str, Any]] = {}
    for worker in worker_names:
        skill = true_skill.get(worker)
        estimate = inputs.estimated_skill.get(worker)
        workers[worker] = {
            "kind": skill["kind"] if skill else None,
            "true_accuracy": float(skill["accuracy"]) if skill else None,
            "box_jitter": float(skill["box_jitter"]) if skill else None,
            "miss_rate": float(skill["miss_rate"]) if skill else None,
            "estimated_accuracy": float(estimate) if estimate is not None else None,
            **per_worker.get(worker, {"n_answers": 0, "n_gold_answers": 0, "gold_accuracy": None}),
        }
    # The estimate's counterpart: the simulated accuracy for classes; for boxes, the pipeline estimates the share of a
    # worker's boxes that match an object, so it is compared with that share measured against gold.
    for stats in workers.values():
        stats["skill_reference"] = stats.get("gold_box_precision") if detection is not None else stats["true_accuracy"]
    errors = [
        abs(stats["estimated_accuracy"] - stats["skill_reference"])
        for stats in workers.values()
        if stats["estimated_accuracy"] is not None and stats["skill_reference"] is not None
    ]
    summary: dict[str, Any] = {
        "task_type": data.task_type,
        "dataset": inputs.dataset,
        "job_id": inputs.job_id,
        "execution_name": inputs.execution_name,
        "execution_status": inputs.execution_status,
        "labels": data.labels,
        "n_images": len(data.images),
        "n_gold_images": len(inputs.gold),
        "n_scored_images": len(data.scored),
        "n_workers": len(data.workers),
        "n_answers": data.n_answers,
        "run_seconds": inputs.run_seconds,
        "accuracy": accuracy,
        "detection": detection,
        "workers": workers,
        "skill_mean_abs_error": _mean(errors),
        "timeline": _timeline_summary(data.timeline),
    }
    return _Analysis(data, summary, confusions)


def summarize(inputs: ReportInputs) -> dict[str, Any]:
    """The report's numbers as a JSON-serialisable dict (``None`` where a figure cannot be computed).

    Keys: ``task_type``, ``dataset``, ``job_id``, ``execution_name``, ``execution_status``, ``labels``, counts
    (``n_images``, ``n_gold_images``, ``n_scored_images``, ``n_workers``, ``n_answers``), ``run_seconds``;
    ``accuracy`` (classification, else ``None``): ``pipeline``, ``majority``, ``single_worker_mean``,
    ``single_worker_best``, ``best_worker``, ``n_scored``, ``pipeline_missing``; ``detection`` (boxes, else
    ``None``): per IoU threshold (``"0.5"``, ``"0.7"``) the same method keys, each with ``precision``, ``recall``,
    ``f1`` (and counts except for the mean), plus ``best_worker``; ``workers``: per worker ``kind``,
    ``true_accuracy``, ``box_jitter``, ``miss_rate``, ``estimated_accuracy``, ``gold_accuracy``, ``n_answers``,
    ``n_gold_answers`` (boxes also ``n_boxes``, ``f1_at_0.5``); ``skill_mean_abs_error`` (estimated vs true
    accuracy); ``timeline``: ``n_states``, ``seconds``, ``failed`` (state names).
    """
    return _analyse(inputs).summary


def format_summary(summary: Mapping[str, Any]) -> list[str]:
    """A few lines for the terminal: label quality of the pipeline against the baselines, and skill recovery."""
    lines = [
        f"{summary['dataset'] or summary['task_type']}: {summary['n_images']} images, {summary['n_workers']} workers, "
        f"{summary['n_answers']} answers; {summary['n_scored_images']} images scored against gold"
    ]
    names = _METHOD_NAMES[summary["task_type"]]
    if summary["accuracy"] is not None:
        accuracy = summary["accuracy"]
        lines.append(
            "accuracy: " + ", ".join(f"{names[m]} {_number(accuracy[m])}" for m in (PIPELINE, MAJORITY, WORKER_MEAN))
        )
    if summary["detection"] is not None:
        for threshold in IOU_THRESHOLDS:
            block = summary["detection"][f"{threshold:g}"]
            lines.append(
                f"F1 at IoU \u2265 {threshold:g}: "
                + ", ".join(
                    f"{names[m]} {_number((block[m] or {}).get('f1'))}" for m in (PIPELINE, MAJORITY, WORKER_MEAN)
                )
            )
    if summary["skill_mean_abs_error"] is not None:
        lines.append(f"worker accuracy estimates: mean |estimated - true| = {summary['skill_mean_abs_error']:.3f}")
    return lines


# ---------------------------------------------------------------------------------------------------------------
# Figures (matplotlib on the Agg canvas)
# ---------------------------------------------------------------------------------------------------------------


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> str:
    figure.savefig(path, format="png", dpi=100, metadata={"Software": None})
    return path.name


def _annotate_bars(axes: Axes, bars: Any, *, horizontal: bool = False) -> None:
    for bar in bars:
        value = bar.get_width() if horizontal else bar.get_height()
        if horizontal:
            axes.text(value + 0.01, bar.get_y() + bar.get_height() / 2, f"{value:.3f}", va="center", fontsize=8)
        else:
            x = bar.get_x() + bar.get_width() / 2
            axes.text(x, value + 0.01, f"{value:.2f}", ha="center", va="bottom", fontsize=7, rotation=90)


def _quality_figure(summary: Mapping[str, Any], path: Path) -> str | None:
    names = _METHOD_NAMES[summary["task_type"]]
    if summary["accuracy"] is not None:
        accuracy = summary["accuracy"]
        methods = [m for m in (PIPELINE, MAJORITY, WORKER_MEAN, WORKER_BEST) if accuracy[m] is not None]
        if not methods:
            return None
        figure = _new_figure(6.4, 0.6 + 0.45 * len(methods))
        axes = figure.add_subplot()
        values = [accuracy[m] for m in methods]
        ticks = [names[m] + (f" ({accuracy['best_worker']})" if m == WORKER_BEST else "") for m in methods]
        bars = axes.barh(range(len(methods)), values, color=[_METHOD_COLOURS[m] for m in methods], height=0.6)
        _annotate_bars(axes, bars, horizontal=True)
        axes.set_yticks(range(len(methods)), ticks)
        axes.invert_yaxis()
        axes.set_xlim(0, 1.1)
        axes.set_xlabel(f"accuracy against gold ({accuracy['n_scored']} images)")
        axes.spines[["top", "right"]].set_visible(False)
        return _save(figure, path)
    detection = summary["detection"]
    if detection["n_scored"] == 0:
        return None
    figure = _new_figure(8.0, 3.4)

    panels = figure.subplots(1, len(IOU_THRESHOLDS), sharey=True)
    metrics = ("precision", "recall", "f1")
    width = 0.8 / 4
    for axes, threshold in zip(np.atleast_1d(panels), IOU_THRESHOLDS, strict=True):
        block = detection[f"{threshold:g}"]
        for offset, method in enumerate((PIPELINE, MAJORITY, WORKER_MEAN, WORKER_BEST)):
            scores = block[method]
            if scores is None:
                continue
            label = names[method] + (f" ({detection['best_worker']})" if method == WORKER_BEST else "")
            positions = [k + (offset - 1.5) * width for k in range(len(metrics))]
            values = [scores[metric] if scores[metric] is not None else 0.0 for metric in metrics]
            bars = axes.bar(positions, values, width, color=_METHOD_COLOURS[method], label=label)
            _annotate_bars(axes, bars)
        axes.set_xticks(range(len(metrics)), ["Precision", "Recall", "F1"])
        axes.set_title(f"IoU \u2265 {threshold:g}", fontsize=10)
        axes.set_ylim(0, 1.18)
        axes.spines[["top", "right"]].set_visible(False)
    first = np.atleast_1d(panels)[0]
    first.set_ylabel(f"against gold ({detection['n_scored']} images)")
    handles, labels = first.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return _save(figure, path)


def _confusion_figure(confusions: Sequence[_Confusion], path: Path) -> str | None:
    if not confusions or all(c.counts.sum() == 0 for c in confusions):
        return None
    size = max(len(c.columns) for c in confusions)
    side = min(2.2 + 0.42 * size, 7.0)
    figure = _new_figure(side * len(confusions) + 0.6, side + 0.1)
    panels = figure.subplots(1, len(confusions), squeeze=False)[0]
    image = None
    for axes, confusion in zip(panels, confusions, strict=True):
        shares = confusion.shares()
        image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        font = 9 if size <= 8 else 6
        if size <= 15:
            for (row, column), count in np.ndenumerate(confusion.counts):
                if count:
                    colour = "white" if shares[row, column] > 0.55 else "black"
                    axes.text(column, row, f"{count:g}", ha="center", va="center", fontsize=font, color=colour)
        axes.set_xticks(range(len(confusion.columns)), confusion.columns, rotation=45, ha="right", fontsize=font)
        axes.set_yticks(range(len(confusion.rows)), confusion.rows, fontsize=font)
        axes.set_xlabel(confusion.x_label, fontsize=9)
        axes.set_ylabel("gold", fontsize=9)
        axes.set_title(confusion.title, fontsize=9)
    if image is not None:
        spurious = any(c.spurious_row for c in confusions)
        label = "share of the gold row" + (" (last row: of the column)" if spurious else "")
        figure.colorbar(image, ax=list(panels), shrink=0.7).set_label(label, fontsize=8)
    return _save(figure, path)


def _skill_figure(summary: Mapping[str, Any], path: Path) -> tuple[str | None, str]:
    """Scatter of estimated (y) against true (x) accuracy; measured-against-gold on x when true skill is unknown."""
    workers = summary["workers"]
    boxes = summary["task_type"] == "bounding-box"
    has_truth = any(stats["skill_reference"] is not None for stats in workers.values())
    x_key = "skill_reference" if has_truth else "gold_accuracy"
    if boxes and has_truth:
        x_name = "share of the worker's boxes matching a gold box and its label"
    else:
        x_name = "true accuracy (simulated workforce)" if has_truth else "accuracy measured against gold"
    points = [
        (worker, stats[x_key], stats["estimated_accuracy"], stats["kind"] or "worker")
        for worker, stats in workers.items()
        if stats[x_key] is not None and stats["estimated_accuracy"] is not None
    ]
    if not points:
        return None, x_name
    figure = _new_figure(4.8, 4.4)
    axes = figure.add_subplot()
    low = min(0.0, *(min(x, y) for _, x, y, _ in points))
    axes.plot([low, 1.0], [low, 1.0], linestyle="--", color="#888888", linewidth=1, label="estimate = truth")
    kinds = list(dict.fromkeys(kind for *_, kind in points))
    for position, kind in enumerate(kinds):
        chosen = [(x, y) for _, x, y, k in points if k == kind]
        axes.scatter(
            [x for x, _ in chosen],
            [y for _, y in chosen],
            s=36,
            color=_KIND_COLOURS[position % len(_KIND_COLOURS)],
            edgecolors="white",
            linewidths=0.5,
            label=kind,
            zorder=3,
        )
    if len(points) <= 20:
        for worker, x, y, _ in points:
            axes.annotate(worker, (x, y), xytext=(4, -3), textcoords="offset points", fontsize=7, color="#333333")
    axes.set_xlim(low - 0.02, 1.02)
    axes.set_ylim(low - 0.02, 1.02)
    axes.set_aspect("equal")
    axes.set_xlabel(x_name)
    axes.set_ylabel("estimated accuracy (pipeline)")
    if summary["skill_mean_abs_error"] is not None:
        axes.set_title(f"mean |estimated \u2212 true| = {summary['skill_mean_abs_error']:.3f}", fontsize=9)
    axes.legend(title="worker kind", fontsize=8, title_fontsize=8, loc="lower right")
    axes.spines[["top", "right"]].set_visible(False)
    return _save(figure, path), x_name


def _status_colour(status: str) -> str:
    if status in FAILED_STATUSES:
        return "#D62728"
    if status in SUCCEEDED_STATUSES:
        return "#0072B2"
    return "#999999"


def _timeline_figure(timeline: Sequence[StateSpan], path: Path) -> str | None:
    """Gantt chart: one row per state (in order of first start, top down), a bar per visit, failed ones red."""
    if not timeline:
        return None
    from matplotlib.patches import Patch

    origin = min(start for _, start, _, _ in timeline)
    total = max(end for _, _, end, _ in timeline) - origin
    names = list(dict.fromkeys(name for name, *_ in sorted(timeline, key=lambda span: span[1])))
    row = {name: position for position, name in enumerate(names)}
    figure = _new_figure(8.0, min(1.0 + 0.28 * len(names), 12.0))
    axes = figure.add_subplot()
    for name, start, end, status in timeline:
        if end - start > total * 0.003:
            axes.barh(row[name], end - start, left=start - origin, height=0.6, color=_status_colour(status))
        else:  # a state with (next to) no duration, such as a Fail or Pass state: a marker
            axes.plot([start - origin], [row[name]], marker="D", markersize=6, color=_status_colour(status))
        if len(names) <= 30:
            axes.text(
                end - origin + max(total, 1e-9) * 0.01, row[name], f"{end - start:.2f} s", va="center", fontsize=7
            )
    axes.set_yticks(range(len(names)), names, fontsize=8 if len(names) <= 25 else 6)
    axes.invert_yaxis()
    axes.set_xlim(0, total * 1.12 if total > 0 else 1.0)
    axes.set_xlabel("seconds since the first state started")
    statuses = list(dict.fromkeys(status for *_, status in timeline))
    axes.legend(
        handles=[Patch(color=_status_colour(status), label=status.lower()) for status in statuses],
        fontsize=8,
        loc="upper right",
    )
    axes.grid(axis="x", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    axes.spines[["top", "right"]].set_visible(False)
    return _save(figure, path)


def _dashed_rectangle(draw: Any, corners: tuple[float, float, float, float], *, dash: float = 5.0) -> None:
    """Alternating white and black dashes (visible on any background), for gold boxes."""
    x1, y1, x2, y2 = corners
    for (ax, ay), (bx, by) in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        length = math.hypot(bx - ax, by - ay)
        steps = max(1, math.ceil(length / dash))
        for step in range(steps):
            t0, t1 = step / steps, min((step + 1) / steps, 1.0)
            segment = [(ax + (bx - ax) * t0, ay + (by - ay) * t0), (ax + (bx - ax) * t1, ay + (by - ay) * t1)]
            draw.line(segment, fill=(255, 255, 255) if step % 2 == 0 else (0, 0, 0), width=1)


def _png_bytes(image: PILImage.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _sample_png(encoded: bytes, gold: Sequence[_Box], result: Sequence[_Box], labels: Sequence[str]) -> bytes:
    """A thumbnail (longest side at most THUMBNAIL_SIDE) with consolidated boxes solid (2 px, class colour, label
    and confidence) and gold boxes dashed on top (1 px), so a gold box under a consolidated one still shows."""
    from PIL import Image, ImageDraw

    with Image.open(io.BytesIO(encoded)) as opened:
        canvas = opened.convert("RGB")
    scale = min(1.0, THUMBNAIL_SIDE / max(canvas.size))
    if scale < 1.0:
        size = (max(1, round(canvas.width * scale)), max(1, round(canvas.height * scale)))
        canvas = canvas.resize(size, Image.Resampling.LANCZOS)
    scaled = [
        _Box(b.label, b.left * scale, b.top * scale, b.width * scale, b.height * scale, b.confidence) for b in result
    ]
    with Image.open(io.BytesIO(render_boxes_png(canvas, scaled, class_names=labels, line_width=2))) as rendered:
        canvas = rendered.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    for box in gold:
        x, y = box.left * scale, box.top * scale
        _dashed_rectangle(draw, (x, y, x + box.width * scale, y + box.height * scale))
    png = _png_bytes(canvas)
    if len(png) > MAX_PNG_BYTES:  # photographs: 128 colours keep a thumbnail readable and small
        png = _png_bytes(canvas.quantize(colors=128))
    return png


def _find_image(key: str, images: Sequence[str]) -> str | None:
    if key in images:
        return key
    for image in images:
        if image.rsplit("/", 1)[-1] == key:
            return image
    return None


# ---------------------------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 64rem;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; }
th { background: #f4f6f8; }
table.facts th { background: none; font-weight: 600; width: 9rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.pipeline td { font-weight: 600; }
tr.failed td { color: #b00020; }
img.figure { max-width: 100%; border: 1px solid #eee; }
.note { background: #f8f8f0; border-left: 4px solid #E69F00; padding: 0.5rem 0.8rem; }
.muted { color: #666; font-size: 0.9rem; }
.samples { display: flex; flex-wrap: wrap; gap: 1rem; }
.samples figure { margin: 0; max-width: 25rem; }
.samples figcaption { font-size: 0.8rem; color: #444; word-break: break-all; }
code { font-size: 0.85rem; }
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _number(value: float | None, digits: int = 3) -> str:
    return DASH if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], *, row_classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{_e(cell)}</th>" for cell in header)
    body = []
    for position, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{_e(cell)}</td>' if _is_numeric(cell) else f"<td>{_e(cell)}</td>" for cell in row
        )
        css = row_classes[position] if position < len(row_classes) and row_classes[position] else ""
        body.append(f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _facts(facts: Sequence[tuple[str, str]]) -> str:
    rows = "".join(f'<tr><th scope="row">{_e(name)}</th><td>{_e(value)}</td></tr>' for name, value in facts)
    return f'<table class="facts"><tbody>{rows}</tbody></table>'


def _is_numeric(cell: object) -> bool:

    if isinstance(cell, int | float):
        return True
    text = str(cell).removesuffix(" s")
    try:
        float(text)
    except ValueError:
        return text == DASH
    return True


def _figure_html(name: str | None, alt: str) -> str:
    if name is None:
        return '<p class="muted">No figure: nothing to plot.</p>'
    return f'<p><img class="figure" src="{_e(name)}" alt="{_e(alt)}"></p>'


def _header_html(inputs: ReportInputs, summary: Mapping[str, Any]) -> str:
    run = f"{summary['run_seconds']:.1f} s" if summary["run_seconds"] is not None else DASH
    facts = [
        ("Dataset", inputs.dataset or DASH),
        ("Task", summary["task_type"]),
        ("Labels", ", ".join(summary["labels"])),
        (
            "Images",
            f"{summary['n_images']} ({summary['n_gold_images']} with gold, {summary['n_scored_images']} scored)",
        ),
        ("Workers", f"{summary['n_workers']} ({summary['n_answers']} answers)"),
        ("Run time", run),
        ("Labeling job", inputs.job_id or DASH),
        ("Execution", f"{inputs.execution_name or DASH} \u2014 {inputs.execution_status or DASH}"),
    ]
    locations = ([("Outputs", inputs.outputs_location)] if inputs.outputs_location else []) + list(
        inputs.outputs.items()
    )
    outputs = _table(("Output", "Location"), locations)
    notes = "".join(f'<p class="note">{_e(note)}</p>' for note in inputs.notes)
    return (
        "<h2>What this is</h2>"
        "<p>The end-to-end truthflow pipeline (images \u2192 Ground Truth labeling \u2192 consolidation \u2192 "
        "training data \u2192 training \u2192 endpoint) run offline, with its labels scored against gold.</p>"
        + _facts(facts)
        + notes
        + (outputs if locations else "")
    )


def _quality_html(summary: Mapping[str, Any], figure: str | None) -> str:
    names = _METHOD_NAMES[summary["task_type"]]
    methods = (PIPELINE, MAJORITY, WORKER_MEAN, WORKER_BEST)
    css = ["pipeline", "", "", ""]
    if summary["accuracy"] is not None:
        accuracy = summary["accuracy"]
        accuracy_rows = [
            (
                names[m] + (f" ({accuracy['best_worker']})" if m == WORKER_BEST and accuracy["best_worker"] else ""),
                _number(accuracy[m]),
            )
            for m in methods
        ]
        text = (
            f"<p>Accuracy on the {accuracy['n_scored']} images with gold and answers. Majority vote and the single-"
            "worker figures are computed by this report from the raw answers; the single-worker mean averages each "
            "worker's own accuracy on the gold images they answered."
            + (
                f" {accuracy['pipeline_missing']} scored images had no pipeline label (counted wrong)."
                if accuracy["pipeline_missing"]
                else ""
            )
            + "</p>"
        )
        return (
            "<h2>1. Label quality against gold</h2>"
            + text
            + _table(("Method", "Accuracy"), accuracy_rows, row_classes=css)
            + (_figure_html(figure, "accuracy of each method against gold"))
        )
    detection = summary["detection"]
    header = ["Method"] + [f"{metric} @ IoU \u2265 {t:g}" for t in IOU_THRESHOLDS for metric in ("P", "R", "F1")]
    rows: list[list[object]] = []
    for method in methods:
        best = detection["best_worker"]
        label = names[method] + (f" ({best})" if method == WORKER_BEST and best else "")
        cells: list[object] = [label]
        for threshold in IOU_THRESHOLDS:
            scores = detection[f"{threshold:g}"][method] or {}
            cells += [_number(scores.get(metric)) for metric in ("precision", "recall", "f1")]
        rows.append(cells)
    text = (
        f"<p>Micro-averaged precision (P), recall (R) and F1 on the {detection['n_scored']} images with gold and "
        "answers; a box matches a gold box of its own class one-to-one at IoU at least the threshold. The naive "
        "majority uses the same clusters and at-least-half quorum as the pipeline but per-edge median boxes, without "
        "worker skill. Each single worker is scored alone on the images they saw; the best is the one with the highest "
        f"F1 at IoU \u2265 {MATCH_IOU:g}."
        "</p>"
    )
    return (
        "<h2>1. Label quality against gold</h2>"
        + text
        + _table(header, rows, row_classes=css)
        + _figure_html(figure, "precision, recall and F1 of each method against gold")
    )


def _skill_html(summary: Mapping[str, Any], figure: str | None, x_name: str) -> str:
    boxes = summary["task_type"] == BOUNDING_BOX
    header = ["Worker", "Kind", "True accuracy", "Estimated (pipeline)", "Measured vs gold", "Answers"]
    if boxes:
        header[4] = "Label accuracy of matched boxes"
        header += ["Boxes", f"F1 @ IoU \u2265 {MATCH_IOU:g}", "True box jitter", "True miss rate"]
    rows = []
    for worker, stats in summary["workers"].items():
        row: list[object] = [
            worker,
            stats["kind"] or DASH,
            _number(stats["true_accuracy"]),
            _number(stats["estimated_accuracy"]),
            _number(stats["gold_accuracy"]),
            stats["n_answers"],
        ]
        if boxes:
            row += [
                stats.get("n_boxes", 0),
                _number(stats.get(f"f1_at_{MATCH_IOU:g}")),
                _number(stats["box_jitter"]),
                _number(stats["miss_rate"]),
            ]
        rows.append(row)
    text = (
        f"<p>Each point is a worker: x is the {_e(x_name)}, y the pipeline's estimate from its quality summary; "
        "points on the dashed diagonal are estimated exactly. The table adds each worker's accuracy measured "
        "against gold on the images they answered.</p>"
    )
    return (
        "<h2>3. Worker skill: estimated vs true</h2>"
        + text
        + _figure_html(figure, "estimated vs true skill")
        + (_table(header, rows))
    )


def _timeline_html(timeline: Sequence[StateSpan], figure: str | None) -> str:
    heading = "<h2>5. Execution timeline</h2>"
    if not timeline:
        return heading + '<p class="muted">No state timeline was recorded.</p>'
    origin = min(start for _, start, _, _ in timeline)
    rows = [
        (name, f"{start - origin:.2f} s", f"{end - origin:.2f} s", f"{end - start:.2f} s", status.lower())
        for name, start, end, status in timeline
    ]
    css = ["failed" if status in FAILED_STATUSES else "" for *_, status in timeline]
    return (
        heading
        + "<p>The state machine's states in order of their start; failed states in red.</p>"
        + _figure_html(figure, "execution timeline")
        + _table(("State", "Start", "End", "Duration", "Status"), rows, row_classes=css)
    )


def _samples_html(analysis: _Analysis, inputs: ReportInputs, out_dir: Path) -> str:
    data = analysis.data
    figures = []
    for position, (key, encoded) in enumerate(list(inputs.sample_images.items())[:MAX_SAMPLES], start=1):
        image = _find_image(key, data.images)
        if data.task_type == BOUNDING_BOX:
            gold = data.gold_boxes.get(image, []) if image else []
            result = data.result_boxes.get(image, []) if image else []
            caption = f"{len(result)} consolidated boxes (solid, with confidence), {len(gold)} gold boxes (dashed)"
        else:
            gold, result = [], []
            label, confidence = data.result_labels.get(image, (DASH, math.nan)) if image else (DASH, math.nan)
            truth = data.gold_labels.get(image, DASH) if image else DASH
            caption = f"pipeline: {label} ({_number(confidence, 2)}) \u00b7 gold: {truth}"
        name = f"sample-{position:02d}.png"
        try:
            (out_dir / name).write_bytes(_sample_png(encoded, gold, result, data.labels))
        except (OSError, ValueError) as error:
            figures.append(f"<figure><figcaption>{_e(key)}: could not be drawn ({_e(error)})</figcaption></figure>")
            continue
        figures.append(
            f'<figure><img src="{name}" alt="{_e(key)}"><figcaption><code>{_e(image or key)}</code><br>'
            f"{_e(caption)}</figcaption></figure>"
        )
    if not figures:
        return '<h2>4. Sample images</h2><p class="muted">No sample images were given.</p>'
    more = len(inputs.sample_images) - MAX_SAMPLES
    note = f'<p class="muted">{more} more sample images not shown.</p>' if more > 0 else ""
    return f'<h2>4. Sample images</h2><div class="samples">{"".join(figures)}</div>{note}'


def write_report(inputs: ReportInputs, out_dir: Path) -> Path:
    """Write ``report.html``, its PNG figures and ``summary.json`` into ``out_dir`` (created); returns the HTML path."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    analysis = _analyse(inputs)
    summary = analysis.summary
    quality = _quality_figure(summary, out_dir / "quality.png")
    confusion = _confusion_figure(analysis.confusions, out_dir / "confusion.png")
    skill, x_name = _skill_figure(summary, out_dir / "skill.png")
    timeline = _timeline_figure(analysis.data.timeline, out_dir / "timeline.png")
    confusion_text = (
        "<p>Rows are the gold class, columns the method's; colour is the share of the gold row, numbers are counts."
        + (
            " Boxes are matched one-to-one whatever their class; unmatched gold boxes fall in <em>(missed)</em>, "
            f"unmatched consolidated boxes in <em>(no object)</em>, coloured by their share of the column (IoU "
            f"\u2265 {MATCH_IOU:g}).</p>"
            if inputs.task_type == BOUNDING_BOX
            else "</p>"
        )
    )
    title = f"truthflow report \u2014 {inputs.dataset}" if inputs.dataset else "truthflow report"
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">Labeling job {_e(inputs.job_id or DASH)} \u00b7 execution '
        f"{_e(inputs.execution_name or DASH)} ({_e(inputs.execution_status or 'unknown')})</p>",
        _header_html(inputs, summary),
        _quality_html(summary, quality),
        "<h2>2. Confusion matrices</h2>" + confusion_text + _figure_html(confusion, "confusion matrices"),
        _skill_html(summary, skill, x_name),
        _samples_html(analysis, inputs, out_dir),
        _timeline_html(analysis.data.timeline, timeline),
        f'<p class="muted">Report written in {time.perf_counter() - started:.2f} s.</p>',
    ]
    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    path = out_dir / "report.html"
    path.write_text(document, encoding="utf-8")
    return path
