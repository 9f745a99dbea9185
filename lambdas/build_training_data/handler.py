"""State machine step "Build training data", one Lambda for its three calls: ``"step": "plan"``, ``"convert"`` (one
shard, run by the Distributed Map) and ``"join"``.

The events, the flows and the output are :mod:`truthflow.training_data_step`'s: the plan streams the consolidated
manifest once and cuts it into shards, each shard converts its byte range into every training format, the join
assembles the files one pass would write and returns what CreateTrainingJob needs (``"purpose": "bootstrap"``
builds the automated-labeling bootstrap model's data). This adapter gives the flows S3 and reports what they did.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from truthflow.aws.training_data_store import S3TrainingDataStore
from truthflow.job_scope import input_buckets_from_environment
from truthflow.training_data_step import (
    SHARD_LINES,
    JoinRequest,
    ShardRequest,
    TrainingDataRequest,
    convert_step,
    join_step,
    plan_step,
)
from truthflow.training_job import DeploymentDefaults

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# Shards write many small objects at once into one prefix: S3 may answer SlowDown until it scales the prefix, so
# the client slows itself down and retries (adaptive mode) rather than failing the shard.
s3 = boto3.client("s3", config=Config(retries={"mode": "adaptive", "max_attempts": 10}))
store = S3TrainingDataStore(s3)
ARTIFACTS_BUCKET = os.environ["ARTIFACTS_BUCKET"]
REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "")
DEFAULTS = DeploymentDefaults.from_environment(os.environ)
INPUT_BUCKETS = input_buckets_from_environment(os.environ.get("INPUT_BUCKETS"))
# Non-blank manifest lines per shard (the default is chosen from the scale benchmark; see the README).
SHARD_LINES_SETTING = int(os.environ.get("SHARD_LINES") or SHARD_LINES)


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = event.get("step")
    if step == "plan":
        return plan(event)
    if step == "convert":
        return convert(event)
    if step == "join":
        return join(event)
    raise ValueError(f"step must be 'plan', 'convert' or 'join', got {step!r}")


def plan(event: dict[str, Any]) -> dict[str, Any]:
    request = TrainingDataRequest.model_validate(event)
    output, training_plan = plan_step(request, store, input_buckets=INPUT_BUCKETS, shard_lines=SHARD_LINES_SETTING)
    metrics.add_metric(name="TrainingDataShards", unit=MetricUnit.Count, value=len(training_plan.shards))
    logger.info("training data planned", extra={"job_id": request.job_id, "images": training_plan.images,
                                                "shards": len(training_plan.shards)})  # fmt: skip
    return output


def convert(event: dict[str, Any]) -> dict[str, Any]:
    request = ShardRequest.model_validate(event)
    result = convert_step(request, store, input_buckets=INPUT_BUCKETS)
    images = sum(result.images.values())
    logger.info("training data shard converted", extra={"job_id": request.job_id, "shard": result.index,
                                                         "images": images})  # fmt: skip
    return {"shard": result.index, "images": images}


def join(event: dict[str, Any]) -> dict[str, Any]:
    request = JoinRequest.model_validate(event)
    output, summary, notes = join_step(
        request, store, input_buckets=INPUT_BUCKETS, artifacts_bucket=ARTIFACTS_BUCKET, region=REGION,
        defaults=DEFAULTS,
    )  # fmt: skip
    if output["num_validation_samples"] == 0:
        logger.warning("the validation split is empty: the training job will report no validation metric")
    metrics.add_metric(name="TrainingImages", unit=MetricUnit.Count, value=output["num_training_samples"])
    metrics.add_metric(name="ValidationImages", unit=MetricUnit.Count, value=output["num_validation_samples"])
    logger.info("training data built", extra={"job_id": request.job_id, "summary": summary.to_dict()})
    for note in notes:
        logger.info("training setting adjusted", extra={"note": note})
    return output
