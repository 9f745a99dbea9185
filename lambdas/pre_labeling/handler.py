"""Ground Truth pre-annotation (PRE) Lambda: one data object in, ``{"taskInput", "isHumanAnnotationRequired"}`` out.

Contract: reference/groundtruth_contracts.md §1. Task type, labels and header come from the manifest line's
``truthflow-task`` attribute (written by the prepare step), else from ``TASK_TYPE``, ``LABELS`` (a JSON list) and
``HEADER``, read once at cold start: a misconfigured function fails there, loudly. A bad data object never raises
(an unhandled error can fail the whole labeling job): it is logged and kept from workers with
``isHumanAnnotationRequired: false``. No AWS calls: the worker template turns the S3 URI into a presigned URL.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from truthflow.labeling_input import excluded_object, labeling_task_from_environment, pre_annotation

logger = Logger()
tracer = Tracer()
metrics = Metrics()
DEFAULT_TASK = labeling_task_from_environment(os.environ)


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        result = pre_annotation(event, default_task=DEFAULT_TASK)
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
        metrics.add_metric(name="ObjectsPrepared", unit=MetricUnit.Count, value=1)
    return result.response
