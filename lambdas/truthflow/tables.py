"""CSV tables in and out, with errors that name the file, the row and the problem."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path


class InputError(ValueError):
    """Bad user input; the message names the input and the problem and is meant to be shown as is."""


def read_rows(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` for each data row of a CSV file with a header.

    Raises ``InputError`` for a missing or empty file, a header without the required columns, a short row,
    or an empty required value. Line numbers count the header as line 1, as an editor shows them.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise InputError(f"{path}: the file is empty; expected a header with columns {', '.join(required)}")
        columns = [cell.strip() for cell in header]
        missing = [name for name in required if name not in columns]
        if missing:
            raise InputError(
                f"{path} line 1: missing column(s) {', '.join(missing)}; the header has {', '.join(columns)}"
            )
        positions = {name: columns.index(name) for name in required}
        for line_number, cells in enumerate(reader, start=2):
            if not cells or not any(cell.strip() for cell in cells):
                continue
            if len(cells) < len(columns):
                raise InputError(f"{path} line {line_number}: {len(cells)} values, the header has {len(columns)}")
            row = {name: cells[position].strip() for name, position in positions.items()}
            empty = [name for name, value in row.items() if value == ""]
            if empty:
                raise InputError(f"{path} line {line_number}: empty {', '.join(empty)}")
            yield line_number, row


def parse_number(path: Path, line_number: int, column: str, text: str) -> float:
    """A finite float, or ``InputError`` naming the cell."""
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{path} line {line_number}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{path} line {line_number}: {column} {text!r} is not a finite number")
    return value


def write_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Write a CSV file (creating its folder); returns the number of data rows written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count
