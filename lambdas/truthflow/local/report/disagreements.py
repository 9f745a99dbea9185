"""Where the pipeline and majority vote disagree: what consolidation changed, image by image, against gold.

Classification: the images whose consolidated label differs from the majority vote over the same answers. Boxes:
the images where the consolidated boxes and the naive majority's differ in what they found (they cannot be matched
one to one, same class, at IoU at least the report's lower threshold), or where they drew an object far enough
apart that against gold one matches and the other does not at one of the report's thresholds (the two mostly
differ in where the edges lie, which only gold can judge). Each is judged against gold: which of the two is right
(classes), or which scores the higher F1 at the stricter threshold, then the lower (boxes). Gold questions given to
the pipeline are listed too, but counted apart: the pipeline knows their labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from truthflow.consolidation.box_metrics import match_boxes
from truthflow.groundtruth.output_manifest import LabeledBox
from truthflow.local.report.inputs import IMAGE_CLASSIFICATION, _Data

# Rows listed in summary.json and the report's table (the count is always given).
MAX_LISTED = 50

FloatArray = NDArray[np.float64]

PIPELINE_RIGHT, MAJORITY_RIGHT, NEITHER_RIGHT, BOTH_EQUAL = "pipeline", "majority", "neither", "equal"


def disagreements(data: _Data, majority: Mapping[str, Any], *, thresholds: Sequence[float]) -> dict[str, Any]:
    """The summary's ``disagreements``: ``n`` images where the two differ (``n_answered`` had answers), how many of
    them are gold questions, and over the others with gold, how often each was right (``pipeline_right``,
    ``majority_right``, ``neither_right``; boxes: the better F1, ``equal`` when tied); ``images`` lists the first
    :data:`MAX_LISTED` (``winner`` is who was right, ``None`` without gold). ``thresholds``: the report's IoU
    thresholds for boxes, ascending."""
    if data.task_type == IMAGE_CLASSIFICATION:
        rows = [_class_row(data, image, majority) for image in data.images if data.answer_labels.get(image)]
    else:
        rows = [_box_row(data, image, majority, thresholds) for image in data.images if data.answer_boxes.get(image)]
    n_answered = len(rows)
    found = [row for row in rows if row is not None]
    judged = [row["winner"] for row in found if not row["gold_question"] and row["winner"] is not None]
    return {
        "basis": "labels" if data.task_type == IMAGE_CLASSIFICATION else "boxes",
        "n": len(found),
        "n_answered": n_answered,
        "n_gold_questions": sum(row["gold_question"] for row in found),
        "pipeline_right": judged.count(PIPELINE_RIGHT),
        "majority_right": judged.count(MAJORITY_RIGHT),
        "neither_right": judged.count(NEITHER_RIGHT),
        "equal": judged.count(BOTH_EQUAL),
        "images": found[:MAX_LISTED],
    }


def _class_row(data: _Data, image: str, majority: Mapping[str, Any]) -> dict[str, Any] | None:
    result = data.result_labels.get(image)
    vote = majority.get(image)
    if result is None or vote is None or result[0] == vote:
        return None
    truth = data.gold_labels.get(image)
    winner = None
    if truth is not None:
        winner = {(True, False): PIPELINE_RIGHT, (False, True): MAJORITY_RIGHT}.get(
            (result[0] == truth, vote == truth), NEITHER_RIGHT
        )
    return {
        "image": image,
        "answers": dict(data.answer_labels[image]),
        "majority": vote,
        "pipeline": result[0],
        "confidence": result[1],
        "gold": truth,
        "gold_question": image in data.gold_questions,
        "winner": winner,
    }


def _box_row(
    data: _Data, image: str, majority: Mapping[str, Any], thresholds: Sequence[float]
) -> dict[str, Any] | None:
    mine, theirs = data.result_boxes.get(image, []), list(majority.get(image, []))
    truth = data.gold_boxes.get(image)
    same_objects = len(mine) == len(theirs) == _matched(mine, theirs, thresholds[0])
    pipeline_f1 = [_f1(mine, truth, threshold) for threshold in thresholds] if truth is not None else []
    majority_f1 = [_f1(theirs, truth, threshold) for threshold in thresholds] if truth is not None else []
    if same_objects and pipeline_f1 == majority_f1:
        return None
    winner = None
    if truth is not None:
        # The stricter threshold first: where the two found the same objects, their edges are what differs.
        ours, other = pipeline_f1[::-1], majority_f1[::-1]
        winner = BOTH_EQUAL if ours == other else (PIPELINE_RIGHT if ours > other else MAJORITY_RIGHT)
    return {
        "image": image,
        "pipeline_boxes": len(mine),
        "majority_boxes": len(theirs),
        "gold_boxes": None if truth is None else len(truth),
        "same_objects": same_objects,
        "pipeline_f1": {f"{t:g}": f1 for t, f1 in zip(thresholds, pipeline_f1, strict=False)},
        "majority_f1": {f"{t:g}": f1 for t, f1 in zip(thresholds, majority_f1, strict=False)},
        "gold_question": image in data.gold_questions,
        "winner": winner,
    }


def _matched(predicted: Sequence[LabeledBox], reference: Sequence[LabeledBox], threshold: float) -> int:
    """Boxes matched one to one, same class, at IoU >= ``threshold``."""
    matched = 0
    for label in {box.label for box in predicted} & {box.label for box in reference}:
        mine = _array([box for box in predicted if box.label == label])
        theirs = _array([box for box in reference if box.label == label])
        matched += int(match_boxes(mine, theirs, threshold=threshold)[0].size)
    return matched


def _f1(predicted: Sequence[LabeledBox], gold: Sequence[LabeledBox], threshold: float) -> float:
    """F1 of one image's boxes against gold at ``threshold``, class-aware (1 when both are empty)."""
    if not predicted and not gold:
        return 1.0
    return 2 * _matched(predicted, gold, threshold) / (len(predicted) + len(gold))


def _array(boxes: Sequence[LabeledBox]) -> FloatArray:
    return np.array([[box.left, box.top, box.width, box.height] for box in boxes], dtype=np.float64).reshape(-1, 4)
