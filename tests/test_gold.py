"""Gold questions: known answers fix their items, anchor every worker's skill and score each worker, through the core
and through ``truthflow consolidate --gold``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from truthflow.cli import main
from truthflow.consolidation.labels import METHODS, consolidate_labels


def confused_majority(seed: int = 3, n_items: int = 300):
    """Four workers who answer the next class 80 % of the time, two careful ones: the majority is wrong."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n_items)
    items, workers, labels = [], [], []
    for worker in range(6):
        for item in range(n_items):
            if rng.random() > 0.6:
                continue
            if worker < 4:
                label = (truth[item] + 1) % 3 if rng.random() < 0.8 else rng.integers(3)
            else:
                label = truth[item] if rng.random() < 0.75 else rng.integers(3)
            items.append(f"i{item}")
            workers.append(f"w{worker}")
            labels.append(f"c{label}")
    gold_items = rng.choice(n_items, n_items // 20, replace=False)
    gold = {f"i{item}": f"c{truth[item]}" for item in gold_items}
    return items, workers, labels, {f"i{item}": f"c{label}" for item, label in enumerate(truth)}, gold


@pytest.mark.parametrize("method", METHODS)
def test_a_gold_items_label_is_never_overridden(method):
    # Every worker says "cat"; gold says "dog": the gold label stands, with full confidence.
    items = ["a"] * 4 + ["b"] * 4
    workers = ["w1", "w2", "w3", "w4"] * 2
    labels = ["cat"] * 4 + ["dog", "dog", "cat", "dog"]
    result = consolidate_labels(items, workers, labels, method=method, gold={"a": "dog"})
    consolidated = dict(zip(result.item_names, result.labels, strict=True))
    confidence = dict(zip(result.item_names, result.confidence, strict=True))
    assert consolidated["a"] == "dog" and confidence["a"] == pytest.approx(1.0)
    assert result.posteriors[result.item_names.index("a"), result.label_names.index("dog")] == pytest.approx(1.0)


def test_workers_are_scored_on_gold():
    items = ["a", "a", "b", "b", "c"]
    workers = ["w1", "w2", "w1", "w2", "w2"]
    labels = ["x", "y", "x", "x", "y"]
    result = consolidate_labels(items, workers, labels, gold={"a": "x", "b": "x", "z": "y"})
    gold = result.gold
    assert (gold.n_given, gold.n_answered) == (3, 2)  # "z" was never answered
    by_worker = dict(zip(result.worker_names, zip(gold.answers, gold.correct, strict=True), strict=True))
    assert by_worker == {"w1": (2, 2), "w2": (2, 1)}
    assert gold.accuracy.tolist() == [1.0, 0.5]
    assert "z" not in result.item_names


def test_five_percent_gold_turns_a_confused_majority_around():
    items, workers, labels, truth, gold = confused_majority()
    scored = [item for item in truth if item not in gold and item in set(items)]

    def accuracy(result):
        consolidated = dict(zip(result.item_names, result.labels, strict=True))
        return np.mean([consolidated[item] == truth[item] for item in scored])

    without = consolidate_labels(items, workers, labels)
    with_gold = consolidate_labels(items, workers, labels, gold=gold)
    assert accuracy(without) < 0.2  # the majority's view wins: the labels are shifted
    assert accuracy(with_gold) > 0.9
    estimated = dict(zip(with_gold.worker_names, with_gold.accuracy, strict=True))
    assert max(estimated[f"w{w}"] for w in range(4)) < 0.3 < 0.6 < min(estimated["w4"], estimated["w5"])


def test_a_gold_label_outside_the_label_set_is_refused():
    with pytest.raises(ValueError, match="gold item 'a': label 'owl' is not in the label set"):
        consolidate_labels(["a"], ["w"], ["cat"], label_set=["cat", "dog"], gold={"a": "owl"})


@pytest.mark.parametrize("method", METHODS)
def test_a_gold_label_nobody_answered_becomes_a_class(method):
    result = consolidate_labels(
        ["a", "a", "b"], ["w1", "w2", "w1"], ["cat", "cat", "cat"], gold={"b": "dog"}, method=method
    )
    assert result.label_names == ["cat", "dog"]
    assert dict(zip(result.item_names, result.labels, strict=True))["b"] == "dog"


# --- the command line ------------------------------------------------------------------------------------------


def write_csv(path: Path, header: list[str], rows) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_consolidate_with_gold_keeps_gold_labels_and_shows_worker_accuracy_on_gold(tmp_path, capsys):
    items, workers, labels, truth, gold = confused_majority()
    answers = write_csv(tmp_path / "answers.csv", ["item", "worker", "label"], zip(items, workers, labels, strict=True))
    gold_file = write_csv(tmp_path / "gold.csv", ["item", "label"], gold.items())
    out = tmp_path / "labels.csv"
    assert main(["consolidate", "--answers", str(answers), "--gold", str(gold_file), "--out", str(out)]) == 0
    with out.open(newline="") as handle:
        consolidated = {row["item"]: row["label"] for row in csv.DictReader(handle)}
    assert all(consolidated[item] == label for item, label in gold.items() if item in consolidated)
    scored = [item for item in consolidated if item not in gold]
    assert np.mean([consolidated[item] == truth[item] for item in scored]) > 0.9
    printed = capsys.readouterr().out
    assert f"gold: {len(gold)} of {len(gold)} gold items" in printed
    table = [line.split(" | ") for line in printed.splitlines() if line.startswith("  w") and "|" in line][1:]
    # The confused workers come first (lowest accuracy on gold), and the model's estimate agrees.
    assert {row[0].strip() for row in table[:4]} == {"w0", "w1", "w2", "w3"}
    assert all(float(row[2]) < 0.5 and float(row[3]) < 0.5 for row in table[:4])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("item,label\na,x\na,y\n", "gold.csv line 3: item 'a' has gold label 'y', but line 2 gave 'x'"),
        ("item\na\n", "gold.csv line 1: missing column(s) label"),
        ("item,label\n", "gold.csv: no gold labels after the header"),
    ],
)
def test_bad_gold_files_name_file_line_and_problem(tmp_path, capsys, content, message):
    answers = write_csv(tmp_path / "answers.csv", ["item", "worker", "label"], [("a", "w", "x")])
    (tmp_path / "gold.csv").write_text(content, encoding="utf-8")
    args = ["consolidate", "--answers", str(answers), "--gold", str(tmp_path / "gold.csv")]
    assert main([*args, "--out", str(tmp_path / "o.csv")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()
