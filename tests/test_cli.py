"""The ``truthflow`` command as a user runs it: files in, files out, clear errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

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
