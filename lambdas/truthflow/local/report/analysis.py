"""The report's numbers: label quality against gold (classification accuracy or class-aware box detection scores),
the confusion matrices, each worker's measured and estimated skill, and the timeline's totals.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from truthflow.consolidation.box_metrics import DetectionScore, match_boxes
from truthflow.consolidation.boxes import Box, ImageAnswers, WorkerAnswer, consolidate_boxes
from truthflow.consolidation.labels import consolidate_labels
from truthflow.groundtruth.output_manifest import LabeledBox
from truthflow.local.report.agreement import agreement_summary
from truthflow.local.report.automated import automated_summary
from truthflow.local.report.disagreements import disagreements
from truthflow.local.report.inputs import (
    FAILED_STATUSES,
    IMAGE_CLASSIFICATION,
    ReportInputs,
    StateSpan,
    _Data,
    _normalise,
)

IOU_THRESHOLDS: tuple[float, ...] = (0.5, 0.7)
# The IoU at which boxes are matched for the class confusion and for a worker's label accuracy.
MATCH_IOU = 0.5

# Method keys of the summary (pipeline first).
PIPELINE, MAJORITY, WORKER_MEAN, WORKER_BEST = "pipeline", "majority", "single_worker_mean", "single_worker_best"
# With gold questions: the same engine on the same answers, without the gold questions (classification).
WITHOUT_GOLD = "pipeline_without_gold"

FloatArray = NDArray[np.float64]


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
    majority_boxes: dict[str, list[LabeledBox]] = field(default_factory=dict)
    """Boxes: the naive majority's boxes per image (drawn where it and the pipeline disagree)."""


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


_Analysed = tuple[dict[str, Any], list[_Confusion], dict[str, dict[str, Any]], dict[str, Any]]
"""The figures of a task: scores, confusion matrices, per-worker figures, and the majority's labels or boxes."""


def _analyse_classification(data: _Data) -> _Analysed:
    answered = [(image, worker, label) for image, row in data.answer_labels.items() for worker, label in row.items()]
    majority: dict[str, str] = {}
    without_gold: dict[str, str] = {}
    if answered:
        items, workers, labels = (list(column) for column in zip(*answered, strict=True))
        result = consolidate_labels(items, workers, labels, method="mv", label_set=data.labels)
        majority = dict(zip(result.item_names, result.labels, strict=True))
        if data.gold_questions:
            # What the gold questions bought: the pipeline's engine (default method) on the same answers, without them.
            plain = consolidate_labels(items, workers, labels, label_set=data.labels)
            without_gold = dict(zip(plain.item_names, plain.labels, strict=True))
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
    if data.gold_questions:
        accuracy[WITHOUT_GOLD] = _ratio(sum(without_gold.get(image) == gold[image] for image in scored), len(scored))
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
    return accuracy, confusions, per_worker, majority


def _box_array(boxes: Sequence[LabeledBox]) -> FloatArray:
    return np.array([[box.left, box.top, box.width, box.height] for box in boxes], dtype=np.float64).reshape(-1, 4)


def _class_aware_score(predicted: Sequence[LabeledBox], gold: Sequence[LabeledBox], threshold: float) -> DetectionScore:
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


def _naive_majority(data: _Data) -> dict[str, list[LabeledBox]]:
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
        image: [LabeledBox(b.label, b.left, b.top, b.width, b.height, b.confidence) for b in boxes]
        for image, boxes in result.boxes.items()
    }


def _analyse_boxes(data: _Data) -> _Analysed:
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
    return detection, [_box_confusion(data)], per_worker, majority


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
        accuracy, confusions, per_worker, majority = _analyse_classification(data)
        detection = None
    else:
        detection, confusions, per_worker, majority = _analyse_boxes(data)
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
        if inputs.gold_questions:
            scores = inputs.gold_question_scores.get(worker) or {}
            answered_gold, right = int(scores.get("answers", 0)), int(scores.get("correct", 0))
            workers[worker]["gold_questions_answered"] = answered_gold
            workers[worker]["gold_question_accuracy"] = _ratio(right, answered_gold)
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
        "automated_labeling": automated_summary(data, inputs.automated_labeling, inputs.machine_labeled),
        # Without gold (labels imported from tool exports), quality is told by how far the annotators agree.
        "agreement": agreement_summary(data) if not data.scored and data.n_answers else None,
        "disagreements": disagreements(data, majority, thresholds=IOU_THRESHOLDS),
        "n_gold_questions": len(data.gold_questions),
    }
    return _Analysis(data, summary, confusions, {} if detection is None else majority)


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
    accuracy); ``timeline``: ``n_states``, ``seconds``, ``failed`` (state names); ``disagreements``: the images
    where the pipeline and majority vote differ (:func:`~truthflow.local.report.disagreements.disagreements`);
    ``n_gold_questions``. With gold questions (left out of every score), ``accuracy`` adds ``pipeline_without_gold``
    and each worker ``gold_questions_answered`` and ``gold_question_accuracy`` (the pipeline's quality.json).
    ``agreement`` (only when no image is scored against gold, else ``None``):
    :func:`~truthflow.local.report.agreement.agreement_summary`.
    """
    return _analyse(inputs).summary
