"""Label Studio exports (JSON, JSON_MIN, CSV) read into consolidation inputs, from fixtures shaped like the tool's."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from truthflow.annotation_imports import ExportError, ExportFile, read_annotation_exports

EXPORTS = Path(__file__).parent / "exports"
W, H = 1280, 960


def read(name: str, data: bytes, task_type: str = "bounding-box", **options):
    return read_annotation_exports([ExportFile(name, data)], task_type=task_type, **options)


def fixture(file_name: str) -> bytes:
    return (EXPORTS / file_name).read_bytes()


def boxes_by_answer(imported) -> dict[tuple[str, str], list[tuple]]:
    return {
        (image.image, answer.worker.rsplit("#", 1)[-1]): sorted(
            (box.label, round(box.left, 6), round(box.top, 6), round(box.width, 6), round(box.height, 6))
            for box in answer.boxes
        )
        for image in imported.images
        for answer in image.answers
    }


def corner_rotation_bounds(left, top, width, height, degrees):
    """Naive reference: rotate the four corners about the top-left corner (y down, clockwise on screen)."""
    a = math.radians(degrees)
    corners = [(0, 0), (width, 0), (0, height), (width, height)]
    xs = [left + u * math.cos(a) - v * math.sin(a) for u, v in corners]
    ys = [top + u * math.sin(a) + v * math.cos(a) for u, v in corners]
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


def test_json_export_boxes_workers_sizes_and_report():
    imported = read("ls.json", fixture("label_studio_boxes.json"))
    assert [image.image for image in imported.images] == ["desk_01.jpg", "desk_02.jpg", "desk_03.jpg"]
    desk_01 = imported.images[0]
    assert (desk_01.width, desk_01.height) == (W, H)
    assert [answer.worker for answer in desk_01.answers] == ["ls.json#1", "ls.json#2", "ls.json#3"]
    first = desk_01.answers[0].boxes
    assert [box.label for box in first] == ["pen", "pencil"]
    assert (first[0].left, first[0].top, first[0].width, first[0].height) == pytest.approx((102, 199, 298, 61))
    # Worker 2 drew the pencil turned by 2.5 degrees about its top-left corner: its axis-aligned bounds are read.
    pencil = desk_01.answers[1].boxes[1]
    expected = corner_rotation_bounds(601, 397, 198, 52, 2.5)
    assert (pencil.left, pencil.top, pencil.width, pencil.height) == pytest.approx(expected)
    desk_03 = {answer.worker: answer.boxes for answer in imported.images[2].answers}
    assert desk_03["ls.json#1"] == () and desk_03["ls.json#2"] == ()  # empty answers: "nothing here"
    assert len(desk_03["ls.json#3"]) == 1
    report = imported.report.files[0]
    assert report.format == "label-studio JSON"
    assert (report.tasks, report.answers, report.cancelled, report.predictions) == (4, 9, 1, 1)
    assert (report.rotated, report.without_answer, report.n_problems) == (1, 1, 0)
    assert dict(report.ignored) == {"polygonlabels": 1, "choices": 1}
    assert report.workers == {"ls.json#1", "ls.json#2", "ls.json#3"}


@pytest.mark.parametrize(
    ("file_name", "format_name"),
    [("label_studio_boxes_min.json", "label-studio JSON_MIN"), ("label_studio_boxes.csv", "label-studio CSV")],
)
def test_json_min_and_csv_give_the_answers_of_the_json_export(file_name, format_name):
    reference = boxes_by_answer(read("ls", fixture("label_studio_boxes.json")))
    imported = read("ls", fixture(file_name))
    assert imported.report.files[0].format == format_name
    assert boxes_by_answer(imported) == reference
    report = imported.report.files[0]
    assert (report.rotated, report.without_answer, report.ignored["polygonlabels"]) == (1, 1, 1)


def test_api_export_names_workers_by_email_and_refuses_a_multi_choice_answer():
    imported = read("classes.json", fixture("label_studio_classes.json"), "image-classification")
    classes = imported.classes
    answers = set(zip(classes.items, classes.workers, classes.labels, strict=True))
    assert ("photo_01.jpg", "ana@example.com", "pen") in answers
    assert ("photo_03.jpg", "ben@example.com", "pen") in answers
    assert len(answers) == 11  # 12 annotations, one of them with two choices
    report = imported.report.files[0]
    assert report.cancelled == 1
    (problem,) = report.problems
    assert str(problem).startswith("classes.json task 4 annotation 22: class: several choices ['pen', 'pencil']")


def test_csv_classes_match_the_json_export():
    from_json = read("ls", fixture("label_studio_classes.json"), "image-classification").classes
    from_csv = read("ls", fixture("label_studio_classes.csv"), "image-classification").classes
    assert set(zip(from_csv.items, from_csv.workers, from_csv.labels, strict=True)) == set(
        zip(from_json.items, from_json.workers, from_json.labels, strict=True)
    )


def task(task_id, annotations, data=None):
    return {
        "id": task_id,
        "data": data or {"image": f"/data/upload/1/0a1b2c3d-{task_id}.jpg"},
        "annotations": annotations,
    }


def region(x=10.0, y=10.0, width=20.0, height=20.0, labels=("pen",), **extra):
    value = {"x": x, "y": y, "width": width, "height": height, "rotation": 0, "rectanglelabels": list(labels)}
    value.update(extra.pop("value", {}))
    return {"original_width": 200, "original_height": 100, "value": value, "type": "rectanglelabels", **extra}


def test_completed_by_as_int_object_email_or_missing():
    tasks = [
        task(
            1,
            [
                {"id": 1, "completed_by": 5, "result": []},
                {"id": 2, "completed_by": {"id": 6, "email": ""}, "result": []},
                {"id": 3, "completed_by": {"id": 7, "email": "Kim@Example.org"}, "result": []},
                {"id": 4, "result": []},
            ],
        )
    ]
    imported = read("a.json", json.dumps(tasks).encode())
    assert [answer.worker for answer in imported.images[0].answers] == ["a.json#5", "a.json#6", "kim@example.org"]
    (problem,) = imported.report.problems
    assert (problem.where, problem.field) == ("task 1 annotation 4", "completed_by")


def test_a_bad_annotation_or_task_is_refused_and_the_rest_is_read():
    tasks = [
        task(
            1,
            [
                {"id": 1, "completed_by": 1, "result": [region()]},
                {"id": 2, "completed_by": 2, "result": [region(value={"x": "abc"})]},
            ],
        ),
        {"id": 2, "annotations": [{"id": 3, "completed_by": 1, "result": []}]},
        task(3, "not a list"),
        task(4, [{"id": 5, "completed_by": 1, "result": [region(labels=("pen", "pencil"))]}]),
        task(5, [{"id": 6, "completed_by": 1, "result": [region(image_rotation=90)]}]),
        task(6, [{"id": 7, "completed_by": 1, "result": [region(value={"rotation": "steep"})]}]),
        task(7, [{"id": 8, "completed_by": 1, "result": [region()]}]),
    ]
    imported = read("bad.json", json.dumps(tasks).encode())
    assert [image.image for image in imported.images] == ["1.jpg", "7.jpg"]
    problems = {(p.where, p.field): p.message for p in imported.report.problems}
    assert problems[("task 1 annotation 2", "result[0].value.x")] == "not a finite number: 'abc'"
    assert problems[("task 2", "data")].startswith("expected an object")
    assert problems[("task 3", "annotations")] == "expected a list, got str"
    assert "several labels" in problems[("task 4 annotation 5", "result[0].value.rectanglelabels")]
    assert ("task 5 annotation 6", "result[0].image_rotation") in problems
    assert ("task 6 annotation 7", "result[0].value.rotation") in problems
    box = imported.images[0].answers[0].boxes[0]
    assert (box.left, box.top, box.width, box.height) == (20.0, 10.0, 40.0, 20.0)  # percent of 200 x 100


def test_percent_boxes_without_image_size_need_the_size_of_the_image():
    without_size = {"value": region()["value"], "type": "rectanglelabels"}
    data = json.dumps([task(1, [{"id": 1, "completed_by": 1, "result": [without_size]}])]).encode()
    refused = read("s.json", data)
    (problem,) = refused.report.problems
    assert (problem.where, problem.field) == ("task 1 annotation 1", "result[0].original_width")
    assert "image size is unknown" in problem.message
    sized = read("s.json", data, image_sizes={"1.jpg": (400.0, 300.0)})
    box = sized.images[0].answers[0].boxes[0]
    assert (box.left, box.top, box.width, box.height) == (40.0, 30.0, 80.0, 60.0)
    assert (sized.images[0].width, sized.images[0].height) == (400.0, 300.0)


def choices(field, *labels):
    return {"from_name": field, "type": "choices", "value": {"choices": list(labels)}}


def test_the_class_field_is_the_one_holding_job_labels():
    tasks = [task(1, [{"id": 1, "completed_by": 1, "result": [choices("class", "pen"), choices("quality", "blurry")]}])]
    data = json.dumps(tasks).encode()
    with pytest.raises(ExportError, match=r"several fields hold choices \(class, quality\)"):
        read("c.json", data, "image-classification")
    imported = read("c.json", data, "image-classification", labels=["pen", "pencil"])
    assert imported.classes.labels == ["pen"]
    assert imported.report.files[0].ignored["choices in field 'quality'"] == 1


def test_single_task_object_and_pre_1_0_completions_are_read():
    single = {
        "id": 9,
        "data": {"img": "s3://bucket/photos/a.png"},
        "completions": [
            {
                "id": 1,
                "completed_by": 2,
                "result": [{"from_name": "c", "to_name": "img", "type": "choices", "value": {"choices": ["pen"]}}],
            }
        ],
    }
    imported = read("one.json", json.dumps(single).encode(), "image-classification")
    assert (imported.classes.items, imported.classes.labels) == (["a.png"], ["pen"])


def test_escaped_slashes_and_unicode_names():
    data = b'[{"id": 1, "data": {"image": "\\/data\\/upload\\/2\\/a1b2c3d4-caf%C3%A9 \\u00e0.jpg"}, "annotations": []}]'
    imported = read("u.json", data)
    assert imported.report.files[0].without_answer == 1
    tasks = [task(1, [{"id": 1, "completed_by": 1, "result": []}], {"image": "/data/upload/2/a1b2c3d4-caf%C3%A9.jpg"})]
    assert read("u.json", json.dumps(tasks).encode()).images[0].image == "café.jpg"


def test_not_json_or_wrong_shape_names_the_file():
    with pytest.raises(ExportError, match=r"broken.json line 1: not valid JSON"):
        read("broken.json", b'[{"id": 1,')
    with pytest.raises(ExportError, match=r"broken.json: a JSON object without 'data'"):
        read_annotation_exports([ExportFile("broken.json", b'{"x": 1}', "label-studio")], task_type="bounding-box")
    with pytest.raises(ExportError, match=r"deep.json: not readable JSON"):
        read("deep.json", b"[" * 200_000 + b"]" * 200_000)
