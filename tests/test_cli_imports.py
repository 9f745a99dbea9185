"""``truthflow consolidate`` / ``consolidate-boxes`` on tool exports: several files, formats told or detected."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from truthflow.cli import main

EXPORTS = Path(__file__).parent / "exports"
# The scene the box fixtures were drawn on (pixels): what consolidation should find.
TRUTH = {
    "desk_01.jpg": {"pen": (100, 200, 300, 60), "pencil": (600, 400, 200, 50)},
    "desk_02.jpg": {"eraser": (500, 300, 120, 80)},
    "desk_03.jpg": {},
}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def answers(*names: str) -> list[str]:
    arguments = []
    for name in names:
        arguments += ["--answers", str(EXPORTS / name)]
    return arguments


def test_boxes_from_label_studio_cvat_and_coco_together(tmp_path, capsys):
    out = tmp_path / "boxes.csv"
    files = answers("label_studio_boxes.json", "cvat_job_dana.xml", "coco_erin.json", "cvat_task.xml")
    assert main(["consolidate-boxes", *files, "--out", str(out)]) == 0
    rows = read_csv(out)
    assert [row["image"] for row in rows].count("desk_03.jpg") == 1  # one row per image, even without a box
    found = {}
    for row in rows:
        if row["label"]:
            box = tuple(float(row[key]) for key in ("left", "top", "width", "height"))
            found.setdefault(row["image"], {})[row["label"]] = box
        else:
            assert all(row[key] == "" for key in ("left", "top", "width", "height", "confidence"))
    assert set(found) == {"desk_01.jpg", "desk_02.jpg"}
    for image, objects in TRUTH.items():
        assert set(found.get(image, {})) == set(objects)
        for label, box in objects.items():
            assert found[image][label] == pytest.approx(box, abs=3)
    captured = capsys.readouterr()
    assert "3 images, 3 consolidated boxes" in captured.out
    assert "label_studio_boxes.json (label-studio JSON): 4 tasks, 3 workers, 9 answers" in captured.err
    assert "1 cancelled annotations skipped" in captured.err
    assert "cvat_job_dana.xml (cvat job export)" in captured.err and "ignored 1 mask, 1 polygon, 1 tag" in captured.err


def test_classes_from_a_label_studio_api_export_and_a_cvat_job(tmp_path, capsys):
    out = tmp_path / "labels.csv"
    assert main(["consolidate", *answers("label_studio_classes.json", "cvat_job_tags.xml"), "--out", str(out)]) == 0
    labels = {row["item"]: row["label"] for row in read_csv(out)}
    assert labels == {"photo_01.jpg": "pen", "photo_02.jpg": "pencil", "photo_03.jpg": "eraser", "photo_04.jpg": "pen"}
    err = capsys.readouterr().err
    assert (
        "warning: " + str(EXPORTS / "label_studio_classes.json") + " task 4 annotation 22: class: several choices"
    ) in err


def test_formats_given_once_or_per_file(tmp_path, capsys):
    out = tmp_path / "o.csv"
    csv_answers = tmp_path / "more.csv"
    csv_answers.write_text("image,worker,label,left,top,width,height\ndesk_02.jpg,zoe,eraser,501,300,119,80\n")
    arguments = [*answers("label_studio_boxes_min.json"), "--answers", str(csv_answers)]
    assert (
        main(["consolidate-boxes", *arguments, "--format", "label-studio", "--format", "csv", "--out", str(out)]) == 0
    )
    assert {row["image"] for row in read_csv(out)} == {"desk_01.jpg", "desk_02.jpg", "desk_03.jpg"}
    assert main(["consolidate-boxes", *answers("coco_erin.json"), "--format", "coco", "--out", str(out)]) == 0
    capsys.readouterr()
    code = main(
        [
            "consolidate-boxes",
            *arguments,
            *answers("coco_erin.json"),
            "--format",
            "coco",
            "--format",
            "csv",
            "--out",
            str(out),
        ]
    )
    assert code == 2
    assert "--format given 2 times for 3 --answers files" in capsys.readouterr().err
    assert main(["consolidate-boxes", *answers("label_studio_boxes.json"), "--format", "cvat", "--out", str(out)]) == 2
    assert "label_studio_boxes.json: expected CVAT XML, the file is json" in capsys.readouterr().err


def test_a_csv_export_without_its_extension_is_still_detected(tmp_path):
    copy = tmp_path / "export_download"
    shutil.copy(EXPORTS / "label_studio_classes.csv", copy)
    out = tmp_path / "o.csv"
    assert main(["consolidate", "--answers", str(copy), "--out", str(out)]) == 0
    assert len(read_csv(out)) == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"name": "unknown"}', "odd.json: cannot tell the format of a JSON object with keys name"),
        ('[{"id": 1, "data": {"image": "a.jpg"}, "annotations": [', "odd.json line 1: not valid JSON"),
        ("[]", "odd.json: no usable answers"),
        (
            '[{"id": 1, "data": {}, "annotations": []}]',
            "odd.json task 1: data: cannot tell which field holds the image",
        ),
        ("<!DOCTYPE x [<!ENTITY a 'b'>]><annotations/>", "odd.json: a document type declaration"),
    ],
)
def test_unreadable_exports_stop_with_a_message_naming_the_file(tmp_path, capsys, content, message):
    answers_file = tmp_path / "odd.json"
    answers_file.write_text(content)
    out = tmp_path / "o.csv"
    assert main(["consolidate-boxes", "--answers", str(answers_file), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_assignments_add_empty_answers_to_imported_ones(tmp_path):
    assignments = tmp_path / "assignments.csv"
    # Three more workers saw desk_01 and drew nothing: the pencil (3 of 4 boxers) falls below half of 7 workers.
    assignments.write_text("image,worker\ndesk_01.jpg,x1\ndesk_01.jpg,x2\ndesk_01.jpg,x3\ndesk_05.jpg,x1\n")
    out = tmp_path / "o.csv"
    code = main(
        ["consolidate-boxes", *answers("label_studio_boxes.json"), "--assignments", str(assignments), "--out", str(out)]
    )
    assert code == 0
    rows = read_csv(out)
    assert [row["label"] for row in rows if row["image"] == "desk_01.jpg"] == ["pen"]
    assert [row["label"] for row in rows if row["image"] == "desk_05.jpg"] == [""]
