"""Ground Truth annotation-consolidation (ACS) Lambda: one batch of worker answers in, one label per object out.

Contract (reference/groundtruth_contracts.md §2): read the JSON list at ``payload.s3Uri``; return exactly one
``{"datasetObjectId", "consolidatedAnnotation": {"content": {<labelAttributeName>: ...}}}`` per object, with the id
as given (a number stays a number). Nothing a worker sends makes it raise, since an unhandled error could fail a
labeling job that people spent days on: what is bad (an annotation, an answer, a box) is left out and logged, an
object with nothing usable is returned failed, and a batch that cannot be consolidated at all (its labels cannot be
read, an internal error) comes back with every object failed. Memory stays bounded whatever a worker sends: answers
beyond the size limits of :mod:`truthflow.groundtruth.worker_answers` are refused (metric ``AnswersOverLimit``).
Only a payload that cannot be fetched from S3 raises (Ground Truth retries the invocation).

Gold questions (classification): the job's ``gold-labels.json``, which "Prepare labeling input" writes beside the
input manifest (found through DescribeLabelingJob, read once per container), fixes the labels of the batch's gold
objects and anchors worker skill; a job without one has none, and one that cannot be read is logged (metric
``GoldUnavailable``) and the batch consolidated without it.

Worker skill carries across batches through the DynamoDB table named by ``WORKER_STATS_TABLE`` (optional; layout in
:mod:`truthflow.aws.worker_stats`). The batch's counts are added once per batch identity, so a batch Ground Truth
sends again is not counted twice; a missing or throttled table means consolidating without carried skill (logged,
metric ``WorkerStatsUnavailable``), not failing.
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
from botocore.exceptions import BotoCoreError, ClientError

from truthflow.aws.s3 import read_bytes, read_json
from truthflow.aws.worker_stats import WorkerStatsError, WorkerStatsTable, batch_key
from truthflow.groundtruth.consolidation_batch import (
    BatchResult,
    ParsedBatch,
    consolidate_batch,
    detect_task_type,
    failed_batch,
    parse_payload,
    read_batch,
)
from truthflow.groundtruth.events import ConsolidationRequest
from truthflow.groundtruth.gold_labels import gold_labels_for_job, gold_labels_uri
from truthflow.groundtruth.label_config import parse_label_category_config

logger = Logger()
tracer = Tracer()
metrics = Metrics()
s3 = boto3.client("s3")
# Problems logged one by one per batch; the rest are counted (metric AnswersRejected, the summary log line).
MAX_LOGGED_PROBLEMS = 100
STATS_ERRORS = (ClientError, BotoCoreError, WorkerStatsError)
GOLD_RETRY_SECONDS = 60.0
_gold_failures: dict[str, float] = {}


@cache
def client(service: str) -> Any:
    """SageMaker and DynamoDB clients are made on first use: building a client costs tens of milliseconds of cold
    start, and most batches need neither (labels usually come with the event; the table is optional)."""
    return boto3.client(service)


@cache
def job_description(job_name: str) -> dict[str, Any]:
    """DescribeLabelingJob, once per container and job (labels and gold questions both come from it)."""
    description: dict[str, Any] = client("sagemaker").describe_labeling_job(LabelingJobName=job_name)
    return description


@cache
def job_labels(job_name: str) -> tuple[str, ...]:
    """The job's label list in label-category order (it fixes class ids), read once per container."""
    config = parse_label_category_config(read_json(s3, job_description(job_name)["LabelCategoryConfigS3Uri"]))
    return tuple(config.label_names)


@cache
def _job_gold(job_name: str) -> dict[str, str]:
    manifest = job_description(job_name)["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"]
    try:
        data = read_bytes(s3, gold_labels_uri(manifest))
    except ClientError as error:
        # No gold file (S3 says AccessDenied for a missing key when ListBucket is not granted): no gold questions.
        if str(error.response.get("Error", {}).get("Code", "")) in ("NoSuchKey", "404", "AccessDenied", "403"):
            return {}
        raise
    return gold_labels_for_job(data, labeling_job=job_name)


def job_gold(job_name: str) -> dict[str, str]:
    """The job's gold questions (image URI -> label): the ``gold-labels.json`` beside its input manifest, read once
    per container. When it cannot be read, the batch is consolidated without them (logged, metric
    ``GoldUnavailable``) and the read is tried again after GOLD_RETRY_SECONDS: gold sharpens worker skill, but
    "Consolidate whole job" applies it to the dataset anyway, so a batch is never failed for it."""
    failed_until = _gold_failures.get(job_name)
    if failed_until is not None and time.monotonic() < failed_until:
        return {}
    try:
        return _job_gold(job_name)
    except Exception as error:
        _gold_failures[job_name] = time.monotonic() + GOLD_RETRY_SECONDS
        logger.warning(
            "gold questions not read; consolidating without them", extra={"job": job_name, "error": str(error)}
        )
        metrics.add_metric(name="GoldUnavailable", unit=MetricUnit.Count, value=1)
        return {}


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> list[dict[str, Any]]:
    request = ConsolidationRequest.model_validate(event)
    job = request.labeling_job_name
    raw_objects = read_payload(request.payload.s3_uri)
    task_type = detect_task_type(raw_objects)
    shape = {"label_attribute_name": request.label_attribute_name, "job_name": job}
    try:
        labels = list(request.label_categories or job_labels(job))
    except Exception as error:  # without labels nothing can be consolidated, and raising could fail the job
        logger.exception("the job's labels cannot be read", extra={"job": job})
        metrics.add_metric(name="BatchesNotConsolidated", unit=MetricUnit.Count, value=1)
        reason = f"the job's labels cannot be read: {error}"
        return report(failed_batch(raw_objects, reason=reason, task_type=task_type, **shape), None)

    batch = read_batch(raw_objects, labels=labels, task_type=task_type)
    table_name = os.environ.get("WORKER_STATS_TABLE")
    stats = WorkerStatsTable(client("dynamodb"), table_name) if table_name else None
    prior = load_carried_skill(stats, job, batch, labels) if stats and batch.workers else None
    gold = job_gold(job) if task_type == "image-classification" else {}
    try:
        result = consolidate_batch(batch, labels=labels, prior_counts=prior, gold=gold, **shape)
    except Exception as error:  # a last resort: every object comes back failed, none is lost
        logger.exception("batch not consolidated", extra={"job": job, "objects": len(batch.objects)})
        metrics.add_metric(name="BatchesNotConsolidated", unit=MetricUnit.Count, value=1)
        result = failed_batch(raw_objects, reason=f"internal error: {error}", task_type=task_type, **shape)
        return report(result, batch)
    if result.note is not None:
        logger.warning("batch consolidated without the worker-skill model", extra={"note": result.note})
        metrics.add_metric(name="SkillModelSkipped", unit=MetricUnit.Count, value=1)
    if result.n_gold:
        metrics.add_metric(name="GoldObjects", unit=MetricUnit.Count, value=result.n_gold)
    if stats and result.workers:
        store_carried_skill(stats, job, batch, labels, result)
    return report(result, batch)


def read_payload(uri: str) -> list[Any]:
    """The payload list. S3 errors raise (Ground Truth retries); a payload that is not a readable JSON list is logged
    and answered with an empty list: there is no object id to answer."""
    raw_objects, problem = parse_payload(read_bytes(s3, uri))
    if problem is not None:
        logger.error("consolidation payload unusable", extra={"payload": uri, "problem": problem})
        metrics.add_metric(name="BatchesNotConsolidated", unit=MetricUnit.Count, value=1)
    return raw_objects


def load_carried_skill(stats: WorkerStatsTable, job: str, batch: ParsedBatch, labels: list[str]) -> Any:
    try:
        return stats.load(job, batch.workers, labels)
    except STATS_ERRORS as error:
        logger.warning("carried worker skill not loaded; consolidating this batch alone", extra={"error": str(error)})
        metrics.add_metric(name="WorkerStatsUnavailable", unit=MetricUnit.Count, value=1)
        return None


def store_carried_skill(
    stats: WorkerStatsTable, job: str, batch: ParsedBatch, labels: list[str], result: BatchResult
) -> None:
    try:
        already = stats.add(job, result.workers, labels, result.worker_counts, batch=batch_key(batch.answer_pairs))
    except STATS_ERRORS as error:
        logger.warning("this batch's worker skill not stored", extra={"error": str(error)})
        metrics.add_metric(name="WorkerStatsUnavailable", unit=MetricUnit.Count, value=1)
        return
    if already:
        logger.info("batch sent again: its worker skill was stored before", extra={"workers": already})
        metrics.add_metric(name="BatchesSentAgain", unit=MetricUnit.Count, value=1)


def report(result: BatchResult, batch: ParsedBatch | None) -> list[dict[str, Any]]:
    """Log what was left out (the first MAX_LOGGED_PROBLEMS one by one), add the metrics, return the response."""
    for problem in result.problems[:MAX_LOGGED_PROBLEMS]:
        logger.warning(
            "answer not used",
            extra={
                "dataset_object_id": problem.dataset_object_id,
                "worker": problem.worker,
                "reason": problem.reason,
                "over_limit": problem.over_limit,
            },
        )
    over_limit = sum(problem.over_limit for problem in result.problems)
    metrics.add_metric(name="ObjectsConsolidated", unit=MetricUnit.Count, value=len(result.response) - result.n_failed)
    metrics.add_metric(name="ObjectsFailed", unit=MetricUnit.Count, value=result.n_failed)
    metrics.add_metric(name="AnswersRejected", unit=MetricUnit.Count, value=len(result.problems))
    metrics.add_metric(name="AnswersOverLimit", unit=MetricUnit.Count, value=over_limit)
    logger.info(
        "batch consolidated",
        extra={
            "task_type": batch.task_type if batch else None,
            "objects": len(result.response),
            "failed": result.n_failed,
            "problems": len(result.problems),
            "problems_not_logged": max(0, len(result.problems) - MAX_LOGGED_PROBLEMS),
            "over_limit": over_limit,
        },
    )
    return result.response
