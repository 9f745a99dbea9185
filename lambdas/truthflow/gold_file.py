"""Read gold questions (items whose true label is known) from the command line's ``item,label`` CSV layout."""

from __future__ import annotations

from pathlib import Path

from truthflow.tables import InputError, read_rows

GOLD_COLUMNS = ("item", "label")


def read_gold_labels(path: Path) -> dict[str, str]:
    """``item,label`` rows; an item listed twice with different labels is an error naming both lines."""
    gold: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line_number, row in read_rows(path, GOLD_COLUMNS):
        item, label = row["item"], row["label"]
        if item in gold and gold[item] != label:
            raise InputError(
                f"{path} line {line_number}: item {item!r} has gold label {label!r}, "
                f"but line {first_line[item]} gave {gold[item]!r}"
            )
        gold.setdefault(item, label)
        first_line.setdefault(item, line_number)
    if not gold:
        raise InputError(f"{path}: no gold labels after the header")
    return gold
