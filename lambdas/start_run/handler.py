"""Starter Lambda: an uploaded ``jobs/<id>/job.json`` (EventBridge S3 "Object Created") starts one execution.

Every upload the trigger delivers ends with ``status.json`` beside the uploaded file (``jobs/a/b/job.json`` ->
``jobs/a/b/status.json``): ``started`` with the execution ARN, or ``invalid`` with one line per problem (a job id
SageMaker cannot use, a nested key, a job file that is missing, too large, not JSON, or breaks any rule a later step
would enforce; a gold file it names that is missing or malformed, by file and line). Bad input never raises:
EventBridge invokes this function asynchronously, and a raised error would only be retried and then dropped. What
is left (S3 or Step Functions unreachable, access denied) raises after recording ``status: error``; Lambda retries
it and then sends the event to the function's on-failure queue, which has an alarm. A valid job file starts the
state machine under a name derived from the upload, so a duplicate event starts nothing new. Environment:
``STATE_MACHINE_ARN``, ``POLL_SECONDS``, ``MAX_ENDPOINT_POLLS``, ``INPUT_BUCKETS``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from functools import partial
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from truthflow.aws.job_files import read_job_file_version, read_object_within
from truthflow.aws.s3 import s3_uri, write_json
from truthflow.job_acceptance import accept_job_file
from truthflow.job_file import JobFileError
from truthflow.job_scope import JobScope, input_buckets_from_environment
from truthflow.run_start import JobUpload, execution_input, execution_name, read_job_upload

logger = Logger()
tracer = Tracer()
metrics = Metrics()
s3 = boto3.client("s3")
stepfunctions = boto3.client("stepfunctions")
STATE_MACHINE_ARN = os.environ.get("STATE_MACHINE_ARN", "")
POLL_SECONDS = int(os.environ.get("POLL_SECONDS", "60"))
MAX_ENDPOINT_POLLS = int(os.environ.get("MAX_ENDPOINT_POLLS", "60"))
INPUT_BUCKETS = input_buckets_from_environment(os.environ.get("INPUT_BUCKETS"))


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    reading = read_job_upload(event)
    status_key = reading.status_key
    if reading.upload is None:
        return refuse(reading.bucket, status_key, reading.key, str(reading.problem))
    upload = reading.upload
    assert status_key is not None  # a readable upload is a jobs/<id>/job.json key
    try:
        try:
            text = read_job_file_version(s3, upload.bucket, upload.job_file)
            accept_job_file(
                text,
                source=upload.key,
                scope=JobScope(upload.bucket, upload.job_id, INPUT_BUCKETS),
                read_object=partial(read_object_within, s3),
            )
        except JobFileError as error:
            return refuse(upload.bucket, status_key, upload.key, str(error))
        return start(upload, status_key)
    except Exception as error:
        # Not the job file's fault: say so where the user looks, then let Lambda retry (and finally park the event).
        logger.exception("run not started", extra={"job_file": upload.key})
        write_status(upload.bucket, status_key, {"status": "error", "job_file": upload.key, "errors": repr(error)})
        raise


def start(upload: JobUpload, status_key: str) -> dict[str, Any]:
    name = execution_name(upload)
    run_input = execution_input(upload, poll_seconds=POLL_SECONDS, max_endpoint_polls=MAX_ENDPOINT_POLLS)
    try:
        response = stepfunctions.start_execution(
            stateMachineArn=STATE_MACHINE_ARN, name=name, input=json.dumps(run_input, sort_keys=True)
        )
        execution_arn = response["executionArn"]
        started = True
    except stepfunctions.exceptions.ExecutionAlreadyExists:
        # The same upload delivered again: its run exists already.
        execution_arn = STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:") + f":{name}"
        started = False
    metrics.add_metric(name="RunsStarted", unit=MetricUnit.Count, value=int(started))
    write_status(
        upload.bucket, status_key, {"status": "started", "job_file": upload.key, "execution_arn": execution_arn}
    )
    logger.info("run", extra={"execution": name, "started": started, "job_file": upload.key})
    return {"started": started, "execution_name": name, "execution_arn": execution_arn}


def refuse(bucket: str | None, status_key: str | None, key: str | None, errors: str) -> dict[str, Any]:
    """Record why an upload starts nothing (beside the uploaded file, when it is under ``jobs/``)."""
    logger.warning("invalid job file; no run started", extra={"job_file": key, "errors": errors})
    metrics.add_metric(name="InvalidJobFiles", unit=MetricUnit.Count, value=1)
    if bucket is not None and status_key is not None:
        write_status(bucket, status_key, {"status": "invalid", "job_file": key, "errors": errors})
    return {"started": False, "errors": errors, "status_key": status_key}


def write_status(bucket: str, key: str, status: dict[str, Any]) -> None:
    status["time"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_json(s3, s3_uri(bucket, key), status)
