"""Dawid-Skene with item subtypes (variational Bayes): the bound never falls, the fitted state is consistent, and
with one subtype it recovers known workers like plain Dawid-Skene."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truthflow.consolidation.dawid_skene import ConvergenceWarning
from truthflow.consolidation.known_labels import KnownLabels
from truthflow.consolidation.subtypes import SubtypeDawidSkene

answers_strategy = st.integers(min_value=1, max_value=4).flatmap(
    lambda n_classes: st.tuples(
        st.just(n_classes),
        st.lists(
            st.tuples(st.integers(0, 14), st.integers(0, 5), st.integers(0, n_classes - 1)),
            min_size=1,
            max_size=60,
            unique_by=lambda answer: (answer[0], answer[1]),
        ),
    )
)


@pytest.mark.parametrize("subtypes", [1, 3])
@settings(max_examples=40, deadline=None)
@given(data=answers_strategy, with_gold=st.booleans())
def test_variational_invariants(subtypes, data, with_gold):
    n_classes, answers = data
    items, workers, labels = (np.array(column, dtype=np.int64) for column in zip(*answers, strict=True))
    n_items, n_workers = int(items.max()) + 1, int(workers.max()) + 1
    known = KnownLabels(np.array([items[0]]), np.array([labels[0]])) if with_gold else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = SubtypeDawidSkene(subtypes=subtypes, max_iter=40).fit(
            items, workers, labels, n_items=n_items, n_workers=n_workers, n_classes=n_classes, known=known
        )
    steps = np.diff(fitted.history_)
    # Coordinate ascent on the evidence lower bound: it never decreases (floating-point slack only).
    assert np.all(steps >= -1e-8 * np.abs(fitted.history_[1:]).clip(min=1.0))
    assert np.allclose(fitted.posteriors_.sum(axis=1), 1.0)
    assert np.allclose(fitted.subtype_posteriors_.sum(axis=(1, 2)), 1.0)
    assert np.allclose(fitted.confusion_.sum(axis=2), 1.0)
    assert fitted.class_prior_.sum() == pytest.approx(1.0)
    assert fitted.worker_counts_.sum() == pytest.approx(len(answers))
    probability = fitted.answer_probability(items, workers, labels)
    assert np.all((probability > 0) & (probability <= 1))
    if with_gold:
        assert fitted.labels_[items[0]] == labels[0] and fitted.confidence_[items[0]] == pytest.approx(1.0)


def test_one_subtype_recovers_known_workers():
    rng = np.random.default_rng(7)
    n_items, n_classes = 1500, 3
    truth = rng.integers(0, n_classes, n_items)
    accuracies = np.array([0.95, 0.9, 0.85, 0.4, 0.35, 0.35, 0.3])
    items, workers, labels = [], [], []
    for worker, accuracy in enumerate(accuracies):
        right = rng.random(n_items) < accuracy
        items.extend(range(n_items))
        workers.extend([worker] * n_items)
        labels.extend(np.where(right, truth, (truth + rng.integers(1, n_classes, n_items)) % n_classes))
    fitted = SubtypeDawidSkene(subtypes=1).fit(
        np.array(items), np.array(workers), np.array(labels), n_items=n_items, n_workers=7, n_classes=n_classes
    )
    assert fitted.converged_
    assert np.allclose(fitted.worker_accuracy_, accuracies, atol=0.05)
    assert np.mean(fitted.labels_ == truth) > 0.97


def test_carried_counts_decide_between_disagreeing_workers():
    carried = np.array([[[10.0, 40.0], [40.0, 10.0]], [[50.0, 0.0], [0.0, 50.0]]])
    fitted = SubtypeDawidSkene().fit(
        np.array([0, 0]), np.array([0, 1]), np.array([0, 1]), n_items=1, n_workers=2, n_classes=2, prior_counts=carried
    )
    assert fitted.labels_.tolist() == [1]
    assert fitted.worker_counts_.sum() == pytest.approx(2.0)


def test_same_answers_give_the_same_fit():
    rng = np.random.default_rng(1)
    items, workers, labels = rng.integers(0, 50, 300), rng.integers(0, 8, 300), rng.integers(0, 3, 300)
    first, again = (
        SubtypeDawidSkene().fit(items, workers, labels, n_items=50, n_workers=8, n_classes=3) for _ in range(2)
    )
    assert np.array_equal(first.posteriors_, again.posteriors_)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"subtypes": 0}, "subtypes must be >= 1"),
        ({"diagonal_prior": 0.0}, "prior parameters must be > 0"),
        ({"tol": 0.0}, "tol must be > 0"),
    ],
)
def test_rejects_bad_settings(options, message):
    with pytest.raises(ValueError, match=message):
        SubtypeDawidSkene(**options)
