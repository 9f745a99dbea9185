"""State machine step "Choose confidence threshold": θ from the calibration images, machine labels above it, people
for the rest.

Event ``{"bucket", "job_id", "labeling", "first_batch"}``: ``labeling`` is the output of "Prepare labeling input"
(its ``automated`` part names the plan and the transform jobs), ``first_batch`` the output of "Consolidate first
batch" (the human labels of the first batch). Reads the plan, the human labels, every transform output and, for
boxes, the sizes of the predicted images; decides with :func:`truthflow.automated_labeling.routing.route`; writes
``jobs/<id>/dataset/machine-labels.manifest`` (accepted machine labels, Ground Truth's output-manifest shape),
``jobs/<id>/manifests/remaining.manifest`` (the second labeling job's input) and
``jobs/<id>/dataset/automated-labeling.json`` (θ, how it was chosen, the calibration curve, counts and cost).

Returns ``{"theta", "machine_labeled", "for_people", "remaining_manifest_uri", "machine_labels_uri",
"report_uri", "message"}``. No θ qualifying is not an error: every remaining image goes to people and the message
says why.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from truthflow.automated_labeling.run_step import RouteRequest, route_machine_labels
from truthflow.aws.s3 import iter_lines, read_bytes, read_json, write_json, write_text
from truthflow.aws.transform_outputs import read_image_sizes, read_transform_outputs

logger = Logger()
tracer = Tracer()
metrics = Metrics()
s3 = boto3.client("s3")


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RouteRequest.model_validate(event)
    prefixes = [batch.output_uri for batch in request.labeling.automated.transform_batches]
    outcome = route_machine_labels(
        request,
        read_json=lambda uri: read_json(s3, uri),
        read_bytes=lambda uri: read_bytes(s3, uri),
        read_lines=lambda uri: iter_lines(s3, uri),
        read_outputs=lambda relatives: read_transform_outputs(s3, prefixes, relatives),
        read_sizes=lambda uris: read_image_sizes(s3, uris),
    )
    for file in outcome.files:
        write_text(s3, file.uri, file.text, content_type=file.content_type)
    write_json(s3, outcome.report_uri, outcome.report)
    metrics.add_metric(name="MachineLabeled", unit=MetricUnit.Count, value=outcome.response["machine_labeled"])
    metrics.add_metric(name="SentToPeople", unit=MetricUnit.Count, value=outcome.response["for_people"])
    logger.info("machine labels routed", extra={"job_id": request.job_id, **outcome.response})
    return outcome.response
