"""The ``truthflow`` command as a user runs it: files in, files out, clear errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from truthflow import tables
from truthflow.cli import main


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("method", [None, "ds", "mv", "onecoin"])
def test_consolidate_writes_one_row_per_answered_item(tmp_path, method, capsys):
    answers = write(
        tmp_path / "answers.csv",
        "item,worker,label\nimg1,w1,owl\nimg1,w2,owl\nimg1,w3,falcon\nimg2,w1,falcon\nimg2,w2,falcon\nimg3,w3,owl\n",
    )
    out = tmp_path / "labels.csv"
    args = ["consolidate", "--answers", str(answers), "--out", str(out)] + (["--method", method] if method else [])
    assert main(args) == 0
    rows = read_csv(out)
    assert [row["item"] for row in rows] == ["img1", "img2", "img3"]
    assert {row["item"]: row["label"] for row in rows} == {"img1": "owl", "img2": "falcon", "img3": "owl"}
    assert all(0 < float(row["confidence"]) <= 1 for row in rows)
    assert "3 items consolidated" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "answers.csv: the file is empty; expected a header with columns item, worker, label"),
        ("item,worker\na,w\n", "answers.csv line 1: missing column(s) label; the header has item, worker"),
        ("item,worker,label\n", "answers.csv: no answers after the header"),
        ("item,worker,label\na,w,x\nb,,y\n", "answers.csv line 3: empty worker"),
        ("item,worker,label\na,w\n", "answers.csv line 2: 2 values, the header has 3"),
    ],
)
def test_consolidate_bad_input_names_file_line_and_problem(tmp_path, content, message, capsys):
    answers = write(tmp_path / "answers.csv", content)
    assert main(["consolidate", "--answers", str(answers), "--out", str(tmp_path / "o.csv")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_missing_answers_file_is_named(tmp_path, capsys):
    assert main(["consolidate", "--answers", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.csv")]) == 2
    assert "nope.csv: no such file" in capsys.readouterr().err


def test_duplicate_answers_keep_the_last_and_warn(tmp_path, capsys):
    answers = write(tmp_path / "answers.csv", "item,worker,label\na,w1,x\na,w1,y\na,w2,y\n")
    out = tmp_path / "o.csv"
    assert main(["consolidate", "--answers", str(answers), "--out", str(out), "--method", "mv"]) == 0
    assert "1 repeated (item, worker) answers; kept each worker's last answer" in capsys.readouterr().err
    assert read_csv(out) == [{"item": "a", "label": "y", "confidence": "1.000000"}]


BOXES = (
    "image,worker,label,left,top,width,height\n"
    "im1,w1,pen,10,10,50,20\n"
    "im1,w2,pen,12,11,49,21\n"
    "im1,w3,pen,11,9,51,19\n"
    "im2,w1,pencil,100,100,30,30\n"
)


def test_consolidate_boxes_accounts_for_every_image(tmp_path, capsys):
    answers = write(tmp_path / "boxes.csv", BOXES)
    assignments = write(
        tmp_path / "assignments.csv", "image,worker\nim1,w1\nim1,w2\nim1,w3\nim2,w1\nim2,w2\nim2,w3\nim3,w1\n"
    )
    out = tmp_path / "out.csv"
    assert (
        main(["consolidate-boxes", "--answers", str(answers), "--assignments", str(assignments), "--out", str(out)])
        == 0
    )
    rows = read_csv(out)
    by_image = {row["image"]: row for row in rows}
    assert set(by_image) == {"im1", "im2", "im3"}
    assert by_image["im1"]["label"] == "pen"
    # Consolidated edges sit among the three workers' (10-12 left, 49-51 wide).
    assert float(by_image["im1"]["left"]) == pytest.approx(11, abs=0.5)
    assert float(by_image["im1"]["width"]) == pytest.approx(50, abs=0.5)
    # One worker of three drew a pencil on im2: the two empty answers outvote it. Nobody boxed im3.
    assert by_image["im2"]["label"] == "" and by_image["im3"]["label"] == ""
    assert "3 images" in capsys.readouterr().out


def test_consolidate_boxes_rejects_a_non_numeric_coordinate(tmp_path, capsys):
    answers = write(tmp_path / "boxes.csv", "image,worker,label,left,top,width,height\nim1,w1,pen,10,ten,5,5\n")
    assert main(["consolidate-boxes", "--answers", str(answers), "--out", str(tmp_path / "o.csv")]) == 2
    assert "boxes.csv line 2: top 'ten' is not a number" in capsys.readouterr().err


def test_consolidate_boxes_reports_impossible_boxes(tmp_path, capsys):
    answers = write(
        tmp_path / "boxes.csv",
        "image,worker,label,left,top,width,height\nim1,w1,pen,10,10,0,5\nim1,w2,pen,10,10,40,40\nim1,w3,pen,11,10,40,40\n",
    )
    out = tmp_path / "o.csv"
    assert main(["consolidate-boxes", "--answers", str(answers), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "im1" in err and "w1" in err and "rejected" in err
    assert [row["label"] for row in read_csv(out)] == ["pen"]


# --- hostile files: every failure exits 2 naming the file, the line and the problem, and nothing is lost ----------

HEADER = b"item,worker,label\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (HEADER + b"a,w1,x\nb,w2,caf\xe9\n", "answers.csv line 3: not UTF-8 text (byte 0xe9 at byte 9 of the line)"),
        (b"\xff\xfei\x00t\x00e\x00m\x00\n\x00", "answers.csv line 1: the file is UTF-16 text; save it as UTF-8"),
        (HEADER + b"a,w1,x\nb,w2," + b"y" * 140_000 + b"\n", "answers.csv line 3: a value is longer than 131,072"),
        (HEADER + b'a,w1,x\n"b,w2,y\nc,w3,z\nd,w1,x\n', 'answers.csv line 3: a value opened with a double quote (")'),
        (HEADER + b'a,w1,"x"y\n', "answers.csv line 2: not valid CSV"),
        (HEADER + b"a,w1,pen, blue\n", "answers.csv line 2: 4 values, the header has 3 (a value that contains a comma"),
    ],
)
def test_hostile_answer_files_are_clear_errors(tmp_path, capsys, content, message):
    answers = tmp_path / "answers.csv"
    answers.write_bytes(content)
    assert main(["consolidate", "--answers", str(answers), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "o.csv").exists()


def test_an_unclosed_quote_names_the_line_it_opens_on_and_what_it_swallows(tmp_path, capsys):
    answers = tmp_path / "answers.csv"
    answers.write_bytes(HEADER + b'a,w1,x\n"b,w2,y\n' + b"c,w3,z\n" * 5)
    assert main(["consolidate", "--answers", str(answers), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "answers.csv line 3: a value opened with a double quote" in err
    assert "the 6 line(s) to the end of the file would become one value" in err


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_any_line_ending_and_a_utf8_bom_read_every_row(tmp_path, ending):
    rows = [b"item,worker,label", b"a,w1,x", b'"b, the second",w2,"y ""quoted"""', b"", b"c,w3,z"]
    answers = tmp_path / "answers.csv"
    answers.write_bytes(b"\xef\xbb\xbf" + ending.join(rows) + ending)
    out = tmp_path / "o.csv"
    assert main(["consolidate", "--answers", str(answers), "--out", str(out), "--method", "mv"]) == 0
    assert [(row["item"], row["label"]) for row in read_csv(out)] == [
        ("a", "x"),
        ("b, the second", 'y "quoted"'),
        ("c", "z"),
    ]


def test_a_quoted_value_over_several_lines_is_one_value_and_later_lines_keep_their_numbers(tmp_path, capsys):
    answers = write(tmp_path / "answers.csv", 'item,worker,label\n"a\nb",w1,x\nc,,y\n')
    assert main(["consolidate", "--answers", str(answers), "--out", str(tmp_path / "o.csv")]) == 2
    assert "answers.csv line 4: empty worker" in capsys.readouterr().err


def test_trailing_empty_values_are_not_extra_values(tmp_path):
    answers = write(tmp_path / "answers.csv", "item,worker,label\na,w1,x,\nb,w2,y,,\n")
    out = tmp_path / "o.csv"
    assert main(["consolidate", "--answers", str(answers), "--out", str(out)]) == 0
    assert [row["item"] for row in read_csv(out)] == ["a", "b"]


def test_out_equal_to_the_answers_is_refused_and_the_answers_kept(tmp_path, capsys):
    text = "item,worker,label\na,w1,x\nb,w2,y\n"
    answers = write(tmp_path / "answers.csv", text)
    (tmp_path / "link.csv").symlink_to(answers)
    for out in (answers, tmp_path / "link.csv", tmp_path / "sub" / ".." / "answers.csv"):
        assert main(["consolidate", "--answers", str(answers), "--out", str(out)]) == 2
        assert "is the input file" in capsys.readouterr().err
    boxes = write(tmp_path / "boxes.csv", BOXES)
    assignments = write(tmp_path / "assignments.csv", "image,worker\nim1,w1\n")
    arguments = ["consolidate-boxes", "--answers", str(boxes), "--assignments", str(assignments), "--out"]
    assert main([*arguments, str(assignments)]) == 2
    assert f"--out {assignments}: is the input file {assignments}" in capsys.readouterr().err
    assert answers.read_text() == text and boxes.read_text() == BOXES


def test_an_unwritable_out_is_a_clear_error(tmp_path, capsys):
    answers = write(tmp_path / "answers.csv", "item,worker,label\na,w1,x\n")
    blocker = write(tmp_path / "a-file", "")
    assert main(["consolidate", "--answers", str(answers), "--out", str(blocker / "o.csv")]) == 2
    assert main(["consolidate", "--answers", str(answers), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{blocker / 'o.csv'}: cannot write" in err
    assert f"--out {tmp_path}: is a folder" in err
    assert "Traceback" not in err


def test_an_unreadable_answers_file_is_a_clear_error(tmp_path, capsys):
    assert main(["consolidate", "--answers", str(tmp_path), "--out", str(tmp_path / "o.csv")]) == 2
    assert f"{tmp_path}: no such file" in capsys.readouterr().err


def test_repeated_box_rows_count_once_with_a_warning(tmp_path, capsys):
    rows = BOXES.splitlines(keepends=True)
    doubled = write(tmp_path / "boxes.csv", rows[0] + "".join(rows[1:]) * 2 + "im1,w1,pen,10.0,10,50,20.00\n")
    once = write(tmp_path / "once.csv", BOXES)
    outputs = []
    for answers in (once, doubled):
        out = tmp_path / f"{answers.stem}-out.csv"
        assert main(["consolidate-boxes", "--answers", str(answers), "--out", str(out)]) == 0
        outputs.append(read_csv(out))
    assert outputs[0] == outputs[1]
    assert len([row for row in outputs[1] if row["label"] == "pen"]) == 1
    assert "boxes.csv: 5 box row(s) repeat an earlier row exactly" in capsys.readouterr().err


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 7, 1 << 20])
@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_lines_are_read_alike_whatever_the_read_size(tmp_path, monkeypatch, capsys, chunk_bytes, ending):
    monkeypatch.setattr(tables, "_READ_CHUNK_BYTES", chunk_bytes)
    rows = [b"item,worker,label", "é,w1,\u00fc".encode(), b'"two' + ending + b'lines",w2,y', b"c,w3,z"]
    good = tmp_path / "good.csv"
    good.write_bytes(b"\xef\xbb\xbf" + ending.join(rows) + ending)
    out = tmp_path / "o.csv"
    assert main(["consolidate", "--answers", str(good), "--out", str(out), "--method", "mv"]) == 0
    assert [row["item"] for row in read_csv(out)] == ["é", "two" + ending.decode() + "lines", "c"]
    bad = tmp_path / "bad.csv"
    bad.write_bytes(ending.join([*rows, b"d,w\xc3,x"]) + ending)
    assert main(["consolidate", "--answers", str(bad), "--out", str(out)]) == 2
    assert "bad.csv line 6: not UTF-8 text (byte 0xc3 at byte 4 of the line)" in capsys.readouterr().err
