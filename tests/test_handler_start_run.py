"""The starter Lambda through ``lambda_handler``: an EventBridge S3 event for an uploaded job.json."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from emulated_aws import DATA_BUCKET, REGION

VALID_JOB = {"task_type": "bounding-box", "labels": ["pen", "pencil"]}


def object_created(key: str, version: str = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY") -> dict[str, Any]:
    """Shaped as the S3 EventBridge "Object Created" event in the S3 user guide (EventBridge message structure)."""
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
            "object": {
                "key": key,
                "size": 60,
                "etag": "b1946ac92492d2347c6235b4d2611184",
                "version-id": version,
                "sequencer": "00617F08299329D189",
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


@pytest.fixture
def starter(s3, load_handler, monkeypatch):
    sfn = boto3.client("stepfunctions", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    arn = sfn.create_state_machine(name="pipeline", definition=json.dumps(definition), roleArn=role)["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("POLL_SECONDS", "0")
    monkeypatch.setenv("MAX_ENDPOINT_POLLS", "3")
    return load_handler("start_run"), sfn, arn


def put_job(s3: Any, job_id: str, body: Any) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    s3.put_object(Bucket=DATA_BUCKET, Key=f"jobs/{job_id}/job.json", Body=text.encode())


def status(s3: Any, job_id: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=DATA_BUCKET, Key=f"jobs/{job_id}/status.json")["Body"].read())


def test_a_valid_upload_starts_one_named_execution_with_the_run_input(s3, starter, lambda_context):
    handler, sfn, arn = starter
    put_job(s3, "pens-v1", VALID_JOB)
    result = handler.lambda_handler(object_created("jobs/pens-v1/job.json"), lambda_context)
    assert result["started"] is True
    assert result["execution_name"].startswith("pens-v1-")
    executions = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert [e["name"] for e in executions] == [result["execution_name"]]
    run_input = json.loads(sfn.describe_execution(executionArn=executions[0]["executionArn"])["input"])
    assert run_input == {
        "bucket": DATA_BUCKET,
        "job_id": "pens-v1",
        "job_key": "jobs/pens-v1/job.json",
        "job_version": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
        "settings": {"poll_seconds": 0, "max_endpoint_polls": 3},
    }
    assert status(s3, "pens-v1")["status"] == "started"


def test_a_duplicate_event_starts_nothing_new(s3, starter, lambda_context):
    handler, sfn, arn = starter
    put_job(s3, "pens-v1", VALID_JOB)
    first = handler.lambda_handler(object_created("jobs/pens-v1/job.json"), lambda_context)
    second = handler.lambda_handler(object_created("jobs/pens-v1/job.json"), lambda_context)
    assert second["execution_name"] == first["execution_name"]
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1
    # A new upload of the same job (new object version) is a new run.
    third = handler.lambda_handler(object_created("jobs/pens-v1/job.json", version="v2"), lambda_context)
    assert third["started"] is True and third["execution_name"] != first["execution_name"]


def test_an_invalid_job_file_starts_nothing_and_records_why(s3, starter, lambda_context):
    handler, sfn, arn = starter
    put_job(s3, "pens-v1", {"task_type": "bounding-box", "labels": ["pen"], "workers_per_object": 12})
    result = handler.lambda_handler(object_created("jobs/pens-v1/job.json"), lambda_context)
    assert result["started"] is False
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []
    recorded = status(s3, "pens-v1")
    assert recorded["status"] == "invalid"
    assert "jobs/pens-v1/job.json" in recorded["errors"] and "workers_per_object" in recorded["errors"]


def test_url_encoded_keys_are_decoded(s3, starter, lambda_context):
    handler, _, _ = starter
    put_job(s3, "pens-v1", VALID_JOB)
    # "%2F" never occurs for a real key separator, but encoded characters must decode before use.
    result = handler.lambda_handler(object_created("jobs/pens%2Dv1/job.json"), lambda_context)
    assert result["started"] is True


def test_malformed_json_is_reported(s3, starter, lambda_context):
    handler, _, _ = starter
    put_job(s3, "broken", '{"task_type": "bounding-box", ')
    assert handler.lambda_handler(object_created("jobs/broken/job.json"), lambda_context)["started"] is False
    assert "jobs/broken/job.json" in status(s3, "broken")["errors"]
