"""CSV tables in and out, with errors that name the file, the row and the problem.

Reading is strict, because a lenient CSV reader loses rows without a word: an unclosed quote turns the rest of the
file into one value, a comma inside an unquoted value shifts the row. So a row with more values than the header (other
than empty trailing ones), a quote that is never closed, a value over :data:`MAX_CELL_CHARS` characters and bytes that
are not UTF-8 each stop the read with the file, the line and the problem. Lines end in ``\\n``, ``\\r\\n`` or ``\\r``.
"""

from __future__ import annotations

import csv
import gc
import io
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import repeat
from pathlib import Path
from typing import BinaryIO

# Python's csv module refuses longer values (its default field_size_limit, which is process-wide: not changed here).
MAX_CELL_CHARS = 131_072
_READ_CHUNK_BYTES = 1 << 20
# Characters of whole lines split at a time by the plain-file path of read_columns (a bounded working set).
_FAST_CHARS = 1 << 22
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class InputError(ValueError):
    """Bad user input; the message names the input and the problem and is meant to be shown as is."""


def read_rows(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` for each data row of a CSV file with a header.

    Raises ``InputError`` for a missing, unreadable, empty or non-UTF-8 file, a header without the required columns,
    a row with fewer values than the header or more (unless the extra ones are empty), an empty required value, an
    unclosed quote or an oversized value. Line numbers are the line a row starts on, counting the header as line 1,
    as an editor shows them. Blank lines are not rows.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        handle = path.open("rb")
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error})") from None
    with handle:
        yield from read_rows_from(path, handle, required)


def read_rows_from(name: str | Path, handle: BinaryIO, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """:func:`read_rows` on an open binary stream (e.g. an S3 object's bytes); ``name`` names it in every error."""
    lines = _decoded_lines(name, handle)
    reader = csv.reader(lines, strict=True)
    records = _records(name, reader)
    first = next(records, None)
    if first is None or not any(cell.strip() for cell in first[1]):
        raise InputError(f"{name}: the file is empty; expected a header with columns {', '.join(required)}")
    columns = [cell.strip() for cell in first[1]]
    missing = [column for column in required if column not in columns]
    if missing:
        raise InputError(
            f"{name} line {first[0]}: missing column(s) {', '.join(missing)}; the header has {', '.join(columns)}"
        )
    positions = {column: columns.index(column) for column in required}
    for line_number, cells in records:
        if not cells or not any(cell.strip() for cell in cells):
            continue
        if len(cells) < len(columns):
            raise InputError(f"{name} line {line_number}: {len(cells)} values, the header has {len(columns)}")
        if len(cells) > len(columns) and any(cell.strip() for cell in cells[len(columns) :]):
            raise InputError(
                f"{name} line {line_number}: {len(cells)} values, the header has {len(columns)} "
                "(a value that contains a comma must be in double quotes)"
            )
        row = {column: cells[position].strip() for column, position in positions.items()}
        empty = [column for column, value in row.items() if value == ""]
        if empty:
            raise InputError(f"{name} line {line_number}: empty {', '.join(empty)}")
        yield line_number, row


def read_columns(path: Path, required: Sequence[str]) -> list[list[str]]:
    """The ``required`` columns of a CSV file with a header, one list of values per column (in ``required`` order,
    one entry per data row, values stripped), checked exactly as :func:`read_rows` checks them.

    Most answer files are plain: UTF-8 without double quotes, every line with as many values as the header. Those are
    split with ``str.split``, about :data:`_FAST_CHARS` characters of whole lines at a time; anything else (a quote,
    a blank, short or long line, an empty value, a long line, a byte that is not UTF-8, a missing column) is read
    again by :func:`read_rows`, which accepts it or raises the error that names file, line and problem.
    """
    with garbage_collection_paused():
        columns = _plain_columns(path, required)
        if columns is not None:
            return columns
        columns = [[] for _ in required]
        for _, row in read_rows(path, required):
            for values, name in zip(columns, required, strict=True):
                values.append(row[name])
        return columns


@contextmanager
def garbage_collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large file is read. Parsing creates millions of small strings and
    containers, none of them in reference cycles; with the collector running, its repeated passes over the growing heap
    took more time than the parsing itself (measured: ``make bench``, annotation imports and the CSV reader).
    Reference counting still frees everything; the collector is switched back on (if it was on) afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _plain_columns(path: Path, required: Sequence[str]) -> list[list[str]] | None:
    """:func:`read_columns` for a plain file (see there); ``None`` for any other, or one that cannot be read."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    # A quote needs the csv module; a NUL byte is left to its checks.
    if b'"' in data or b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    del data
    if "\r" in text:  # \r\n and a lone \r end a line, as for the csv module
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    header_end = text.find("\n")
    header = [cell.strip() for cell in (text if header_end < 0 else text[:header_end]).split(",")]
    if not any(header) or any(name not in header for name in required):
        return None
    width = len(header)
    positions = [header.index(name) for name in required]
    columns: list[list[str]] = [[] for _ in required]
    start = len(text) if header_end < 0 else header_end + 1
    while start < len(text):
        # Whole lines: up to the last line end within the chunk (or the end of the text).
        cut = text.rfind("\n", start, start + _FAST_CHARS) + 1 if start + _FAST_CHARS < len(text) else len(text)
        if cut <= start:
            return None  # a line longer than the chunk: far over the cell limit, or the strict reader's to judge
        chunk = text[start:cut].removesuffix("\n")
        start = cut
        lines = chunk.split("\n")
        # Every line has width - 1 commas (a blank, short or long line does not) and no line nears the cell limit.
        if set(map(str.count, lines, repeat(","))) != {width - 1} or max(map(len, lines)) > MAX_CELL_CHARS:
            return None
        cells = chunk.replace("\n", ",").split(",")
        for values, position in zip(columns, positions, strict=True):
            stripped = list(map(str.strip, cells[position::width]))
            if "" in stripped:
                return None
            values.extend(stripped)
    return columns


def _records(path: str | Path, reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """``(first line, cells)`` per CSV record; the csv module's errors become ``InputError`` naming the line."""
    while True:
        start = reader.line_num + 1  # type: ignore[attr-defined]
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise InputError(f"{path} line {start}: {_csv_problem(str(error), reader.line_num - start)}") from None  # type: ignore[attr-defined]
        yield start, cells


def _csv_problem(message: str, extra_lines: int) -> str:
    if message == "unexpected end of data":
        return (
            f'a value opened with a double quote (") is never closed: the {extra_lines + 1} line(s) to the end of '
            'the file would become one value (close the quote, or write a quote inside a value as "")'
        )
    if message.startswith("field larger than field limit"):
        return (
            f"a value is longer than {MAX_CELL_CHARS:,} characters, the limit for one cell "
            "(often a double quote that is never closed)"
        )
    return f"not valid CSV ({message})"


def _decoded_lines(path: str | Path, handle: BinaryIO) -> Iterator[str]:
    """The file's lines (each with its line end) decoded as UTF-8 a chunk of whole lines at a time, so that a bad
    byte is reported with its line. A UTF-8 byte-order mark is dropped; a UTF-16 one is named."""
    pending = b""
    lines_before = 0
    first = True
    while True:
        chunk = handle.read(_READ_CHUNK_BYTES)
        data = pending + chunk
        if first:
            if chunk and len(data) < len(_UTF8_BOM):
                pending = data  # too short to tell whether the file starts with a byte-order mark
                continue
            if data.startswith(_UTF16_BOMS):
                raise InputError(f"{path} line 1: the file is UTF-16 text; save it as UTF-8 (CSV UTF-8)")
            data = data.removeprefix(_UTF8_BOM)
            first = False
        cut = _after_last_line_end(data) if chunk else len(data)
        complete, pending = data[:cut], data[cut:]
        try:
            text = complete.decode("utf-8")
        except UnicodeDecodeError as error:
            before = complete[: error.start]
            line_start = max(before.rfind(b"\n"), before.rfind(b"\r")) + 1
            raise InputError(
                f"{path} line {lines_before + _line_ends(before) + 1}: not UTF-8 text (byte "
                f"0x{complete[error.start]:02x} at byte {error.start - line_start + 1} of the line); "
                "save the file as UTF-8"
            ) from None
        lines_before += _line_ends(complete)
        # newline="": lines end at \n, \r\n or \r and keep their ends, as the csv module wants them.
        yield from io.StringIO(text, newline="")
        if not chunk:
            return


def _after_last_line_end(data: bytes) -> int:
    """The offset just past the last line end of ``data`` that is certainly complete (a final ``\r`` may be the
    first half of ``\r\n``); 0 when there is none."""
    newline, carriage = data.rfind(b"\n"), data.rfind(b"\r")
    if carriage == len(data) - 1:
        carriage = data.rfind(b"\r", 0, carriage)
    return max(newline, carriage) + 1


def _line_ends(data: bytes) -> int:
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def parse_number(path: Path, line_number: int, column: str, text: str) -> float:
    """A finite float, or ``InputError`` naming the cell."""
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{path} line {line_number}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{path} line {line_number}: {column} {text!r} is not a finite number")
    return value


def check_output_path(out: Path, inputs: Iterable[Path | None]) -> None:
    """Refuse an output that is one of the inputs (same path or same file through a link) or a folder, before any
    work is done: writing it would destroy the input, or fail only at the end."""
    for given in inputs:
        if given is None:
            continue
        same = os.path.abspath(out) == os.path.abspath(given)
        if not same and out.exists() and given.exists():
            try:
                same = os.path.samefile(out, given)
            except OSError:
                same = False
        if same:
            raise InputError(f"--out {out}: is the input file {given}; write the result to another file")
    if out.is_dir():
        raise InputError(f"--out {out}: is a folder; name the CSV file to write")


def write_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Write a CSV file (creating its folder); returns the number of data rows written. A file that cannot be
    written is an ``InputError`` naming it and the reason."""
    count = 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for row in rows:
                writer.writerow(row)
                count += 1
    except OSError as error:
        raise InputError(f"{path}: cannot write ({error.strerror or error})") from None
    return count
