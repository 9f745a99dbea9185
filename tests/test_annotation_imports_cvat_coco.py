"""CVAT for images XML, COCO and Ground Truth manifests read into consolidation inputs; hostile XML is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from truthflow.annotation_imports import ExportError, ExportFile, read_annotation_exports

EXPORTS = Path(__file__).parent / "exports"


def read(name: str, data: bytes, task_type: str = "bounding-box", **options):
    return read_annotation_exports([ExportFile(name, data)], task_type=task_type, **options)


def fixture(file_name: str) -> bytes:
    return (EXPORTS / file_name).read_bytes()


def ltwh(box) -> tuple[float, float, float, float]:
    return (box.left, box.top, box.width, box.height)


def test_cvat_job_export_is_its_assignee_and_keeps_empty_images():
    imported = read("job_7.xml", fixture("cvat_job_dana.xml"))
    assert [image.image for image in imported.images] == ["desk_01.jpg", "desk_02.jpg", "desk_03.jpg"]
    workers = {answer.worker for image in imported.images for answer in image.answers}
    assert workers == {"dana@example.com"}  # the assignee's e-mail (global), not the task owner
    desk_01, desk_02, desk_03 = (image.answers[0].boxes for image in imported.images)
    assert [box.label for box in desk_01] == ["pen", "pencil"]
    assert ltwh(desk_01[0]) == pytest.approx((100.4, 199.1, 300.8, 61.2))
    # 80 x 120 turned by 90 degrees about its centre (560, 340): 120 x 80.
    assert ltwh(desk_02[0]) == pytest.approx((500.0, 300.0, 120.0, 80.0))
    assert desk_03 == ()
    report = imported.report.files[0]
    assert report.format == "cvat job export"
    assert (report.tasks, report.answers, report.rotated) == (3, 3, 1)
    assert dict(report.ignored) == {"polygon": 1, "mask": 1, "tag": 1}


def test_cvat_task_export_is_one_worker_and_image_paths_reduce_to_file_names():
    imported = read("exports/task_12.xml", fixture("cvat_task.xml"))
    assert [image.image for image in imported.images] == ["desk_01.jpg", "desk_02.jpg", "desk_03.jpg"]
    assert {answer.worker for image in imported.images for answer in image.answers} == {"exports/task_12.xml"}
    assert imported.report.files[0].format == "cvat task export"


def test_cvat_tags_are_classification_answers():
    imported = read("tags.xml", fixture("cvat_job_tags.xml"), "image-classification")
    classes = imported.classes
    assert list(zip(classes.items, classes.labels, strict=True)) == [
        ("photo_01.jpg", "pen"),
        ("photo_02.jpg", "pencil"),
        ("photo_03.jpg", "eraser"),
    ]
    assert set(classes.workers) == {"tags.xml#fay"}  # a username without e-mail is local to the file
    report = imported.report.files[0]
    assert (report.without_answer, report.ignored["box"]) == (1, 1)


CVAT_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version><meta><task><id>1</id></task></meta>'
)


def test_cvat_bad_image_is_refused_with_its_field():
    xml = (
        CVAT_HEAD + '<image id="0" name="a.jpg" width="10" height="10">'
        '<box label="pen" xtl="1" ytl="x" xbr="5" ybr="5"></box></image>'
        '<image id="1" name="b.jpg" width="wide" height="10"></image>'
        '<image id="2" name="c.jpg" width="10" height="10"><tag label="pen"></tag><tag label="pencil"></tag></image>'
        '<image id="3" name="d.jpg" width="10" height="10"><box label="pen" xtl="1" ytl="1" xbr="5" ybr="5"></box>'
        "</image></annotations>"
    ).encode()
    imported = read("bad.xml", xml)
    assert [image.image for image in imported.images] == ["c.jpg", "d.jpg"]
    problems = {(p.where, p.field) for p in imported.report.problems}
    assert problems == {("image 'a.jpg'", "box[0].ytl"), ("image 'b.jpg'", "width")}
    classes = read("bad.xml", xml, "image-classification")
    assert ("image 'c.jpg'", "tag") in {(p.where, p.field) for p in classes.report.problems}


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<annotations><image id="0" name="&lol3;" width="1" height="1"></image></annotations>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE annotations [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<annotations><image id="0" name="&secret;" width="1" height="1"></image></annotations>"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE annotations SYSTEM "http://attacker.example/evil.dtd"><annotations></annotations>"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY, PARAMETER_ENTITY])
def test_xml_with_a_document_type_declaration_is_refused(xml):
    with pytest.raises(ExportError, match=r"evil.xml: a document type declaration .* is not allowed"):
        read("evil.xml", xml)


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"<annotations><image name='a.jpg'></annotations>", r"x.xml line 1: not well-formed XML"),
        (b"<annotation><object/></annotation>", r"x.xml: root element <annotation>, expected <annotations>"),
        (b"<annotations><track id='0' label='pen'><box frame='0'/></track></annotations>", "CVAT for video"),
        (b"<annotations><image name='&undefined;'/></annotations>", "not well-formed XML.*undefined entity"),
        (b"<?xml version='1.0' encoding='nan'?><annotations/>", r"x.xml: not readable XML \(unknown encoding: nan\)"),
    ],
)
def test_malformed_or_other_xml_names_the_file(xml, message):
    with pytest.raises(ExportError, match=message):
        read("x.xml", xml)


def test_coco_from_cvat_is_one_worker_with_empty_answers_and_crowd_regions_ignored():
    imported = read("coco_erin.json", fixture("coco_erin.json"))
    assert [image.image for image in imported.images] == ["desk_01.jpg", "desk_02.jpg", "desk_03.jpg"]
    assert {answer.worker for image in imported.images for answer in image.answers} == {"coco_erin.json"}
    assert [len(image.answers[0].boxes) for image in imported.images] == [2, 1, 0]
    assert ltwh(imported.images[0].answers[0].boxes[0]) == (101.0, 201.0, 301.0, 60.0)
    report = imported.report.files[0]
    assert (report.format, report.tasks, report.ignored["iscrowd"]) == ("coco", 3, 1)


def coco(annotations, images=None):
    return json.dumps(
        {
            "images": images or [{"id": 1, "file_name": "images\\1a2b3c4d-a.jpg", "width": 100, "height": 80}],
            "annotations": annotations,
            "categories": [{"id": 1, "name": "pen"}],
        }
    ).encode()


def test_coco_rotation_attribute_bad_annotations_and_label_studio_annotators():
    rotated = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [40, 20, 20, 40], "attributes": {"rotation": 90.0}}
    imported = read("c.json", coco([rotated]))
    assert imported.images[0].image == "a.jpg"
    assert ltwh(imported.images[0].answers[0].boxes[0]) == pytest.approx((30.0, 30.0, 40.0, 20.0))
    assert imported.report.files[0].rotated == 1
    bad = [
        {"id": 2, "image_id": 1, "category_id": 9, "bbox": [1, 1, 2, 2]},
        {"id": 3, "image_id": 7, "category_id": 1, "bbox": [1, 1, 2, 2]},
    ]
    refused = read("c.json", coco(bad))
    assert {(p.where, p.field) for p in refused.report.problems} == {
        ("annotation 2", "category_id"),
        ("annotation 3", "image_id"),
    }
    assert refused.images == []  # the image's only answer had a bad annotation: refused whole, not made empty
    by_annotator = [
        {"id": 4, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "annotator": "ana@example.com"},
        {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 3, 3], "annotator": 2},
    ]
    named = read("ls_coco.json", coco(by_annotator))
    assert [answer.worker for answer in named.images[0].answers] == ["ana@example.com", "ls_coco.json#2"]
    with pytest.raises(ExportError, match="COCO instances hold boxes"):
        read("c.json", coco([rotated]), "image-classification")


def test_coco_ids_that_are_lists_or_objects_are_refused_with_their_field():
    bad = [
        {"id": 2, "image_id": [1], "category_id": 1, "bbox": [1, 1, 2, 2]},
        {"id": 3, "image_id": 1, "category_id": {"id": 1}, "bbox": [1, 1, 2, 2]},
        {"id": 4, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]},
    ]
    imported = read("c.json", coco(bad))
    assert {(p.where, p.field, p.message) for p in imported.report.problems} == {
        ("annotation 2", "image_id", "no image with id [1]"),
        ("annotation 3", "category_id", "no category with id {'id': 1}"),
    }


def test_ground_truth_output_manifest_is_one_worker():
    imported = read("gt.manifest", fixture("groundtruth_output.manifest"))
    assert [image.image for image in imported.images] == ["desk_01.jpg", "desk_02.jpg", "desk_03.jpg"]
    assert [len(image.answers[0].boxes) for image in imported.images] == [2, 1, 0]
    assert imported.images[0].answers[0].worker == "gt.manifest"
    broken = (
        fixture("groundtruth_output.manifest")
        + b'{"source-ref": 5, "x": {}, "x-metadata": {"type": "groundtruth/object-detection"}}\n'
    )
    (problem,) = read("gt.manifest", broken).report.problems
    assert problem.where == "line 4" and "source-ref" in problem.message
