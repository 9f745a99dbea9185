"""Majority vote: the baseline every other method is measured against, and Dawid-Skene's starting point."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from truthflow.consolidation.coding import IntArray

FloatArray = NDArray[np.float64]


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


def majority_vote(items: IntArray, labels: IntArray, *, n_items: int, n_classes: int) -> tuple[IntArray, FloatArray]:
    """Hard majority vote with a deterministic tie-break.

    Returns ``(labels, confidence)``, each of shape ``(n_items,)``; confidence is the winner's vote share.
    Ties go to the class with the most votes over the whole data set (the better prior guess), and
    between classes equally frequent overall, to the lower class code. Items without votes get the overall
    most frequent class with confidence 0.
    """
    counts = vote_counts(items, labels, n_items=n_items, n_classes=n_classes)
    overall = counts.sum(axis=0)
    # A distinct preference weight per class: more frequent overall first, lower code second.
    preference_order = np.lexsort((np.arange(n_classes), -overall))
    preference = np.empty(n_classes)
    preference[preference_order] = np.arange(n_classes, 0, -1)
    tied_best = counts == counts.max(axis=1, keepdims=True)
    winners = np.argmax(tied_best * preference, axis=1).astype(np.int64)
    shares = vote_fractions(counts)
    confidence = np.where(counts.sum(axis=1) > 0, shares[np.arange(n_items), winners], 0.0)
    return winners, confidence
