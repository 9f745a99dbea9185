"""The split of a job's images for automated labeling, and the routing of the remaining ones."""

from __future__ import annotations

import json

import pytest

from truthflow.automated_labeling.plan import MIN_FIRST_BATCH, LabelingPlan, first_batch_size, plan_labeling
from truthflow.automated_labeling.predictions import ClassProbabilities, Detection
from truthflow.automated_labeling.routing import RoutingRequest, route
from truthflow.groundtruth.output_manifest import (
    ClassificationRecord,
    DetectionRecord,
    LabeledBox,
    parse_output_manifest_line,
)

IMAGES = [f"s3://b/jobs/x/images/{index:04d}.jpg" for index in range(1000)]


def plan(**changes: object) -> LabelingPlan:
    settings: dict = {"initial_fraction": 0.1, "calibration_fraction": 0.5, "target": 0.9, "delta": 0.05,
                      "kind": "binary", "seed": 0, **changes}  # fmt: skip
    return plan_labeling(IMAGES, **settings)


def test_plan_is_a_seeded_partition_of_the_images():
    first = plan()
    assert len(first.first_batch) == 116  # 2 x 29 calibration images / 0.5, above 10 % and the minimum of 100
    assert set(first.first_batch) | set(first.remaining) == set(IMAGES)
    assert not set(first.first_batch) & set(first.remaining)
    assert set(first.calibration) <= set(first.first_batch)
    assert len(first.calibration) == 58 and set(first.training) == set(first.first_batch) - set(first.calibration)
    assert plan() == first and plan(seed=1) != first
    assert LabelingPlan.from_dict(json.loads(json.dumps(first.to_dict()))) == first


def test_first_batch_is_at_least_the_minimum_and_the_share_asked_for():
    assert first_batch_size(1000, initial_fraction=0.3, calibration_fraction=0.5, target=0.6, delta=0.05,
                            kind="bounded") == 300  # fmt: skip
    assert first_batch_size(1000, initial_fraction=0.01, calibration_fraction=0.5, target=0.6, delta=0.05,
                            kind="bounded") == MIN_FIRST_BATCH  # fmt: skip


def test_when_the_first_batch_takes_every_image_nothing_remains_and_the_note_says_why():
    small = plan_labeling(IMAGES[:80], initial_fraction=0.1, calibration_fraction=0.5, target=0.95, delta=0.05,
                          kind="binary", seed=0)  # fmt: skip
    assert small.remaining == () and len(small.first_batch) == 80
    assert "all 80 images go to people" in small.note


LABELS = ["pen", "pencil"]


def classification_request(predictions: dict, **changes: object) -> RoutingRequest:
    split = LabelingPlan(
        first_batch=tuple(IMAGES[:100]), calibration=tuple(IMAGES[:80]), remaining=tuple(IMAGES[100:200]), note=""
    )
    human = {image: ClassificationRecord(image, "pen", 0.9, 0, "tf-x", {}) for image in split.first_batch}
    settings: dict = {
        "task_type": "image-classification", "labels": LABELS, "label_attribute_name": "tf-x", "job_name": "tf-x",
        "plan": split, "human_labels": human, "predictions": predictions, "prediction_problems": {},
        "image_sizes": {}, "target": 0.9, "delta": 0.05, "manifest_attributes": {"truthflow-task": {"a": 1}},
        **changes,
    }  # fmt: skip
    return RoutingRequest(**settings)


def test_every_remaining_image_is_machine_labeled_or_sent_to_people_once():
    sure, unsure = ClassProbabilities((0.99, 0.01)), ClassProbabilities((0.6, 0.4))
    predictions = {image: sure for image in IMAGES[:80]}
    predictions.update({image: (sure if index % 2 else unsure) for index, image in enumerate(IMAGES[100:199])})
    predictions[IMAGES[150]] = unsure
    result = route(classification_request(predictions, prediction_problems={IMAGES[199]: "transform output bad"}))
    assert result.choice.theta == 0.99
    machine = [line["source-ref"] for line in result.machine_lines]
    assert sorted(machine + result.for_people) == sorted(IMAGES[100:200])
    assert IMAGES[199] in result.for_people and result.not_predicted[IMAGES[199]] == "transform output bad"
    line = result.machine_lines[0]
    assert line["truthflow-task"] == {"a": 1}
    metadata = line["tf-x-metadata"]
    assert metadata["human-annotated"] == "no" and metadata["confidence"] == 0.99
    assert metadata["type"] == "groundtruth/image-classification" and metadata["job-name"] == "labeling-job/tf-x"
    record = parse_output_manifest_line(line, label_attribute_name="tf-x", class_names=LABELS)
    assert isinstance(record, ClassificationRecord) and record.label == "pen"


def test_no_qualifying_threshold_sends_every_remaining_image_to_people():
    unsure = ClassProbabilities((0.6, 0.4))
    wrong = ClassProbabilities((0.1, 0.9))
    predictions = {image: wrong for image in IMAGES[:80]} | {image: unsure for image in IMAGES[100:200]}
    result = route(classification_request(predictions))
    assert result.choice.theta is None and result.machine_lines == []
    assert result.for_people == list(IMAGES[100:200])


def test_box_machine_labels_are_ground_truth_object_detection_lines():
    split = LabelingPlan(first_batch=tuple(IMAGES[:40]), calibration=tuple(IMAGES[:30]),
                         remaining=tuple(IMAGES[40:50]), note="")  # fmt: skip
    human_box = LabeledBox("pen", 10, 20, 40, 30)
    human = {image: DetectionRecord(image, 100, 100, 3, (human_box,), "tf-x", {}) for image in split.first_batch}
    detection = [Detection(0, 0.95, 0.1, 0.2, 0.5, 0.5)]
    predictions = {image: detection for image in IMAGES[:50]}
    sizes = {image: (100, 100) for image in IMAGES[:50]}
    request = classification_request(predictions, task_type="bounding-box", plan=split, human_labels=human,
                                     image_sizes=sizes, target=0.8)  # fmt: skip
    result = route(request)
    assert result.score_threshold is not None and result.choice.theta is not None
    assert len(result.machine_lines) == 10
    record = parse_output_manifest_line(result.machine_lines[0], label_attribute_name="tf-x", class_names=LABELS)
    assert isinstance(record, DetectionRecord)
    assert (record.image_width, record.image_height) == (100, 100)
    assert [(b.label, b.left, b.top, b.width, b.height) for b in record.boxes] == [("pen", 10, 20, 40, 30)]
    metadata = result.machine_lines[0]["tf-x-metadata"]
    assert metadata["human-annotated"] == "no" and metadata["objects"] == [{"confidence": 0.95}]


def test_boxes_without_an_image_size_go_to_people_with_the_reason():
    split = LabelingPlan(first_batch=tuple(IMAGES[:40]), calibration=tuple(IMAGES[:30]),
                         remaining=(IMAGES[40],), note="")  # fmt: skip
    human = {image: DetectionRecord(image, 100, 100, 3, (), "tf-x", {}) for image in split.first_batch}
    request = classification_request({IMAGES[40]: []}, task_type="bounding-box", plan=split, human_labels=human)
    result = route(request)
    assert result.for_people == [IMAGES[40]]
    assert "size could not be read" in result.not_predicted[IMAGES[40]]


@pytest.mark.parametrize("missing", ["human", "prediction"])
def test_calibration_images_without_a_human_label_or_prediction_are_skipped_and_counted(missing):
    sure = ClassProbabilities((0.99, 0.01))
    predictions = {image: sure for image in IMAGES[:200]}
    request = classification_request(predictions)
    if missing == "human":
        request = classification_request(predictions, human_labels={})
    else:
        request = classification_request({image: sure for image in IMAGES[100:200]})
    result = route(request)
    key = "no_human_label" if missing == "human" else "no_prediction"
    assert result.calibration_skipped[key] == 80
    assert result.choice.theta is None and len(result.for_people) == 100
