"""Accuracy of bounding-box consolidation on real crowd boxes with expert gold (Caltech pedestrians).

Dataset: ``shared/crowd_datasets/boxes_caltech_pedestrians`` beside the repository (7 MTurk workers per image,
1,448 images, expert boxes for 469 "gold" images; see its README). The files are read in place, never copied.

Every method sees the answers for all 1,448 images (consolidation may pool evidence across images, such as
worker skill) and is scored on the 469 gold images only, including those whose gold is "no pedestrian". Scores
are micro-averaged detection precision, recall and F1 with one-to-one Hungarian matching at IoU >= 0.5 and
>= 0.7 (:mod:`truthflow.consolidation.box_metrics`).

Methods:

- ``single worker``: each (image, worker) answer on a gold image is scored on its own as a prediction; true
  positives, predicted boxes and gold boxes are summed over all those answers before the ratios are taken (the
  micro-average over answers: the accuracy of one answer drawn at random, weighted by box counts).
- ``naive clustering``: boxes in input order join the existing cluster whose mean box overlaps them most if that
  IoU is >= 0.5, else open a new cluster (greedy); a cluster's box is the mean of its members; it is kept when
  more than half of the image's workers' boxes are in it; no cannot-link (one worker's two boxes may share a
  cluster).
- ``consolidate_boxes``: :func:`truthflow.consolidation.boxes.consolidate_boxes` with its defaults.

Run ``.venv/bin/python -m benchmarks.box_accuracy`` for the table, add ``--sweep`` for the parameter sweeps that
chose the defaults (each row also scored on the two halves of the gold images, odd and even by name, to show
how much of a difference is sampling noise, and on 5-of-7-worker subsamples for the quorum and threshold).
"""

from __future__ import annotations

import csv
import random
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT / "lambdas") not in sys.path:  # running from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT / "lambdas"))

from truthflow.consolidation.box_metrics import DetectionScore, iou_matrix, score_image  # noqa: E402
from truthflow.consolidation.boxes import Box, ImageAnswers, WorkerAnswer, consolidate_boxes  # noqa: E402

FloatArray = NDArray[np.float64]
BoxArrays = Mapping[str, FloatArray]

DATASETS = REPO_ROOT.parent / "shared" / "crowd_datasets"
DATASET = "boxes_caltech_pedestrians"
LABEL = "pedestrian"
THRESHOLDS = (0.5, 0.7)


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _ltwh(row: Mapping[str, str]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(row[key]) for key in ("x1", "y1", "x2", "y2"))
    return x1, y1, x2 - x1, y2 - y1


def load_images(root: Path) -> list[ImageAnswers]:
    """All images with every worker answer (0-box answers included), in ``images.csv`` order."""
    folder = root / DATASET
    boxes: dict[tuple[str, str], list[Box]] = defaultdict(list)
    for row in _read(folder / "answers.csv"):
        boxes[row["image"], row["worker"]].append(Box(LABEL, *_ltwh(row)))
    answers: dict[str, list[WorkerAnswer]] = defaultdict(list)
    for row in _read(folder / "assignments.csv"):
        found = boxes.get((row["image"], row["worker"]), [])
        if len(found) != int(row["n_boxes"]):
            raise ValueError(f"image {row['image']}, worker {row['worker']}: n_boxes disagrees with answers.csv")
        answers[row["image"]].append(WorkerAnswer(row["worker"], tuple(found)))
    return [
        ImageAnswers(row["image"], float(row["width"]), float(row["height"]), tuple(answers[row["image"]]))
        for row in _read(folder / "images.csv")
    ]


def load_gold(root: Path) -> dict[str, FloatArray]:
    """Gold boxes (n, 4) as left, top, width, height per gold image (a 0-box image maps to an empty array)."""
    folder = root / DATASET
    gold: dict[str, list[tuple[float, float, float, float]]] = {
        row["image"]: [] for row in _read(folder / "gold_images.csv")
    }
    for row in _read(folder / "truth.csv"):
        if row["image"] in gold:
            gold[row["image"]].append(_ltwh(row))
    return {image: np.asarray(rows, dtype=np.float64).reshape(-1, 4) for image, rows in gold.items()}


def _empty() -> FloatArray:
    return np.zeros((0, 4))


def score(predicted: BoxArrays, gold: BoxArrays, images: Iterable[str] | None = None) -> dict[float, DetectionScore]:
    """Micro-averaged scores at each threshold over ``images`` (default: all gold images)."""
    totals = {t: DetectionScore(t, 0, 0, 0) for t in THRESHOLDS}
    for image in gold if images is None else images:
        for t in THRESHOLDS:
            totals[t] = totals[t] + score_image(predicted.get(image, _empty()), gold[image], threshold=t)
    return totals


def single_worker_scores(images: Sequence[ImageAnswers], gold: BoxArrays) -> dict[float, DetectionScore]:
    """Every answer on a gold image scored on its own, counts summed over answers (see module docstring)."""
    totals = {t: DetectionScore(t, 0, 0, 0) for t in THRESHOLDS}
    for image in images:
        if image.image not in gold:
            continue
        for answer in image.answers:
            predicted = np.asarray([(b.left, b.top, b.width, b.height) for b in answer.boxes]).reshape(-1, 4)
            for t in THRESHOLDS:
                totals[t] = totals[t] + score_image(predicted, gold[image.image], threshold=t)
    return totals


def naive_clustering(images: Sequence[ImageAnswers], *, threshold: float = 0.5) -> dict[str, FloatArray]:
    """The baseline: greedy IoU clustering to running means, majority quorum, no cannot-link."""
    result: dict[str, FloatArray] = {}
    for image in images:
        members: list[list[FloatArray]] = []
        means = _empty()
        for answer in image.answers:
            for box in answer.boxes:
                vector = np.array([box.left, box.top, box.width, box.height])
                if not (np.isfinite(vector).all() and box.width > 0 and box.height > 0):
                    continue
                overlaps = iou_matrix(vector, means)[0]
                best = int(np.argmax(overlaps)) if overlaps.size else -1
                if best >= 0 and overlaps[best] >= threshold:
                    members[best].append(vector)
                    means[best] = np.mean(members[best], axis=0)
                else:
                    members.append([vector])
                    means = np.vstack([means, vector])
        majority = np.array([len(group) > len(image.answers) / 2 for group in members], dtype=bool)
        result[image.image] = means[majority] if majority.any() else _empty()
    return result


def consolidated(images: Sequence[ImageAnswers], **params: Any) -> dict[str, FloatArray]:
    """Our method's kept boxes per image as (n, 4) arrays."""
    output = consolidate_boxes(images, label_set=[LABEL], **params)
    return {
        image: np.asarray([(b.left, b.top, b.width, b.height) for b in boxes], dtype=np.float64).reshape(-1, 4)
        for image, boxes in output.boxes.items()
    }


def _row(method: str, scores: Mapping[float, DetectionScore]) -> dict[str, object]:
    row: dict[str, object] = {"method": method}
    for t, result in scores.items():
        tag = f"@{t:.1f}"
        row[f"precision{tag}"] = round(result.precision, 4)
        row[f"recall{tag}"] = round(result.recall, 4)
        row[f"f1{tag}"] = round(result.f1, 4)
    return row


def run(dataset_root: Path = DATASETS) -> list[dict[str, object]]:
    """Table rows: method, precision/recall/F1 at IoU >= 0.5 and >= 0.7, for the three methods."""
    images = load_images(dataset_root)
    gold = load_gold(dataset_root)
    return [
        _row("single worker", single_worker_scores(images, gold)),
        _row("naive clustering (IoU 0.5, mean, majority)", score(naive_clustering(images), gold)),
        _row("consolidate_boxes", score(consolidated(images), gold)),
    ]


# Parameter sweeps behind the defaults of consolidate_boxes: one parameter (or pair) varied, the rest at default.
SWEEPS: list[tuple[str, list[dict[str, Any]]]] = [
    (
        "linkage x iou_threshold",
        [
            {"linkage": linkage, "iou_threshold": t}
            for linkage in ("single", "average", "complete")
            for t in (0.2, 0.3, 0.4, 0.5, 0.6)
        ],
    ),
    ("quorum", [{"quorum": q} for q in (0.25, 0.35, 0.5, 0.65)]),
    ("coordinates", [{"coordinates": "median"}, {"coordinates": "worker_skill"}]),
    ("robust_dof", [{"robust_dof": v} for v in (2.0, 4.0, 12.0, 40.0, float("inf"))]),
    ("skill_prior", [{"skill_prior": v} for v in (0.0, 5.0, 25.0, 1e6)]),
]
SUBSAMPLE_SWEEPS: list[dict[str, Any]] = [
    *({"quorum": q} for q in (0.25, 0.35, 0.5, 0.65)),
    *({"iou_threshold": t} for t in (0.2, 0.3, 0.4, 0.5)),
    {"coordinates": "median"},
]


def _subsample(images: Sequence[ImageAnswers], n_workers: int, seed: int) -> list[ImageAnswers]:
    rng = random.Random(seed)
    return [
        ImageAnswers(
            im.image, im.width, im.height, tuple(rng.sample(list(im.answers), min(n_workers, len(im.answers))))
        )
        for im in images
    ]


def sweep(dataset_root: Path = DATASETS, *, subsample_workers: int = 5, seeds: int = 5) -> list[dict[str, object]]:
    """Rows: sweep, parameters, F1@0.5 and F1@0.7 on all gold images and on each half, seconds per run; then the
    subsample rows (``subsample_workers`` of the 7 answers per image, mean and spread over ``seeds`` draws)."""
    images = load_images(dataset_root)
    gold = load_gold(dataset_root)
    names = sorted(gold)
    halves = (names[0::2], names[1::2])
    rows: list[dict[str, object]] = []
    for title, grid in SWEEPS:
        for params in grid:
            start = time.perf_counter()
            predicted = consolidated(images, **params)
            seconds = time.perf_counter() - start
            full = score(predicted, gold)
            parts = [score(predicted, gold, half) for half in halves]
            rows.append(
                {
                    "sweep": title,
                    "params": params,
                    "f1@0.5": round(full[0.5].f1, 4),
                    "f1@0.7": round(full[0.7].f1, 4),
                    "halves f1@0.5": "/".join(f"{p[0.5].f1:.3f}" for p in parts),
                    "halves f1@0.7": "/".join(f"{p[0.7].f1:.3f}" for p in parts),
                    "seconds": round(seconds, 3),
                }
            )
    samples = [_subsample(images, subsample_workers, seed) for seed in range(seeds)]
    for params in SUBSAMPLE_SWEEPS:
        results = np.array(
            [[s[t].f1 for t in THRESHOLDS] for s in (score(consolidated(x, **params), gold) for x in samples)]
        )
        rows.append(
            {
                "sweep": f"{subsample_workers} of 7 workers ({seeds} draws)",
                "params": params,
                "f1@0.5": round(float(results[:, 0].mean()), 4),
                "f1@0.7": round(float(results[:, 1].mean()), 4),
                "halves f1@0.5": f"sd {results[:, 0].std():.4f}",
                "halves f1@0.7": f"sd {results[:, 1].std():.4f}",
                "seconds": "",
            }
        )
    return rows


def format_table(rows: Sequence[Mapping[str, object]]) -> str:
    columns = list(rows[0])
    widths = [max(len(str(c)), *(len(str(r[c])) for r in rows)) for c in columns]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("-|-".join("-" * w for w in widths))
    lines.extend(" | ".join(str(r[c]).ljust(w) for c, w in zip(columns, widths, strict=True)) for r in rows)
    return "\n".join(lines)


if __name__ == "__main__":
    warnings.simplefilter("ignore")  # Dawid-Skene convergence notes are irrelevant to a single-class table
    print(format_table(run(DATASETS)))
    if "--sweep" in sys.argv[1:]:
        print()
        print(format_table(sweep(DATASETS)))
