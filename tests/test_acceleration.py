"""SQUAREM keeps what EM guarantees: the objective of the accepted states never falls, the stopping rule is the plain
method's, and it reaches the plain method's fixed point in fewer steps."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truthflow.consolidation.acceleration import accelerated_ascent
from truthflow.consolidation.dawid_skene import ConvergenceWarning, DawidSkene
from truthflow.consolidation.subtypes import SubtypeDawidSkene


def crowd(seed: int, n_items: int = 400, n_workers: int = 30, n_classes: int = 3, per_item: int = 4):
    """Answers of workers with random confusion matrices (diagonal-heavy), ``per_item`` workers per item."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_items)
    confusion = rng.dirichlet(np.ones(n_classes), size=(n_workers, n_classes)) + 2 * np.eye(n_classes)
    confusion /= confusion.sum(axis=2, keepdims=True)
    items, workers, labels = [], [], []
    for item in range(n_items):
        for worker in rng.choice(n_workers, per_item, replace=False):
            items.append(item)
            workers.append(worker)
            labels.append(rng.choice(n_classes, p=confusion[worker, truth[item]]))
    return np.array(items), np.array(workers), np.array(labels)


class _Point:
    def __init__(self, posteriors: np.ndarray, objective: float) -> None:
        self.posteriors = posteriors
        self.objective = objective


def test_a_slow_linear_fixed_point_is_reached_in_far_fewer_steps():
    # A map contracting slowly toward the target rows: plain iteration needs hundreds of steps for 1e-10.
    target = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])

    def step(current: np.ndarray) -> _Point:
        moved = target + 0.97 * (current - target)
        return _Point(moved, -float(np.square(moved - target).sum()))

    start = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    state, history, converged, steps = accelerated_ascent(step, start, threshold=1e-12, max_steps=500)
    assert converged and steps < 60
    assert np.all(np.diff(history) >= 0)
    assert np.allclose(state.posteriors, target, atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), prior_strength=st.sampled_from([1.0, 16.0]))
def test_accelerated_dawid_skene_reaches_the_plain_optimum(seed, prior_strength):
    items, workers, labels = crowd(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = DawidSkene(prior_strength=prior_strength, tol=1e-9, max_iter=2000, accelerate=False).fit(
            items, workers, labels
        )
        fast = DawidSkene(prior_strength=prior_strength, tol=1e-9, max_iter=2000).fit(items, workers, labels)
    assert np.all(np.diff(fast.history_) >= -1e-8 * np.abs(fast.history_[1:]).clip(min=1.0))
    # The same local optimum (EM from the same start), up to the tolerance: objective and labels agree.
    assert fast.log_likelihood_ == pytest.approx(plain.log_likelihood_, abs=1e-3 * items.size * 1e-3)
    assert np.mean(fast.labels_ == plain.labels_) > 0.99


def test_accelerated_subtypes_reach_at_least_the_plain_bound_in_fewer_steps():
    items, workers, labels = crowd(3, n_items=600, per_item=5)
    shape = {"n_items": 600, "n_workers": 30, "n_classes": 3}
    plain = SubtypeDawidSkene(tol=1e-7, max_iter=2000, accelerate=False).fit(items, workers, labels, **shape)
    fast = SubtypeDawidSkene(tol=1e-7, max_iter=2000).fit(items, workers, labels, **shape)
    assert fast.converged_ and plain.converged_
    assert fast.n_iter_ < plain.n_iter_
    assert np.all(np.diff(fast.history_) >= -1e-8 * np.abs(fast.history_[1:]).clip(min=1.0))
    assert fast.log_likelihood_ >= plain.log_likelihood_ - 1e-3
