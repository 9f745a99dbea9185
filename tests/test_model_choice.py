"""Choosing the model from the data: held-out answer likelihood picks pooling, one-coin or subtypes as the crowd
demands, deterministically, without looking at gold."""

from __future__ import annotations

import numpy as np
import pytest

from truthflow.consolidation.known_labels import KnownLabels
from truthflow.consolidation.model_choice import (
    ONE_COIN,
    SUBTYPES,
    Candidate,
    choose_model,
    dawid_skene_candidates,
    default_candidates,
)


def crowd(confusions: np.ndarray, n_items: int, per_item: int, seed: int = 0):
    """Answers of workers with the given confusion matrices (W, K, K), ``per_item`` random workers per item."""
    rng = np.random.default_rng(seed)
    n_workers, n_classes, _ = confusions.shape
    truth = rng.integers(0, n_classes, n_items)
    items, workers, labels = [], [], []
    for item in range(n_items):
        for worker in rng.choice(n_workers, per_item, replace=False):
            items.append(item)
            workers.append(worker)
            labels.append(rng.choice(n_classes, p=confusions[worker, truth[item]]))
    return np.array(items), np.array(workers), np.array(labels), truth


def choose(confusions: np.ndarray, n_items: int, per_item: int, **options):
    items, workers, labels, _ = crowd(confusions, n_items, per_item)
    n_workers, n_classes, _ = confusions.shape
    return choose_model(
        default_candidates(),
        items,
        workers,
        labels,
        n_items=n_items,
        n_workers=n_workers,
        n_classes=n_classes,
        **options,
    )


SHARED = np.array([[0.7, 0.25, 0.05], [0.1, 0.6, 0.3], [0.05, 0.15, 0.8]])


def test_a_crowd_of_alike_workers_with_few_answers_each_is_pooled_strongly():
    choice = choose(np.repeat(SHARED[np.newaxis], 300, axis=0), n_items=400, per_item=3)
    assert choice.chosen.name in {"ds(prior 16)", "ds(prior 64)"}


def test_a_crowd_of_different_prolific_workers_keeps_each_workers_own_skill():
    workers = np.array(
        [
            np.eye(3) * 0.9 + 0.1 / 3,
            np.eye(3) * 0.85 + 0.05,
            [[0.2, 0.8, 0.0], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]],  # confuses every class with the next
            np.full((3, 3), 1 / 3),  # spammer
            [[0.9, 0.1, 0.0], [0.9, 0.1, 0.0], [0.9, 0.05, 0.05]],  # almost always answers class 0
            np.eye(3) * 0.7 + 0.1,
        ]
    )
    choice = choose(workers, n_items=600, per_item=6)
    assert choice.chosen.name in {"ds(prior 1)", "ds(prior 4)"}


def test_symmetric_errors_over_many_classes_choose_one_coin():
    eye = np.eye(6)
    workers = np.stack([eye * a + (1 - a) / 5 * (1 - eye) for a in np.linspace(0.3, 0.9, 40)])
    assert choose(workers, n_items=300, per_item=4).chosen is ONE_COIN


def test_the_choice_is_deterministic_and_scores_every_candidate():
    # 270 subtype cells, 450 answers (300 in each fold's fit): subtypes compete.
    workers = np.repeat(SHARED[np.newaxis], 10, axis=0)
    first, again = choose(workers, n_items=150, per_item=3), choose(workers, n_items=150, per_item=3)
    assert first.scores == again.scores
    assert set(first.scores) == {candidate.name for candidate in default_candidates()}
    assert all(score < 0 for score in first.scores.values())  # mean log-probability of held-out answers
    assert first.chosen.name in first.finalists
    scored_throughout = [
        name for name in first.finalists if first.folds_scored[name] == max(first.folds_scored.values())
    ]
    assert first.chosen.name == max(scored_throughout, key=first.scores.__getitem__)


def test_subtypes_are_no_candidate_when_there_are_fewer_answers_than_their_cells():
    # 300 workers x 3 classes^2 x 3 subtypes = 8,100 cells against 800 answers each fold fit sees.
    choice = choose(np.repeat(SHARED[np.newaxis], 300, axis=0), n_items=400, per_item=3)
    assert SUBTYPES.name not in choice.scores


def test_large_inputs_choose_on_a_subset_of_items_with_their_known_labels():
    workers = np.repeat(SHARED[np.newaxis], 20, axis=0)
    items, worker_codes, labels, truth = crowd(workers, n_items=2000, per_item=3)
    known = KnownLabels(np.arange(0, 2000, 10), truth[::10])
    choice = choose_model(
        dawid_skene_candidates(),
        items,
        worker_codes,
        labels,
        n_items=2000,
        n_workers=20,
        n_classes=3,
        known=known,
        max_answers=900,
    )
    assert 900 <= choice.n_answers < 910  # whole items: the last one may go a little over
    assert set(choice.scores) == {candidate.name for candidate in dawid_skene_candidates()}


def test_a_single_candidate_is_fitted_without_a_choice():
    items, workers, labels, _ = crowd(np.repeat(SHARED[np.newaxis], 5, axis=0), n_items=20, per_item=3)
    choice = choose_model([ONE_COIN], items, workers, labels, n_items=20, n_workers=5, n_classes=3)
    assert choice.chosen is ONE_COIN and choice.scores == {}


def test_no_candidates_is_an_error():
    with pytest.raises(ValueError, match="no candidate models"):
        choose_model([], np.array([0]), np.array([0]), np.array([0]), n_items=1, n_workers=1, n_classes=1)


def test_candidates_the_held_out_answers_cannot_tell_apart_are_all_finalists():
    twin = Candidate("ds(prior 4) again", dawid_skene_candidates()[1].make)
    items, workers, labels, _ = crowd(np.repeat(SHARED[np.newaxis], 20, axis=0), n_items=300, per_item=3)
    candidates = [dawid_skene_candidates()[1], twin, ONE_COIN]
    choice = choose_model(candidates, items, workers, labels, n_items=300, n_workers=20, n_classes=3)
    assert {"ds(prior 4)", "ds(prior 4) again"} <= set(choice.finalists)
    assert choice.scores["ds(prior 4)"] == choice.scores["ds(prior 4) again"]
    assert choice.chosen.name == "ds(prior 4)"  # a tie goes to the earlier candidate


def test_a_hopeless_candidate_costs_one_fold_only():
    # An ordinal crowd that confuses neighbouring classes: one-coin, which spreads errors evenly, predicts held-out
    # answers far worse than Dawid-Skene and is dropped after the first fold.
    confusion = np.array([[0.7, 0.3, 0.0, 0.0], [0.15, 0.7, 0.15, 0.0], [0.0, 0.15, 0.7, 0.15], [0.0, 0.0, 0.3, 0.7]])
    choice = choose(np.repeat(confusion[np.newaxis], 30, axis=0), n_items=800, per_item=5)
    assert choice.folds_scored[ONE_COIN.name] == 1
    assert ONE_COIN.name not in choice.finalists
