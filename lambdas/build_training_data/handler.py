"""State machine step "Build training data": the consolidated manifest in, a train/validation split in every format out.

Event ``{"bucket", "job_id", "job_file", "labeling", "dataset"}``: ``job_file`` is the version of
``jobs/<id>/job.json`` the run started with (its ``split``, ``exclusion``, training and endpoint settings are used,
after the starter's checks are made again); ``labeling`` is the output of "Prepare labeling input" (its
``labeling_job_name`` names the training job, its ``label_config_uri`` holds the labels in class-id order);
``dataset`` is the output of "Consolidate whole job" or, for a consolidated manifest brought by the job file, just
``consolidated_manifest_uri`` (the label attribute is then found in the file). The manifest and every image it
names must lie within the job's scope (:mod:`truthflow.job_scope`).

The manifest is streamed once through :func:`truthflow.training_data.build_training_data` into
``jobs/<id>/dataset/training/``: augmented manifests, ``.lst``, YOLO, COCO and Pascal VOC (detection), ``images.csv``,
``classes.txt`` and ``summary.json``. Returns what CreateTrainingJob needs (``s3://`` URIs, ``attribute_names``,
``num_classes``, ``num_training_samples``, ``label_width``, ...; the class names stay in ``classes.txt``) and
``training``, the settings of
:func:`truthflow.training_job.training_settings` (output to ``s3://<ARTIFACTS_BUCKET>/training/<job id>/``). An empty
or malformed manifest, or an empty train split, raises ``ValueError`` naming the manifest.

``"purpose": "bootstrap"`` (automated labeling) builds the bootstrap model's training data instead: ``dataset`` is
the first batch's consolidated manifest, its calibration images (listed in the plan ``labeling.automated.plan_uri``)
are left out so that θ is calibrated on images the model never saw, the files go to
``jobs/<id>/dataset/bootstrap/training/`` and the training job is ``labeling.automated.bootstrap_job_name``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from truthflow.automated_labeling.plan import LabelingPlan
from truthflow.automated_labeling.run_step import AutomatedState
from truthflow.aws.job_files import read_job_file_version
from truthflow.aws.s3 import (
    ConcurrentS3Destination,
    S3Destination,
    iter_lines,
    parse_s3_uri,
    read_json,
    read_text,
    s3_uri,
)
from truthflow.groundtruth.label_config import parse_label_category_config
from truthflow.job_acceptance import accept_job_file
from truthflow.job_file import JOB_FILE_NAME, JOBS_PREFIX, JobFile
from truthflow.job_scope import JobScope, OutOfScopeError, input_buckets_from_environment
from truthflow.run_start import JobFileVersion
from truthflow.training_data import ConversionSummary, ExclusionRule, ManifestSource, SplitConfig, build_training_data
from truthflow.training_job import DeploymentDefaults, training_settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
s3 = boto3.client("s3")
ARTIFACTS_BUCKET = os.environ["ARTIFACTS_BUCKET"]
REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "")
DEFAULTS = DeploymentDefaults.from_environment(os.environ)
INPUT_BUCKETS = input_buckets_from_environment(os.environ.get("INPUT_BUCKETS"))


class Dataset(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    consolidated_manifest_uri: str
    label_attribute_name: str | None = None

    @field_validator("consolidated_manifest_uri")
    @classmethod
    def _is_an_s3_uri(cls, uri: str) -> str:
        parse_s3_uri(uri)
        return uri


class Labeling(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    labeling_job_name: str
    label_config_uri: str
    automated: AutomatedState | None = None


class BuildTrainingDataRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    bucket: str
    job_id: str
    job_file: JobFileVersion
    labeling: Labeling
    dataset: Dataset
    purpose: Literal["final", "bootstrap"] = "final"

    @model_validator(mode="after")
    def _bootstrap_needs_a_plan(self) -> BuildTrainingDataRequest:
        if self.purpose == "bootstrap" and self.labeling.automated is None:
            raise ValueError("purpose 'bootstrap' needs labeling.automated (the automated-labeling plan)")
        return self


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = BuildTrainingDataRequest.model_validate(event)
    dataset = request.dataset
    manifest_uri = dataset.consolidated_manifest_uri
    scope = JobScope(request.bucket, request.job_id, INPUT_BUCKETS)
    job = read_job_file(request, scope)
    for uri in (manifest_uri, request.labeling.label_config_uri):
        problem = scope.problem(uri)
        if problem is not None:
            raise ValueError(problem)
    labels = read_labels(request.labeling.label_config_uri)
    bootstrap = request.labeling.automated if request.purpose == "bootstrap" else None
    folder = "dataset/bootstrap/training/" if bootstrap else "dataset/training/"
    training = S3Destination(s3, s3_uri(request.bucket, f"jobs/{request.job_id}/{folder}"))
    held_out = set(LabelingPlan.from_dict(read_json(s3, bootstrap.plan_uri)).calibration) if bootstrap else set()
    source = ManifestSource(
        lambda: without_sources(
            scope.check_manifest(iter_lines(s3, manifest_uri), manifest_uri=manifest_uri), held_out
        ),
        label_attribute_name=dataset.label_attribute_name,
        class_names=labels,
    )
    try:
        with ConcurrentS3Destination(training) as destination:
            summary = build_training_data(
                source,
                destination,
                class_names=labels or None,
                split=SplitConfig(validation_fraction=job.split.validation_fraction, seed=job.split.seed),
                exclusion=ExclusionRule(**job.exclusion.model_dump()),
                label_attribute_name=dataset.label_attribute_name,
            )
    except OutOfScopeError:
        raise
    except ValueError as error:
        raise ValueError(f"{manifest_uri}: cannot build training data: {error}") from error

    training_samples = augmented_manifest_lines(summary, "train")
    if training_samples == 0:
        raise ValueError(
            f"{manifest_uri}: the train split is empty ({summary.images['train']} train images, "
            f"{summary.images['validation']} validation images, {summary.excluded.boxes_excluded} boxes excluded, "
            f"{summary.unlabeled_lines} unlabeled lines): label more images, lower split.validation_fraction, or "
            "relax the exclusion rule"
        )
    validation_samples = augmented_manifest_lines(summary, "validation")
    if validation_samples == 0:
        logger.warning("the validation split is empty: the training job will report no validation metric")
    metrics.add_metric(name="TrainingImages", unit=MetricUnit.Count, value=training_samples)
    metrics.add_metric(name="ValidationImages", unit=MetricUnit.Count, value=validation_samples)
    logger.info("training data built", extra={"job_id": request.job_id, "summary": summary.to_dict()})
    num_classes = len(summary.class_names)
    settings = training_settings(
        job,
        job_id=request.job_id,
        job_name=bootstrap.bootstrap_job_name if bootstrap else request.labeling.labeling_job_name,
        num_classes=num_classes,
        num_training_samples=training_samples,
        label_width=summary.lst_label_width,
        region=REGION,
        output_path_uri=s3_uri(ARTIFACTS_BUCKET, f"training/{request.job_id}/{'bootstrap/' if bootstrap else ''}"),
        defaults=DEFAULTS,
    )
    for note in settings["notes"]:
        logger.info("training setting adjusted", extra={"note": note})
    return {
        "train_manifest_uri": training.uri("train.manifest"),
        "validation_manifest_uri": training.uri("validation.manifest"),
        "attribute_names": ["source-ref", summary.label_attribute_name],
        "task": summary.task,
        "num_classes": num_classes,
        "num_training_samples": training_samples,
        "num_validation_samples": validation_samples,
        "label_width": summary.lst_label_width,
        "excluded": summary.excluded.to_dict(),
        "summary_uri": training.uri("summary.json"),
        "training_prefix_uri": training.uri(""),
        "training": settings,
    }


def read_job_file(request: BuildTrainingDataRequest, scope: JobScope) -> JobFile:
    """The job file version the run started with, checked as the starter checked it."""
    expected = f"{JOBS_PREFIX}{request.job_id}/{JOB_FILE_NAME}"
    if request.job_file.key != expected:
        raise ValueError(f"job_file.key must be {expected!r}, got {request.job_file.key!r}")
    text = read_job_file_version(s3, request.bucket, request.job_file)
    return accept_job_file(text, source=request.job_file.key, scope=scope)


def read_labels(label_config_uri: str) -> list[str]:
    """The job's labels in class-id order, from the label-category file "Prepare labeling input" wrote."""
    try:
        return parse_label_category_config(read_text(s3, label_config_uri)).label_names
    except ValueError as error:
        raise ValueError(f"{label_config_uri}: {error}") from error


def without_sources(lines: Iterable[str], excluded: set[str]) -> Iterator[str]:
    """Manifest lines whose ``source-ref`` is not in ``excluded`` (all of them when it is empty)."""
    for line in lines:
        if excluded and line.strip():
            try:
                if json.loads(line).get("source-ref") in excluded:
                    continue
            except (json.JSONDecodeError, AttributeError):
                pass  # the manifest reader reports the line with its number
        yield line


def augmented_manifest_lines(summary: ConversionSummary, split: str) -> int:
    """Lines of ``<split>.manifest``: its images, less detection images without boxes (the writer leaves them out)."""
    without_boxes = summary.images_without_boxes[split] if summary.task == "object-detection" else 0
    return summary.images[split] - without_boxes
