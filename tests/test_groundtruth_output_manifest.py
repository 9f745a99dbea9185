"""Output-manifest lines: the documented and real examples parse, our lines round-trip, malformed lines are named."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from truthflow.groundtruth import (
    ClassificationRecord,
    DetectionRecord,
    LabeledBox,
    ManifestLineError,
    ManifestReadStats,
    classification_annotation,
    detection_annotation,
    dump_manifest_line,
    format_creation_date,
    format_job_name,
    iter_output_manifest,
    output_manifest_line,
    parse_output_manifest_line,
)

EVENTS = Path(__file__).parent / "events"


def event_text(name: str) -> str:
    return (EVENTS / name).read_text(encoding="utf-8")


def test_documented_object_detection_line():
    record = parse_output_manifest_line(event_text("output_manifest_object_detection_doc.json"))
    assert isinstance(record, DetectionRecord)
    assert record.source_ref == "s3://AWSDOC-EXAMPLE-BUCKET/example_image.png"
    assert record.label_attribute_name == "bounding-box-attribute-name"
    assert (record.image_width, record.image_height, record.image_depth) == (500, 400, 3)
    assert record.boxes == (
        LabeledBox("dog", 111, 134, 61, 128, confidence=0.8, class_id=0),
        LabeledBox("bone", 161, 250, 30, 30, confidence=0.9, class_id=5),
        LabeledBox("bone", 20, 20, 30, 30, confidence=0.9, class_id=5),
    )


def test_real_object_detection_line_keeps_other_attributes():
    record = parse_output_manifest_line(event_text("output_manifest_object_detection_real.json"))
    assert isinstance(record, DetectionRecord)
    assert record.boxes == (LabeledBox("merchantName", 292, 134, 298, 61, confidence=0, class_id=1),)
    assert (record.image_width, record.image_height) == (900, 1200)
    assert record.line["id"] == "1"


def test_documented_and_real_classification_lines():
    documented = parse_output_manifest_line(event_text("output_manifest_image_classification_doc.json"))
    real = parse_output_manifest_line(event_text("output_manifest_image_classification_real.json"))
    assert documented == ClassificationRecord(
        source_ref="s3://AWSDOC-EXAMPLE-BUCKET/image_example.png",
        label="football",
        confidence=0.0,
        class_id=0,
        label_attribute_name="sport",
        line=documented.line,
    )
    assert isinstance(real, ClassificationRecord)
    assert (real.label, real.class_id, real.confidence) == ("cat", 0, 0.51)


def test_classification_label_given_as_a_string_index():
    # The doc's "species" example writes the label as "0".
    line = json.loads(event_text("output_manifest_image_classification_doc.json"))
    line["sport"] = "0"
    record = parse_output_manifest_line(line)
    assert isinstance(record, ClassificationRecord)
    assert record.class_id == 0


def test_object_detection_algorithm_page_spelling_without_confidences():
    # From the SageMaker Object Detection page (augmented manifest example): underscore type, no objects list.
    line = (
        '{"source-ref": "s3://your_bucket/image1.jpg", "bounding-box":{"image_size":[{ "width": 500, "height": 400, '
        '"depth":3}], "annotations":[{"class_id": 0, "left": 111, "top": 134, "width": 61, "height": 128}, '
        '{"class_id": 5, "left": 161, "top": 250, "width": 80, "height": 50}]}, "bounding-box-metadata":'
        '{"class-map":{"0": "dog", "5": "horse"}, "type": "groundtruth/object_detection"}}'
    )
    record = parse_output_manifest_line(line)
    assert isinstance(record, DetectionRecord)
    assert [(box.label, box.confidence) for box in record.boxes] == [("dog", None), ("horse", None)]


def test_detection_line_round_trips():
    boxes = [LabeledBox("pen", 10, 20, 30, 40, confidence=0.873), LabeledBox("pencil", 0, 0, 5, 6, confidence=None)]
    annotation = detection_annotation(
        label_attribute_name="pens-v1",
        class_names=["pencil", "pen", "eraser"],
        boxes=boxes,
        image_width=640,
        image_height=480,
        job_name="Pens-V1",
        creation_date=datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=UTC),
    )
    text = dump_manifest_line(output_manifest_line({"source-ref": "s3://b/i/1.jpg", "id": "7"}, annotation))
    assert text.endswith("\n") and text.count("\n") == 1
    line = json.loads(text)
    assert line["pens-v1"] == {
        "image_size": [{"width": 640, "height": 480, "depth": 3}],
        "annotations": [
            {"class_id": 1, "left": 10, "top": 20, "width": 30, "height": 40},
            {"class_id": 0, "left": 0, "top": 0, "width": 5, "height": 6},
        ],
    }
    assert line["pens-v1-metadata"] == {
        "objects": [{"confidence": 0.87}, {"confidence": 0.0}],
        "class-map": {"0": "pencil", "1": "pen"},
        "type": "groundtruth/object-detection",
        "human-annotated": "yes",
        "creation-date": "2024-05-06T07:08:09.000010",
        "job-name": "labeling-job/pens-v1",
    }
    record = parse_output_manifest_line(text)
    assert record == DetectionRecord(
        source_ref="s3://b/i/1.jpg",
        image_width=640,
        image_height=480,
        image_depth=3,
        boxes=(
            LabeledBox("pen", 10, 20, 30, 40, confidence=0.87, class_id=1),
            LabeledBox("pencil", 0, 0, 5, 6, confidence=0.0, class_id=0),
        ),
        label_attribute_name="pens-v1",
        line=line,
    )


def test_building_the_real_detection_line_gives_the_same_label():
    real = json.loads(event_text("output_manifest_object_detection_real.json"))
    annotation = detection_annotation(
        label_attribute_name="job11-merchantName-20210611222523",
        class_names=["reject", "merchantName"],
        boxes=[LabeledBox("merchantName", 292, 134, 298, 61, confidence=0)],
        image_width=900,
        image_height=1200,
        job_name="job11-merchantName-20210611222523",
        creation_date="2021-06-11T22:31:21.506868",
    )
    assert annotation == {key: value for key, value in real.items() if key not in {"source-ref", "id"}}


def test_classification_line_round_trips():
    annotation = classification_annotation(
        label_attribute_name="sport",
        class_names=["football", "tennis"],
        label="tennis",
        confidence=0.666,
        job_name="identify-sport",
        creation_date="2018-10-18T22:18:13.527256",
    )
    assert annotation == {
        "sport": 1,
        "sport-metadata": {
            "class-name": "tennis",
            "confidence": 0.67,
            "type": "groundtruth/image-classification",
            "human-annotated": "yes",
            "creation-date": "2018-10-18T22:18:13.527256",
            "job-name": "labeling-job/identify-sport",
        },
    }
    text = dump_manifest_line(output_manifest_line({"source-ref": "s3://b/t.jpg"}, annotation))
    record = parse_output_manifest_line(text)
    assert isinstance(record, ClassificationRecord)
    assert (record.label, record.class_id, record.confidence) == ("tennis", 1, 0.67)


def test_builders_refuse_labels_outside_the_class_list():
    with pytest.raises(ValueError, match="'cat' is not in the class names"):
        classification_annotation(
            label_attribute_name="a", class_names=["dog", "owl"], label="cat", confidence=1, job_name="j"
        )
    with pytest.raises(ValueError, match="box label 'cat'"):
        detection_annotation(
            label_attribute_name="a",
            class_names=["dog"],
            boxes=[LabeledBox("cat", 0, 0, 1, 1)],
            image_width=2,
            image_height=2,
            job_name="j",
        )


def test_creation_date_and_job_name_as_ground_truth_writes_them():
    assert format_creation_date(datetime(2018, 10, 18, 22, 18, 13)) == "2018-10-18T22:18:13.000000"
    paris = timezone(timedelta(hours=2))
    assert format_creation_date(datetime(2018, 10, 19, 0, 18, 13, 527256, tzinfo=paris)) == "2018-10-18T22:18:13.527256"
    assert format_job_name("job11-merchantName-20210611222523") == "labeling-job/job11-merchantname-20210611222523"
    assert format_job_name("labeling-job/Pens") == "labeling-job/pens"


def test_unlabeled_lines_are_skipped_and_counted_while_streaming():
    labeled = event_text("output_manifest_image_classification_real.json").strip()
    consumed: list[int] = []

    def lines():
        for number, text in enumerate([labeled, '{"source-ref": "s3://b/unlabeled.jpg"}', "", labeled]):
            consumed.append(number)
            yield text + "\n"

    stats = ManifestReadStats()
    records = iter_output_manifest(lines(), stats=stats)
    first = next(records)
    assert first.source_ref.endswith("0.jpg")
    assert consumed == [0]  # one line read for one record: nothing is loaded ahead
    assert len(list(records)) == 1
    assert (stats.lines, stats.records, stats.unlabeled) == (3, 2, 1)


def test_failed_object_metadata_without_label_is_unlabeled():
    line = {"source-ref": "s3://b/x.jpg", "job-metadata": {"failure-reason": "ClientError: timeout"}}
    assert parse_output_manifest_line(line) is None


def detection_line(**changes):
    line = json.loads(event_text("output_manifest_object_detection_doc.json"))
    label, metadata = line["bounding-box-attribute-name"], line["bounding-box-attribute-name-metadata"]
    for key, value in changes.items():
        target = metadata if key in {"objects", "class-map", "type"} else label
        target[key] = value
    if "annotations" in changes and "objects" not in changes:
        metadata["objects"] = [{"confidence": 1.0}] * len(changes["annotations"])
    return json.dumps(line)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (detection_line(image_size=[]), "line 3: bounding-box-attribute-name.image_size: expected a one-element list"),
        (
            detection_line(image_size=[{"width": 0, "height": 4}]),
            "bounding-box-attribute-name.image_size[0].width: expected a positive integer",
        ),
        (
            detection_line(annotations=[{"class_id": -1, "left": 0, "top": 0, "width": 1, "height": 1}]),
            "bounding-box-attribute-name.annotations[0].class_id: expected a class index",
        ),
        (
            detection_line(annotations=[{"class_id": 3, "left": 0, "top": 0, "width": 1, "height": 1}]),
            "annotations[0].class_id: class 3 has no name in bounding-box-attribute-name-metadata.class-map",
        ),
        (
            detection_line(annotations=[{"class_id": 0, "left": "x", "top": 0, "width": 1, "height": 1}]),
            "annotations[0].left: expected a finite number",
        ),
        (
            detection_line(annotations=[{"class_id": 0, "left": 0, "top": 0, "width": -1, "height": 1}]),
            "annotations[0].width: must not be negative",
        ),
        (detection_line(objects=[{"confidence": 1}]), "-metadata.objects: expected a list aligned with the 3"),
        (
            detection_line(objects=[{"confidence": "high"}, {}, {}]),
            "bounding-box-attribute-name-metadata.objects[0].confidence: expected a finite number",
        ),
        ("{not json", "line 3: not valid JSON"),
        ("[1, 2]", "line 3: expected a JSON object, got list"),
    ],
)
def test_malformed_lines_name_the_line_and_field(line, message):
    with pytest.raises(ManifestLineError) as error:
        parse_output_manifest_line(line, line_number=3)
    assert message in str(error.value)


def test_a_labeled_line_without_source_ref_is_an_error():
    line = json.loads(event_text("output_manifest_image_classification_real.json"))
    del line["source-ref"]
    with pytest.raises(ManifestLineError, match="source-ref: expected a non-empty string"):
        parse_output_manifest_line(line)


@pytest.mark.parametrize("line", [detection_line(type="groundtruth/custom"), '{"source-ref": "s3://b/a.jpg"}'])
def test_lines_without_a_built_in_label_are_unlabeled(line):
    assert parse_output_manifest_line(line) is None


def test_explicit_label_attribute_with_an_unknown_type_is_an_error():
    line = detection_line(type="groundtruth/custom")
    with pytest.raises(ManifestLineError, match=re.escape("-metadata.type: 'groundtruth/custom' is not")):
        parse_output_manifest_line(line, label_attribute_name="bounding-box-attribute-name")


def test_chained_job_lines_need_the_label_attribute_named():
    line = json.loads(event_text("output_manifest_image_classification_real.json"))
    line["second"] = 1
    line["second-metadata"] = {"class-name": "dog", "type": "groundtruth/image-classification"}
    with pytest.raises(ManifestLineError, match="several label attributes"):
        parse_output_manifest_line(line)
    record = parse_output_manifest_line(line, label_attribute_name="second")
    assert isinstance(record, ClassificationRecord)
    assert record.label == "dog"


def test_class_names_resolve_ids_missing_from_the_class_map():
    line = json.loads(event_text("output_manifest_object_detection_real.json"))
    line["job11-merchantName-20210611222523-metadata"]["class-map"] = {}
    record = parse_output_manifest_line(line, class_names=["reject", "merchantName"])
    assert isinstance(record, DetectionRecord)
    assert record.boxes[0].label == "merchantName"


def test_any_box_with_the_documented_attributes_can_be_written():
    @dataclass(frozen=True)
    class ConsolidatedBox:  # e.g. the consolidation module's result type
        label: str
        left: float
        top: float
        width: float
        height: float
        confidence: float
        n_workers: int

    annotation = detection_annotation(
        label_attribute_name="pens",
        class_names=["pen"],
        boxes=[ConsolidatedBox("pen", 10.4, 20.6, 30.5, 40.0, confidence=0.666, n_workers=3)],
        image_width=100,
        image_height=100,
        job_name="pens",
    )
    assert annotation["pens"]["annotations"] == [{"class_id": 0, "left": 10, "top": 21, "width": 30, "height": 40}]
    assert annotation["pens-metadata"]["objects"] == [{"confidence": 0.67}]


def test_binary_lines_stream_like_an_s3_body():
    body = io.BytesIO(event_text("output_manifest_object_detection_real.json").encode("utf-8") * 2)
    records = list(iter_output_manifest(body))
    assert [record.source_ref for record in records] == ["s3://mlops-2021/labeling/data/1/image.jpeg"] * 2


@pytest.mark.parametrize("kind", [["groundtruth/object-detection"], {"a": 1}])
def test_a_metadata_type_that_is_not_text_is_a_clear_error(kind):
    line = {"source-ref": "s3://b/a.jpg", "job": {"class-name": "pen"}, "job-metadata": {"type": kind}}
    assert parse_output_manifest_line(line) is None  # no known type: the line carries no label
    with pytest.raises(ManifestLineError, match=r"line 3: job-metadata.type: .* is not 'groundtruth/object-detection'"):
        parse_output_manifest_line(line, label_attribute_name="job", line_number=3)
