"""The starter Lambda through ``lambda_handler``: an EventBridge S3 event for an uploaded job.json.

Every upload the trigger delivers ends with ``status.json`` beside the uploaded file, and bad input never raises
(EventBridge invokes the starter asynchronously: a raised error is retried and then parked, not shown to the user).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from emulated_aws import DATA_BUCKET, REGION

VALID_JOB = {"task_type": "bounding-box", "labels": ["pen", "pencil"]}
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def object_created(key: str, version: str | None = None, etag: str = "b1946ac92492d2347c6235b4d2611184") -> dict:
    """Shaped as the S3 EventBridge "Object Created" event in the S3 user guide (EventBridge message structure);
    ``version-id`` is there only for a versioned bucket."""
    s3_object: dict[str, Any] = {"key": key, "size": 60, "etag": etag, "sequencer": "00617F08299329D189"}
    if version is not None:
        s3_object["version-id"] = version
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-23T10:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:s3:::{DATA_BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": DATA_BUCKET},
            "object": s3_object,
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


@pytest.fixture
def starter(s3, load_handler, monkeypatch):
    s3.put_bucket_versioning(Bucket=DATA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    sfn = boto3.client("stepfunctions", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    arn = sfn.create_state_machine(name="pipeline", definition=json.dumps(definition), roleArn=role)["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("POLL_SECONDS", "0")
    monkeypatch.setenv("MAX_ENDPOINT_POLLS", "3")
    return load_handler("start_run"), sfn, arn


def put(s3: Any, key: str, body: Any) -> str:
    """Upload ``body`` (JSON unless it is text) to ``key``; returns the object's version id."""
    text = body if isinstance(body, str | bytes) else json.dumps(body)
    data = text.encode() if isinstance(text, str) else text
    return str(s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=data)["VersionId"])


def put_job(s3: Any, job_id: str, body: Any) -> str:
    return put(s3, f"jobs/{job_id}/job.json", body)


def status_at(s3: Any, key: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read())


def status(s3: Any, job_id: str) -> dict[str, Any]:
    return status_at(s3, f"jobs/{job_id}/status.json")


def executions(sfn: Any, arn: str) -> list[dict[str, Any]]:
    return list(sfn.list_executions(stateMachineArn=arn)["executions"])


# --- a valid upload --------------------------------------------------------------------------------------------------


def test_a_valid_upload_starts_one_named_execution_with_the_run_input(s3, starter, lambda_context):
    handler, sfn, arn = starter
    version = put_job(s3, "pens-v1", VALID_JOB)
    result = handler.lambda_handler(object_created("jobs/pens-v1/job.json", version), lambda_context)
    assert result["started"] is True
    assert result["execution_name"].startswith("pens-v1-")
    [execution] = executions(sfn, arn)
    assert execution["name"] == result["execution_name"]
    run_input = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert run_input == {
        "bucket": DATA_BUCKET,
        "job_id": "pens-v1",
        "job_key": "jobs/pens-v1/job.json",
        "job_version": version,
        "job_etag": "b1946ac92492d2347c6235b4d2611184",
        "settings": {"poll_seconds": 0, "max_endpoint_polls": 3},
    }
    assert status(s3, "pens-v1")["status"] == "started"


def test_a_duplicate_event_starts_nothing_new(s3, starter, lambda_context):
    handler, sfn, arn = starter
    version = put_job(s3, "pens-v1", VALID_JOB)
    first = handler.lambda_handler(object_created("jobs/pens-v1/job.json", version), lambda_context)
    second = handler.lambda_handler(object_created("jobs/pens-v1/job.json", version), lambda_context)
    assert second["execution_name"] == first["execution_name"]
    assert len(executions(sfn, arn)) == 1
    # A new upload of the same job (new object version) is a new run.
    newer = put_job(s3, "pens-v1", VALID_JOB)
    third = handler.lambda_handler(object_created("jobs/pens-v1/job.json", newer), lambda_context)
    assert third["started"] is True and third["execution_name"] != first["execution_name"]


def test_the_uploaded_version_is_checked_not_the_latest(s3, starter, lambda_context):
    handler, sfn, _ = starter
    valid = put_job(s3, "pens-v1", VALID_JOB)
    put_job(s3, "pens-v1", {"task_type": "bounding-box", "labels": []})  # replaced before the event arrives
    result = handler.lambda_handler(object_created("jobs/pens-v1/job.json", valid), lambda_context)
    assert result["started"] is True
    run_input = json.loads(sfn.describe_execution(executionArn=result["execution_arn"])["input"])
    assert run_input["job_version"] == valid


# --- bad input: status.json beside the uploaded file, never an exception ---------------------------------------------


@pytest.mark.parametrize(
    ("event_key", "stored_key", "status_key", "reason"),
    [
        ("jobs/my_job/job.json", None, "jobs/my_job/status.json", "'my_job' may contain only lower-case letters"),
        ("jobs/pens.v1/job.json", None, "jobs/pens.v1/status.json", "may contain only lower-case letters"),
        (f"jobs/{'x' * 60}/job.json", None, f"jobs/{'x' * 60}/status.json", "is 60 characters; at most 40"),
        ("jobs/pens+v1/job.json", "jobs/pens v1/job.json", "jobs/pens v1/status.json", "'pens v1' may contain"),
        ("jobs/caf%C3%A9/job.json", "jobs/café/job.json", "jobs/café/status.json", "'café' may contain"),
        ("jobs/a/b/job.json", None, "jobs/a/b/status.json", "is not a job file: expected jobs/<id>/job.json"),
        ("jobs/Pens/job.json", None, "jobs/Pens/status.json", "has upper-case letters; use 'pens'"),
        ("jobs/-pens/job.json", None, "jobs/-pens/status.json", "must start and end with a letter or digit"),
    ],
)
def test_a_job_id_sagemaker_cannot_use_gets_an_invalid_status_beside_the_file(
    s3, starter, lambda_context, event_key, stored_key, status_key, reason
):
    handler, sfn, arn = starter
    version = put(s3, stored_key or event_key, VALID_JOB)
    result = handler.lambda_handler(object_created(event_key, version), lambda_context)
    assert result["started"] is False and reason in result["errors"]
    recorded = status_at(s3, status_key)
    assert recorded["status"] == "invalid" and reason in recorded["errors"]
    assert recorded["job_file"] == (stored_key or event_key)
    assert executions(sfn, arn) == []


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"detail": "nonsense"},
        {"detail": {"bucket": {"name": DATA_BUCKET}}},
        {"detail": {"bucket": {"name": DATA_BUCKET}, "object": {"key": 7}}},
        object_created("other/pens-v1/job.json", "v1"),
    ],
)
def test_a_malformed_event_or_a_key_outside_jobs_raises_nothing_and_writes_nothing(s3, starter, lambda_context, event):
    handler, sfn, arn = starter
    result = handler.lambda_handler(event, lambda_context)
    assert result["started"] is False and result["errors"]
    assert s3.list_objects_v2(Bucket=DATA_BUCKET).get("KeyCount", 0) == 0
    assert executions(sfn, arn) == []


def test_an_event_without_version_or_etag_is_recorded_as_invalid(s3, starter, lambda_context):
    handler, _, _ = starter
    event = object_created("jobs/pens-v1/job.json")
    del event["detail"]["object"]["etag"]
    assert handler.lambda_handler(event, lambda_context)["started"] is False
    assert "neither an object version-id nor an etag" in status(s3, "pens-v1")["errors"]


def test_an_invalid_job_file_starts_nothing_and_records_why(s3, starter, lambda_context):
    handler, sfn, arn = starter
    version = put_job(s3, "pens-v1", {"task_type": "bounding-box", "labels": ["pen"], "workers_per_object": 12})
    result = handler.lambda_handler(object_created("jobs/pens-v1/job.json", version), lambda_context)
    assert result["started"] is False
    assert executions(sfn, arn) == []
    recorded = status(s3, "pens-v1")
    assert recorded["status"] == "invalid"
    assert "jobs/pens-v1/job.json" in recorded["errors"] and "workers_per_object" in recorded["errors"]


def test_malformed_json_is_reported(s3, starter, lambda_context):
    handler, _, _ = starter
    version = put_job(s3, "broken", '{"task_type": "bounding-box", ')
    assert handler.lambda_handler(object_created("jobs/broken/job.json", version), lambda_context)["started"] is False
    assert "jobs/broken/job.json: is not valid JSON" in status(s3, "broken")["errors"]


def test_a_job_file_deleted_before_the_event_arrives_is_reported(s3, starter, lambda_context):
    handler, _, _ = starter
    version = put_job(s3, "pens-v1", VALID_JOB)
    s3.delete_object(Bucket=DATA_BUCKET, Key="jobs/pens-v1/job.json", VersionId=version)
    assert handler.lambda_handler(object_created("jobs/pens-v1/job.json", version), lambda_context)["started"] is False
    assert status(s3, "pens-v1")["status"] == "invalid"


def test_a_huge_job_file_is_refused_unread(s3, starter, lambda_context):
    handler, _, _ = starter
    version = put_job(s3, "pens-v1", b" " * 2_000_000 + json.dumps(VALID_JOB).encode())
    assert handler.lambda_handler(object_created("jobs/pens-v1/job.json", version), lambda_context)["started"] is False
    assert "bytes; a job file may have at most 1,048,576" in status(s3, "pens-v1")["errors"]


# --- limits that later steps enforce are checked at upload -----------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (
            {
                "task_type": "bounding-box",
                "labels": ["pen"],
                "existing_annotations": {
                    "consolidated_manifest": f"s3://{DATA_BUCKET}/jobs/other-job/dataset/consolidated.manifest"
                },
            },
            "existing_annotations.consolidated_manifest: 's3://truthflow-data/jobs/other-job/dataset/consolidated."
            "manifest' is outside this job: a job reads only under s3://truthflow-data/jobs/pens-v1/",
        ),
        (
            {
                "task_type": "bounding-box",
                "labels": ["pen"],
                "existing_annotations": {"output_manifest": "s3://someone-elses-bucket/output.manifest"},
            },
            "existing_annotations.output_manifest: 's3://someone-elses-bucket/output.manifest' is outside this job",
        ),
        (
            {"task_type": "bounding-box", "labels": ["pen"], "annotations": {"files": ["../other-job/export.json"]}},
            "annotations.files[0]: must be a path relative to the job's folder jobs/<id>/",
        ),
        (
            {
                "task_type": "bounding-box",
                "labels": ["pen"],
                "annotations": {"files": ["export.json"]},
                "existing_annotations": {"output_manifest": f"s3://{DATA_BUCKET}/jobs/pens-v1/output.manifest"},
            },
            "annotations: give either 'annotations'",
        ),
        (
            {"task_type": "image-classification", "labels": [f"{i:03d}" + "x" * 253 for i in range(80)]},
            "labels: every input-manifest line carries the labels and instructions.header in its truthflow-task "
            "attribute, which would be",
        ),
        (
            {"task_type": "image-classification", "labels": [str(i) for i in range(501)]},
            "labels: image-classification job files take at most 500 labels, got 501",
        ),
        ({"task_type": "bounding-box", "labels": ["pen", "pencil\tcase"]}, "labels: label 2 'pencil\\tcase' contains"),
        ({"task_type": "bounding-box", "labels": ["pen", "two\nlines"]}, "labels: label 2 'two\\nlines' contains"),
        ({"task_type": "bounding-box", "labels": ["pen"], "task_title": "Pens 🖊"}, "task_title: contains '🖊'"),
        (
            {"task_type": "bounding-box", "labels": ["pen"], "max_concurrent_task_count": 1001},
            "max_concurrent_task_count: must be between 1 and 1,000",
        ),
        (
            {"task_type": "image-classification", "labels": ["a", "b"], "training": {"instance_count": 2}},
            "training.instance_count: must be 1: the built-in image-classification algorithm does not support "
            "distributed training in Pipe mode",
        ),
        (
            {"task_type": "bounding-box", "labels": ["pen"], "training": {"instance_type": "ml.p4d.24xlarge"}},
            "training.instance_type: the built-in object-detection algorithm trains on GPU instances of the families "
            "ml.p2.*, ml.p3.*, ml.g4dn.*, ml.g5.*",
        ),
    ],
)
def test_a_job_file_that_would_fail_a_later_step_is_refused_at_upload(s3, starter, lambda_context, job, expected):
    handler, sfn, arn = starter
    version = put_job(s3, "pens-v1", job)
    result = handler.lambda_handler(object_created("jobs/pens-v1/job.json", version), lambda_context)
    assert result["started"] is False
    errors = status(s3, "pens-v1")["errors"]
    assert f"jobs/pens-v1/job.json: {expected}" in errors, errors
    assert executions(sfn, arn) == []


def test_a_bucket_the_deployment_allows_may_be_named(s3, starter, lambda_context, load_handler, monkeypatch):
    monkeypatch.setenv("INPUT_BUCKETS", '["shared-annotations"]')
    handler = load_handler("start_run")
    job = {"task_type": "bounding-box", "labels": ["pen"]}
    job["existing_annotations"] = {"output_manifest": "s3://shared-annotations/gt/output.manifest"}
    version = put_job(s3, "pens-v1", job)
    assert handler.lambda_handler(object_created("jobs/pens-v1/job.json", version), lambda_context)["started"]


# --- what is not the upload's fault ----------------------------------------------------------------------------------


def test_an_infrastructure_failure_is_recorded_and_raised_for_the_retry_and_the_dead_letter_queue(
    s3, starter, lambda_context, monkeypatch, load_handler
):
    monkeypatch.setenv("STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:gone")
    handler = load_handler("start_run")
    version = put_job(s3, "pens-v1", VALID_JOB)
    with pytest.raises(Exception, match="gone"):
        handler.lambda_handler(object_created("jobs/pens-v1/job.json", version), lambda_context)
    recorded = status(s3, "pens-v1")
    assert recorded["status"] == "error" and "gone" in recorded["errors"]


def test_url_encoded_keys_are_decoded(s3, starter, lambda_context):
    handler, _, _ = starter
    version = put_job(s3, "pens-v1", VALID_JOB)
    result = handler.lambda_handler(object_created("jobs/pens%2Dv1/job.json", version), lambda_context)
    assert result["started"] is True
