"""Agreement between annotators, for runs without gold (labels imported from tool exports): how far each annotator
agrees with the consolidated labels, each pair of annotators with each other, and the crowd as a whole.

**Classes.** Per annotator: the share of their answers that are the consolidated label, and Cohen's kappa between
the annotator and the consolidated labels on the images they answered (Cohen 1960: ``(p_o - p_e) / (1 - p_e)``,
``p_e`` from the two label distributions on those images). Per pair: Cohen's kappa on the images both answered
(``None`` below :data:`MIN_SHARED` images). Overall: Fleiss' kappa (Fleiss 1971) over the images with at least two
answers; as the number of annotators may differ per image, each image's agreement
``P_i = sum_k n_ik (n_ik - 1) / (n_i (n_i - 1))`` is averaged over images and the chance agreement
``P_e = sum_k p_k^2`` takes the label shares ``p_k`` over all their answers. A kappa is ``None`` where chance
agreement is 1 (everybody always gave one label): it is undefined there.

**Boxes.** Two box sets on one image agree by their F1: boxes are matched one-to-one, same label, at IoU >= 0.5
(the PASCAL VOC criterion, :func:`~truthflow.consolidation.box_metrics.match_boxes`), ``F1 = 2 matched / (|A| +
|B|)``, and 1 when both are empty (both say nothing is there). Per annotator: the mean F1 against the consolidated
boxes over the images they answered, and the mean IoU of their matched boxes. Per pair: the mean F1 over the images
both answered. Overall: the mean, over images with at least two annotators, of the image's mean pairwise F1.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from truthflow.consolidation.box_metrics import iou_matrix, match_boxes
from truthflow.groundtruth.output_manifest import LabeledBox
from truthflow.local.report.inputs import IMAGE_CLASSIFICATION, _Data

MATCH_IOU = 0.5
# Cohen's kappa of a pair is given from this many shared images on (one shared image says nothing).
MIN_SHARED = 2
# Pairs listed in the summary at most (the most shared images first); the overall figure uses every pair.
MAX_PAIRS = 45


def agreement_summary(data: _Data) -> dict[str, Any]:
    """``summary.json``'s ``agreement``: ``measure`` (what the numbers are), ``overall``, ``annotators`` (per
    annotator: ``n_answers`` and the agreement with the consolidated labels) and ``pairs`` (the most shared first)."""
    if data.task_type == IMAGE_CLASSIFICATION:
        return _class_agreement(data.answer_labels, {image: label for image, (label, _) in data.result_labels.items()})
    return _box_agreement(data.answer_boxes, data.result_boxes)


# --- classes ---------------------------------------------------------------------------------------------------------


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items (``None``: no items, or chance agreement 1)."""
    n = len(first)
    if n == 0 or n != len(second):
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    left, right = Counter(first), Counter(second)
    chance = sum(left[label] * right[label] for label in left) / (n * n)
    return None if chance >= 1.0 else (observed - chance) / (1.0 - chance)


def fleiss_kappa(items: Iterable[Sequence[str]]) -> float | None:
    """Fleiss' kappa over items, each the labels its raters gave (items with fewer than 2 are skipped)."""
    agreements: list[float] = []
    totals: Counter[str] = Counter()
    for labels in items:
        n = len(labels)
        if n < 2:
            continue
        counts = Counter(labels)
        agreements.append(sum(c * (c - 1) for c in counts.values()) / (n * (n - 1)))
        totals.update(counts)
    if not agreements:
        return None
    answers = sum(totals.values())
    chance = sum((count / answers) ** 2 for count in totals.values())
    observed = sum(agreements) / len(agreements)
    return None if chance >= 1.0 else (observed - chance) / (1.0 - chance)


def _class_agreement(answers: Mapping[str, Mapping[str, str]], consolidated: Mapping[str, str]) -> dict[str, Any]:
    by_worker: dict[str, dict[str, str]] = {}
    for image, row in answers.items():
        for worker, label in row.items():
            by_worker.setdefault(worker, {})[image] = label
    annotators = {}
    for worker, given in by_worker.items():
        images = [image for image in given if image in consolidated]
        mine = [given[image] for image in images]
        theirs = [consolidated[image] for image in images]
        annotators[worker] = {
            "n_answers": len(given),
            "agreement_with_consolidated": _share(sum(a == b for a, b in zip(mine, theirs, strict=True)), len(images)),
            "kappa_with_consolidated": cohen_kappa(mine, theirs),
        }
    pairs = []
    for first, second in combinations(by_worker, 2):
        shared = [image for image in by_worker[first] if image in by_worker[second]]
        if not shared:
            continue
        a = [by_worker[first][image] for image in shared]
        b = [by_worker[second][image] for image in shared]
        pairs.append(
            {
                "annotators": [first, second],
                "n_shared": len(shared),
                "agreement": _share(sum(x == y for x, y in zip(a, b, strict=True)), len(shared)),
                "kappa": cohen_kappa(a, b) if len(shared) >= MIN_SHARED else None,
            }
        )
    return {
        "measure": "classes: Fleiss' kappa overall, Cohen's kappa per pair and per annotator against the consolidated "
        "labels",
        "overall": fleiss_kappa(list(row.values()) for row in answers.values()),
        "n_multi_annotated": sum(len(row) >= 2 for row in answers.values()),
        "annotators": annotators,
        "pairs": _most_shared(pairs),
    }


# --- boxes -----------------------------------------------------------------------------------------------------------


def box_f1(first: Sequence[LabeledBox], second: Sequence[LabeledBox]) -> tuple[float, list[float]]:
    """The F1 of two box sets on one image (1 when both are empty) and the IoUs of their matched pairs."""
    if not first and not second:
        return 1.0, []
    ious: list[float] = []
    for label in {box.label for box in first} & {box.label for box in second}:
        mine = _array([box for box in first if box.label == label])
        theirs = _array([box for box in second if box.label == label])
        rows, columns = match_boxes(mine, theirs, threshold=MATCH_IOU)
        if rows.size:
            ious.extend(float(value) for value in iou_matrix(mine, theirs)[rows, columns])
    return 2.0 * len(ious) / (len(first) + len(second)), ious


def _box_agreement(
    answers: Mapping[str, Mapping[str, Sequence[LabeledBox]]], consolidated: Mapping[str, Sequence[LabeledBox]]
) -> dict[str, Any]:
    f1s: dict[str, list[float]] = {}
    ious: dict[str, list[float]] = {}
    n_answers: Counter[str] = Counter()
    pair_f1s: dict[tuple[str, str], list[float]] = {}
    image_means: list[float] = []
    order = list(dict.fromkeys(worker for row in answers.values() for worker in row))
    rank = {worker: position for position, worker in enumerate(order)}
    for image, row in answers.items():
        for worker, boxes in row.items():
            n_answers[worker] += 1
            if image in consolidated:
                f1, matched = box_f1(boxes, consolidated[image])
                f1s.setdefault(worker, []).append(f1)
                ious.setdefault(worker, []).extend(matched)
        within = []
        for first, second in combinations(sorted(row, key=rank.__getitem__), 2):
            f1, _ = box_f1(row[first], row[second])
            pair_f1s.setdefault((first, second), []).append(f1)
            within.append(f1)
        if within:
            image_means.append(float(np.mean(within)))
    annotators = {
        worker: {
            "n_answers": n_answers[worker],
            "f1_with_consolidated": _mean(f1s.get(worker, [])),
            "mean_iou_matched": _mean(ious.get(worker, [])),
        }
        for worker in order
    }
    pairs = [
        {"annotators": [first, second], "n_shared": len(values), "mean_f1": _mean(values)}
        for (first, second), values in pair_f1s.items()
    ]
    return {
        "measure": "boxes: mean F1 per image, boxes matched one-to-one with the same label at IoU >= 0.5 (1 when "
        "both drew none); overall: the mean over images of the mean pairwise F1",
        "overall": _mean(image_means),
        "n_multi_annotated": len(image_means),
        "annotators": annotators,
        "pairs": _most_shared(pairs),
    }


def _array(boxes: Sequence[LabeledBox]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.array([[box.left, box.top, box.width, box.height] for box in boxes], dtype=np.float64).reshape(-1, 4)


def _most_shared(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(pairs, key=lambda pair: (-pair["n_shared"], pair["annotators"]))[:MAX_PAIRS]


def _share(count: int, total: int) -> float | None:
    return count / total if total else None


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None
