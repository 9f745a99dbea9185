r"""Consolidation for label sets too large for per-worker confusion matrices, in memory linear in the answers.

A full Dawid-Skene model keeps a K x K matrix per worker and a K-vector per item: with 2,000 distinct labels and
2,000 workers that is 8 billion cells, although the answers are 2,000 numbers. Here every item's posterior lives
only on the labels someone actually gave it (its *cells*, one per distinct answered (item, label) pair, so at most
one per answer), which is what any sensible consolidation would choose from anyway, and worker skill is one-coin
(:class:`~truthflow.consolidation.dawid_skene.OneCoinDawidSkene`): worker :math:`w` is right with probability
:math:`a_w` and otherwise picks one of the other :math:`K - 1` labels uniformly. For item :math:`i` and an answered
label :math:`k`,

.. math:: \log q_{ik} = \log p_k + \sum_{j \in i} \log\frac{1 - a_{w_j}}{K - 1}
          + \sum_{j \in i,\ l_j = k} \Big(\log a_{w_j} - \log\frac{1 - a_{w_j}}{K - 1}\Big) + \text{const},

normalised over the item's cells. EM on this restricted model (MAP, Beta prior on :math:`a_w` centred on the crowd's
accuracy with ``prior_strength`` pseudo-answers, Dirichlet(1 + ``class_prior_strength``) on :math:`p`) never
decreases its objective. Every array is indexed by answers, cells, items, workers or labels: none is a product.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from truthflow.consolidation.coding import IntArray
from truthflow.consolidation.dawid_skene import PROBABILITY_FLOOR, ConvergenceWarning
from truthflow.consolidation.known_labels import KnownLabels
from truthflow.consolidation.majority_vote import TIE_SEED, FloatArray, Vote, tie_preference


@dataclass(frozen=True)
class AnsweredCells:
    """The distinct (item, label) pairs of the answers (and of the known labels), sorted by item then label.

    ``item[c]``, ``label[c]`` describe cell ``c``; the cells of item ``i`` are ``start[i]:start[i + 1]``;
    ``of_answer[j]`` is answer ``j``'s cell.
    """

    item: IntArray
    label: IntArray
    start: IntArray
    of_answer: IntArray

    @property
    def size(self) -> int:
        return int(self.item.size)

    def matrix(self, values: FloatArray, n_classes: int) -> sp.csr_matrix:
        """Values per cell as an (n_items, n_classes) sparse matrix."""
        return sp.csr_matrix((values, self.label, self.start), shape=(self.start.size - 1, n_classes))


def answered_cells(
    items: IntArray, labels: IntArray, *, n_items: int, n_classes: int, known: KnownLabels
) -> AnsweredCells:
    keys = np.concatenate([items * n_classes + labels, known.items * n_classes + known.labels])
    distinct, inverse = np.unique(keys, return_inverse=True)
    cell_item = distinct // n_classes
    start = np.searchsorted(cell_item, np.arange(n_items + 1))
    return AnsweredCells(cell_item, distinct % n_classes, start, inverse.reshape(-1)[: items.size])


def _group_max(values: FloatArray, cells: AnsweredCells) -> FloatArray:
    """Per item, the largest value over its cells (items without cells get -inf)."""
    result = np.full(cells.start.size - 1, -np.inf)
    has = cells.start[1:] > cells.start[:-1]
    if values.size:
        result[has] = np.maximum.reduceat(values, cells.start[:-1][has])
    return result


def _group_sum(values: FloatArray, cells: AnsweredCells) -> FloatArray:
    total: FloatArray = np.bincount(cells.item, weights=values, minlength=cells.start.size - 1).astype(np.float64)
    return total


def sparse_majority_vote(
    items: IntArray,
    labels: IntArray,
    *,
    n_items: int,
    n_classes: int,
    known: KnownLabels,
    seed: int = TIE_SEED,
) -> tuple[Vote, AnsweredCells, FloatArray]:
    """Majority vote over the answered cells, with the tie-break of
    :func:`~truthflow.consolidation.majority_vote.majority_vote`. Also returns the cells and each cell's vote share."""
    cells = answered_cells(items, labels, n_items=n_items, n_classes=n_classes, known=known)
    votes = np.bincount(cells.of_answer, minlength=cells.size).astype(np.float64)
    top = _group_max(votes, cells)
    best = (votes == top[cells.item]) & (votes > 0)
    n_best = np.bincount(cells.item, weights=best, minlength=n_items).astype(np.int64)
    decided_cells = best & (n_best[cells.item] == 1)
    prior = tie_preference(cells.label[decided_cells], n_classes)
    _, prior_rank = np.unique(prior, return_inverse=True)
    draw = np.random.default_rng(seed).random(cells.size)
    score = np.where(best, prior_rank[cells.label] + 0.5 * draw, -1.0)
    order = np.lexsort((score, cells.item))
    has = cells.start[1:] > cells.start[:-1]
    winners = np.zeros(n_items, dtype=np.int64)
    winner_cell = order[cells.start[1:][has] - 1]
    winners[has] = cells.label[winner_cell]
    totals = _group_sum(votes, cells)
    shares = np.divide(votes, totals[cells.item], out=np.zeros_like(votes), where=totals[cells.item] > 0)
    confidence = np.zeros(n_items)
    confidence[has] = shares[winner_cell]
    if known.size:
        winners[known.items] = known.labels
        confidence[known.items] = 1.0
    return Vote(winners, confidence, int(np.count_nonzero(n_best > 1))), cells, shares


class SparseOneCoin:
    """One-coin Dawid-Skene over answered cells (module docstring). Fitted attributes: ``cell_posteriors_`` (cells,),
    ``cells_``, ``labels_``, ``confidence_`` (I,), ``accuracy_`` (W,), ``class_prior_`` (K,), ``history_``."""

    def __init__(
        self, *, prior_strength: float = 2.0, class_prior_strength: float = 1.0, tol: float = 1e-6, max_iter: int = 300
    ) -> None:
        self.prior_strength = prior_strength
        self.class_prior_strength = class_prior_strength
        self.tol = tol
        self.max_iter = max_iter

    def fit(
        self,
        items: IntArray,
        workers: IntArray,
        labels: IntArray,
        *,
        n_items: int,
        n_workers: int,
        n_classes: int,
        known: KnownLabels,
        prior_counts: FloatArray | None = None,
    ) -> SparseOneCoin:
        """``prior_counts`` (W, K, K) carried from earlier batches add their right and wrong answers to each worker's
        accuracy prior."""
        vote, cells, shares = sparse_majority_vote(items, labels, n_items=n_items, n_classes=n_classes, known=known)
        allowed = np.ones(cells.size, dtype=bool)
        if known.size:
            known_label = np.full(n_items, -1, dtype=np.int64)
            known_label[known.items] = known.labels
            fixed = known_label[cells.item] >= 0
            allowed = ~fixed | (cells.label == known_label[cells.item])
            shares = np.where(allowed, shares, 0.0)
            shares[fixed & allowed] = 1.0
        posterior = shares
        answered = np.bincount(workers, minlength=n_workers).astype(np.float64)
        crowd_accuracy = float(np.clip(posterior[cells.of_answer].mean() if items.size else 0.5, 0.01, 0.99))
        right_prior = np.full(n_workers, self.prior_strength * crowd_accuracy)
        prior_total = np.full(n_workers, self.prior_strength)
        if prior_counts is not None:
            right_prior = right_prior + np.einsum("wkk->w", prior_counts)
            prior_total = prior_total + prior_counts.sum(axis=(1, 2))
        wrong_prior = prior_total - right_prior
        has = cells.start[1:] > cells.start[:-1]
        history: list[float] = []
        converged = False
        while len(history) < self.max_iter and not converged:
            right = np.bincount(workers, weights=posterior[cells.of_answer], minlength=n_workers)
            accuracy = np.clip(
                (right + right_prior) / (answered + prior_total), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR
            )
            mass = np.bincount(cells.label, weights=posterior, minlength=n_classes) + self.class_prior_strength
            class_prior = np.maximum(mass / mass.sum(), PROBABILITY_FLOOR)
            log_right = np.log(accuracy)
            log_wrong = np.log((1.0 - accuracy) / (n_classes - 1)) if n_classes > 1 else np.zeros(n_workers)
            base = np.bincount(items, weights=log_wrong[workers], minlength=n_items)
            bonus = np.bincount(cells.of_answer, weights=(log_right - log_wrong)[workers], minlength=cells.size)
            joint = np.where(allowed, np.log(class_prior)[cells.label] + base[cells.item] + bonus, -np.inf)
            peak = _group_max(joint, cells)
            weights = np.exp(joint - peak[cells.item])
            totals = _group_sum(weights, cells)
            posterior = weights / totals[cells.item]
            objective = (
                float(np.sum(peak[has] + np.log(totals[has])))
                + float(np.sum(right_prior * log_right + wrong_prior * np.log1p(-accuracy)))
                + self.class_prior_strength * float(np.sum(np.log(class_prior)))
            )
            converged = bool(history) and objective - history[-1] < self.tol * max(items.size, 1)
            history.append(objective)
        if not converged:
            warnings.warn(
                f"SparseOneCoin did not converge in {self.max_iter} iterations; raise max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        order = np.lexsort((posterior, cells.item))
        winner_cell = order[cells.start[1:][has] - 1]
        self.cells_ = cells
        self.cell_posteriors_ = posterior
        self.labels_ = vote.labels.copy()
        self.labels_[has] = cells.label[winner_cell]
        self.confidence_ = np.zeros(n_items)
        self.confidence_[has] = posterior[winner_cell]
        self.accuracy_ = accuracy
        self.class_prior_ = class_prior
        self.history_ = history
        self.n_iter_ = len(history)
        self.converged_ = converged
        return self
