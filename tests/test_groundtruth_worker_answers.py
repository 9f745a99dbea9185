"""Worker answer contents (``annotationData.content``) of crowd-bounding-box and crowd-image-classifier."""

from __future__ import annotations

import json

import pytest

from truthflow.groundtruth import (
    PixelBox,
    WorkerContentError,
    parse_bounding_box_content,
    parse_image_classification_content,
)
from truthflow.groundtruth.bounded_json import loads_bounded, nesting_depth
from truthflow.groundtruth.worker_answers import MAX_BOXES_PER_ANSWER, AnswerLimitError

DOC_BOX_CONTENT = (
    '{"boundingBox":{"boundingBoxes":[{"height":2052,"label":"Bird","left":583,"top":302,"width":1375}],'
    '"inputImageProperties":{"height":2497,"width":3745}}}'
)
RECIPE_BOX_CONTENT = (
    '{"annotatedResult":{"boundingBoxes":[{"height":128,"label":"Red","left":116,"top":283,"width":137},'
    '{"height":141,"label":"Green","left":418,"top":281,"width":138}],"inputImageProperties":{"height":432,"width":640}}}'
)


def test_builtin_template_answer():
    answer = parse_bounding_box_content(DOC_BOX_CONTENT)
    assert answer.boxes == (PixelBox("Bird", 583, 302, 1375, 2052),)
    assert (answer.image_width, answer.image_height) == (3745, 2497)


def test_recipe_answer_with_the_annotated_result_name():
    answer = parse_bounding_box_content(RECIPE_BOX_CONTENT, labels=["Red", "Green", "Blue"])
    assert [box.label for box in answer.boxes] == ["Red", "Green"]
    assert answer.boxes[1] == PixelBox("Green", 418, 281, 138, 141)


def test_element_reference_output_wrapped_in_a_list():
    content = [
        {
            "annotatedResult": {
                "boundingBoxes": [{"height": 401, "label": "Dog", "left": 243, "top": 117, "width": 187}],
                "inputImageProperties": {"height": 533, "width": 800},
            }
        }
    ]
    answer = parse_bounding_box_content(json.dumps(content), element_name="annotatedResult")
    assert answer.boxes == (PixelBox("Dog", 243, 117, 187, 401),)


@pytest.mark.parametrize("boxes", ["", '"boundingBoxes":null,', '"boundingBoxes":[],'])
def test_an_answer_without_boxes_is_empty(boxes):
    content = '{"boundingBox":{' + boxes + '"inputImageProperties":{"height":10,"width":20}}}'
    answer = parse_bounding_box_content(content)
    assert answer.boxes == ()
    assert answer.image_width == 20


def test_box_labels_are_matched_ignoring_whitespace_and_returned_as_configured():
    content = {
        "boundingBox": {"boundingBoxes": [{"label": "Sports  car ", "left": 1, "top": 2, "width": 3, "height": 4}]}
    }
    answer = parse_bounding_box_content(content, labels=["Sports car", "Truck"])
    assert answer.boxes[0].label == "Sports car"
    assert answer.image_width is None


def box_content(**box_fields):
    box = {"label": "Bird", "left": 1, "top": 2, "width": 3, "height": 4}
    box.update(box_fields)
    box = {key: value for key, value in box.items() if value is not ...}
    return json.dumps({"boundingBox": {"boundingBoxes": [box]}})


@pytest.mark.parametrize(
    ("box_fields", "message"),
    [
        ({"width": -3}, "boundingBox.boundingBoxes[0].width: must not be negative"),
        ({"height": ...}, "boundingBox.boundingBoxes[0].height: missing"),
        ({"left": "12"}, "boundingBox.boundingBoxes[0].left: expected a finite number"),
        ({"top": True}, "boundingBox.boundingBoxes[0].top: expected a finite number"),
        ({"label": 5}, "boundingBox.boundingBoxes[0].label: expected a non-empty string"),
        ({"label": "Cat"}, "boundingBox.boundingBoxes[0].label: 'Cat' is not in the label set"),
    ],
)
def test_a_malformed_box_is_left_out_with_its_reason_and_the_other_boxes_kept(box_fields, message):
    bad = json.loads(box_content(**box_fields))["boundingBox"]["boundingBoxes"][0]
    good = {"label": "Bird", "left": 5, "top": 6, "width": 7, "height": 8}
    content = {"boundingBox": {"boundingBoxes": [bad, good], "inputImageProperties": {"width": 9, "height": 9}}}
    answer = parse_bounding_box_content(json.dumps(content), labels=["Bird"])
    assert answer.boxes == (PixelBox("Bird", 5, 6, 7, 8),)
    assert len(answer.problems) == 1 and message in answer.problems[0] and "(box left out)" in answer.problems[0]
    assert (answer.image_width, answer.image_height) == (9, 9)


def test_unusable_image_properties_are_ignored_and_the_boxes_kept():
    content = '{"boundingBox": {"boundingBoxes": [], "inputImageProperties": {"width": 0, "height": 5}}}'
    answer = parse_bounding_box_content(content)
    assert (answer.image_width, answer.image_height) == (None, None)
    assert answer.problems == (
        "boundingBox.inputImageProperties.width: expected a positive integer, got 0 (image size ignored)",
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"boundingBox": {"boundingBoxes": {"label": "Bird"}}}', "boundingBox.boundingBoxes: expected a list"),
        ('{"boundingBox": [1, 2]}', "boundingBox: expected an object"),
        ('{"boundingBox": ', "annotationData.content is not valid JSON"),
        (b'{"boundingBox": {"boundingBoxes": [{"label": "B\xe9"}]}}', "annotationData.content is not valid JSON"),
        ('"just text"', "expected a JSON object"),
        ('{"first": {}, "second": {}}', "cannot tell which key is the answer"),
    ],
)
def test_an_unreadable_box_answer_raises_an_error_naming_the_field(content, message):
    with pytest.raises(WorkerContentError) as error:
        parse_bounding_box_content(content, labels=["Bird"])
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[" * 1000 + "]" * 1000, "annotationData.content is nested 1000 levels deep; at most 64 levels are read"),
        ('{"boundingBox": {"x": ' + "[" * 65 + "]" * 65 + "}}", "nested 67 levels deep"),
        (" " * 1_000_001, "annotationData.content is 1,000,001 characters long; at most 1,000,000 are read"),
        (
            json.dumps({"boundingBox": {"boundingBoxes": [{"label": "Bird"}] * (MAX_BOXES_PER_ANSWER + 1)}}),
            f"boundingBox.boundingBoxes: {MAX_BOXES_PER_ANSWER + 1} boxes; at most {MAX_BOXES_PER_ANSWER} per answer",
        ),
    ],
)
def test_answers_beyond_the_bounds_are_refused_as_over_limit(content, message):
    with pytest.raises(AnswerLimitError) as error:
        parse_bounding_box_content(content, labels=["Bird"])
    assert message in str(error.value)
    if "boundingBoxes" not in content:
        with pytest.raises(AnswerLimitError, match="at most"):
            parse_image_classification_content(content, labels=["Bird"])


def test_brackets_inside_strings_do_not_count_as_nesting():
    label = "[" * 200 + '\\"{'
    content = json.dumps({"crowd-image-classifier": {"label": label}})
    assert nesting_depth(content) == 2
    assert parse_image_classification_content(content).label == label


def test_an_answer_at_the_bounds_is_read():
    boxes = [{"label": "Bird", "left": i, "top": 0, "width": 1, "height": 1} for i in range(MAX_BOXES_PER_ANSWER)]
    answer = parse_bounding_box_content(json.dumps({"boundingBox": {"boundingBoxes": boxes}}))
    assert len(answer.boxes) == MAX_BOXES_PER_ANSWER
    assert loads_bounded("[" * 64 + "]" * 64, what="x") == json.loads("[" * 64 + "]" * 64)


def test_a_required_element_name_must_be_present():
    with pytest.raises(WorkerContentError, match="no 'boundingBox' key"):
        parse_bounding_box_content(RECIPE_BOX_CONTENT, element_name="boundingBox")


def test_builtin_classifier_answer():
    answer = parse_image_classification_content('{"crowd-image-classifier":{"label":"Cat"}}')
    assert answer.label == "Cat"
    assert answer.worker_comment is None


def test_classifier_named_category_with_a_worker_comment():
    content = {"category": {"label": "Dog", "workerComment": "blurry"}}
    answer = parse_image_classification_content(content, labels=["Cat", "Dog"])
    assert (answer.label, answer.worker_comment) == ("Dog", "blurry")


def test_classifier_label_spacing_is_normalised_to_the_label_set():
    answer = parse_image_classification_content(
        '{"crowd-image-classifier":{"label":"None of the Above"}}', labels=["None of the  Above", "Cat"]
    )
    assert answer.label == "None of the  Above"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"crowd-image-classifier":{}}', "crowd-image-classifier.label: missing"),
        ('{"crowd-image-classifier":{"label":0}}', "crowd-image-classifier.label: expected a non-empty string"),
        ('{"crowd-image-classifier":{"label":"Horse"}}', "'Horse' is not in the label set ['Cat', 'Dog']"),
        ('{"crowd-image-classifier":{"label":"Cat","workerComment":3}}', "crowd-image-classifier.workerComment"),
        ('{"crowd-image-classifier":"Cat"}', "crowd-image-classifier: expected an object, got str"),
    ],
)
def test_malformed_classifier_content_names_the_field(content, message):
    with pytest.raises(WorkerContentError) as error:
        parse_image_classification_content(content, labels=["Cat", "Dog"])
    assert message in str(error.value)
