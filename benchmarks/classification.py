"""Accuracy and speed of our label consolidation on the shared crowd data sets, what gold questions buy, and a
synthetic 1 M-answer fit.

- Accuracy: every method of :func:`truthflow.consolidation.labels.consolidate_labels` on every data set, scored on
  its gold items; ``auto`` also names the model it chose.
- Gold: 5 % of each data set's gold items (a seeded draw, at least one) are given to ``auto`` as gold questions;
  accuracy is scored on the *other* gold items, with and without the gold given.
- Speed: the default method's fit (names in, labels out: coding, de-duplication, model choice and final fit), best
  of repeated runs; and the whole ``truthflow consolidate`` process (start, imports, read CSV, fit, write CSV), best of
  a few runs, next to crowd-kit's Dawid-Skene doing the same in its own process (``crowdkit_anchor.py --consolidate``).
- Synthetic: 1,000,000 answers, 10 classes, 2,000 workers, the default method on coded answers.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from truthflow.answer_files import read_label_answers
from truthflow.consolidation.coding import EncodedAnswers
from truthflow.consolidation.labels import DEFAULT_METHOD, METHODS, consolidate_encoded, consolidate_labels
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
GOLD_SHARE = 0.05
GOLD_SEED = 0
PROCESS_RUNS = 3
REPO = Path(__file__).resolve().parents[1]


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


def accuracy(predicted: dict[str, str], truth: dict[str, str], items: Sequence[str] | None = None) -> float:
    scored = [item for item in (truth if items is None else items) if item in predicted]
    return sum(predicted[item] == truth[item] for item in scored) / len(scored)


def accuracy_rows(root: Path) -> list[dict[str, object]]:
    """One row per data set: accuracy on gold items of each method, the model ``auto`` chose, default fit seconds."""
    rows: list[dict[str, object]] = []
    for name in DATASETS:
        data = load(root, name)
        row: dict[str, object] = {"dataset": name, "answers": len(data.items)}
        for method in METHODS:
            result = consolidate_labels(data.items, data.workers, data.labels, method=method)
            predicted = dict(zip(result.item_names, result.labels, strict=True))
            row[method] = accuracy(predicted, data.truth)
            if method == DEFAULT_METHOD:
                row["model"] = result.model
            if method == "mv":
                row["ties"] = result.ties
            if name == "product":
                row[f"{method}_f1_positive"] = positive_f1(predicted, data.truth)
        if name in TIMED_DATASETS:
            repeats = 3 if len(data.items) > 50_000 else 5
            row["seconds"] = best_seconds(lambda d=data: consolidate_labels(d.items, d.workers, d.labels), repeats)
        rows.append(row)
    return rows


def gold_rows(root: Path, share: float = GOLD_SHARE, seed: int = GOLD_SEED) -> list[dict[str, object]]:
    """Per data set: accuracy of the default method on the gold items *not* given, without and with ``share`` of
    the gold items given as gold questions."""
    rows: list[dict[str, object]] = []
    for name in DATASETS:
        data = load(root, name)
        answered = set(data.items)
        candidates = sorted(item for item in data.truth if item in answered)
        rng = np.random.default_rng(seed)
        n_given = max(1, round(share * len(candidates)))
        given = {candidates[i]: data.truth[candidates[i]] for i in rng.choice(len(candidates), n_given, replace=False)}
        scored = [item for item in candidates if item not in given]
        without = consolidate_labels(data.items, data.workers, data.labels)
        with_gold = consolidate_labels(data.items, data.workers, data.labels, gold=given)
        rows.append(
            {
                "dataset": name,
                "gold given": n_given,
                "scored": len(scored),
                "without": accuracy(dict(zip(without.item_names, without.labels, strict=True)), data.truth, scored),
                "with": accuracy(dict(zip(with_gold.item_names, with_gold.labels, strict=True)), data.truth, scored),
                "model": with_gold.model,
            }
        )
    return rows


def process_seconds(command: Sequence[str], runs: int = PROCESS_RUNS) -> float:
    """Best wall time of running ``command`` as a fresh process (start-up and imports included)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def whole_process_rows(root: Path, anchor_python: Path | None) -> list[dict[str, object]]:
    """``truthflow consolidate`` against crowd-kit's Dawid-Skene in its own process, CSV in and CSV out."""
    truthflow = REPO / ".venv" / "bin" / "truthflow"
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as folder:
        for name in TIMED_DATASETS:
            answers = root / name / "answers.csv"
            ours = process_seconds([str(truthflow), "consolidate", "--answers", str(answers), "--out", f"{folder}/o"])
            theirs = float("nan")
            if anchor_python is not None:
                anchor = REPO / "benchmarks" / "crowdkit_anchor.py"
                command = [str(anchor_python), str(anchor), "--consolidate", str(answers), f"{folder}/c"]
                theirs = process_seconds(command)
            rows.append({"dataset": name, "ours": ours, "crowd-kit": theirs})
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
    """The default method on the coded answers (a worker answers an item at most once here, as after coding)."""
    n_items, n_workers = int(data["items"].max()) + 1, int(data["workers"].max()) + 1
    pair = data["items"] * n_workers + data["workers"]
    _, first = np.unique(pair, return_index=True)
    keep = np.sort(first)
    answers = EncodedAnswers(
        data["items"][keep],
        data["workers"][keep],
        data["labels"][keep],
        [str(i) for i in range(n_items)],
        [str(w) for w in range(n_workers)],
        [str(k) for k in range(10)],
    )
    start = time.perf_counter()
    result = consolidate_encoded(answers)
    seconds = time.perf_counter() - start
    predicted = np.array([int(label) for label in result.labels])
    return {
        "answers": int(keep.size),
        "seconds": seconds,
        "model": result.model,
        "accuracy": float(np.mean(predicted == data["truth"])),
    }
