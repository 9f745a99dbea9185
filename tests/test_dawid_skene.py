"""Dawid-Skene family: the worked example, EM invariants, and the vectorised code against a naive loop."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truthflow.consolidation.dawid_skene import (
    ConvergenceWarning,
    DawidSkene,
    OneCoinDawidSkene,
    posteriors_given_skill,
)
from truthflow.consolidation.known_labels import KnownLabels
from truthflow.consolidation.majority_vote import majority_vote


def one_coin(accuracy: float) -> np.ndarray:
    return np.array([[accuracy, 1 - accuracy], [1 - accuracy, accuracy]])


def test_owl_falcon_posterior_with_fixed_skills():
    # Two workers of accuracy 0.6 say "owl" (0), one of accuracy 0.8 says "falcon" (1); uniform prior.
    confusion = np.stack([one_coin(0.6), one_coin(0.6), one_coin(0.8)])
    posteriors = posteriors_given_skill(
        np.array([0, 0, 0]),
        np.array([0, 1, 2]),
        np.array([0, 0, 1]),
        confusion=confusion,
        class_prior=np.array([0.5, 0.5]),
        n_items=1,
    )
    assert posteriors[0, 1] == pytest.approx(0.64)


answers_strategy = st.integers(min_value=1, max_value=4).flatmap(
    lambda n_classes: st.tuples(
        st.just(n_classes),
        st.lists(
            st.tuples(st.integers(0, 14), st.integers(0, 5), st.integers(0, n_classes - 1)),
            min_size=1,
            max_size=60,
        ),
    )
)


def _arrays(answers: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    items, workers, labels = (np.array(column, dtype=np.int64) for column in zip(*answers, strict=True))
    return items, workers, labels


@pytest.mark.parametrize("model", [DawidSkene, OneCoinDawidSkene])
@pytest.mark.parametrize("prior_strength", [0.0, 1.0, 20.0])
@settings(max_examples=40, deadline=None)
@given(data=answers_strategy, with_gold=st.booleans())
def test_em_invariants(model, prior_strength, data, with_gold):
    n_classes, answers = data
    items, workers, labels = _arrays(answers)
    known = KnownLabels(items[:1], labels[:1]) if with_gold else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = model(prior_strength=prior_strength, max_iter=30).fit(
            items, workers, labels, n_classes=n_classes, known=known
        )
    if with_gold:  # a known item keeps its label, with certainty
        assert fitted.labels_[items[0]] == labels[0] and fitted.confidence_[items[0]] == pytest.approx(1.0)
    assert np.allclose(fitted.posteriors_.sum(axis=1), 1.0)
    assert np.allclose(fitted.confusion_.sum(axis=2), 1.0)
    assert fitted.class_prior_.sum() == pytest.approx(1.0)
    steps = np.diff(fitted.history_)
    # EM never decreases the penalised log-likelihood (floating-point slack only).
    assert np.all(steps >= -1e-8 * np.abs(fitted.history_[1:]).clip(min=1.0))
    assert fitted.labels_.shape == (items.max() + 1,)
    assert np.all((fitted.worker_accuracy_ >= 0) & (fitted.worker_accuracy_ <= 1))
    assert fitted.worker_counts_.sum() == pytest.approx(len(answers))


def naive_dawid_skene(answers, n_items, n_workers, n_classes, prior_strength, class_prior_strength, n_iter):
    """The same MAP-EM written as plain loops over answers, for checking the vectorised code."""
    votes = [[0.0] * n_classes for _ in range(n_items)]
    for item, _, label in answers:
        votes[item][label] += 1
    q = [[v / sum(row) if sum(row) else 1 / n_classes for v in row] for row in votes]
    # One pseudo-answer per row, spread evenly, as the model's crowd matrix has.
    crowd = [[1 / n_classes for _ in range(n_classes)] for _ in range(n_classes)]
    for item, _, label in answers:
        for k in range(n_classes):
            crowd[k][label] += q[item][k]
    crowd = [[value / sum(row) for value in row] for row in crowd]
    for _ in range(n_iter):
        counts = [[[0.0] * n_classes for _ in range(n_classes)] for _ in range(n_workers)]
        for item, worker, label in answers:
            for k in range(n_classes):
                counts[worker][k][label] += q[item][k]
        pi = [
            [
                [
                    (counts[w][k][lab] + prior_strength * crowd[k][lab]) / (sum(counts[w][k]) + prior_strength)
                    for lab in range(n_classes)
                ]
                for k in range(n_classes)
            ]
            for w in range(n_workers)
        ]
        mass = [sum(q[i][k] for i in range(n_items)) + class_prior_strength for k in range(n_classes)]
        prior = [m / sum(mass) for m in mass]
        log_joint = [[math.log(prior[k]) for k in range(n_classes)] for _ in range(n_items)]
        for item, worker, label in answers:
            for k in range(n_classes):
                log_joint[item][k] += math.log(pi[worker][k][label])
        q = []
        for row in log_joint:
            top = max(row)
            weights = [math.exp(v - top) for v in row]
            q.append([w / sum(weights) for w in weights])
    return np.array(q), np.array(pi)


@settings(max_examples=30, deadline=None)
@given(data=answers_strategy, prior_strength=st.sampled_from([0.5, 4.0]))
def test_vectorised_em_equals_naive_loop(data, prior_strength):
    n_classes, answers = data
    answers = list({(item, worker): (item, worker, label) for item, worker, label in answers}.values())
    items, workers, labels = _arrays(answers)
    n_items, n_workers = int(items.max()) + 1, int(workers.max()) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = DawidSkene(prior_strength=prior_strength, tol=1e-300, max_iter=3, accelerate=False).fit(
            items, workers, labels, n_classes=n_classes
        )
    # It may stop early when the objective stops changing; the naive loop runs as many iterations.
    expected_q, expected_pi = naive_dawid_skene(
        answers, n_items, n_workers, n_classes, prior_strength, 1.0, fitted.n_iter_
    )
    assert np.allclose(fitted.posteriors_, expected_q, atol=1e-9)
    assert np.allclose(fitted.confusion_, np.maximum(expected_pi, 1e-12), atol=1e-9)


def test_recovers_known_workers_and_beats_majority_vote():
    rng = np.random.default_rng(7)
    # Enough answers per worker that the prior (20 pseudo-answers per row) barely shrinks their skill.
    n_items, n_classes = 1500, 3
    truth = rng.integers(0, n_classes, n_items)
    accuracies = np.array([0.95, 0.9, 0.85, 0.4, 0.35, 0.35, 0.3])
    items, workers, labels = [], [], []
    for worker, accuracy in enumerate(accuracies):
        right = rng.random(n_items) < accuracy
        wrong = (truth + rng.integers(1, n_classes, n_items)) % n_classes
        items.extend(range(n_items))
        workers.extend([worker] * n_items)
        labels.extend(np.where(right, truth, wrong))
    items_a, workers_a, labels_a = (np.array(a) for a in (items, workers, labels))
    fitted = DawidSkene().fit(items_a, workers_a, labels_a)
    mv = majority_vote(items_a, labels_a, n_items=n_items, n_classes=n_classes).labels
    assert fitted.converged_
    assert np.mean(fitted.labels_ == truth) > np.mean(mv == truth) + 0.05
    assert np.allclose(fitted.worker_accuracy_, accuracies, atol=0.05)


def test_warns_and_reports_when_not_converged():
    items, workers, labels = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 0]), np.array([0, 1, 1, 1, 0])
    with pytest.warns(ConvergenceWarning, match="did not converge in 1 iterations"):
        fitted = DawidSkene(max_iter=1).fit(items, workers, labels)
    assert fitted.n_iter_ == 1
    assert not fitted.converged_


def test_carried_worker_counts_decide_between_disagreeing_workers():
    # One item, two workers disagree. Counts from earlier batches say worker 1 is reliable, worker 0 is not.
    items, workers, labels = np.array([0, 0]), np.array([0, 1]), np.array([0, 1])
    carried = np.array([[[10.0, 40.0], [40.0, 10.0]], [[50.0, 0.0], [0.0, 50.0]]])
    with_history = DawidSkene().fit(items, workers, labels, n_classes=2, prior_counts=carried)
    assert with_history.labels_[0] == 1
    assert with_history.worker_counts_.sum() == pytest.approx(2.0)


def test_rejects_prior_counts_of_the_wrong_shape():
    with pytest.raises(ValueError, match="prior_counts has shape"):
        DawidSkene().fit(np.array([0]), np.array([0]), np.array([0]), n_classes=2, prior_counts=np.zeros((2, 2, 2)))
