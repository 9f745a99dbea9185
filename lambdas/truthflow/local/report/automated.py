"""The numbers of the report's automated-labeling section (its figure is drawn in :mod:`.figures`, its HTML in
:mod:`.page`): θ and how it was chosen, what the model labeled and what that saved, and the quality of machine labels
against gold next to that of the human labels.

Inputs are the run's ``dataset/automated-labeling.json`` (the "Choose confidence threshold" step's report) and
which images the consolidated manifest marks ``"human-annotated": "no"``. Quality against gold uses the measure the
target is stated in (:mod:`truthflow.automated_labeling.quality`): accuracy for classes, the mean per-image IoU with
misses and extras counted 0 for boxes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from truthflow.automated_labeling.quality import box_quality, label_quality
from truthflow.local.report.inputs import IMAGE_CLASSIFICATION, _Data


def automated_summary(
    data: _Data, routing: Mapping[str, Any] | None, machine_images: Sequence[str]
) -> dict[str, Any] | None:
    """``summary.json``'s ``automated_labeling``; ``None`` when the run did not label automatically.

    ``machine_labeled + human_labeled`` is the number of images of the run; the qualities are measured on the
    images with gold (``machine_label_quality``: machine-labeled ones, ``human_label_quality``: human-labeled ones).
    """
    if routing is None:
        return None
    machine = set(machine_images)
    n_images = int(routing.get("n_images") or len(data.images))
    machine_scores: list[float] = []
    human_scores: list[float] = []
    for image in data.images:
        score = _quality_against_gold(data, image)
        if score is not None:
            (machine_scores if image in machine else human_scores).append(score)
    return {
        "theta": routing.get("theta"),
        "target": routing.get("target"),
        "confidence_level": routing.get("confidence_level"),
        "quality_measure": routing.get("quality_measure"),
        "n_images": n_images,
        "machine_labeled": len(machine),
        "human_labeled": n_images - len(machine),
        "machine_share": len(machine) / n_images if n_images else None,
        "machine_label_quality": _average(machine_scores),
        "machine_label_quality_n": len(machine_scores),
        "human_label_quality": _average(human_scores),
        "human_label_quality_n": len(human_scores),
        "calibration_quality": routing.get("calibration_quality"),
        "calibration_lower_bound": routing.get("calibration_lower_bound"),
        "n_calibration": routing.get("n_calibration"),
        "first_batch": routing.get("first_batch"),
        "human_tasks": routing.get("human_tasks"),
        "human_tasks_without_model": routing.get("human_tasks_without_model"),
        "human_tasks_saved": routing.get("human_tasks_saved"),
        "first_batch_workers_per_object": routing.get("first_batch_workers_per_object"),
        "workers_per_object": routing.get("workers_per_object"),
        "price_per_task": routing.get("price_per_task"),
        "cost_saved": routing.get("cost_saved"),
        "reason": routing.get("reason"),
        "model_name": routing.get("model_name"),
        "bootstrap_model": routing.get("bootstrap_model"),
        "score_threshold": routing.get("score_threshold"),
    }


def _quality_against_gold(data: _Data, image: str) -> float | None:
    if data.task_type == IMAGE_CLASSIFICATION:
        gold, result = data.gold_labels.get(image), data.result_labels.get(image)
        return None if gold is None or result is None else label_quality(result[0], gold)
    gold_boxes, result_boxes = data.gold_boxes.get(image), data.result_boxes.get(image)
    return None if gold_boxes is None or result_boxes is None else box_quality(result_boxes, gold_boxes)


def _average(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
