"""From a model's predictions to a machine label and its confidence, per image.

* **Classification**: the most probable class; the confidence is its probability.
* **Boxes**: the detections scoring at least ``score_threshold`` become the image's boxes (pixels, from the
  normalised corners and the image size). The image's confidence is that of its least certain decision: the lowest
  score among the kept boxes and one minus the highest score among the dropped ones (1 for an image with no
  detection). An image with a borderline box, or with an object the detector half-saw, is thus not confident.

``score_threshold`` is chosen from data (:func:`choose_score_threshold`): the value on a grid that gives the best mean
per-image quality on human-labeled images that are *not* the calibration images, so that θ's guarantee, computed
on the calibration images, is not spent on this choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from truthflow.automated_labeling.predictions import ClassProbabilities, Detection
from truthflow.automated_labeling.quality import box_quality
from truthflow.groundtruth.output_manifest import BoxLike, LabeledBox

# Score thresholds tried for the detector (the built-in detector's scores are in [0, 1]); 0.5 when nothing to tune on.
SCORE_THRESHOLD_GRID = tuple(round(0.05 * step, 2) for step in range(1, 20))
DEFAULT_SCORE_THRESHOLD = 0.5
MIN_BOX_PIXELS = 1.0


@dataclass(frozen=True, slots=True)
class MachineLabel:
    """A machine label: ``label`` for classification, ``boxes`` for detection, and the image's ``confidence``."""

    confidence: float
    label: str | None = None
    boxes: tuple[LabeledBox, ...] = ()


def classification_label(prediction: ClassProbabilities, labels: Sequence[str]) -> MachineLabel:
    return MachineLabel(confidence=prediction.confidence, label=labels[prediction.class_index])


def detection_label(
    detections: Sequence[Detection], labels: Sequence[str], *, width: int, height: int, score_threshold: float
) -> MachineLabel:
    """Boxes scoring >= ``score_threshold``, in pixels of a ``width`` x ``height`` image, and the confidence."""
    kept = [d for d in detections if d.score >= score_threshold]
    dropped = [d for d in detections if d.score < score_threshold]
    boxes = []
    for detection in sorted(kept, key=lambda d: -d.score):
        left, top = detection.xmin * width, detection.ymin * height
        box_width, box_height = (detection.xmax - detection.xmin) * width, (detection.ymax - detection.ymin) * height
        if box_width >= MIN_BOX_PIXELS and box_height >= MIN_BOX_PIXELS:
            boxes.append(
                LabeledBox(
                    label=labels[detection.class_index],
                    left=left,
                    top=top,
                    width=box_width,
                    height=box_height,
                    confidence=detection.score,
                    class_id=detection.class_index,
                )
            )
    weakest_kept = min((d.score for d in kept), default=1.0)
    strongest_dropped = max((d.score for d in dropped), default=0.0)
    return MachineLabel(confidence=min(weakest_kept, 1.0 - strongest_dropped), boxes=tuple(boxes))


@dataclass(frozen=True, slots=True)
class TuningImage:
    """A human-labeled image that is not a calibration image: the detector's output and the human boxes."""

    detections: Sequence[Detection]
    human: Sequence[BoxLike]
    width: int
    height: int


def choose_score_threshold(images: Sequence[TuningImage], labels: Sequence[str]) -> float:
    """The grid value with the best mean per-image box quality on ``images`` (ties: the higher threshold, which keeps
    fewer boxes); :data:`DEFAULT_SCORE_THRESHOLD` without images."""
    if not images:
        return DEFAULT_SCORE_THRESHOLD
    best, best_quality = DEFAULT_SCORE_THRESHOLD, -1.0
    for threshold in SCORE_THRESHOLD_GRID:
        total = 0.0
        for image in images:
            machine = detection_label(
                image.detections, labels, width=image.width, height=image.height, score_threshold=threshold
            )
            total += box_quality(machine.boxes, image.human)
        quality = total / len(images)
        if quality >= best_quality:
            best, best_quality = threshold, quality
    return best
