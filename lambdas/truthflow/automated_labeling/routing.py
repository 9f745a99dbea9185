"""The step between the model and the second labeling job: calibrate θ, accept machine labels, route the rest.

Inputs are plain data (the handler reads them from S3): the plan, the first batch's consolidated human labels, the
transform job's parsed predictions and, for boxes, image sizes. Every remaining image ends in exactly one of two
places: a machine label (confidence >= θ, in Ground Truth's own output-manifest shape with ``"human-annotated":
"no"``) or the people's list, with the reason when it is not simply "below θ" (no prediction, unreadable output,
unknown size).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from truthflow.automated_labeling.machine_labels import (
    MachineLabel,
    TuningImage,
    choose_score_threshold,
    classification_label,
    detection_label,
)
from truthflow.automated_labeling.plan import LabelingPlan
from truthflow.automated_labeling.predictions import ClassProbabilities, Detection
from truthflow.automated_labeling.quality import box_quality, label_quality
from truthflow.automated_labeling.threshold import ThresholdChoice, choose_threshold
from truthflow.groundtruth.output_manifest import (
    ClassificationRecord,
    DetectionRecord,
    ManifestRecord,
    classification_annotation,
    detection_annotation,
    output_manifest_line,
)

Prediction = list[Detection] | ClassProbabilities
# Reasons shown for images that go to people without a machine label; at most this many are listed by name.
MAX_LISTED = 1000


@dataclass(frozen=True)
class RoutingRequest:
    """Everything the routing decision needs, keyed by the images' ``source-ref`` URIs."""

    task_type: str
    labels: Sequence[str]
    label_attribute_name: str
    job_name: str
    plan: LabelingPlan
    human_labels: Mapping[str, ManifestRecord]
    predictions: Mapping[str, Prediction]
    prediction_problems: Mapping[str, str]
    image_sizes: Mapping[str, tuple[int, int]]
    target: float
    delta: float
    manifest_attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class RoutingResult:
    """θ, the accepted machine labels (manifest lines), the images for people, and what the report shows."""

    choice: ThresholdChoice
    score_threshold: float | None
    machine_lines: list[dict[str, Any]]
    for_people: list[str]
    not_predicted: dict[str, str]
    calibration_points: list[dict[str, Any]]
    calibration_skipped: dict[str, int]

    def summary(self) -> dict[str, Any]:
        return {
            **self.choice.to_dict(),
            "score_threshold": self.score_threshold,
            "machine_labeled": len(self.machine_lines),
            "for_people": len(self.for_people),
            "not_predicted": len(self.not_predicted),
            "not_predicted_examples": dict(list(self.not_predicted.items())[:MAX_LISTED]),
            "calibration_skipped": self.calibration_skipped,
            "calibration_points": self.calibration_points,
        }


def route(request: RoutingRequest) -> RoutingResult:
    plan = request.plan
    is_boxes = request.task_type == "bounding-box"
    score_threshold = _score_threshold(request) if is_boxes else None

    confidences: list[float] = []
    qualities: list[float] = []
    points: list[dict[str, Any]] = []
    skipped = {"no_human_label": 0, "no_prediction": 0}
    for image in plan.calibration:
        human = request.human_labels.get(image)
        if human is None:
            skipped["no_human_label"] += 1
            continue
        machine = _machine_label(request, image, score_threshold)
        if machine is None:
            skipped["no_prediction"] += 1
            continue
        quality = _quality(machine, human)
        confidences.append(machine.confidence)
        qualities.append(quality)
        points.append({"image": image, "confidence": machine.confidence, "quality": quality})
    choice = choose_threshold(
        confidences, qualities, target=request.target, delta=request.delta, kind="bounded" if is_boxes else "binary"
    )

    machine_lines: list[dict[str, Any]] = []
    for_people: list[str] = []
    not_predicted: dict[str, str] = {}
    for image in plan.remaining:
        machine = _machine_label(request, image, score_threshold)
        if machine is None:
            not_predicted[image] = _why_not_predicted(request, image)
            for_people.append(image)
        elif choice.theta is not None and machine.confidence >= choice.theta:
            machine_lines.append(_manifest_line(request, image, machine))
        else:
            for_people.append(image)
    return RoutingResult(choice, score_threshold, machine_lines, for_people, not_predicted, points, skipped)


def _machine_label(request: RoutingRequest, image: str, score_threshold: float | None) -> MachineLabel | None:
    prediction = request.predictions.get(image)
    if isinstance(prediction, ClassProbabilities):
        return classification_label(prediction, request.labels)
    if prediction is None or score_threshold is None:
        return None
    size = request.image_sizes.get(image)
    if size is None:
        return None
    return detection_label(prediction, request.labels, width=size[0], height=size[1], score_threshold=score_threshold)


def _why_not_predicted(request: RoutingRequest, image: str) -> str:
    if image in request.prediction_problems:
        return request.prediction_problems[image]
    if image not in request.predictions:
        return "the transform job wrote no output for it"
    return "its size could not be read from the image file"


def _quality(machine: MachineLabel, human: ManifestRecord) -> float:
    if isinstance(human, ClassificationRecord):
        return label_quality(machine.label or "", human.label)
    return box_quality(machine.boxes, human.boxes)


def _score_threshold(request: RoutingRequest) -> float:
    calibration = set(request.plan.calibration)
    tuning = []
    for image in request.plan.first_batch:
        human = request.human_labels.get(image)
        prediction = request.predictions.get(image)
        size = request.image_sizes.get(image)
        if image in calibration or not isinstance(human, DetectionRecord) or not isinstance(prediction, list):
            continue
        if size is not None:
            tuning.append(TuningImage(prediction, human.boxes, size[0], size[1]))
    return choose_score_threshold(tuning, request.labels)


def _manifest_line(request: RoutingRequest, image: str, machine: MachineLabel) -> dict[str, Any]:
    if request.task_type == "bounding-box":
        width, height = request.image_sizes[image]
        annotation = detection_annotation(
            label_attribute_name=request.label_attribute_name,
            class_names=request.labels,
            boxes=machine.boxes,
            image_width=width,
            image_height=height,
            job_name=request.job_name,
            human_annotated=False,
        )
    else:
        annotation = classification_annotation(
            label_attribute_name=request.label_attribute_name,
            class_names=request.labels,
            label=machine.label or "",
            confidence=machine.confidence,
            job_name=request.job_name,
            human_annotated=False,
        )
    return output_manifest_line({"source-ref": image, **request.manifest_attributes}, annotation)
