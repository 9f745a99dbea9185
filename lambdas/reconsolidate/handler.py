"""State machine step "Consolidate whole job": every worker response of the finished job, consolidated at once.

Event ``{"bucket", "job_id", "labeling": {...}}`` where ``labeling`` is the output of "Prepare labeling input"
(``labeling_job_name``, ``label_attribute_name``, ``task_type``, ``label_config_uri``, ``input_manifest_uri``,
``output_path_uri``, ``start_at``, ``existing_manifest_uri``; other keys are ignored). The labels, in class-id order,
are read from the label-category file at ``label_config_uri``. Every manifest read, and every image its lines name,
must lie within the job's scope (:mod:`truthflow.job_scope`; ``INPUT_BUCKETS`` names the extra buckets).

* ``start_at`` ``"label"``: lists ``<output_path_uri><job>/annotations/worker-response/`` (all pages), reads the latest
  iteration's files of every object (in parallel: a job has one file per object) and the input manifest, and runs
  :func:`truthflow.groundtruth.job_consolidation.consolidate_job`.
* ``start_at`` ``"consolidate"``: ``existing_manifest_uri`` is an output manifest labeled elsewhere; it is streamed
  through :func:`truthflow.groundtruth.job_consolidation.normalise_existing_manifest` (labels kept as they are, label
  attribute taken from the file).

* ``start_at`` ``"automated"`` (automated labeling): ``stage`` ``"first-batch"`` consolidates the first labeling
  job alone into ``jobs/<id>/dataset/first-batch/`` (the human labels that train the bootstrap model and calibrate
  θ); the final stage consolidates both labeling jobs together (worker skill is fitted over all their answers; the
  second job is left out when every remaining image was machine-labeled) and appends the accepted machine labels of
  ``jobs/<id>/dataset/machine-labels.manifest``, so every image of the job is in the manifest once.

Writes ``jobs/<id>/dataset/consolidated.manifest``, ``consolidated.csv`` and ``quality.json`` and returns
``{"consolidated_manifest_uri", "table_uri", "quality_uri", "n_objects", "n_consolidated", "n_failed",
"label_attribute_name", "task_type"}`` (``s3://`` URIs). Objects without a label are listed in
``quality.json``, not raised: a partly labeled job still trains. A job with nothing usable raises ``ValueError``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import IO, Any, Literal

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, model_validator

from truthflow.automated_labeling.run_step import AutomatedState
from truthflow.aws.s3 import iter_lines, iter_objects, parse_s3_uri, read_json, read_text, s3_uri, write_json
from truthflow.groundtruth.job_consolidation import (
    ConsolidatedDatasetWriter,
    DatasetQuality,
    WorkerResponseFile,
    add_machine_labels,
    combine_labeling_jobs,
    consolidate_job,
    latest_worker_responses,
    normalise_existing_manifest,
    worker_response_prefix,
)
from truthflow.groundtruth.label_config import TaskType, parse_label_category_config
from truthflow.job_scope import JobScope, OutOfScopeError, input_buckets_from_environment

logger = Logger()
tracer = Tracer()
metrics = Metrics()
s3 = boto3.client("s3")
INPUT_BUCKETS = input_buckets_from_environment(os.environ.get("INPUT_BUCKETS"))

# Worker-response files are small and there is one per object: read them concurrently (boto3 clients are
# thread-safe), or a 100,000-object job would spend most of the Lambda's 15 minutes waiting on GetObject.
READ_THREADS = 32

_EVENT = ConfigDict(extra="ignore", frozen=True)


class LabelingStage(BaseModel):
    """The part of "Prepare labeling input"'s output this step reads."""

    model_config = _EVENT

    labeling_job_name: str
    label_attribute_name: str
    task_type: TaskType | None = None
    label_config_uri: str
    input_manifest_uri: str | None = None
    output_path_uri: str | None = None
    start_at: Literal["label", "consolidate", "automated"] = "label"
    existing_manifest_uri: str | None = None
    automated: AutomatedState | None = None

    @model_validator(mode="after")
    def _inputs_for_start(self) -> LabelingStage:
        if self.start_at == "consolidate" and not self.existing_manifest_uri:
            raise ValueError("start_at 'consolidate' needs existing_manifest_uri (an output manifest)")
        if self.start_at == "automated" and self.automated is None:
            raise ValueError("start_at 'automated' needs the automated-labeling settings")
        if self.start_at in ("label", "automated"):
            missing = [name for name in ("input_manifest_uri", "output_path_uri") if not getattr(self, name)]
            if missing:
                raise ValueError(f"start_at 'label' needs {', '.join(missing)}")
        for name in ("label_config_uri", "input_manifest_uri", "output_path_uri", "existing_manifest_uri"):
            value = getattr(self, name)
            if value is not None:
                parse_s3_uri(value)
        return self


class ReconsolidateRequest(BaseModel):
    model_config = _EVENT

    bucket: str
    job_id: str
    labeling: LabelingStage
    stage: Literal["whole-job", "first-batch"] = "whole-job"


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ReconsolidateRequest.model_validate(event)
    labeling = request.labeling
    first_batch = request.stage == "first-batch"
    scope = JobScope(request.bucket, request.job_id, INPUT_BUCKETS)
    uris = (
        labeling.label_config_uri,
        labeling.input_manifest_uri,
        labeling.output_path_uri,
        labeling.existing_manifest_uri,
    )
    for uri in uris:
        problem = scope.problem(uri) if uri is not None else None
        if problem is not None:
            raise ValueError(problem)
    labels = read_labels(labeling.label_config_uri)
    dataset_prefix = f"jobs/{request.job_id}/dataset/" + ("first-batch/" if first_batch else "")
    manifest_uri = s3_uri(request.bucket, dataset_prefix + "consolidated.manifest")
    table_uri = s3_uri(request.bucket, dataset_prefix + "consolidated.csv")
    quality_uri = s3_uri(request.bucket, dataset_prefix + "quality.json")

    with spooled_text() as manifest, spooled_text() as table:
        writer = ConsolidatedDatasetWriter(manifest, table)
        if labeling.start_at == "consolidate":
            quality = normalise_manifest(labeling, labels, scope, writer)
        elif labeling.start_at == "automated" and not first_batch:
            quality = consolidate_automated_run(request, labels, scope, writer)
        else:
            quality = consolidate_from_worker_responses(labeling, labels, scope, writer)
        upload(manifest, manifest_uri, "application/jsonlines")
        upload(table, table_uri, "text/csv; charset=utf-8")
    write_json(s3, quality_uri, quality.to_dict())

    metrics.add_metric(name="ObjectsConsolidated", unit=MetricUnit.Count, value=quality.n_consolidated)
    metrics.add_metric(name="ObjectsFailed", unit=MetricUnit.Count, value=quality.n_failed)
    logger.info(
        "job consolidated",
        extra={
            "job_id": request.job_id,
            "source": quality.source,
            "objects": quality.n_objects,
            "failed": quality.n_failed,
            "agreement": quality.agreement,
        },
    )
    return {
        "consolidated_manifest_uri": manifest_uri,
        "table_uri": table_uri,
        "quality_uri": quality_uri,
        "n_objects": quality.n_objects,
        "n_consolidated": quality.n_consolidated,
        "n_failed": quality.n_failed,
        "label_attribute_name": quality.label_attribute_name,
        "task_type": quality.task_type,
    }


def read_labels(label_config_uri: str) -> list[str]:
    """The job's labels in class-id order, from the label-category file "Prepare labeling input" wrote."""
    try:
        return parse_label_category_config(read_text(s3, label_config_uri)).label_names
    except ValueError as error:
        raise ValueError(f"{label_config_uri}: {error}") from error


def read_worker_responses(output_path_uri: str, labeling_job_name: str) -> dict[str, list[WorkerResponseFile]]:
    """The latest worker-response files of every object of one labeling job, read concurrently."""
    bucket, prefix = parse_s3_uri(worker_response_prefix(output_path_uri, labeling_job_name))
    chosen = latest_worker_responses(key for key, _ in iter_objects(s3, bucket, prefix))
    keys = [key for object_keys in chosen.values() for key in object_keys]
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        texts = dict(zip(keys, pool.map(lambda key: read_text(s3, s3_uri(bucket, key)), keys), strict=True))
    logger.info("worker responses read", extra={"job": labeling_job_name, "objects": len(chosen), "files": len(keys)})
    return {object_id: [WorkerResponseFile(key, texts[key]) for key in found] for object_id, found in chosen.items()}


def consolidate_automated_run(
    request: ReconsolidateRequest, labels: list[str], scope: JobScope, writer: ConsolidatedDatasetWriter
) -> DatasetQuality:
    """Both labeling jobs consolidated together, then the accepted machine labels (see the module docstring)."""
    labeling = request.labeling
    assert labeling.output_path_uri is not None and labeling.input_manifest_uri is not None  # checked by the model
    assert labeling.automated is not None
    job_prefix = s3_uri(request.bucket, f"jobs/{request.job_id}/")
    routing = read_json(s3, job_prefix + "dataset/automated-labeling.json")
    manifests = [(labeling.input_manifest_uri, labeling.labeling_job_name)]
    if routing.get("for_people"):
        manifests.append((job_prefix + "manifests/remaining.manifest", labeling.automated.second_labeling_job_name))
    jobs = [
        (list(scope.check_manifest(iter_lines(s3, uri), manifest_uri=uri)), read_worker_responses(
            labeling.output_path_uri, name))
        for uri, name in manifests
    ]  # fmt: skip
    lines, responses = combine_labeling_jobs(jobs)
    quality = run_consolidation(labeling, lines, responses, labels, writer)
    human = {json.loads(line).get("source-ref") for line in lines}
    machine_uri = job_prefix + "dataset/machine-labels.manifest"
    add_machine_labels(
        scope.check_manifest(iter_lines(s3, machine_uri), manifest_uri=machine_uri),
        writer=writer,
        quality=quality,
        labels=labels,
        skip_sources=(source for source in human if isinstance(source, str)),
    )
    return quality


def consolidate_from_worker_responses(
    labeling: LabelingStage, labels: list[str], scope: JobScope, writer: ConsolidatedDatasetWriter
) -> DatasetQuality:
    assert labeling.output_path_uri is not None and labeling.input_manifest_uri is not None  # checked by the model
    responses = read_worker_responses(labeling.output_path_uri, labeling.labeling_job_name)
    lines = scope.check_manifest(iter_lines(s3, labeling.input_manifest_uri), manifest_uri=labeling.input_manifest_uri)
    return run_consolidation(labeling, lines, responses, labels, writer)


def run_consolidation(
    labeling: LabelingStage,
    lines: Iterable[str | bytes],
    responses: Mapping[str, Sequence[WorkerResponseFile]],
    labels: list[str],
    writer: ConsolidatedDatasetWriter,
) -> DatasetQuality:
    try:
        return consolidate_job(
            lines,
            responses,
            labels=labels,
            label_attribute_name=labeling.label_attribute_name,
            job_name=labeling.labeling_job_name,
            task_type=labeling.task_type,
            writer=writer,
        )
    except OutOfScopeError:
        raise
    except ValueError as error:
        raise ValueError(f"{labeling.input_manifest_uri}: {error}") from error


def normalise_manifest(
    labeling: LabelingStage, labels: list[str], scope: JobScope, writer: ConsolidatedDatasetWriter
) -> DatasetQuality:
    uri = labeling.existing_manifest_uri
    assert uri is not None  # checked by the model
    try:
        return normalise_existing_manifest(
            scope.check_manifest(iter_lines(s3, uri), manifest_uri=uri),
            writer=writer,
            labels=labels or None,
            preferred_label_attribute_name=labeling.label_attribute_name,
        )
    except OutOfScopeError:
        raise
    except ValueError as error:
        raise ValueError(f"{uri}: {error}") from error


@contextmanager
def spooled_text() -> Iterator[IO[str]]:
    """A temporary text file (UTF-8, ``\\n`` line ends): large outputs go to /tmp, not to memory."""
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as stream:
        yield stream


def upload(stream: IO[str], uri: str, content_type: str) -> None:
    """Upload a spooled text file (multipart when large)."""
    stream.flush()
    stream.seek(0)
    bucket, key = parse_s3_uri(uri)
    s3.upload_fileobj(stream.buffer, bucket, key, ExtraArgs={"ContentType": content_type})  # type: ignore[attr-defined]
