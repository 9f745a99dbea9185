"""State machine step "Prepare labeling input": job file in, labeling-job files and settings out.

Event ``{"bucket", "job_id", "run_id"}``. Reads and validates ``jobs/<id>/job.json``, lists ``jobs/<id>/images/``
(all pages), writes the input manifest, label-category file and worker template under ``jobs/<id>/manifests/``, and
returns the settings of the CreateLabelingJob step (see :func:`truthflow.labeling_input.prepare_labeling_input`).
A bad job file raises :class:`~truthflow.job_file.JobFileError` and an unusable image folder
:class:`~truthflow.labeling_input.ImageListingError`; the state machine's Catch passes their message (one line per
problem, naming the file and the field) to the failure notification.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from truthflow.aws.s3 import iter_objects, read_bytes, write_text
from truthflow.job_file import JobFileError, parse_job_file
from truthflow.labeling_input import JobPaths, PrepareLabelingRequest, needs_images, prepare_labeling_input

logger = Logger()
tracer = Tracer()
metrics = Metrics()
s3 = boto3.client("s3")


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = PrepareLabelingRequest.model_validate(event)
    paths = JobPaths(bucket=request.bucket, job_id=request.job_id)
    job = parse_job_file(read_job_file(paths), source=paths.job_file_key)

    listing = iter_objects(s3, paths.bucket, paths.images_prefix) if needs_images(job) else None
    prepared = prepare_labeling_input(job, paths=paths, run_id=request.run_id, objects=listing)
    for file in prepared.files:
        write_text(s3, file.uri, file.text, content_type=file.content_type)

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


def read_job_file(paths: JobPaths) -> bytes:
    try:
        return read_bytes(s3, paths.uri(paths.job_file_key))
    except s3.exceptions.NoSuchKey:
        raise JobFileError(paths.job_file_key, [("", f"not found in bucket {paths.bucket}")]) from None
