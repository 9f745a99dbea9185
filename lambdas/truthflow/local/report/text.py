"""How the report words its numbers: the methods' display names, number formatting, and the terminal summary."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from truthflow.local.report.analysis import (
    IOU_THRESHOLDS,
    MAJORITY,
    PIPELINE,
    WITHOUT_GOLD,
    WORKER_BEST,
    WORKER_MEAN,
)
from truthflow.local.report.inputs import BOUNDING_BOX, IMAGE_CLASSIFICATION

DASH = "\u2013"  # shown where a figure is not available

# The display names of the summary's methods, per task.
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


def _number(value: float | None, digits: int = 3) -> str:
    return DASH if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def format_summary(summary: Mapping[str, Any]) -> list[str]:
    """A few lines for the terminal: label quality of the pipeline against the baselines, and skill recovery."""
    lines = [
        f"{summary['dataset'] or summary['task_type']}: {summary['n_images']} images, {summary['n_workers']} workers, "
        f"{summary['n_answers']} answers; {summary['n_scored_images']} images scored against gold"
    ]
    names = _METHOD_NAMES[summary["task_type"]]
    scored = summary.get("agreement") is None  # without gold, agreement takes the place of the scores
    if summary["accuracy"] is not None and scored:
        accuracy = summary["accuracy"]
        lines.append(
            "accuracy: " + ", ".join(f"{names[m]} {_number(accuracy[m])}" for m in (PIPELINE, MAJORITY, WORKER_MEAN))
        )
    if summary["detection"] is not None and scored:
        for threshold in IOU_THRESHOLDS:
            block = summary["detection"][f"{threshold:g}"]
            lines.append(
                f"F1 at IoU \u2265 {threshold:g}: "
                + ", ".join(
                    f"{names[m]} {_number((block[m] or {}).get('f1'))}" for m in (PIPELINE, MAJORITY, WORKER_MEAN)
                )
            )
    found = summary.get("disagreements")
    if found is not None:
        if summary["task_type"] == BOUNDING_BOX:
            verdict = f"better F1: pipeline {found['pipeline_right']}, majority {found['majority_right']}"
        else:
            verdict = f"right: pipeline {found['pipeline_right']}, majority vote {found['majority_right']}"
        gold_part = f", {found['n_gold_questions']} gold questions" if found["n_gold_questions"] else ""
        lines.append(
            f"pipeline and majority differ on {found['n']} of {found['n_answered']} images ({verdict}{gold_part})"
        )
    if summary.get("n_gold_questions"):
        accuracy = summary["accuracy"] or {}
        lines.append(
            f"gold questions: {summary['n_gold_questions']} (left out of the scores); the pipeline's engine without "
            f"them {_number(accuracy.get(WITHOUT_GOLD))}"
        )
    automated = summary.get("automated_labeling")
    if automated is not None:
        theta = automated["theta"]
        lines.append(
            f"automated labeling: {automated['machine_labeled']} of {automated['n_images']} images machine-labeled "
            + (f"at θ = {theta:.4f}" if theta is not None else "(no θ qualified)")
            + f"; quality against gold: machine {_number(automated['machine_label_quality'])}, human "
            f"{_number(automated['human_label_quality'])} (target {automated['target']})"
        )
    agreement = summary.get("agreement")
    if agreement is not None:
        boxes = "mean_iou_matched" in next(iter(agreement["annotators"].values()), {})
        measure = "mean pairwise F1 per image" if boxes else "Fleiss' kappa"
        lines.append(
            f"no gold: agreement between annotators ({measure}) {_number(agreement['overall'])} over "
            f"{agreement['n_multi_annotated']} images with at least two"
        )
    if summary["skill_mean_abs_error"] is not None:
        lines.append(f"worker accuracy estimates: mean |estimated - true| = {summary['skill_mean_abs_error']:.3f}")
    return lines
