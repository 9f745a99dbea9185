"""Majority vote: the baseline every other method is measured against, and Dawid-Skene's starting point."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from truthflow.consolidation.coding import IntArray

FloatArray = NDArray[np.float64]

#: Seed of the draw that breaks ties the class prior cannot: fixed, so the same answers always give the same labels.
TIE_SEED = 0


class Vote(NamedTuple):
    """Hard majority vote: ``labels`` and ``confidence`` (the winner's vote share) per item, and how many items
    had a tie for the most votes (``ties``)."""

    labels: IntArray
    confidence: FloatArray
    ties: int


def vote_counts(items: IntArray, labels: IntArray, *, n_items: int, n_classes: int) -> FloatArray:
    """Votes per item and class, shape ``(n_items, n_classes)``."""
    flat = np.bincount(items * n_classes + labels, minlength=n_items * n_classes)
    return flat.reshape(n_items, n_classes).astype(np.float64)


def vote_fractions(counts: FloatArray) -> FloatArray:
    """Soft majority vote: each item's vote shares; an item without votes gets a uniform row."""
    totals = counts.sum(axis=1, keepdims=True)
    uniform = np.full_like(counts, 1.0 / counts.shape[1])
    shares: FloatArray = np.divide(counts, totals, out=uniform, where=totals > 0)
    return shares


def tie_preference(decided_winners: IntArray, n_classes: int) -> FloatArray:
    """A preference score per class for breaking ties: the class prior, estimated as each class's share of the items
    the vote decides (one winner). Weighting items, not answers, keeps a prolific worker who always gives the same
    answer from tilting every tie toward that answer. Equal scores are left for the seeded draw."""
    prior: FloatArray = np.bincount(decided_winners, minlength=n_classes).astype(np.float64)
    return prior


def majority_vote(items: IntArray, labels: IntArray, *, n_items: int, n_classes: int, seed: int = TIE_SEED) -> Vote:
    """Hard majority vote, shape ``(n_items,)`` each.

    A tie for the most votes goes to the tied class with the highest class prior (:func:`tie_preference`), and
    between classes equally likely a priori, to a seeded random draw (deterministic for the same input). Items
    without votes get the class of highest prior with confidence 0.
    """
    counts = vote_counts(items, labels, n_items=n_items, n_classes=n_classes)
    top = counts.max(axis=1, keepdims=True) if n_classes else np.zeros((n_items, 1))
    tied_best = (counts == top) & (top > 0)
    n_best = tied_best.sum(axis=1)
    decided = n_best == 1
    prior = tie_preference(np.argmax(tied_best[decided], axis=1).astype(np.int64), n_classes)
    # Rank classes by prior (equal priors share a rank), then add a draw below one rank step.
    _, prior_rank = np.unique(prior, return_inverse=True)
    draw = np.random.default_rng(seed).random((n_items, n_classes))
    preference = prior_rank.reshape(1, -1) + 0.5 * draw
    unanswered = n_best == 0
    tied_best[unanswered] = True  # no votes: the prior decides (then the draw)
    winners = np.argmax(np.where(tied_best, preference, -1.0), axis=1).astype(np.int64)
    shares = vote_fractions(counts)
    confidence = np.where(unanswered, 0.0, shares[np.arange(n_items), winners])
    return Vote(winners, confidence, int(np.count_nonzero(n_best > 1)))
