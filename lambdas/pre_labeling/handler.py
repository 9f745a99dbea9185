"""Ground Truth pre-annotation (PRE) Lambda: one data object in, ``{"taskInput", "isHumanAnnotationRequired"}`` out.

Contract: reference/groundtruth_contracts.md §1. Task type, labels and header come from the manifest line's
``truthflow-task`` attribute (written by the prepare step). A plain line (only ``source-ref``) takes the labels of the
job's own label-category file and its task title: DescribeLabelingJob on the event's ``labelingJobArn``, then
``LabelCategoryConfigS3Uri``, read once per container (a failure is remembered for a minute, so a job of 100,000
objects does not repeat a failing call for each). ``TASK_TYPE``, ``LABELS`` (a JSON list) and ``HEADER`` are the
fallback after that, read once at cold start: a misconfigured function fails there, loudly. A bad data object never
raises (an unhandled error can fail the whole labeling job): it is logged and kept from workers with
``isHumanAnnotationRequired: false``. The worker template turns the S3 URI into a presigned URL.
"""

from __future__ import annotations

import os
import time
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from truthflow.aws.s3 import read_json
from truthflow.groundtruth.label_config import parse_label_category_config
from truthflow.labeling_input import (
    JobTaskSettings,
    excluded_object,
    job_settings_needed,
    job_task_settings,
    labeling_task_from_environment,
    pre_annotation,
)

logger = Logger()
tracer = Tracer()
metrics = Metrics()
DEFAULT_TASK = labeling_task_from_environment(os.environ)
FAILED_LOOKUP_SECONDS = 60.0
_failed_lookups: dict[str, tuple[float, str]] = {}


@cache
def client(service: str) -> Any:
    """Clients are made on first use: lines written by the prepare step never need them."""
    return boto3.client(service)


@cache
def _job_settings(job_name: str) -> JobTaskSettings:
    description = client("sagemaker").describe_labeling_job(LabelingJobName=job_name)
    config = parse_label_category_config(read_json(client("s3"), description["LabelCategoryConfigS3Uri"]))
    return job_task_settings(config.label_names, description.get("HumanTaskConfig", {}).get("TaskTitle"))


def job_settings(job_name: str) -> tuple[JobTaskSettings | None, str | None]:
    """The job's settings, or ``(None, why not)``; a failure is remembered for FAILED_LOOKUP_SECONDS."""
    failed = _failed_lookups.get(job_name)
    if failed is not None and time.monotonic() < failed[0]:
        return None, failed[1]
    try:
        return _job_settings(job_name), None
    except Exception as error:  # AccessDenied, a missing or malformed label file: the object still goes to workers
        problem = f"the settings of labeling job {job_name!r} cannot be read: {error}"
        _failed_lookups[job_name] = (time.monotonic() + FAILED_LOOKUP_SECONDS, problem)
        logger.warning("job settings not read", extra={"job": job_name, "error": str(error)})
        metrics.add_metric(name="JobSettingsUnavailable", unit=MetricUnit.Count, value=1)
        return None, problem


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        job_name = job_settings_needed(event)
        settings, problem = job_settings(job_name) if job_name else (None, None)
        result = pre_annotation(event, default_task=DEFAULT_TASK, job_settings=settings, job_settings_problem=problem)
    except Exception as error:  # a last resort: pre_annotation handles every bad object it knows of
        logger.exception("pre-annotation failed")
        result = excluded_object(f"internal error: {error}")
    if result.excluded_because is not None:
        data_object = event.get("dataObject") if isinstance(event, dict) else None
        logger.warning(
            "data object kept from workers",
            extra={"reason": result.excluded_because, "data_object": repr(data_object)[:1000]},
        )
        metrics.add_metric(name="ObjectsExcluded", unit=MetricUnit.Count, value=1)
    else:
        if result.note is not None:
            logger.warning("data object sent without labels", extra={"note": result.note})
        metrics.add_metric(name="ObjectsPrepared", unit=MetricUnit.Count, value=1)
    return result.response
