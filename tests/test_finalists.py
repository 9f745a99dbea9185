"""The final fit averages the finalists the held-out answers could not tell apart, and keeps gold items fixed."""

from __future__ import annotations

import numpy as np
import pytest

from truthflow.consolidation.finalists import fit_finalists
from truthflow.consolidation.known_labels import KnownLabels
from truthflow.consolidation.model_choice import ONE_COIN, ModelChoice, dawid_skene_candidates

SHAPE = {"n_items": 120, "n_workers": 8, "n_classes": 3}


def answers(seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, 120)
    accuracy = np.linspace(0.45, 0.9, 8)
    items, workers, labels = [], [], []
    for item in range(120):
        for worker in rng.choice(8, 4, replace=False):
            right = rng.random() < accuracy[worker]
            items.append(item)
            workers.append(worker)
            labels.append(truth[item] if right else (truth[item] + rng.integers(1, 3)) % 3)
    return np.array(items), np.array(workers), np.array(labels)


def fit(candidate, items, workers, labels, known):
    return candidate.make(1e-6, 300).fit(items, workers, labels, known=known, **SHAPE)


def test_several_finalists_are_averaged():
    items, workers, labels = answers()
    weak, strong = dawid_skene_candidates()[0], dawid_skene_candidates()[-1]
    candidates = [weak, strong, ONE_COIN]
    choice = ModelChoice(weak, {}, items.size, 3, finalists=(weak.name, strong.name))
    known = KnownLabels(np.array([0, 5]), np.array([2, 1]))
    final = fit_finalists(
        choice, candidates, items, workers, labels, prior_counts=None, known=known, tol=1e-6, max_iter=300, **SHAPE
    )
    first, second = fit(weak, items, workers, labels, known), fit(strong, items, workers, labels, known)
    assert final.model == f"mean of {weak.name}, {strong.name}" and final.finalists == (weak.name, strong.name)
    assert np.allclose(final.posteriors, (first.posteriors_ + second.posteriors_) / 2)
    assert np.array_equal(final.labels, np.argmax(final.posteriors, axis=1))
    assert np.allclose(final.confidence, final.posteriors.max(axis=1))
    assert np.allclose(final.confusion, (first.confusion_ + second.confusion_) / 2)
    assert np.allclose(final.counts, (first.worker_counts_ + second.worker_counts_) / 2)
    assert final.counts.sum() == pytest.approx(items.size)
    assert final.labels[0] == 2 and final.labels[5] == 1 and final.confidence[[0, 5]] == pytest.approx([1.0, 1.0])


def test_a_single_finalist_is_its_own_fit():
    items, workers, labels = answers(1)
    only = dawid_skene_candidates()[1]
    choice = ModelChoice(only, {}, items.size, 3, finalists=(only.name,))
    final = fit_finalists(
        choice,
        [only, ONE_COIN],
        items,
        workers,
        labels,
        prior_counts=None,
        known=KnownLabels.none(),
        tol=1e-6,
        max_iter=300,
        **SHAPE,
    )
    alone = fit(only, items, workers, labels, KnownLabels.none())
    assert final.model == only.name
    assert np.array_equal(final.posteriors, alone.posteriors_)
    assert np.array_equal(final.accuracy, alone.worker_accuracy_)


def test_a_finalist_in_another_solution_is_not_averaged_in():
    # A confused majority (tests/test_gold.py): with gold, Dawid-Skene reads the classes right and one-coin reads them
    # shifted. Averaging the two would be neither; the shifted fit disagrees with the chosen one far more than the
    # chosen fit's own uncertainty allows, so it is left out.
    from test_gold import confused_majority

    names, worker_names, label_names, truth, gold = confused_majority(n_items=120)
    item_codes = {name: code for code, name in enumerate(sorted(truth, key=lambda name: int(name[1:])))}
    items = np.array([item_codes[name] for name in names])
    workers = np.array([int(name[1:]) for name in worker_names])
    labels = np.array([int(name[1:]) for name in label_names])
    known = KnownLabels(
        np.array([item_codes[name] for name in gold]), np.array([int(label[1:]) for label in gold.values()])
    )
    shape = {"n_items": 120, "n_workers": 6, "n_classes": 3}
    chosen = dawid_skene_candidates()[1]
    choice = ModelChoice(chosen, {}, items.size, 3, finalists=(chosen.name, ONE_COIN.name))
    final = fit_finalists(
        choice, [chosen, ONE_COIN], items, workers, labels, prior_counts=None, known=known, tol=1e-6, max_iter=300,
        **shape,
    )  # fmt: skip
    assert final.finalists == (chosen.name,)
    right = [final.labels[item_codes[name]] == int(label[1:]) for name, label in truth.items() if name not in gold]
    assert np.mean(right) > 0.9
