"""PRE and ACS Lambda contracts, checked against the events recorded in ``tests/events`` (copied from
``reference/groundtruth_contracts.md`` §1-2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from truthflow.groundtruth import (
    ConsolidationRequest,
    LabeledBox,
    PreAnnotationRequest,
    PreAnnotationResponse,
    build_consolidation_response_entry,
    build_pre_annotation_response,
    detection_annotation,
    labeling_job_name_from_arn,
    parse_bounding_box_content,
    parse_consolidation_payload,
    parse_consolidation_response,
    parse_image_classification_content,
)

EVENTS = Path(__file__).parent / "events"


def load_event(name: str):
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def test_console_test_event_parses_into_the_image_uri_and_job_name():
    request = PreAnnotationRequest.model_validate(load_event("pre_annotation_request_console_test.json"))
    assert request.version == "2018-10-16"
    assert request.data_object.source_ref == "s3://sagemakerexample/object_to_annotate.jpg"
    assert request.data_object.source is None
    assert request.labeling_job_name == "example-job"


def test_text_source_event_parses():
    # The doc prints this example without the comma after labelingJobArn; the stored copy adds only that comma.
    request = PreAnnotationRequest.model_validate(load_event("pre_annotation_request_text_source.json"))
    assert request.data_object.source == "Sue purchased 10 shares of the stock on April 10th, 2020"
    assert request.data_object.source_ref is None


def test_pre_request_keeps_every_manifest_attribute_and_any_version():
    event = load_event("pre_annotation_request_console_test.json")
    event["version"] = "2018-10-06"
    event["dataObject"]["animal"] = "horse"
    request = PreAnnotationRequest.model_validate(event)
    assert request.version == "2018-10-06"
    assert request.data_object.extra_attributes == {"animal": "horse"}
    assert request.data_object.as_manifest_line() == {
        "source-ref": event["dataObject"]["source-ref"],
        "animal": "horse",
    }


def test_pre_request_without_source_names_the_missing_keys():
    event = load_event("pre_annotation_request_console_test.json")
    event["dataObject"] = {"animal": "horse"}
    with pytest.raises(ValidationError, match="dataObject") as error:
        PreAnnotationRequest.model_validate(event)
    assert "source-ref" in str(error.value)


def test_pre_response_uses_the_documented_boolean_key():
    response = build_pre_annotation_response({"taskObject": "s3://b/a.jpg"}, human_annotation_required=False)
    assert response == {"taskInput": {"taskObject": "s3://b/a.jpg"}, "isHumanAnnotationRequired": False}
    assert json.loads(json.dumps(response))["isHumanAnnotationRequired"] is False
    assert "humanAnnotationRequired" not in response


def test_pre_response_refuses_the_samples_string_flag():
    with pytest.raises(ValidationError, match="isHumanAnnotationRequired"):
        PreAnnotationResponse.model_validate({"taskInput": {}, "isHumanAnnotationRequired": "true"})


@pytest.mark.parametrize(
    ("name", "version", "output_config", "label_categories"),
    [
        ("consolidation_request_doc.json", "2018-10-16", None, ["Ex Category1", "Ex Category2", "Ex Category3"]),
        ("consolidation_request_recipe.json", "2018-10-06", "s3://test-bucket/test-image.jpg", None),
        (
            "consolidation_request_real.json",
            "2018-10-06",
            "s3://sagemaker-dialog-label-demo/dialog-labeling-demo9-private/annotations",
            None,
        ),
    ],
)
def test_consolidation_requests_parse(name, version, output_config, label_categories):
    event = load_event(name)
    request = ConsolidationRequest.model_validate(event)
    assert request.version == version
    assert request.payload.s3_uri == event["payload"]["s3Uri"]
    assert request.label_attribute_name == event["labelAttributeName"]
    assert request.role_arn == event["roleArn"]
    assert request.output_config == output_config
    assert request.label_categories == label_categories
    assert request.labeling_job_name == event["labelingJobArn"].rsplit("/", 1)[1]


def test_consolidation_request_keeps_undocumented_extra_keys():
    event = load_event("consolidation_request_real.json")
    event["maxHumanWorkersPerDataObject"] = 1
    assert ConsolidationRequest.model_validate(event).model_extra == {"maxHumanWorkersPerDataObject": 1}


def test_consolidation_request_without_payload_names_the_field():
    event = load_event("consolidation_request_doc.json")
    del event["payload"]
    with pytest.raises(ValidationError, match="payload"):
        ConsolidationRequest.model_validate(event)


def test_consolidation_request_refuses_a_metadata_label_attribute():
    event = load_event("consolidation_request_doc.json")
    event["labelAttributeName"] = "boxes-metadata"
    with pytest.raises(ValidationError, match="-metadata"):
        ConsolidationRequest.model_validate(event)


def test_bounding_box_payload_parses_and_its_content_is_a_json_string():
    payload = parse_consolidation_payload((EVENTS / "consolidation_payload_bounding_box.json").read_bytes())
    assert [entry.dataset_object_id for entry in payload] == ["0"]
    entry = payload[0]
    assert entry.data_object.s3_uri == "s3://DOC-EXAMPLE-BUCKET/gt-input-data/images/bird1.jpg"
    annotation = entry.annotations[0]
    assert annotation.worker_id == "private.us-west-2.ab1234c5678a919d0"
    assert isinstance(annotation.annotation_data.content, str)
    answer = parse_bounding_box_content(annotation.annotation_data.content)
    assert (answer.image_width, answer.image_height) == (3745, 2497)
    box = answer.boxes[0]
    assert (box.label, box.left, box.top, box.width, box.height) == ("Bird", 583, 302, 1375, 2052)


def test_two_worker_classification_payload_parses():
    payload = parse_consolidation_payload(load_event("consolidation_payload_image_classification.json"))
    entry = payload[0]
    assert entry.dataset_object_id == "2"
    assert [annotation.worker_id for annotation in entry.annotations] == [
        "public.us-east-1.LZMJJLCU6JBGXAC4TLKLEVEJBQ",
        "public.us-east-1.FWJCMUKABODTR5HHPNYHB22U7Q",
    ]
    labels = [
        parse_image_classification_content(annotation.annotation_data.content, labels=["Cat", "Dog"]).label
        for annotation in entry.annotations
    ]
    assert labels == ["Cat", "Cat"]


def test_payload_error_names_the_entry_and_field():
    payload = load_event("consolidation_payload_image_classification.json")
    del payload[0]["annotations"][1]["workerId"]
    with pytest.raises(ValidationError) as error:
        parse_consolidation_payload(payload)
    assert "0.annotations.1.workerId" in str(error.value)


def test_payload_annotation_needs_content_or_uri():
    payload = load_event("consolidation_payload_bounding_box.json")
    payload[0]["annotations"][0]["annotationData"] = {}
    with pytest.raises(ValidationError, match="annotationData"):
        parse_consolidation_payload(payload)


def test_response_entry_wraps_an_object_keyed_by_the_label_attribute():
    content = detection_annotation(
        label_attribute_name="birds",
        class_names=["Bird"],
        boxes=[LabeledBox("Bird", 583, 302, 1375, 2052, confidence=0.0)],
        image_width=3745,
        image_height=2497,
        job_name="bird-job",
        creation_date="2024-01-01T00:00:00.000000",
    )
    entry = build_consolidation_response_entry("0", "birds", content)
    assert entry["datasetObjectId"] == "0"
    assert isinstance(entry["consolidatedAnnotation"]["content"], dict)
    assert set(entry["consolidatedAnnotation"]["content"]) == {"birds", "birds-metadata"}
    parsed = parse_consolidation_response(json.dumps([entry]))
    assert parsed[0].consolidated_annotation.content == content


def test_response_entry_refuses_content_without_the_label_attribute():
    with pytest.raises(ValueError, match="labelAttributeName"):
        build_consolidation_response_entry("0", "birds", {"other": 1})


def test_builtin_consolidation_response_file_parses():
    parsed = parse_consolidation_response(load_event("consolidation_response_builtin_multilabel.json"))
    content = parsed[0].consolidated_annotation.content
    assert parsed[0].dataset_object_id == "5"
    assert content["bg-labeling"] == [6, 0]
    assert content["bg-labeling-metadata"]["class-map"] == {"6": "clouds", "0": "Canyon"}


def test_job_name_from_arn():
    assert labeling_job_name_from_arn("arn:aws:sagemaker:us-east-1:1:labeling-job/pens-v1") == "pens-v1"
    with pytest.raises(ValueError, match="labeling-job"):
        labeling_job_name_from_arn("arn:aws:sagemaker:us-east-1:1:training-job/pens-v1")
