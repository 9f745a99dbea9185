"""The ACS Lambda through ``lambda_handler``: recorded Ground Truth events on emulated S3 and DynamoDB."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from emulated_aws import DATA_BUCKET, REGION, load_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from truthflow.aws.worker_stats import WorkerStatsTable

JOB_ARN = "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/pens-v1"
PAYLOAD_KEY = (
    "jobs/pens-v1/labeling/pens-v1/annotations/consolidated-annotation/consolidation-request/iteration-1/p.json"
)


def request(labels: list[str] | None, attribute: str = "pens-v1") -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "2018-10-06",
        "labelingJobArn": JOB_ARN,
        "payload": {"s3Uri": f"s3://{DATA_BUCKET}/{PAYLOAD_KEY}"},
        "labelAttributeName": attribute,
        "roleArn": "arn:aws:iam::123456789012:role/service-role/gt-role",
        "outputConfig": f"s3://{DATA_BUCKET}/jobs/pens-v1/labeling/pens-v1/annotations",
    }
    if labels is not None:
        event["labelCategories"] = labels
    return event


def box_answer(worker: str, boxes: list[tuple[str, float, float, float, float]], size=(640, 480)) -> dict[str, Any]:
    content = {
        "boundingBox": {
            "boundingBoxes": [
                {"label": label, "left": left, "top": top, "width": width, "height": height}
                for label, left, top, width, height in boxes
            ],
            "inputImageProperties": {"width": size[0], "height": size[1]},
        }
    }
    return {"workerId": worker, "annotationData": {"content": json.dumps(content)}}


def class_answer(worker: str, label: str) -> dict[str, Any]:
    return {"workerId": worker, "annotationData": {"content": json.dumps({"crowd-image-classifier": {"label": label}})}}


def data_object(object_id: str, annotations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "datasetObjectId": object_id,
        "dataObject": {"s3Uri": f"s3://{DATA_BUCKET}/jobs/pens-v1/images/{object_id}.jpg"},
        "annotations": annotations,
    }


def put_payload(s3: Any, objects: list[Any]) -> None:
    s3.put_object(Bucket=DATA_BUCKET, Key=PAYLOAD_KEY, Body=json.dumps(objects).encode())


def test_recorded_bounding_box_payload_gives_groundtruth_object_detection(s3, load_handler, lambda_context):
    put_payload(s3, load_event("consolidation_payload_bounding_box.json"))
    handler = load_handler("annotation_consolidation")
    response = handler.lambda_handler(request(["Bird"], "birds"), lambda_context)
    assert [entry["datasetObjectId"] for entry in response] == ["0"]
    content = response[0]["consolidatedAnnotation"]["content"]
    assert content["birds"] == {
        "image_size": [{"width": 3745, "height": 2497, "depth": 3}],
        "annotations": [{"class_id": 0, "left": 583, "top": 302, "width": 1375, "height": 2052}],
    }
    metadata = content["birds-metadata"]
    assert metadata["type"] == "groundtruth/object-detection"
    assert metadata["class-map"] == {"0": "Bird"}
    assert metadata["human-annotated"] == "yes"
    assert metadata["job-name"] == "labeling-job/pens-v1"
    assert 0 <= metadata["objects"][0]["confidence"] <= 1


def test_recorded_classification_payload_gives_integer_label(s3, load_handler, lambda_context):
    put_payload(s3, load_event("consolidation_payload_image_classification.json"))
    handler = load_handler("annotation_consolidation")
    response = handler.lambda_handler(request(["Dog", "Cat"], "pets"), lambda_context)
    content = response[0]["consolidatedAnnotation"]["content"]
    assert response[0]["datasetObjectId"] == "2"
    assert content["pets"] == 1
    assert content["pets-metadata"]["class-name"] == "Cat"
    assert content["pets-metadata"]["type"] == "groundtruth/image-classification"
    assert content["pets-metadata"]["confidence"] > 0.5


def test_three_workers_boxes_merge_and_a_lone_box_is_outvoted(s3, load_handler, lambda_context):
    pen = [("pen", 100, 100, 50, 20)]
    put_payload(
        s3,
        [
            data_object(
                "0",
                [
                    box_answer("w1", [*pen, ("pencil", 300, 300, 20, 80)]),
                    box_answer("w2", [("pen", 102, 99, 49, 21)]),
                    box_answer("w3", [("pen", 99, 101, 51, 19)]),
                ],
            )
        ],
    )
    handler = load_handler("annotation_consolidation")
    response = handler.lambda_handler(request(["pen", "pencil"]), lambda_context)
    annotations = response[0]["consolidatedAnnotation"]["content"]["pens-v1"]["annotations"]
    assert len(annotations) == 1
    assert annotations[0]["class_id"] == 0
    assert abs(annotations[0]["left"] - 100) <= 2 and abs(annotations[0]["width"] - 50) <= 2


def test_malformed_objects_come_back_failed_and_the_rest_consolidated(s3, load_handler, lambda_context):
    put_payload(
        s3,
        [
            data_object("0", [class_answer("w1", "pen"), class_answer("w2", "pen")]),
            data_object("1", [{"workerId": "w1", "annotationData": {"content": "{not json"}}]),
            data_object("2", [class_answer("w1", "crayon")]),
            data_object("3", []),
            {"datasetObjectId": "4", "annotations": "nope"},
            {"no": "id"},
        ],
    )
    handler = load_handler("annotation_consolidation")
    response = handler.lambda_handler(request(["pen", "pencil"]), lambda_context)
    assert [entry["datasetObjectId"] for entry in response] == ["0", "1", "2", "3", "4"]
    by_id = {entry["datasetObjectId"]: entry["consolidatedAnnotation"]["content"] for entry in response}
    assert by_id["0"]["pens-v1"] == 0
    for failed in ("1", "2", "3", "4"):
        assert by_id[failed]["pens-v1"] is None
        assert by_id[failed]["pens-v1-metadata"]["confidence"] == 0.0
    assert "crayon" in by_id["2"]["pens-v1-metadata"]["failure-reason"]
    assert by_id["3"]["pens-v1-metadata"]["failure-reason"] == "no worker answers"


def test_labels_come_from_the_labeling_job_when_the_event_has_none(s3, load_handler, lambda_context):
    from botocore.stub import Stubber

    s3.put_object(
        Bucket=DATA_BUCKET,
        Key="jobs/pens-v1/manifests/label-categories.json",
        Body=json.dumps({"document-version": "2018-11-28", "labels": [{"label": "pen"}, {"label": "pencil"}]}),
    )
    put_payload(s3, [data_object("0", [class_answer("w1", "pencil")])])
    handler = load_handler("annotation_consolidation")
    with Stubber(handler.client("sagemaker")) as stub:
        stub.add_response(
            "describe_labeling_job",
            _describe_labeling_job(f"s3://{DATA_BUCKET}/jobs/pens-v1/manifests/label-categories.json"),
            {"LabelingJobName": "pens-v1"},
        )
        response = handler.lambda_handler(request(None), lambda_context)
    assert response[0]["consolidatedAnnotation"]["content"]["pens-v1"] == 1


def _describe_labeling_job(label_config_uri: str) -> dict[str, Any]:
    when = "2026-11-23T10:00:00Z"
    return {
        "LabelingJobStatus": "InProgress",
        "LabelCounters": {},
        "CreationTime": when,
        "LastModifiedTime": when,
        "JobReferenceCode": "ref",
        "LabelingJobName": "pens-v1",
        "LabelingJobArn": JOB_ARN,
        "LabelAttributeName": "pens-v1",
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": "s3://b/m"}}},
        "OutputConfig": {"S3OutputPath": "s3://b/o"},
        "RoleArn": "arn:aws:iam::123456789012:role/gt",
        "LabelCategoryConfigS3Uri": label_config_uri,
        "HumanTaskConfig": {
            "WorkteamArn": "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/team",
            "UiConfig": {"UiTemplateS3Uri": "s3://b/t"},
            "TaskTitle": "t",
            "TaskDescription": "d",
            "NumberOfHumanWorkersPerDataObject": 1,
            "TaskTimeLimitInSeconds": 300,
        },
    }


def make_stats_table() -> Any:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName="worker-stats",
        KeySchema=[{"AttributeName": "job", "KeyType": "HASH"}, {"AttributeName": "worker", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "job", "AttributeType": "S"},
            {"AttributeName": "worker", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


def stored_counts(dynamodb: Any, worker: str, labels: list[str], job: str = "pens-v1") -> Any:
    """A worker's carried confusion counts (K, K), true label by answered label, as the next batch loads them."""
    return WorkerStatsTable(dynamodb, "worker-stats").load(job, [worker], labels)[0]


def test_worker_skill_carries_across_batches_in_dynamodb(s3, load_handler, lambda_context, monkeypatch):
    dynamodb = make_stats_table()
    monkeypatch.setenv("WORKER_STATS_TABLE", "worker-stats")
    handler = load_handler("annotation_consolidation")
    # Batch 1: "good" agrees with two others on 30 objects; "bad" always says the opposite.
    first = []
    for index in range(30):
        truth, wrong = ("pen", "pencil") if index % 2 else ("pencil", "pen")
        answers = [class_answer(w, truth) for w in ("good", "a", "b")] + [class_answer("bad", wrong)]
        first.append(data_object(str(index), answers))
    put_payload(s3, first)
    handler.lambda_handler(request(["pen", "pencil"]), lambda_context)
    stored = stored_counts(dynamodb, "good", ["pen", "pencil"])
    assert stored[0, 0] == pytest.approx(15, abs=0.5)  # truth pen, answered pen
    # Batch 2: only "good" and "bad" answer, and they disagree: the carried skill decides.
    put_payload(s3, [data_object("100", [class_answer("bad", "pen"), class_answer("good", "pencil")])])
    response = handler.lambda_handler(request(["pen", "pencil"]), lambda_context)
    assert response[0]["consolidatedAnnotation"]["content"]["pens-v1-metadata"]["class-name"] == "pencil"
    assert stored_counts(dynamodb, "good", ["pen", "pencil"]).sum() == pytest.approx(31, abs=1e-3)


def test_box_label_skill_carries_across_batches_in_dynamodb(s3, load_handler, lambda_context, monkeypatch):
    make_stats_table()
    monkeypatch.setenv("WORKER_STATS_TABLE", "worker-stats")
    handler = load_handler("annotation_consolidation")
    # Batch 1: "good" labels like two others; "bad" calls every pen a pencil and every pencil a pen.
    first = []
    for index in range(20):
        truth, wrong = ("pen", "pencil") if index % 2 else ("pencil", "pen")
        box = (truth, 100, 100, 50, 20)
        answers = [box_answer(w, [box]) for w in ("good", "a", "b")] + [box_answer("bad", [(wrong, *box[1:])])]
        first.append(data_object(str(index), answers))
    put_payload(s3, first)
    handler.lambda_handler(request(["pen", "pencil"]), lambda_context)
    # Batch 2: only "good" and "bad" box the object, with different labels: the carried skill decides.
    put_payload(s3, [data_object("100", [box_answer("bad", [("pen", 100, 100, 50, 20)]),
                                         box_answer("good", [("pencil", 100, 100, 50, 20)])])])  # fmt: skip
    response = handler.lambda_handler(request(["pen", "pencil"]), lambda_context)
    annotations = response[0]["consolidatedAnnotation"]["content"]["pens-v1"]["annotations"]
    assert [a["class_id"] for a in annotations] == [1]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
answer_strategy = st.one_of(
    st.builds(class_answer, st.sampled_from(["w1", "w2", "w3"]), st.sampled_from(["pen", "pencil", "crayon", ""])),
    st.builds(
        box_answer,
        st.sampled_from(["w1", "w2", "w3"]),
        st.lists(
            st.tuples(
                st.sampled_from(["pen", "pencil", "x"]),
                st.floats(-50, 700, allow_nan=False),
                st.floats(-50, 500, allow_nan=False),
                st.floats(-10, 300, allow_nan=False),
                st.floats(-10, 300, allow_nan=False),
            ),
            max_size=4,
        ),
    ),
    st.fixed_dictionaries(
        {"workerId": st.text(max_size=3), "annotationData": st.fixed_dictionaries({"content": st.text(max_size=20)})}
    ),
    json_values,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    objects=st.lists(
        st.tuples(st.integers(0, 30).map(str), st.lists(answer_strategy, max_size=4)), min_size=1, max_size=8
    )
)
def test_no_exception_escapes_and_every_object_comes_back(s3, load_handler, lambda_context, objects):
    put_payload(s3, [data_object(object_id, answers) for object_id, answers in objects])
    handler = load_handler("annotation_consolidation")
    response = handler.lambda_handler(request(["pen", "pencil"]), lambda_context)
    expected = list(dict.fromkeys(object_id for object_id, _ in objects))
    assert [entry["datasetObjectId"] for entry in response] == expected
    for entry in response:
        assert "pens-v1" in entry["consolidatedAnnotation"]["content"]
