"""State machine step "Prepare labeling input": job file in, labeling-job files and settings out.

Event ``{"bucket", "job_id", "run_id", "job_file"}``. Reads the version of ``jobs/<id>/job.json`` the run started
with (``job_file``: key, version id, ETag), checks it as the starter did (every S3 address within the job's scope,
every limit of the files written from it, the gold file it names), lists ``jobs/<id>/images/`` (all pages), writes
the input manifest, label-category file and worker template under ``jobs/<id>/manifests/`` (and, with gold questions,
``gold-labels.json``: each gold image must be one of the listed images), and returns the settings of the
CreateLabelingJob step (see :func:`truthflow.labeling_input.prepare_labeling_input`). A job that brings its labels
lists no images: existing annotations get the label-category file only, tool exports (``annotations``) also
``manifests/annotation-files.json``.
A bad job file raises :class:`~truthflow.job_file.JobFileError` and an unusable image folder
:class:`~truthflow.labeling_input.ImageListingError`; the state machine's Catch passes their message (one line per
problem, naming the file and the field) to the failure notification.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from truthflow.aws.job_files import read_job_file_version, read_object_within
from truthflow.aws.s3 import iter_objects, write_text
from truthflow.gold_questions import load_gold_questions
from truthflow.job_acceptance import accept_job_file
from truthflow.job_scope import JobScope, input_buckets_from_environment
from truthflow.labeling_input import JobPaths, PrepareLabelingRequest, needs_images, prepare_labeling_input

logger = Logger()
tracer = Tracer()
metrics = Metrics()
s3 = boto3.client("s3")
INPUT_BUCKETS = input_buckets_from_environment(os.environ.get("INPUT_BUCKETS"))


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = PrepareLabelingRequest.model_validate(event)
    paths = JobPaths(bucket=request.bucket, job_id=request.job_id)
    text = read_job_file_version(s3, request.bucket, request.job_file)
    scope = JobScope(request.bucket, request.job_id, INPUT_BUCKETS)
    job = accept_job_file(text, source=paths.job_file_key, scope=scope)
    gold = load_gold_questions(
        job, scope=scope, job_file_source=paths.job_file_key, read_object=partial(read_object_within, s3)
    )

    listing = iter_objects(s3, paths.bucket, paths.images_prefix) if needs_images(job) else None
    prepared = prepare_labeling_input(job, paths=paths, run_id=request.run_id, objects=listing, gold=gold)
    for file in prepared.files:
        write_text(s3, file.uri, file.text, content_type=file.content_type)

    if gold is not None:
        metrics.add_metric(name="GoldImages", unit=MetricUnit.Count, value=len(gold.labels))
    if prepared.images is not None:
        metrics.add_metric(name="ImagesListed", unit=MetricUnit.Count, value=len(prepared.images.keys))
        logger.info(
            "images listed",
            extra={
                "images": len(prepared.images.keys),
                "skipped_not_images": prepared.images.skipped_not_images,
                "skipped_empty": prepared.images.skipped_empty,
            },
        )
    output = prepared.state_output
    logger.info(
        "labeling input prepared",
        extra={
            "job_id": paths.job_id,
            "labeling_job_name": output["labeling_job_name"],
            "start_at": output["start_at"],
        },
    )
    return output
