"""Per-worker statistics of a label consolidation: skill, expected confusion counts, and scores on gold.

Kept whole (dense arrays) when the label set is small, or built on demand from the answers when it is too large for
n_workers x K x K cells (:mod:`~truthflow.consolidation.many_labels`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from truthflow.consolidation.coding import EncodedAnswers, IntArray
from truthflow.consolidation.known_labels import KnownLabels
from truthflow.consolidation.majority_vote import FloatArray
from truthflow.consolidation.many_labels import AnsweredCells


@dataclass(frozen=True)
class WorkerSkill:
    """Per-worker confusion, (W, K, K) rows = true class: stored whole, or as one-coin accuracies (W,) when K is too
    large to store whole (:meth:`dense` then builds the matrices, W * K * K cells)."""

    n_classes: int
    matrices: FloatArray | None = None
    one_coin: FloatArray | None = None

    def dense(self) -> FloatArray:
        if self.matrices is not None:
            return self.matrices
        accuracy = np.zeros(0) if self.one_coin is None else self.one_coin
        k = self.n_classes
        off = (1.0 - accuracy) / max(k - 1, 1)
        matrices = np.repeat(off[:, np.newaxis, np.newaxis], k, axis=1).repeat(k, axis=2)
        matrices[:, np.arange(k), np.arange(k)] = accuracy[:, np.newaxis]
        return matrices


@dataclass(frozen=True)
class WorkerCounts:
    """Expected confusion counts per worker, (W, K, K) rows = consolidated class, columns = answered class: the
    statistics carried to the next batch. Kept whole, or built on demand as cells (:meth:`cells`)."""

    shape: tuple[int, int, int]
    whole: FloatArray | None = None
    build_cells: Callable[[], tuple[IntArray, IntArray, IntArray, FloatArray]] | None = None

    def cells(self) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
        """Non-zero counts as parallel arrays ``(worker, true class, answered class, count)``."""
        if self.whole is not None:
            worker, true, answered = np.nonzero(self.whole)
            return worker, true, answered, self.whole[worker, true, answered]
        if self.build_cells is None:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty, np.zeros(0)
        return self.build_cells()

    def dense(self) -> FloatArray:
        if self.whole is not None:
            return self.whole
        counts = np.zeros(self.shape)
        worker, true, answered, values = self.cells()
        np.add.at(counts, (worker, true, answered), values)
        return counts


@dataclass(frozen=True)
class GoldScores:
    """Gold questions: how many were given and answered, and per worker (``worker_names`` order) how many gold items
    they answered and how many of those answers were right."""

    n_given: int = 0
    n_answered: int = 0
    answers: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    correct: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def accuracy(self) -> FloatArray:
        """Accuracy on gold per worker; NaN for a worker who answered no gold item."""
        rate: FloatArray = np.divide(
            self.correct, self.answers, out=np.full(self.answers.shape, np.nan), where=self.answers > 0
        )
        return rate


def hard_counts(answers: EncodedAnswers, consensus: IntArray) -> WorkerCounts:
    """Counts of each worker's answers against the consensus label, built on demand."""
    shape = (answers.n_workers, answers.n_classes, answers.n_classes)

    def build() -> tuple[IntArray, IntArray, IntArray, FloatArray]:
        keys = (answers.workers * shape[1] + consensus[answers.items]) * shape[2] + answers.labels
        return _summed(keys, np.ones(answers.n_answers), shape)

    return WorkerCounts(shape, build_cells=build)


def soft_counts(answers: EncodedAnswers, cells: AnsweredCells, posterior: FloatArray) -> WorkerCounts:
    """Expected counts built on demand: each answer is spread over its item's cells by their posterior. That is one
    entry per (answer, cell of its item), so it is built only when asked for."""
    shape = (answers.n_workers, answers.n_classes, answers.n_classes)

    def build() -> tuple[IntArray, IntArray, IntArray, FloatArray]:
        first = cells.start[answers.items]
        lengths = cells.start[answers.items + 1] - first
        answer = np.repeat(np.arange(answers.n_answers), lengths)
        offset = np.arange(answer.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        cell = first[answer] + offset
        keys = (answers.workers[answer] * shape[1] + cells.label[cell]) * shape[2] + answers.labels[answer]
        return _summed(keys, posterior[cell], shape)

    return WorkerCounts(shape, build_cells=build)


def _summed(
    keys: IntArray, weights: FloatArray, shape: tuple[int, int, int]
) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
    """Sum weights per flat (worker, true, answered) key; returns the non-zero cells."""
    distinct, inverse = np.unique(keys, return_inverse=True)
    values = np.bincount(inverse.reshape(-1), weights=weights, minlength=distinct.size).astype(np.float64)
    keep = values > 0
    distinct, values = distinct[keep], values[keep]
    return distinct // (shape[1] * shape[2]), (distinct // shape[2]) % shape[1], distinct % shape[2], values


def agreement(answers: EncodedAnswers, consensus: IntArray) -> FloatArray:
    """Each worker's share of answers equal to the consensus (0 for a worker without answers)."""
    right = answers.labels == consensus[answers.items]
    agree = np.bincount(answers.workers, weights=right, minlength=answers.n_workers)
    total = np.bincount(answers.workers, minlength=answers.n_workers)
    rate: FloatArray = np.divide(agree, total, out=np.zeros(answers.n_workers), where=total > 0)
    return rate


def empirical_skill(answers: EncodedAnswers, consensus: IntArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Worker confusion against the majority-vote consensus, for reporting skill when the method is MV."""
    n_workers, n_classes = answers.n_workers, answers.n_classes
    flat = np.bincount(
        (answers.workers * n_classes + consensus[answers.items]) * n_classes + answers.labels,
        minlength=n_workers * n_classes * n_classes,
    )
    counts = flat.reshape(n_workers, n_classes, n_classes).astype(np.float64)
    totals = counts.sum(axis=2, keepdims=True)
    confusion = np.divide(counts, totals, out=np.full_like(counts, 1.0 / n_classes), where=totals > 0)
    return confusion, agreement(answers, consensus), counts


def gold_scores(answers: EncodedAnswers, known: KnownLabels, n_given: int) -> GoldScores:
    known_label = np.full(answers.n_items, -1, dtype=np.int64)
    known_label[known.items] = known.labels
    on_gold = known_label[answers.items] >= 0
    workers = answers.workers[on_gold]
    right = answers.labels[on_gold] == known_label[answers.items[on_gold]]
    return GoldScores(
        n_given=n_given,
        n_answered=known.size,
        answers=np.bincount(workers, minlength=answers.n_workers).astype(np.int64),
        correct=np.bincount(workers[right], minlength=answers.n_workers).astype(np.int64),
    )
