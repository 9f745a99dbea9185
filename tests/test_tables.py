"""The column reader's plain-file path reads exactly what the strict row reader reads, and fails exactly as it does."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from truthflow.tables import InputError, read_columns, read_rows

REQUIRED = ("item", "worker", "label")


def _by_rows(path: Path) -> list[list[str]] | str:
    try:
        rows = [row for _, row in read_rows(path, REQUIRED)]
    except InputError as error:
        return str(error)
    return [[row[name] for row in rows] for name in REQUIRED]


def _by_columns(path: Path) -> list[list[str]] | str:
    try:
        return read_columns(path, REQUIRED)
    except InputError as error:
        return str(error)


cells = st.text(alphabet=st.sampled_from(list('ab é,"\r\n\t\x00\u2028')), max_size=6)
headers = st.sampled_from(["item,worker,label", "label,item,worker,extra", " item , worker,label", "item,label", ""])
line_ends = st.sampled_from(["\n", "\r\n", "\r"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=headers,
    rows=st.lists(st.lists(cells, min_size=0, max_size=5), max_size=6),
    end=line_ends,
    bom=st.booleans(),
    final_end=st.booleans(),
)
def test_the_column_reader_agrees_with_the_row_reader(tmp_path, header, rows, end, bom, final_end):
    text = end.join([header, *(",".join(row) for row in rows)]) + (end if final_end else "")
    path = tmp_path / "answers.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    assert _by_columns(path) == _by_rows(path)


@pytest.mark.parametrize(
    "content",
    [
        b"item,worker,label\ni1,w1,a\ni2,w2,b\n",  # plain: the fast path
        b"item,worker,label\r\ni1,w1,a\r\ni2,w2,b",
        b'item,worker,label\ni1,w1,"a, b"\n',  # quoted: the csv module
        b"item,worker,label\ni1,w1,a\n\ni2,w2,b\n",  # a blank line
        b"item,worker,label,note\ni1,w1,a,\ni2,w2,b,x,\n",  # trailing empty value
        b"item,worker,label\ni1,w1,\xff\n",  # not UTF-8
        b"item,worker\ni1,w1\n",  # a missing column
        b"item,worker,label\ni1,,a\n",  # an empty value
        b"\xff\xfei\x00t\x00",  # UTF-16
        b"",
    ],
)
def test_plain_and_awkward_files_read_alike(tmp_path, content):
    path = tmp_path / "answers.csv"
    path.write_bytes(content)
    assert _by_columns(path) == _by_rows(path)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_columns(tmp_path / "nothing.csv", REQUIRED)


@pytest.mark.parametrize("chars_at_a_time", [3, 12, 25, 40])
@pytest.mark.parametrize("bad_row", [None, 4])
def test_every_chunk_of_lines_is_checked(tmp_path, monkeypatch, chars_at_a_time, bad_row):
    monkeypatch.setattr("truthflow.tables._FAST_CHARS", chars_at_a_time)
    rows = [f"i{n},w{n % 3}, {n % 2} " for n in range(7)]
    if bad_row is not None:
        rows[bad_row] = "i9,w9"  # a short row in a later chunk: line 6
    path = tmp_path / "answers.csv"
    path.write_text("item,worker,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    result = _by_columns(path)
    assert result == _by_rows(path)
    if bad_row is None:
        assert result == [[f"i{n}" for n in range(7)], [f"w{n % 3}" for n in range(7)], [str(n % 2) for n in range(7)]]
    else:
        assert result == f"{path} line 6: 2 values, the header has 3"
