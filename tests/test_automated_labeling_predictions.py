"""Batch transform outputs of the built-in algorithms, read exactly; machine labels, image sizes and quality."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from truthflow.automated_labeling.machine_labels import (
    DEFAULT_SCORE_THRESHOLD,
    TuningImage,
    choose_score_threshold,
    classification_label,
    detection_label,
)
from truthflow.automated_labeling.predictions import (
    ClassProbabilities,
    Detection,
    PredictionError,
    match_outputs,
    parse_class_probabilities,
    parse_detections,
    transform_manifest,
)
from truthflow.automated_labeling.quality import box_quality
from truthflow.groundtruth.output_manifest import LabeledBox
from truthflow.image_headers import ImageHeaderError, NeedMoreBytesError, image_size

# The documented object-detection response (developer guide, object-detection-in-formats), two of its rows.
DETECTOR_OUTPUT = (
    '{"prediction":[[4.0, 0.86419455409049988, 0.3088374733924866, 0.07030484080314636, 0.7110607028007507, '
    "0.9345266819000244], [0.0, 0.73376623392105103, 0.5714187026023865, 0.40427327156066895, 0.827075183391571, "
    "0.9712159633636475]]}"
)


def test_detector_output_is_read_as_documented():
    detections = parse_detections(DETECTOR_OUTPUT, n_classes=5)
    assert detections[0] == Detection(4, 0.86419455409049988, 0.3088374733924866, 0.07030484080314636,
                                      0.7110607028007507, 0.9345266819000244)  # fmt: skip
    assert detections[1].class_index == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ('{"predictions": []}', 'no "prediction" list'),
        ('{"prediction": [[1, 0.5, 0, 0, 1]]}', r"not \[class, score"),
        ('{"prediction": [[7, 0.5, 0, 0, 1, 1]]}', "not one of the 5 class indices"),
        ('{"prediction": [[1.5, 0.5, 0, 0, 1, 1]]}', "not one of the 5 class indices"),
        ('{"prediction": [[1, 1.5, 0, 0, 1, 1]]}', "not between 0 and 1"),
        ('{"prediction": [[1, "high", 0, 0, 1, 1]]}', "not a finite number"),
        ('{"prediction": [[1, NaN, 0, 0, 1, 1]]}', "not a finite number"),
        ("[" * 5000 + "]" * 5000, "nested too deeply|not JSON"),
    ],
)
def test_a_malformed_detector_output_is_refused_with_the_reason(text, message):
    with pytest.raises(PredictionError, match=message):
        parse_detections(text, n_classes=5)


def test_detector_corners_are_clipped_and_empty_boxes_dropped():
    detections = parse_detections('{"prediction": [[1, 0.9, -0.2, 0.1, 1.3, 0.5], [1, 0.9, 0.5, 0.5, 0.5, 0.7]]}',
                                  n_classes=2)  # fmt: skip
    assert detections == [Detection(1, 0.9, 0.0, 0.1, 1.0, 0.5)]


def test_classifier_output_is_read_as_a_list_or_json_lines():
    assert parse_class_probabilities("[0.1, 0.7, 0.2]", n_classes=3).class_index == 1
    jsonlines = parse_class_probabilities(b'{"prediction": [0.05, 0.05, 0.9]}\n', n_classes=3)
    assert jsonlines.class_index == 2 and jsonlines.confidence == 0.9


@pytest.mark.parametrize(
    ("text", "message"),
    [("[0.5, 0.5]", "2 probabilities for 3 classes"), ("[0.5, 0.5, 0.5]", "not a probability distribution"),
     ('{"label": 1}', "not a list"), (b"\xff\xfe", "not UTF-8")],
)  # fmt: skip
def test_a_malformed_classifier_output_is_refused(text, message):
    with pytest.raises(PredictionError, match=message):
        parse_class_probabilities(text, n_classes=3)


def test_outputs_are_matched_to_their_inputs_whatever_subfolder_the_service_adds():
    inputs = ["a.jpg", "sub/a.jpg", "b.png"]
    outputs = ["a.jpg.out", "images/sub/a.jpg.out", "b.png.out", "b.png", "c.jpg.out"]
    assert match_outputs(inputs, outputs) == {"a.jpg": "a.jpg.out", "sub/a.jpg": "images/sub/a.jpg.out",
                                              "b.png": "b.png.out"}  # fmt: skip


def test_transform_manifest_is_the_documented_manifest_file():
    assert transform_manifest("s3://b/jobs/x/images/", ["a.jpg", "s/b.png"]) == [
        {"prefix": "s3://b/jobs/x/images/"}, "a.jpg", "s/b.png"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="ending in '/'"):
        transform_manifest("s3://b/jobs/x/images", ["a.jpg"])


def test_detection_label_is_in_pixels_and_its_confidence_is_the_least_certain_decision():
    detections = [Detection(0, 0.9, 0.1, 0.2, 0.5, 0.6), Detection(1, 0.35, 0.6, 0.6, 0.9, 0.9),
                  Detection(1, 0.05, 0.0, 0.0, 0.1, 0.1)]  # fmt: skip
    label = detection_label(detections, ["pen", "pencil"], width=200, height=100, score_threshold=0.5)
    assert [(b.label, b.left, b.top, b.width, b.height) for b in label.boxes] == [
        ("pen", pytest.approx(20.0), pytest.approx(20.0), pytest.approx(80.0), pytest.approx(40.0))
    ]
    # Kept: weakest 0.9; dropped: strongest 0.35 -> 1 - 0.35 = 0.65.
    assert label.confidence == pytest.approx(0.65)
    assert detection_label([], ["pen"], width=10, height=10, score_threshold=0.5).confidence == 1.0


def test_classification_label_is_the_most_probable_class():
    label = classification_label(ClassProbabilities((0.2, 0.8)), ["cat", "dog"])
    assert label.label == "dog" and label.confidence == 0.8


def box(label: str, left: float, top: float, width: float, height: float) -> LabeledBox:
    return LabeledBox(label, left, top, width, height)


def test_box_quality_counts_misses_extras_and_wrong_labels_as_zero():
    human = [box("pen", 0, 0, 10, 10), box("pencil", 50, 50, 10, 10)]
    assert box_quality(human, human) == 1.0
    assert box_quality([], []) == 1.0
    assert box_quality([human[0]], human) == pytest.approx(0.5)  # one missed
    assert box_quality([*human, box("pen", 80, 80, 5, 5)], human) == pytest.approx(2 / 3)  # one extra
    assert box_quality([box("pencil", 0, 0, 10, 10), human[1]], human) == pytest.approx(0.5)  # wrong label
    assert box_quality([box("pen", 0, 0, 10, 5)], [human[0]]) == pytest.approx(0.5)  # half the box


def test_score_threshold_is_chosen_on_tuning_images():
    human = [box("pen", 0, 0, 50, 50)]
    # A true box scoring 0.6 and a spurious one scoring 0.4: any threshold in (0.4, 0.6] is best.
    detections = [Detection(0, 0.6, 0.0, 0.0, 0.5, 0.5), Detection(0, 0.4, 0.6, 0.6, 0.9, 0.9)]
    images = [TuningImage(detections, human, 100, 100)] * 3
    chosen = choose_score_threshold(images, ["pen"])
    assert 0.4 < chosen <= 0.6
    assert choose_score_threshold([], ["pen"]) == DEFAULT_SCORE_THRESHOLD


def encoded(image_format: str, size: tuple[int, int], **save: object) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, format=image_format, **save)
    return buffer.getvalue()


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_image_size_is_read_from_the_header(image_format):
    assert image_size(encoded(image_format, (321, 123))) == (321, 123)


def test_a_jpeg_with_a_large_exif_block_needs_more_bytes_than_the_first_ones():
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # ImageDescription
    data = encoded("JPEG", (64, 48), exif=exif.tobytes())
    with pytest.raises(NeedMoreBytesError):
        image_size(data[:1_000])
    assert image_size(data) == (64, 48)


@pytest.mark.parametrize("data", [b"GIF89a....", b"", json.dumps({"a": 1}).encode(), b"\xff\xd8\xff\xd9"])
def test_what_is_not_a_jpeg_or_png_header_is_refused(data):
    with pytest.raises(ImageHeaderError):
        image_size(data)
