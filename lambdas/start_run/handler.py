"""Starter Lambda: an uploaded ``jobs/<id>/job.json`` (EventBridge S3 "Object Created") starts one execution.

A valid job file starts the state machine under a name derived from the upload, so a duplicate event starts nothing
new. An invalid one starts nothing: the errors go to the log and to ``jobs/<id>/status.json`` for the user.
Environment: ``STATE_MACHINE_ARN``, ``POLL_SECONDS`` (endpoint polling interval), ``MAX_ENDPOINT_POLLS``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from truthflow.aws.s3 import read_text, s3_uri, write_json
from truthflow.job_file import JobFileError, parse_job_file
from truthflow.run_start import execution_input, execution_name, job_upload_from_event

logger = Logger()
tracer = Tracer()
metrics = Metrics()
s3 = boto3.client("s3")
stepfunctions = boto3.client("stepfunctions")
STATE_MACHINE_ARN = os.environ.get("STATE_MACHINE_ARN", "")
POLL_SECONDS = int(os.environ.get("POLL_SECONDS", "60"))
MAX_ENDPOINT_POLLS = int(os.environ.get("MAX_ENDPOINT_POLLS", "60"))


def _status(bucket: str, job_id: str, status: dict[str, Any]) -> None:
    status["time"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_json(s3, s3_uri(bucket, f"jobs/{job_id}/status.json"), status)


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    upload = job_upload_from_event(event)
    try:
        parse_job_file(read_text(s3, s3_uri(upload.bucket, upload.key)), source=upload.key)
    except JobFileError as error:
        logger.warning("invalid job file; no run started", extra={"job_file": upload.key, "errors": str(error)})
        metrics.add_metric(name="InvalidJobFiles", unit=MetricUnit.Count, value=1)
        _status(upload.bucket, upload.job_id, {"status": "invalid", "job_file": upload.key, "errors": str(error)})
        return {"started": False, "errors": str(error)}

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
    _status(upload.bucket, upload.job_id, {"status": "started", "job_file": upload.key, "execution_arn": execution_arn})
    logger.info("run", extra={"execution": name, "started": started, "job_file": upload.key})
    return {"started": started, "execution_name": name, "execution_arn": execution_arn}
