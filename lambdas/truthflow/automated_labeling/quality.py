"""The quality of one machine label against the human label of the same image, in ``[0, 1]``.

* **Classification**: 1 when the machine's class is the human class, else 0 (the mean is accuracy).
* **Boxes**: the mean IoU per image where a missed or an extra box counts as IoU 0: machine and human boxes are
  paired one-to-one to maximise the total IoU (Hungarian algorithm; a pair of different labels has IoU 0), and the
  sum of the pairs' IoU is divided by the larger of the two box counts. An image both sides leave empty scores 1.
  This is the seed's "mean IoU >= 0.6 against the human labels" made per image, so that an image with a missed
  object cannot hide behind a well-placed box elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from truthflow.consolidation.box_metrics import iou_matrix
from truthflow.groundtruth.output_manifest import BoxLike


def label_quality(machine_label: str, human_label: str) -> float:
    return 1.0 if machine_label == human_label else 0.0


def box_quality(machine: Sequence[BoxLike], human: Sequence[BoxLike]) -> float:
    """Per-image mean IoU of ``machine`` against ``human`` boxes (misses and extras count 0)."""
    if not machine and not human:
        return 1.0
    if not machine or not human:
        return 0.0
    overlaps = iou_matrix(_rows(machine), _rows(human))
    same_label = np.array([[m.label == h.label for h in human] for m in machine])
    overlaps = np.where(same_label, overlaps, 0.0)
    rows, cols = linear_sum_assignment(overlaps, maximize=True)
    return float(overlaps[rows, cols].sum() / max(len(machine), len(human)))


def _rows(boxes: Sequence[BoxLike]) -> list[tuple[float, float, float, float]]:
    return [(box.left, box.top, box.width, box.height) for box in boxes]
