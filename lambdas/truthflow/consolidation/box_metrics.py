r"""Detection accuracy of predicted boxes against gold boxes: IoU, one-to-one matching, precision/recall/F1.

Boxes are ``(left, top, width, height)`` rows in pixels, the layout of
:class:`truthflow.consolidation.boxes.Box`. The intersection over union (Jaccard index) of two boxes is

.. math:: \mathrm{IoU}(a, b) = \frac{|a \cap b|}{|a| + |b| - |a \cap b|}

the overlap measure of the PASCAL VOC challenge (Everingham et al. 2010, "The PASCAL Visual Object Classes
(VOC) Challenge", IJCV 88). A prediction is a true positive when it is matched to a distinct gold box with
IoU at least the threshold. Unlike VOC, which matches greedily in order of detector confidence, crowd boxes
carry no ranking we want to reward, so we match by an optimal assignment: the Hungarian algorithm
(Kuhn 1955; ``scipy.optimize.linear_sum_assignment``) choosing the one-to-one matching with the *most* pairs
at IoU >= threshold, ties broken by the largest total IoU. Greedy matching can only find fewer pairs, so this
is the most favourable scoring of a given set of boxes and the same for every method compared.

Counts are micro-averaged: true positives, predicted boxes and gold boxes are summed over images before the
ratios are taken, so an image with many objects weighs more than one with a single object and an image
with no gold and no predicted boxes contributes nothing (precision and recall are 1 when their denominator
is 0, the conventional "nothing to find, nothing wrongly found").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import linear_sum_assignment

FloatArray = NDArray[np.float64]


def as_box_array(boxes: ArrayLike) -> FloatArray:
    """Boxes as a float array of shape ``(n, 4)`` (left, top, width, height); an empty input gives ``(0, 4)``."""
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 4))
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must have shape (n, 4) as left, top, width, height; got {array.shape}")
    return array


def iou_matrix(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """Pairwise IoU, shape ``(len(a), len(b))``. Boxes with no area have IoU 0 with everything."""
    first, second = as_box_array(a), as_box_array(b)
    # Broadcasting (n, 1) against (1, m): one vectorised pass instead of a Python double loop.
    left = np.maximum(first[:, 0, None], second[None, :, 0])
    top = np.maximum(first[:, 1, None], second[None, :, 1])
    right = np.minimum((first[:, 0] + first[:, 2])[:, None], (second[:, 0] + second[:, 2])[None, :])
    bottom = np.minimum((first[:, 1] + first[:, 3])[:, None], (second[:, 1] + second[:, 3])[None, :])
    intersection = np.clip(right - left, 0.0, None) * np.clip(bottom - top, 0.0, None)
    area_first = np.clip(first[:, 2], 0.0, None) * np.clip(first[:, 3], 0.0, None)
    area_second = np.clip(second[:, 2], 0.0, None) * np.clip(second[:, 3], 0.0, None)
    union = area_first[:, None] + area_second[None, :] - intersection
    overlap: FloatArray = np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)
    return overlap


def iou(a: ArrayLike, b: ArrayLike) -> float:
    """IoU of two single boxes given as ``(left, top, width, height)``."""
    return float(iou_matrix(a, b)[0, 0])


def match_boxes(
    predicted: ArrayLike, gold: ArrayLike, *, threshold: float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """One-to-one matching with the most pairs at IoU >= ``threshold`` (ties: largest total IoU).

    Returns index arrays ``(predicted_index, gold_index)`` of the matched pairs.
    """
    overlaps = iou_matrix(predicted, gold)
    if overlaps.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    eligible = overlaps >= threshold
    # Each eligible pair is worth 1 plus a tie-break below 1 in total (sum of IoUs / (k + 1) < 1 for k pairs),
    # so the assignment first maximises the number of pairs, then their total IoU.
    scale = min(overlaps.shape) + 1
    weight = np.where(eligible, 1.0 + overlaps / scale, 0.0)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    keep = eligible[rows, cols]
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64)


@dataclass(frozen=True)
class DetectionScore:
    """Micro-averaged detection accuracy at one IoU threshold."""

    threshold: float
    true_positives: int
    n_predicted: int
    n_gold: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.n_predicted if self.n_predicted else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.n_gold if self.n_gold else 1.0

    @property
    def f1(self) -> float:
        # 2TP / (P + G): the harmonic mean of precision and recall, defined as 1 when both sets are empty.
        denominator = self.n_predicted + self.n_gold
        return 2.0 * self.true_positives / denominator if denominator else 1.0

    def __add__(self, other: DetectionScore) -> DetectionScore:
        if other.threshold != self.threshold:
            raise ValueError("cannot add scores at different IoU thresholds")
        return DetectionScore(
            self.threshold,
            self.true_positives + other.true_positives,
            self.n_predicted + other.n_predicted,
            self.n_gold + other.n_gold,
        )


def score_image(predicted: ArrayLike, gold: ArrayLike, *, threshold: float) -> DetectionScore:
    """Counts for one image."""
    predicted_boxes, gold_boxes = as_box_array(predicted), as_box_array(gold)
    matched, _ = match_boxes(predicted_boxes, gold_boxes, threshold=threshold)
    return DetectionScore(threshold, int(matched.size), len(predicted_boxes), len(gold_boxes))


def score_detections(
    predicted: Mapping[str, ArrayLike],
    gold: Mapping[str, ArrayLike],
    *,
    threshold: float,
    images: Iterable[str] | None = None,
) -> DetectionScore:
    """Micro-averaged precision/recall/F1 over ``images`` (default: every gold image).

    An image missing from ``predicted`` counts as predicting no boxes; one missing from ``gold`` as having none.
    """
    total = DetectionScore(threshold, 0, 0, 0)
    for image in gold if images is None else images:
        total = total + score_image(predicted.get(image, ()), gold.get(image, ()), threshold=threshold)
    return total
