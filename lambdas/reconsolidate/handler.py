"""State machine step "Consolidate whole job": every worker response of the finished job (or the tool exports the job
brought), consolidated at once.

The event, the flow and the output are :mod:`truthflow.job_dataset`'s (event ``{"bucket", "job_id", "labeling",
"stage"}``, output the consolidated dataset's URIs and counts); this adapter gives it S3 and reports what it did.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from truthflow.aws.job_store import S3JobStore
from truthflow.job_dataset import ConsolidateJobRequest, consolidate_whole_job
from truthflow.job_scope import input_buckets_from_environment

logger = Logger()
tracer = Tracer()
metrics = Metrics()
store = S3JobStore(boto3.client("s3"))
# Buckets beyond the data bucket that job files may name (cdk.json input_buckets), set by the stack.
INPUT_BUCKETS = input_buckets_from_environment(os.environ.get("INPUT_BUCKETS"))


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ConsolidateJobRequest.model_validate(event)
    output, quality = consolidate_whole_job(request, store, input_buckets=INPUT_BUCKETS)
    metrics.add_metric(name="ObjectsConsolidated", unit=MetricUnit.Count, value=quality.n_consolidated)
    metrics.add_metric(name="ObjectsFailed", unit=MetricUnit.Count, value=quality.n_failed)
    metrics.add_metric(name="AnswersNotUsed", unit=MetricUnit.Count, value=len(quality.problems))
    over_limit = sum(problem.over_limit for problem in quality.problems)
    metrics.add_metric(name="AnswersOverLimit", unit=MetricUnit.Count, value=over_limit)
    logger.info(
        "job consolidated",
        extra={
            "job_id": request.job_id,
            "source": quality.source,
            "objects": quality.n_objects,
            "failed": quality.n_failed,
            "answers_not_used": len(quality.problems),
            "answers_over_limit": over_limit,
            "response_files": quality.n_response_files,
            "agreement": quality.agreement,
        },
    )
    if quality.imports is not None:
        metrics.add_metric(
            name="ImportedImagesNotFound", unit=MetricUnit.Count, value=quality.imports["n_unmatched_images"]
        )
        metrics.add_metric(name="ImportedAnswersRefused", unit=MetricUnit.Count, value=quality.imports["n_problems"])
        logger.info("labels imported from tool exports", extra={"import": output.get("import")})
    return output
