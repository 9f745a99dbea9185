"""``truthflow demo`` (``make demo``): consolidate real crowdsourcing data sets and score against their gold.

Until the offline pipeline lands, the demo shows the heart of it: for every data set in the folder (the layout
of ../shared/crowd_datasets: ``answers.csv`` item,worker,label and ``truth.csv`` item,label), the accuracy of
majority vote, one-coin and full Dawid-Skene on the gold items, and how many items each fixes or breaks.
"""

from __future__ import annotations

import time
from pathlib import Path

from truthflow.answer_files import LABEL_COLUMNS, read_label_answers
from truthflow.consolidation.labels import METHODS, consolidate_labels
from truthflow.tables import InputError, read_rows


def _is_label_dataset(folder: Path) -> bool:
    """Class-label data sets have answers.csv with item,worker,label (the box data set has other columns)."""
    if not (folder / "answers.csv").is_file() or not (folder / "truth.csv").is_file():
        return False
    with (folder / "answers.csv").open(encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    return all(column in header for column in LABEL_COLUMNS)


def run_demo(*, datasets_root: Path) -> int:
    folders = sorted(folder for folder in datasets_root.glob("*") if _is_label_dataset(folder))
    if not folders:
        raise InputError(f"{datasets_root}: no data sets (folders with answers.csv and truth.csv) found")
    print(f"Consolidating {len(folders)} crowd data sets from {datasets_root}\n")
    header = f"{'dataset':14s} {'answers':>8s} {'gold':>6s} " + " ".join(f"{m:>8s}" for m in METHODS) + "  ds vs mv"
    print(header)
    print("-" * len(header))
    totals = dict.fromkeys(METHODS, 0.0)
    start = time.perf_counter()
    for folder in folders:
        answers = read_label_answers(folder / "answers.csv")
        gold = {row["item"]: row["label"] for _, row in read_rows(folder / "truth.csv", ("item", "label"))}
        correct: dict[str, dict[str, bool]] = {}
        for method in METHODS:
            result = consolidate_labels(answers.items, answers.workers, answers.labels, method=method)
            predicted = dict(zip(result.item_names, result.labels, strict=True))
            correct[method] = {item: predicted[item] == label for item, label in gold.items() if item in predicted}
        scored = len(correct["mv"])
        accuracy = {m: sum(correct[m].values()) / scored for m in METHODS}
        for method in METHODS:
            totals[method] += accuracy[method]
        fixed = sum(correct["ds"][i] and not correct["mv"][i] for i in correct["mv"])
        broken = sum(correct["mv"][i] and not correct["ds"][i] for i in correct["mv"])
        print(
            f"{folder.name:14s} {len(answers.items):8d} {scored:6d} "
            + " ".join(f"{accuracy[m]:8.3f}" for m in METHODS)
            + f"  +{fixed} / -{broken}"
        )
    print("-" * len(header))
    print(f"{'mean':14s} {'':8s} {'':6s} " + " ".join(f"{totals[m] / len(folders):8.3f}" for m in METHODS))
    print(
        f"\naccuracy on gold items; 'ds vs mv' = gold items Dawid-Skene gets right that majority vote gets wrong (+) "
        f"and the reverse (-). {time.perf_counter() - start:.1f} s in all."
    )
    return 0
