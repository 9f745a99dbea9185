"""Consolidating labels by name: coding, majority vote's tie-break, duplicates, and nothing lost."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truthflow.consolidation.coding import encode_answers, keep_last_answer_per_worker, natural_label_order
from truthflow.consolidation.labels import METHODS, consolidate_labels
from truthflow.consolidation.majority_vote import majority_vote


def test_labels_are_ordered_numerically_when_they_are_integers():
    assert natural_label_order(["10", "2", "1"]) == ["1", "2", "10"]
    assert natural_label_order(["pencil", "pen", "10"]) == ["10", "pen", "pencil"]


def test_label_outside_the_label_set_names_the_answer():
    with pytest.raises(ValueError, match=r"answer 2 \(item 'b', worker 'w'\): label 'pencl' is not in the label set"):
        encode_answers(["a", "b"], ["w", "w"], ["pen", "pencl"], label_set=["pen", "pencil"])


def test_majority_vote_tie_goes_to_the_class_most_frequent_overall():
    # Item 0 is a 1-1 tie between classes 0 and 1; class 1 has more votes over the whole data set.
    items = np.array([0, 0, 1, 1, 2])
    labels = np.array([0, 1, 1, 1, 0])
    winners, confidence = majority_vote(items, labels, n_items=3, n_classes=2)
    assert winners.tolist() == [1, 1, 0]
    assert confidence.tolist() == [0.5, 1.0, 1.0]


def test_majority_vote_tie_between_equally_frequent_classes_goes_to_the_lower_code():
    winners, _ = majority_vote(np.array([0, 0]), np.array([1, 0]), n_items=1, n_classes=2)
    assert winners.tolist() == [0]


def test_repeated_answers_keep_the_workers_last_word():
    answers = encode_answers(["a", "a", "a", "b"], ["w", "w", "v", "w"], ["x", "y", "x", "x"])
    deduplicated, dropped = keep_last_answer_per_worker(answers)
    assert dropped == 1
    pairs = {
        (answers.item_names[i], answers.worker_names[w], answers.label_names[lab])
        for i, w, lab in zip(deduplicated.items, deduplicated.workers, deduplicated.labels, strict=True)
    }
    assert pairs == {("a", "w", "y"), ("a", "v", "x"), ("b", "w", "x")}


names = st.text(alphabet="abcdefgh", min_size=1, max_size=3)


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(names, names, st.sampled_from(["cat", "dog", "owl"])), min_size=1, max_size=80))
def test_every_answered_item_gets_exactly_one_label(method, rows):
    items, workers, labels = (list(column) for column in zip(*rows, strict=True))
    result = consolidate_labels(items, workers, labels, method=method)
    assert sorted(result.item_names) == sorted(set(items))
    assert len(result.labels) == len(result.item_names)
    assert set(result.labels) <= set(labels)
    assert np.all((result.confidence > 0) & (result.confidence <= 1 + 1e-12))
    assert np.allclose(result.posteriors.sum(axis=1), 1.0)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown method 'em'"):
        consolidate_labels(["a"], ["w"], ["x"], method="em")  # type: ignore[arg-type]
