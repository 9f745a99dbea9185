"""Simulated crowds shaped like data sets we cannot ship: a robustness check for the model choice, not a target.

Each scenario fixes the shape (classes, workers, answers per item) of a kind of real crowd the consolidation must
handle; the workers are a mix of experts (accuracy 0.75-0.95), ordinary workers (0.45-0.75), biased workers (errors
pushed toward one end of the scale) and spammers (answering from their own fixed distribution, or nearly always the
same class). Errors fall on neighbouring classes for ordinal scales and anywhere for nominal ones; worker activity is
heavy-tailed (Pareto), and a share of items is hard: every worker is pulled toward a neighbouring class on them, so
errors are correlated as on real data. Nothing here is tuned to make one method win: the mix is fixed a priori and
the seeds are 0 and 1.

The answers are written as ``<root>/<scenario>-<seed>/answers.csv`` and ``truth.csv`` (the shared data sets'
layout), so crowd-kit scores them through the same anchor script.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from truthflow.consolidation.labels import consolidate_labels


@dataclass(frozen=True)
class Scenario:
    name: str
    n_classes: int
    n_items: int
    n_workers: int
    answers_per_item: float
    ordinal: bool = True
    mix: tuple[float, float, float, float] = (0.25, 0.35, 0.2, 0.2)  # experts, ordinary, biased, spammers
    hard_share: float = 0.2


SCENARIOS = (
    Scenario("5 classes, 177 workers, 6/item", 5, 2665, 177, 6.0),
    Scenario("5 classes, 177 workers, 6/item, 40% spam", 5, 2665, 177, 6.0, mix=(0.15, 0.25, 0.2, 0.4)),
    Scenario("10 classes, 44 workers, 4/item", 10, 700, 44, 4.0, ordinal=False, mix=(0.3, 0.5, 0.1, 0.1)),
    Scenario("8 classes, 59 workers, 2.5/item", 8, 1000, 59, 2.5, ordinal=False, mix=(0.3, 0.5, 0.1, 0.1)),
    Scenario("2 classes, 203 workers, 5.5/item", 2, 5000, 203, 5.5, mix=(0.3, 0.5, 0.1, 0.1)),
    Scenario("4 classes, 27 workers, 6/item", 4, 584, 27, 6.0, mix=(0.3, 0.4, 0.2, 0.1)),
    Scenario("2 classes, 762 workers, 3/item", 2, 10000, 762, 3.0, mix=(0.3, 0.4, 0.15, 0.15)),
)
SEEDS = (0, 1)


def _confusion(n_classes: int, accuracy: float, spread: float, bias: float, ordinal: bool) -> np.ndarray:
    """Row k: ``accuracy`` on k; the rest by distance (geometric ratio ``spread``) or evenly, tilted by ``bias``."""
    matrix = np.zeros((n_classes, n_classes))
    classes = np.arange(n_classes)
    for k in range(n_classes):
        weight = spread ** np.abs(classes - k) if ordinal else np.ones(n_classes)
        weight = weight * np.exp(bias * (classes - k))
        weight[k] = 0.0
        matrix[k] = (1.0 - accuracy) * weight / weight.sum()
        matrix[k, k] = accuracy
    return matrix


def simulate(scenario: Scenario, seed: int) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """Answers ``(item, worker, label)`` and the truth of every item."""
    rng = np.random.default_rng(seed)
    k = scenario.n_classes
    prior = rng.dirichlet(np.full(k, 3.0))
    truth = rng.choice(k, scenario.n_items, p=prior)
    kinds = rng.choice(4, scenario.n_workers, p=np.array(scenario.mix) / sum(scenario.mix))
    confusion = np.zeros((scenario.n_workers, k, k))
    for worker, kind in enumerate(kinds):
        spread = rng.uniform(0.2, 0.6)
        if kind == 0:
            confusion[worker] = _confusion(k, rng.uniform(0.75, 0.95), spread, 0.0, scenario.ordinal)
        elif kind == 1:
            confusion[worker] = _confusion(k, rng.uniform(0.45, 0.75), spread, 0.0, scenario.ordinal)
        elif kind == 2:
            tilt = float(rng.choice([-1.5, 1.5]))
            confusion[worker] = _confusion(k, rng.uniform(0.3, 0.6), spread, tilt, scenario.ordinal)
        elif rng.random() < 0.5:
            confusion[worker] = np.tile(rng.dirichlet(np.ones(k)), (k, 1))
        else:
            row = np.full(k, 0.05 / (k - 1))
            row[rng.integers(k)] = 0.95
            confusion[worker] = np.tile(row, (k, 1))
    activity = rng.pareto(1.2, scenario.n_workers) + 1.0
    activity /= activity.sum()
    hard = rng.random(scenario.n_items) < scenario.hard_share
    answers: list[tuple[str, str, str]] = []
    for item in range(scenario.n_items):
        n = min(max(1, rng.poisson(scenario.answers_per_item)), scenario.n_workers)
        true_class = truth[item]
        neighbour = (true_class + 1) % k if not scenario.ordinal or true_class < k - 1 else true_class - 1
        for worker in rng.choice(scenario.n_workers, n, replace=False, p=activity):
            row = confusion[worker, true_class].copy()
            if hard[item]:
                moved = 0.35 * row[true_class]
                row[true_class] -= moved
                row[neighbour] += moved
            answers.append((f"i{item}", f"w{worker}", str(rng.choice(k, p=row))))
    return answers, {f"i{item}": str(label) for item, label in enumerate(truth)}


def write_datasets(root: Path) -> list[str]:
    """Write every scenario and seed under ``root``; returns the folder names."""
    names = []
    for number, scenario in enumerate(SCENARIOS):
        for seed in SEEDS:
            name = f"sim{number}-{seed}"
            answers, truth = simulate(scenario, seed)
            folder = root / name
            folder.mkdir(parents=True, exist_ok=True)
            with (folder / "answers.csv").open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["item", "worker", "label"])
                writer.writerows(answers)
            with (folder / "truth.csv").open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["item", "label"])
                writer.writerows(truth.items())
            names.append(name)
    return names


def accuracy_rows(root: Path, names: list[str]) -> list[dict[str, object]]:
    """Our default method and majority vote on each written data set."""
    rows = []
    for name in names:
        with (root / name / "answers.csv").open(newline="") as handle:
            answers = [(row["item"], row["worker"], row["label"]) for row in csv.DictReader(handle)]
        with (root / name / "truth.csv").open(newline="") as handle:
            truth = {row["item"]: row["label"] for row in csv.DictReader(handle)}
        items, workers, labels = (list(column) for column in zip(*answers, strict=True))
        row: dict[str, object] = {"dataset": name, "answers": len(answers)}
        for method in ("auto", "mv"):
            result = consolidate_labels(items, workers, labels, method=method)
            predicted = dict(zip(result.item_names, result.labels, strict=True))
            row[method] = sum(predicted[item] == label for item, label in truth.items() if item in predicted) / sum(
                item in predicted for item in truth
            )
            if method == "auto":
                row["model"] = result.model
        rows.append(row)
    return rows


def scenario_of(name: str) -> Scenario:
    return SCENARIOS[int(name[3:].split("-")[0])]
