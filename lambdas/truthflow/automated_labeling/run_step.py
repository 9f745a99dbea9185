"""The "Choose confidence threshold" step as a whole: read its inputs through the given readers, route, and say
what to write. The Lambda handler passes S3 readers; tests and the offline runner can pass others."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from truthflow.automated_labeling.plan import LabelingPlan
from truthflow.automated_labeling.predictions import predictions_by_image
from truthflow.automated_labeling.routing import RoutingRequest, RoutingResult, route
from truthflow.groundtruth.input_manifest import input_manifest_line
from truthflow.groundtruth.label_config import parse_label_category_config
from truthflow.groundtruth.output_manifest import ManifestRecord, dump_manifest_line, iter_output_manifest

MANIFEST_CONTENT_TYPE = "application/x-ndjson"
_EVENT = ConfigDict(extra="ignore", frozen=True)


class TransformBatch(BaseModel):
    model_config = _EVENT

    job_name: str
    content_type: str
    manifest_uri: str
    output_uri: str
    n_images: int


class AutomatedState(BaseModel):
    """``labeling.automated`` as "Prepare labeling input" wrote it."""

    model_config = _EVENT

    plan_uri: str
    bootstrap: bool
    bootstrap_job_name: str
    model_name: str
    second_labeling_job_name: str
    transform_batches: list[TransformBatch]
    target: float
    confidence_level: float
    price_per_task: float
    workers_per_object: int
    first_batch_workers_per_object: int


class LabelingState(BaseModel):
    model_config = _EVENT

    labeling_job_name: str
    label_attribute_name: str
    task_type: str
    label_config_uri: str
    automated: AutomatedState


class FirstBatch(BaseModel):
    model_config = _EVENT

    consolidated_manifest_uri: str


class RouteRequest(BaseModel):
    model_config = _EVENT

    bucket: str
    job_id: str
    labeling: LabelingState
    first_batch: FirstBatch


@dataclass(frozen=True)
class TextFile:
    uri: str
    text: str
    content_type: str


@dataclass(frozen=True)
class RouteOutcome:
    files: list[TextFile]
    report_uri: str
    report: dict[str, Any]
    response: dict[str, Any]


def route_machine_labels(
    request: RouteRequest,
    *,
    read_json: Callable[[str], Any],
    read_bytes: Callable[[str], bytes],
    read_lines: Callable[[str], Iterable[str]],
    read_outputs: Callable[[Sequence[str]], tuple[dict[str, bytes], dict[str, str]]],
    read_sizes: Callable[[Sequence[str]], tuple[dict[str, tuple[int, int]], dict[str, str]]],
) -> RouteOutcome:
    labeling, automated = request.labeling, request.labeling.automated
    job_prefix = f"s3://{request.bucket}/jobs/{request.job_id}/"
    images_prefix = job_prefix + "images/"
    plan_document = read_json(automated.plan_uri)
    plan = LabelingPlan.from_dict(plan_document)
    attributes: Mapping[str, Any] = plan_document.get("manifest_attributes") or {}
    labels = [entry.label for entry in parse_label_category_config(read_bytes(labeling.label_config_uri)).labels]
    human: dict[str, ManifestRecord] = {
        record.source_ref: record
        for record in iter_output_manifest(
            read_lines(request.first_batch.consolidated_manifest_uri),
            label_attribute_name=labeling.label_attribute_name,
            class_names=labels,
        )
    }
    is_boxes = labeling.task_type == "bounding-box"
    wanted = [*plan.calibration, *plan.remaining, *(plan.training if is_boxes else ())]
    outputs, output_problems = read_outputs([uri.removeprefix(images_prefix) for uri in wanted])
    parsed, parse_problems = predictions_by_image(outputs, task_type=labeling.task_type, n_classes=len(labels))
    predictions = {images_prefix + relative: prediction for relative, prediction in parsed.items()}
    problems = {images_prefix + relative: reason for relative, reason in {**output_problems, **parse_problems}.items()}
    sizes: dict[str, tuple[int, int]] = {}
    if is_boxes:
        sizes, size_problems = read_sizes(list(predictions))
        problems.update(size_problems)
    result = route(
        RoutingRequest(
            task_type=labeling.task_type,
            labels=labels,
            label_attribute_name=labeling.label_attribute_name,
            job_name=labeling.labeling_job_name,
            plan=plan,
            human_labels=human,
            predictions=predictions,
            prediction_problems=problems,
            image_sizes=sizes,
            target=automated.target,
            delta=1.0 - automated.confidence_level,
            manifest_attributes=attributes,
        )
    )
    machine_uri = job_prefix + "dataset/machine-labels.manifest"
    remaining_uri = job_prefix + "manifests/remaining.manifest"
    report_uri = job_prefix + "dataset/automated-labeling.json"
    files = [
        TextFile(
            machine_uri, "".join(dump_manifest_line(line) for line in result.machine_lines), MANIFEST_CONTENT_TYPE
        ),
        TextFile(
            remaining_uri,
            "".join(input_manifest_line(uri, attributes) for uri in result.for_people),
            MANIFEST_CONTENT_TYPE,
        ),
    ]
    report = _report(result, plan, labeling, automated)
    response = {
        "theta": result.choice.theta,
        "machine_labeled": len(result.machine_lines),
        "for_people": len(result.for_people),
        "machine_labels_uri": machine_uri,
        "remaining_manifest_uri": remaining_uri,
        "report_uri": report_uri,
        "message": _message(result, report),
    }
    return RouteOutcome(files, report_uri, report, response)


def _report(
    result: RoutingResult, plan: LabelingPlan, labeling: LabelingState, automated: AutomatedState
) -> dict[str, Any]:
    n_images = len(plan.first_batch) + len(plan.remaining)
    without = n_images * automated.workers_per_object
    with_model = (
        len(plan.first_batch) * automated.first_batch_workers_per_object
        + len(result.for_people) * automated.workers_per_object
    )
    tasks_saved = without - with_model
    return {
        **result.summary(),
        "task_type": labeling.task_type,
        "quality_measure": "accuracy" if labeling.task_type != "bounding-box" else "mean IoU per image",
        "model_name": automated.model_name,
        "bootstrap_model": automated.bootstrap,
        "n_images": n_images,
        "first_batch": len(plan.first_batch),
        "calibration": len(plan.calibration),
        "remaining": len(plan.remaining),
        "human_labeled": len(plan.first_batch) + len(result.for_people),
        "workers_per_object": automated.workers_per_object,
        "first_batch_workers_per_object": automated.first_batch_workers_per_object,
        "human_tasks_without_model": without,
        "human_tasks": with_model,
        "human_tasks_saved": tasks_saved,
        "price_per_task": automated.price_per_task,
        "cost_saved": round(tasks_saved * automated.price_per_task, 2),
        "plan_note": plan.note,
    }


def _message(result: RoutingResult, report: Mapping[str, Any]) -> str:
    choice = result.choice
    if choice.theta is None:
        return (
            f"No confidence threshold qualified, so all {len(result.for_people)} remaining images go to people: "
            f"{choice.reason}."
        )
    return (
        f"Machine-labeled {len(result.machine_lines)} of {report['remaining']} remaining images at confidence >= "
        f"{choice.theta:.4f} ({choice.reason}); {len(result.for_people)} go to people; "
        f"{report['human_tasks']} human tasks instead of {report['human_tasks_without_model']}, "
        f"{report['human_tasks_saved']} saved (about {report['cost_saved']:.2f} USD)."
    )
