"""What a batch transform job of a built-in algorithm writes, read exactly, and matched back to the images.

Formats (SageMaker developer guide, "Object Detection Request and Response Formats" and "Image Classification -
MXNet", inference):

* **Object detection**: ``{"prediction": [[class_index, score, xmin, ymin, xmax, ymax], ...]}``, one list per
  detected object; the corners are normalised by the image's width and height (0-1). Batch transform writes one such
  JSON document per image.
* **Image classification**: the probability of every class, ``[p_0, p_1, ...]`` (``Accept: application/json``), or
  one JSON Lines line ``{"prediction": [p_0, p_1, ...]}`` (``Accept: application/jsonlines``). Both are read.

Where the output lands (API reference, ``TransformOutput.S3OutputPath``): "for every S3 object used as input ...
batch transform stores the transformed data with an .out suffix in a corresponding subfolder in the location in the
output prefix". :func:`match_outputs` therefore matches an output to the input whose relative key it ends with
(``<out>/a/b.jpg.out`` for input ``a/b.jpg``), whichever subfolders the service puts in front.

A malformed output never becomes a machine label: :class:`PredictionError` names the problem, and the image goes
to people.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

OUTPUT_SUFFIX = ".out"
# An output larger than this is not a prediction of a built-in algorithm (a detector returns at most a few hundred
# rows of six numbers); reading it would only cost memory.
MAX_OUTPUT_BYTES = 4 * 1024 * 1024
MAX_DETECTIONS = 10_000


class PredictionError(ValueError):
    """A transform output that is not the documented format."""


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object: class index, score and normalised corners (0-1, ``xmin < xmax``, ``ymin < ymax``)."""

    class_index: int
    score: float
    xmin: float
    ymin: float
    xmax: float
    ymax: float


@dataclass(frozen=True, slots=True)
class ClassProbabilities:
    """The probability of every class, in label order."""

    probabilities: tuple[float, ...]

    @property
    def class_index(self) -> int:
        return max(range(len(self.probabilities)), key=self.probabilities.__getitem__)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.class_index]


def _load(data: bytes | str) -> Any:
    if len(data) > MAX_OUTPUT_BYTES:
        raise PredictionError(f"is {len(data):,} bytes, more than a prediction can be ({MAX_OUTPUT_BYTES:,})")
    try:
        text = data.decode("utf-8", errors="strict") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise PredictionError("is not UTF-8 text") from None
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # JSON Lines: a classifier writes a single line; take the first non-empty one.
        first = next((line for line in text.splitlines() if line.strip()), "")
        try:
            return json.loads(first)
        except json.JSONDecodeError as error:
            raise PredictionError(f"is not JSON: {error.msg}") from None
    except RecursionError:
        raise PredictionError("is nested too deeply to be a prediction") from None


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PredictionError(f"{what} is not a finite number ({value!r:.40})")
    return float(value)


def parse_detections(data: bytes | str, *, n_classes: int) -> list[Detection]:
    """The detections of one object-detection output; corners are clipped to the image, empty boxes dropped."""
    document = _load(data)
    rows = document.get("prediction") if isinstance(document, dict) else None
    if not isinstance(rows, list):
        raise PredictionError('has no "prediction" list (expected {"prediction": [[class, score, xmin, ...], ...]})')
    if len(rows) > MAX_DETECTIONS:
        raise PredictionError(f"has {len(rows):,} detections, more than {MAX_DETECTIONS:,}")
    detections = []
    for number, row in enumerate(rows):
        where = f"prediction[{number}]"
        if not isinstance(row, list) or len(row) != 6:
            raise PredictionError(f"{where} is not [class, score, xmin, ymin, xmax, ymax]")
        class_value = _finite(row[0], f"{where} class")
        if class_value != int(class_value) or not 0 <= class_value < n_classes:
            raise PredictionError(f"{where} class {class_value:g} is not one of the {n_classes} class indices")
        score = _finite(row[1], f"{where} score")
        if not 0.0 <= score <= 1.0:
            raise PredictionError(f"{where} score {score:g} is not between 0 and 1")
        xmin, ymin, xmax, ymax = (min(1.0, max(0.0, _finite(v, f"{where} corner"))) for v in row[2:])
        if xmax > xmin and ymax > ymin:
            detections.append(Detection(int(class_value), score, xmin, ymin, xmax, ymax))
    return detections


def parse_class_probabilities(data: bytes | str, *, n_classes: int) -> ClassProbabilities:
    """The class probabilities of one image-classification output (a list, or ``{"prediction": [...]}``)."""
    document = _load(data)
    values = document.get("prediction") if isinstance(document, dict) else document
    if not isinstance(values, list):
        raise PredictionError("is not a list of class probabilities")
    if len(values) != n_classes:
        raise PredictionError(f"has {len(values)} probabilities for {n_classes} classes")
    probabilities = tuple(_finite(value, f"probability {index}") for index, value in enumerate(values))
    if any(p < 0.0 or p > 1.0 for p in probabilities) or abs(sum(probabilities) - 1.0) > 0.01:
        raise PredictionError("is not a probability distribution (each in [0, 1], summing to 1)")
    return ClassProbabilities(probabilities)


def transform_manifest(prefix_uri: str, relative_keys: Sequence[str]) -> list[Any]:
    """The ``ManifestFile`` input of a transform job: ``[{"prefix": "s3://b/p/"}, "rel/key1", ...]``."""
    if not prefix_uri.startswith("s3://") or not prefix_uri.endswith("/"):
        raise ValueError(f"a manifest prefix must be an s3:// URI ending in '/' (got {prefix_uri!r})")
    return [{"prefix": prefix_uri}, *relative_keys]


def match_outputs(relative_inputs: Iterable[str], output_keys: Iterable[str]) -> dict[str, str]:
    """``{input relative key: output key}`` for every ``.out`` key that ends with ``/<input>.out`` (or equals
    ``<input>.out``); when several inputs fit one output, the longest (most specific) wins. Other keys are ignored."""
    by_name: dict[str, list[str]] = {}
    for relative in relative_inputs:
        by_name.setdefault(relative.rsplit("/", 1)[-1], []).append(relative)
    matched: dict[str, str] = {}
    for key in output_keys:
        if not key.endswith(OUTPUT_SUFFIX):
            continue
        stem = key[: -len(OUTPUT_SUFFIX)]
        candidates = [
            relative
            for relative in by_name.get(stem.rsplit("/", 1)[-1], [])
            if stem == relative or stem.endswith("/" + relative)
        ]
        if candidates:
            matched[max(candidates, key=len)] = key
    return matched


def predictions_by_image(
    outputs: Mapping[str, bytes], *, task_type: str, n_classes: int
) -> tuple[dict[str, list[Detection] | ClassProbabilities], dict[str, str]]:
    """Parse every image's output: ``(predictions, problems)``, both keyed by the image's relative key."""
    predictions: dict[str, list[Detection] | ClassProbabilities] = {}
    problems: dict[str, str] = {}
    for image, data in outputs.items():
        try:
            if task_type == "bounding-box":
                predictions[image] = parse_detections(data, n_classes=n_classes)
            else:
                predictions[image] = parse_class_probabilities(data, n_classes=n_classes)
        except PredictionError as error:
            problems[image] = f"transform output {error}"
    return predictions, problems
