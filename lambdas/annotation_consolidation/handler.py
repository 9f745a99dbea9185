"""Ground Truth annotation-consolidation (ACS) Lambda: one batch of worker answers in, one label per object out.

Contract (reference/groundtruth_contracts.md §2): read the JSON list at ``payload.s3Uri``; return exactly one
``{"datasetObjectId", "consolidatedAnnotation": {"content": {<labelAttributeName>: ...}}}`` per object. One
object's bad data never raises: an unhandled error could fail a labeling job that people spent days on.
Worker skill carries across batches through the DynamoDB table named by ``WORKER_STATS_TABLE`` (optional).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from truthflow.aws.s3 import read_json
from truthflow.aws.worker_stats import WorkerStatsTable
from truthflow.groundtruth.consolidation_batch import consolidate_batch, detect_task_type, read_batch
from truthflow.groundtruth.events import ConsolidationRequest
from truthflow.groundtruth.label_config import parse_label_category_config

logger = Logger()
tracer = Tracer()
metrics = Metrics()
s3 = boto3.client("s3")


@cache
def client(service: str) -> Any:
    """SageMaker and DynamoDB clients are made on first use: building a client costs tens of milliseconds of cold
    start, and most batches need neither (labels usually come with the event; the table is optional)."""
    return boto3.client(service)


@cache
def job_labels(job_name: str) -> tuple[str, ...]:
    """The job's label list in label-category order (it fixes class ids), read once per container."""
    description = client("sagemaker").describe_labeling_job(LabelingJobName=job_name)
    config = parse_label_category_config(read_json(s3, description["LabelCategoryConfigS3Uri"]))
    return tuple(config.label_names)


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> list[dict[str, Any]]:
    request = ConsolidationRequest.model_validate(event)
    job = request.labeling_job_name
    labels = list(request.label_categories or job_labels(job))
    raw_objects = read_json(s3, request.payload.s3_uri)
    if not isinstance(raw_objects, list):
        raise ValueError(f"{request.payload.s3_uri}: expected a JSON list of dataset objects")
    batch = read_batch(raw_objects, labels=labels, task_type=detect_task_type(raw_objects))

    table_name = os.environ.get("WORKER_STATS_TABLE")
    stats = WorkerStatsTable(client("dynamodb"), table_name) if table_name else None
    prior = stats.load(job, batch.workers, labels) if stats and batch.workers else None
    result = consolidate_batch(
        batch, labels=labels, label_attribute_name=request.label_attribute_name, job_name=job, prior_counts=prior
    )
    if stats and result.workers:
        stats.add(job, result.workers, labels, result.worker_counts)

    for problem in result.problems:
        logger.warning(
            "answer not used",
            extra={"dataset_object_id": problem.dataset_object_id, "worker": problem.worker, "reason": problem.reason},
        )
    metrics.add_metric(name="ObjectsConsolidated", unit=MetricUnit.Count, value=len(result.response) - result.n_failed)
    metrics.add_metric(name="ObjectsFailed", unit=MetricUnit.Count, value=result.n_failed)
    metrics.add_metric(name="AnswersRejected", unit=MetricUnit.Count, value=len(result.problems))
    logger.info(
        "batch consolidated",
        extra={"job": job, "task_type": batch.task_type, "objects": len(result.response), "failed": result.n_failed},
    )
    return result.response
