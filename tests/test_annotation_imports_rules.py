"""Rules across export files: who is who, repeated answers, labels, image names and sizes, formats, geometry."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from truthflow.annotation_imports import (
    ExportError,
    ExportFile,
    decode,
    detect_format,
    image_file_name,
    read_annotation_exports,
)
from truthflow.annotation_imports.geometry import bounds_rotated_about_center, bounds_rotated_about_corner
from truthflow.annotation_imports.model import MAX_KEPT_PROBLEMS

EXPORTS = Path(__file__).parent / "exports"


def fixture(file_name: str) -> bytes:
    return (EXPORTS / file_name).read_bytes()


def boxes(task_type: str = "bounding-box", *files: ExportFile, **options):
    return read_annotation_exports(list(files), task_type=task_type, **options)


def ls_task(task_id, image, completed_by, result):
    return {
        "id": task_id,
        "data": {"image": image},
        "annotations": [{"id": task_id, "completed_by": completed_by, "result": result}],
    }


def ls_box(label, x, y, w, h, size=(1280, 960)):
    return {
        "original_width": size[0],
        "original_height": size[1],
        "type": "rectanglelabels",
        "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [label]},
    }


def test_an_email_is_one_person_across_tools_and_local_ids_stay_apart():
    # The same person (dana) in a Label Studio API export and as a CVAT job's assignee: one worker, last answer counts.
    ls = [ls_task(1, "/data/upload/4/ab12cd34-desk_01.jpg", {"id": 1, "email": "dana@example.com"}, [])]
    first = ExportFile("ls_api.json", json.dumps(ls).encode())
    imported = boxes("bounding-box", first, ExportFile("job_7.xml", fixture("cvat_job_dana.xml")))
    desk_01 = imported.images[0]
    assert [answer.worker for answer in desk_01.answers] == ["dana@example.com"]
    assert len(desk_01.answers[0].boxes) == 2  # the CVAT answer, read last, replaced the empty one
    assert imported.report.repeated_answers == 1
    # Two Label Studio instances both call their first user 1: two workers.
    a = ExportFile("team_a.json", json.dumps([ls_task(1, "desk_01.jpg", 1, [])]).encode())
    b = ExportFile("team_b.json", json.dumps([ls_task(1, "desk_01.jpg", 1, [])]).encode())
    assert [answer.worker for answer in boxes("bounding-box", a, b).images[0].answers] == [
        "team_a.json#1",
        "team_b.json#1",
    ]


def test_a_replayed_file_changes_nothing_but_the_repeated_count():
    once = boxes("bounding-box", ExportFile("ls.json", fixture("label_studio_boxes.json")))
    twice = boxes("bounding-box", *[ExportFile("ls.json", fixture("label_studio_boxes.json"))] * 2)
    assert twice.images == once.images
    assert twice.report.repeated_answers == 9


def test_labels_outside_the_job_are_dropped_and_counted():
    imported = boxes(
        "bounding-box", ExportFile("ls.json", fixture("label_studio_boxes.json")), labels=["pen", "pencil"]
    )
    desk_02 = imported.images[1]
    assert all(answer.boxes == () for answer in desk_02.answers)  # erasers are not the job's
    assert imported.report.unknown_labels == {"eraser": 3}
    classes = boxes(
        "image-classification", ExportFile("c.json", fixture("label_studio_classes.json")), labels=["pen", "pencil"]
    )
    assert "eraser" not in classes.classes.labels
    assert classes.report.unknown_labels["eraser"] == 2


def test_answers_on_images_outside_the_known_images_are_listed_not_used():
    imported = boxes(
        "bounding-box",
        ExportFile("ls.json", fixture("label_studio_boxes.json")),
        known_images={"desk_01.jpg", "desk_02.jpg"},
    )
    assert [image.image for image in imported.images] == ["desk_01.jpg", "desk_02.jpg"]
    assert imported.report.unmatched_images == {"desk_03.jpg": "/data/upload/3/0f1e2d3c-desk_03.jpg"}
    assert any("desk_03.jpg" in line for line in imported.report.summary_lines())


def test_boxes_drawn_on_a_smaller_copy_are_scaled_to_the_image():
    big = ExportFile("ls.json", json.dumps([ls_task(1, "a.jpg", 1, [ls_box("pen", 10, 10, 10, 10)])]).encode())
    small_xml = (
        b'<annotations><meta><task/></meta><image id="0" name="a.jpg" width="640" height="480">'
        b'<box label="pen" xtl="64" ytl="48" xbr="128" ybr="96"/></image></annotations>'
    )
    imported = boxes("bounding-box", big, ExportFile("half.xml", small_xml))
    image = imported.images[0]
    assert (image.width, image.height) == (1280, 960)
    assert [(b.left, b.top, b.width, b.height) for a in image.answers for b in a.boxes] == [
        (128.0, 96.0, 128.0, 96.0),
        (128.0, 96.0, 128.0, 96.0),
    ]
    assert imported.report.rescaled_images == 1
    sized = boxes("bounding-box", big, ExportFile("half.xml", small_xml), image_sizes={"a.jpg": (320.0, 240.0)})
    assert [b.width for a in sized.images[0].answers for b in a.boxes] == [32.0, 32.0]


def test_different_references_with_one_file_name_are_reported():
    xml = (
        b'<annotations><meta><project/></meta><image id="0" name="train/001.jpg" subset="train" task_id="1" '
        b'width="10" height="10"/><image id="1" name="val/001.jpg" subset="val" task_id="2" width="10" '
        b'height="10"/></annotations>'
    )
    imported = boxes("bounding-box", ExportFile("project.xml", xml))
    assert imported.report.shared_names == {"project.xml": ["001.jpg"]}
    assert imported.report.repeated_answers == 1
    assert imported.report.files[0].format == "cvat project export"


def test_problems_are_all_counted_and_the_first_thousand_kept():
    tasks = [{"id": n, "data": {}, "annotations": []} for n in range(1500)]
    imported = boxes("bounding-box", ExportFile("many.json", json.dumps(tasks).encode()))
    report = imported.report.files[0]
    assert (report.n_problems, len(report.problems)) == (1500, MAX_KEPT_PROBLEMS)
    json.dumps(imported.report.to_dict())  # the report serialises for status files


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("/data/upload/3/a1b2c3d4-desk_01.jpg", "desk_01.jpg"),
        ("/data/upload/3/a1b2c3d4-my%20desk.jpg", "my desk.jpg"),
        ("/data/local-files/?d=photos/desk%2001.jpg", "desk 01.jpg"),
        ("s3://bucket/jobs/x/images/desk_01.jpg", "desk_01.jpg"),
        ("s3://bucket/jobs/x/images/50%off.jpg", "50%off.jpg"),
        ("https://bucket.s3.amazonaws.com/img/desk_01.jpg?X-Amz-Signature=ab%2Fc", "desk_01.jpg"),
        ("gs://bucket/a/b.png", "b.png"),
        ("images\\1a2b3c4d-desk_01.jpg", "desk_01.jpg"),
        ("photos/desk_01.jpg", "desk_01.jpg"),
        ("3f2a9c1b-4e5d-11ee-be56-0242ac120002.jpg", "3f2a9c1b-4e5d-11ee-be56-0242ac120002.jpg"),
        ("deadbeef-.jpg", ".jpg"),
        ("A1B2C3D4-desk.jpg", "A1B2C3D4-desk.jpg"),
        ("bare.jpg", "bare.jpg"),
    ],
)
def test_image_references_reduce_to_file_names(reference, name):
    assert image_file_name(reference) == name


@pytest.mark.parametrize("reference", ["", "  ", "s3://bucket/", "data:image/png;base64,AAAA", "https://host/dir/"])
def test_references_without_a_file_name_are_errors(reference):
    with pytest.raises(ValueError):
        image_file_name(reference)


def naive_bounds(left, top, width, height, degrees, pivot):
    a = math.radians(degrees)
    px, py = (left, top) if pivot == "corner" else (left + width / 2, top + height / 2)
    corners = [(left, top), (left + width, top), (left, top + height), (left + width, top + height)]
    xs = [px + (x - px) * math.cos(a) - (y - py) * math.sin(a) for x, y in corners]
    ys = [py + (x - px) * math.sin(a) + (y - py) * math.cos(a) for x, y in corners]
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


def test_rotated_bounds_match_turning_the_corners():
    assert bounds_rotated_about_corner(10, 20, 30, 40, 90) == pytest.approx((-30, 20, 40, 30))
    assert bounds_rotated_about_center(10, 20, 30, 40, 90) == pytest.approx((5, 25, 40, 30))
    rng = random.Random(3)
    for _ in range(200):
        box = (rng.uniform(-50, 500), rng.uniform(-50, 500), rng.uniform(0.1, 300), rng.uniform(0.1, 300))
        degrees = rng.uniform(-720, 720)
        assert bounds_rotated_about_corner(*box, degrees) == pytest.approx(naive_bounds(*box, degrees, "corner"))
        assert bounds_rotated_about_center(*box, degrees) == pytest.approx(naive_bounds(*box, degrees, "center"))


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("label_studio_boxes.json", "label-studio"),
        ("label_studio_boxes_min.json", "label-studio"),
        ("label_studio_boxes.csv", "label-studio"),
        ("cvat_job_dana.xml", "cvat"),
        ("coco_erin.json", "coco"),
        ("groundtruth_output.manifest", "groundtruth"),
    ],
)
def test_formats_are_told_apart_by_content(file_name, expected):
    assert detect_format(file_name, decode(file_name, fixture(file_name))) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"name": "x"}', r"cannot tell the format of a JSON object with keys name .* give --format"),
        (b"\xff\xfe[]", r"not UTF-8 text"),
        (b"[" + b"9" * 5000 + b"]", r"not readable JSON"),
    ],
)
def test_undetectable_or_unreadable_content_is_an_error_naming_the_file(data, message):
    with pytest.raises(ExportError, match="odd.json: " + message):
        detect_format("odd.json", decode("odd.json", data))


def test_a_given_format_that_does_not_fit_the_content_says_so():
    with pytest.raises(ExportError, match=r"ls.json: expected CVAT XML, the file is json"):
        read_annotation_exports(
            [ExportFile("ls.json", fixture("label_studio_boxes.json"), "cvat")], task_type="bounding-box"
        )
    with pytest.raises(ExportError, match=r"plain.txt: not an export truthflow reads"):
        read_annotation_exports([ExportFile("plain.txt", b"item,worker,label\n")], task_type="bounding-box")


def test_an_unreadable_file_leaves_the_collector_as_it_was():
    from truthflow.annotation_imports import AnswerCollector

    collector = AnswerCollector(task_type="bounding-box")
    collector.add_file(ExportFile("ls.json", fixture("label_studio_boxes.json")))
    with pytest.raises(ExportError):
        collector.add_file(ExportFile("bad.xml", b"<annotations><image name='a.jpg'>"))
    assert [file.name for file in collector.report.files] == ["ls.json"]
    assert len(collector.result().images) == 3
