"""The command line tells truthflow's CSV files from exports without loading the export readers: its names and its
sniffing must be those of the readers, and a CSV file must come out of the quick path as out of the readers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from truthflow import answer_formats
from truthflow.annotation_imports import answer_sources
from truthflow.cli import main

EXPORTS = Path(__file__).parent / "exports"


def test_the_option_names_and_help_are_the_readers():
    for name in ("CSV_FORMAT", "ANSWER_FORMATS", "ANSWERS_HELP", "BOX_COLUMNS_HELP", "FORMAT_HELP"):
        assert getattr(answer_formats, name) == getattr(answer_sources, name), name


CSV_LIKE = {
    "plain.csv": b"item,worker,label\na,w1,x\n",
    "bom.csv": b"\xef\xbb\xbfitem,worker,label\na,w1,x\n",
    "tabs.tsv": b"item\tworker\tlabel\na\tw1\tx\n",
    "ls_tabs.tsv": b"id\tannotator\tchoice\n1\t2\tx\n",
    "ls.csv": b'"id","annotator","choice"\n1,2,x\n',
    "blank_then_json.json": b'\n\n  \t{"images": []}',
    "xml.xml": b"\xef\xbb\xbf  <annotations/>",
    "list.json": b"[]",
    "empty.csv": b"",
    "only_blanks.csv": b" \n\t\r\n",
    "not_utf8.csv": b"item,worker,label\n\xff,w,x\n",
    "bad_quote.csv": b'"item,worker,label\n',
}


@pytest.mark.parametrize("path", sorted(EXPORTS.iterdir()), ids=lambda path: path.name)
def test_exports_are_sniffed_as_the_readers_sniff_them(path):
    assert answer_formats.is_answer_csv(path) == (answer_sources._sniffed_format(path) == "csv")


@pytest.mark.parametrize("name", sorted(CSV_LIKE))
def test_text_files_are_sniffed_as_the_readers_sniff_them(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(CSV_LIKE[name])
    assert answer_formats.is_answer_csv(path) == (answer_sources._sniffed_format(path) == "csv")


def test_csv_files_give_the_warnings_and_counts_the_readers_give(tmp_path, capsys):
    first = tmp_path / "a.csv"
    first.write_text("item,worker,label\ni1,w1,x\ni1,w1,y\ni2,w2,y\n", encoding="utf-8")
    second = tmp_path / "b.csv"
    second.write_text("item,worker,label\ni2,w2,x\ni3,w1,x\n", encoding="utf-8")
    out = tmp_path / "o.csv"
    assert main(["consolidate", "--answers", str(first), "--answers", str(second), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    classes, report = answer_sources.read_label_sources([first, second])
    expected = answer_sources.import_warnings(report, 0, "item")
    assert captured.err.splitlines() == [f"truthflow: {line}" for line in expected]
    assert f"from {len(classes.items)} answers" in captured.out  # repeats counted once, as the readers count them


def test_consolidating_csv_files_never_loads_the_export_readers(tmp_path):
    answers = tmp_path / "answers.csv"
    answers.write_text("item,worker,label\na,w1,x\na,w2,x\nb,w1,y\n", encoding="utf-8")
    probe = (
        "import sys; from truthflow.cli import main; "
        f"status = main(['consolidate', '--answers', {str(answers)!r}, '--out', {str(tmp_path / 'o.csv')!r}]); "
        "loaded = [name for name in sys.modules if name.startswith('truthflow.annotation_imports')]; "
        "print(status, loaded)"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert completed.stdout.splitlines()[-1] == "0 []"
