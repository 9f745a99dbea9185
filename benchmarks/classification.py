"""Accuracy and speed of our label consolidation on the shared crowd data sets, and a synthetic 1 M-answer fit."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from truthflow.answer_files import read_label_answers
from truthflow.consolidation.dawid_skene import DawidSkene
from truthflow.consolidation.labels import METHODS, consolidate_labels
from truthflow.tables import read_rows

DATASETS = (
    "weather",
    "wsd",
    "temp",
    "relevance",
    "fact_eval",
    "rte",
    "dog",
    "sentiment",
    "zencrowd_all",
    "product",
    "adult",
)
# Data sets whose fit time is compared with crowd-kit's (the issue names these two).
TIMED_DATASETS = ("relevance", "product")


@dataclass(frozen=True)
class Answers:
    items: list[str]
    workers: list[str]
    labels: list[str]
    truth: dict[str, str]


def load(root: Path, name: str) -> Answers:
    answers = read_label_answers(root / name / "answers.csv")
    truth = {row["item"]: row["label"] for _, row in read_rows(root / name / "truth.csv", ("item", "label"))}
    return Answers(answers.items, answers.workers, answers.labels, truth)


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def positive_f1(predicted: dict[str, str], truth: dict[str, str], positive: str = "1") -> float:
    pairs = [(predicted[item], gold) for item, gold in truth.items() if item in predicted]
    tp = sum(p == positive and g == positive for p, g in pairs)
    fp = sum(p == positive and g != positive for p, g in pairs)
    fn = sum(p != positive and g == positive for p, g in pairs)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def accuracy_rows(root: Path) -> list[dict[str, object]]:
    """One row per data set: accuracy on gold items of each of our methods, and DS fit seconds."""
    rows: list[dict[str, object]] = []
    for name in DATASETS:
        data = load(root, name)
        row: dict[str, object] = {"dataset": name, "answers": len(data.items)}
        for method in METHODS:
            result = consolidate_labels(data.items, data.workers, data.labels, method=method)
            predicted = dict(zip(result.item_names, result.labels, strict=True))
            gold = [(predicted[item], label) for item, label in data.truth.items() if item in predicted]
            row[method] = sum(p == g for p, g in gold) / len(gold)
            if name == "product":
                row[f"{method}_f1_positive"] = positive_f1(predicted, data.truth)
        repeats = 3 if len(data.items) > 50_000 else 5
        row["ds_seconds"] = best_seconds(lambda d=data: consolidate_labels(d.items, d.workers, d.labels), repeats)
        rows.append(row)
    return rows


def synthetic_answers(
    n_answers: int = 1_000_000, n_classes: int = 10, n_workers: int = 2_000, answers_per_item: int = 10, seed: int = 0
) -> dict[str, np.ndarray]:
    """Integer-coded answers from known workers: accuracy 0.3-0.95, errors spread by a random confusion."""
    rng = np.random.default_rng(seed)
    n_items = n_answers // answers_per_item
    truth = rng.integers(0, n_classes, n_items)
    items = np.repeat(np.arange(n_items), answers_per_item)
    workers = rng.integers(0, n_workers, n_answers)
    accuracy = rng.uniform(0.3, 0.95, n_workers)
    right = rng.random(n_answers) < accuracy[workers]
    wrong = (truth[items] + rng.integers(1, n_classes, n_answers)) % n_classes
    labels = np.where(right, truth[items], wrong)
    return {"items": items, "workers": workers, "labels": labels, "truth": truth}


def synthetic_row(data: dict[str, np.ndarray]) -> dict[str, object]:
    model = DawidSkene()
    start = time.perf_counter()
    model.fit(data["items"], data["workers"], data["labels"], n_classes=10)
    seconds = time.perf_counter() - start
    return {
        "answers": int(data["items"].size),
        "seconds": seconds,
        "iterations": model.n_iter_,
        "converged": model.converged_,
        "accuracy": float(np.mean(model.labels_ == data["truth"])),
    }
