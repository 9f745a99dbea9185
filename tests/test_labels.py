"""Consolidating labels by name: coding, majority vote's tie-break, duplicates, and nothing lost."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truthflow.cli import main
from truthflow.consolidation.coding import encode_answers, keep_last_answer_per_worker, natural_label_order
from truthflow.consolidation.known_labels import KnownLabels
from truthflow.consolidation.labels import METHODS, consolidate_labels
from truthflow.consolidation.majority_vote import majority_vote
from truthflow.consolidation.many_labels import sparse_majority_vote


def test_labels_are_ordered_numerically_when_they_are_integers():
    assert natural_label_order(["10", "2", "1"]) == ["1", "2", "10"]
    assert natural_label_order(["pencil", "pen", "10"]) == ["10", "pen", "pencil"]


def test_label_outside_the_label_set_names_the_answer():
    with pytest.raises(ValueError, match=r"answer 2 \(item 'b', worker 'w'\): label 'pencl' is not in the label set"):
        encode_answers(["a", "b"], ["w", "w"], ["pen", "pencl"], label_set=["pen", "pencil"])


def test_majority_vote_tie_goes_to_the_class_the_vote_decides_most_often():
    # Items 0-2 are decided for "a" (2 votes each), item 4 for "b" with 7 votes; item 3 is a 1-1 tie between a and b.
    # "b" has more answers overall (8 against 7), but "a" wins more items: the tie goes to "a", the class prior.
    items = np.array([0, 0, 1, 1, 2, 2, 3, 3, *[4] * 7])
    labels = np.array([0, 0, 0, 0, 0, 0, 0, 1, *[1] * 7])
    vote = majority_vote(items, labels, n_items=5, n_classes=2)
    assert vote.labels.tolist() == [0, 0, 0, 0, 1]
    assert vote.confidence.tolist() == [1.0, 1.0, 1.0, 0.5, 1.0]
    assert vote.ties == 1


def test_majority_vote_ties_between_equally_likely_classes_are_a_seeded_draw():
    # 200 items, each a 1-1 tie between classes 0 and 1, no decided item: the prior cannot choose.
    items = np.repeat(np.arange(200), 2)
    labels = np.tile([0, 1], 200)
    first = majority_vote(items, labels, n_items=200, n_classes=2)
    again = majority_vote(items, labels, n_items=200, n_classes=2)
    assert first.ties == 200
    assert first.labels.tolist() == again.labels.tolist()  # deterministic
    assert 60 < int(first.labels.sum()) < 140  # both classes win their share of draws, not always the lower code


def test_consolidating_with_majority_vote_reports_the_ties():
    result = consolidate_labels(
        ["a", "a", "b", "b", "b"], ["w1", "w2", "w1", "w2", "w3"], ["x", "y", "x", "x", "y"], method="mv"
    )
    assert result.ties == 1
    assert dict(zip(result.item_names, result.labels, strict=True)) == {"a": "x", "b": "x"}


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


def test_auto_names_the_model_it_chose_and_scores_every_candidate():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 200)
    items, workers, labels = [], [], []
    for worker, accuracy in enumerate([0.9, 0.8, 0.7, 0.6, 0.5]):
        right = rng.random(200) < accuracy
        answer = np.where(right, truth, (truth + rng.integers(1, 3, 200)) % 3)
        items += [f"i{i}" for i in range(200)]
        workers += [f"w{worker}"] * 200
        labels += [f"c{c}" for c in answer]
    result = consolidate_labels(items, workers, labels)
    assert result.method == "auto"
    assert {"ds(prior 1)", "ds(prior 64)", "onecoin", "subtypes(3)"} <= set(result.model_scores)
    assert result.model_finalists and set(result.model_finalists) <= set(result.model_scores)
    if len(result.model_finalists) == 1:
        assert result.model == result.model_finalists[0]
    else:  # the candidates the held-out answers could not tell apart, averaged
        assert result.model == "mean of " + ", ".join(result.model_finalists)
    predicted = np.array([int(label[1:]) for label in result.labels])
    assert np.mean(predicted == truth[[int(item[1:]) for item in result.item_names]]) > 0.9


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown method 'em'"):
        consolidate_labels(["a"], ["w"], ["x"], method="em")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(
    answers=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 3)), min_size=1, max_size=120),
)
def test_majority_vote_over_answered_labels_only_agrees_with_the_dense_vote(answers):
    # The memory-bounded vote (for thousands of labels) follows the same rule as the dense one: the same ties, the same
    # winner wherever the class prior decides (only the seeded draw between equally likely classes may differ).
    items, labels = (np.array(column, dtype=np.int64) for column in zip(*answers, strict=True))
    n_items = int(items.max()) + 1
    dense = majority_vote(items, labels, n_items=n_items, n_classes=4)
    sparse, _, _ = sparse_majority_vote(items, labels, n_items=n_items, n_classes=4, known=KnownLabels.none())
    assert sparse.ties == dense.ties
    counts = np.zeros((n_items, 4))
    np.add.at(counts, (items, labels), 1)
    decided = (counts == counts.max(axis=1, keepdims=True)).sum(axis=1) == 1
    prior = np.bincount(counts[decided].argmax(axis=1), minlength=4)
    for item in range(n_items):
        tied = np.flatnonzero(counts[item] == counts[item].max())
        if counts[item].max() > 0 and (tied.size == 1 or np.unique(prior[tied]).size == tied.size):
            assert sparse.labels[item] == dense.labels[item]
    assert np.allclose(sparse.confidence, dense.confidence)


def test_the_command_line_reports_majority_vote_ties(tmp_path, capsys):
    answers = tmp_path / "answers.csv"
    answers.write_text("item,worker,label\na,w1,x\na,w2,y\nb,w1,x\nb,w2,x\n", encoding="utf-8")
    assert main(["consolidate", "--answers", str(answers), "--out", str(tmp_path / "o.csv"), "--method", "mv"]) == 0
    assert "majority vote: 1 tied items, broken by the class prior, then a seeded draw" in capsys.readouterr().out
