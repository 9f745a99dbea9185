"""Models the embedded AWS trains and runs in place of SageMaker's built-in algorithms (offline run only).

* **Image classification — trained for real.** :class:`ColourShapeClassifier` is multinomial logistic regression
  (L2-penalised, fitted by L-BFGS) on 49 hand-made features of the decoded image: the object is separated from the
  desk by its distance to the colour of the image border, then described by a hue x saturation histogram and value
  histogram of its pixels, its share of the image and the shape of its extent. It learns from the training job's
  augmented manifest (the consolidated human labels) and is scored on the validation manifest, so the training job's
  ``validation:accuracy`` is a real measurement. Its probabilities are its confidence.
* **Object detection — simulated, with stated skill.** Training a detector is beyond this machine's demo time, so
  :class:`SimulatedDetector` answers from the gold boxes of the generated images: each object is found with
  probability ``detect``, its corners moved by a Gaussian of ``jitter`` of the box size (per box the spread is itself
  drawn, so some boxes are much worse), its class confused with probability ``confuse``; a found object's score falls
  with its localisation error and a confused class lowers it further (so confidence is informative), a missed
  object still leaves a low-scoring candidate box near it (as a single-shot detector's output does), and spurious
  detections with low scores appear at ``spurious`` per image. The report says which kind of model ran.

Both are serialised into the training job's ``model.tar.gz`` as SageMaker does with real model artifacts.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from scipy.optimize import minimize

FloatArray = NDArray[np.float64]
THUMBNAIL = 64
HUE_BINS, SATURATION_BINS, VALUE_BINS = 12, 3, 8
# How far (RGB distance) a pixel must be from the border's colour to count as object rather than desk.
FOREGROUND_DISTANCE = 60.0
REGULARISATION = 0.1
MODEL_FILE = "model.json"


def image_features(data: bytes) -> FloatArray:
    """The 49 features of one encoded image (see the module docstring)."""
    with Image.open(io.BytesIO(data)) as image:
        rgb = np.asarray(image.convert("RGB").resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BILINEAR), float)
        hsv = np.asarray(image.convert("RGB").resize((THUMBNAIL, THUMBNAIL)).convert("HSV"), float)
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    distance = np.linalg.norm(rgb - np.median(border, axis=0), axis=2)
    mask = distance > FOREGROUND_DISTANCE
    share = mask.mean()
    if not mask.any():
        mask = distance >= np.quantile(distance, 0.9)
    hue, saturation, value = hsv[..., 0][mask] / 256.0, hsv[..., 1][mask] / 256.0, hsv[..., 2][mask] / 256.0
    joint, _, _ = np.histogram2d(hue, saturation, bins=(HUE_BINS, SATURATION_BINS), range=((0, 1), (0, 1)))
    values, _ = np.histogram(value, bins=VALUE_BINS, range=(0, 1))
    rows, cols = np.nonzero(mask)
    extent_height = (rows.max() - rows.min() + 1) / THUMBNAIL
    extent_width = (cols.max() - cols.min() + 1) / THUMBNAIL
    elongation = max(extent_height, extent_width) / max(min(extent_height, extent_width), 1e-3)
    fill = mask.sum() / max(1.0, extent_height * extent_width * THUMBNAIL * THUMBNAIL)
    shape = [share, extent_height, extent_width, np.log(elongation), fill]
    features: FloatArray = np.concatenate([joint.ravel() / mask.sum(), values / mask.sum(), shape]).astype(np.float64)
    return features


@dataclass
class ColourShapeClassifier:
    """Multinomial logistic regression on :func:`image_features` (standardised)."""

    labels: list[str]
    mean: list[float]
    scale: list[float]
    weights: list[list[float]]  # (n_features + 1) x n_classes, the last row the bias

    kind = "colour-shape-logistic-regression"

    @classmethod
    def fit(cls, features: FloatArray, targets: Sequence[int], labels: Sequence[str]) -> ColourShapeClassifier:
        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(targets, dtype=np.int64)
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
        design = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
        n_classes = len(labels)
        onehot = np.eye(n_classes)[y]

        def loss(flat: FloatArray) -> tuple[float, FloatArray]:
            w = flat.reshape(design.shape[1], n_classes)
            logits = design @ w
            logits -= logits.max(axis=1, keepdims=True)
            log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            penalty = 0.5 * REGULARISATION * float((w[:-1] ** 2).sum())
            gradient = design.T @ (np.exp(log_p) - onehot) / len(x)
            gradient[:-1] += REGULARISATION * w[:-1]
            return float(-(onehot * log_p).sum() / len(x)) + penalty, gradient.ravel()

        start = np.zeros(design.shape[1] * n_classes)
        fitted = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 500})
        return cls(
            labels=list(labels),
            mean=mean.tolist(),
            scale=scale.tolist(),
            weights=fitted.x.reshape(design.shape[1], n_classes).tolist(),
        )

    def probabilities(self, features: FloatArray) -> FloatArray:
        x = (np.atleast_2d(features) - np.asarray(self.mean)) / np.asarray(self.scale)
        logits = np.hstack([x, np.ones((len(x), 1))]) @ np.asarray(self.weights)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        result: FloatArray = p / p.sum(axis=1, keepdims=True)
        return result

    def predict(self, data: bytes) -> dict[str, Any]:
        """The built-in image classifier's response for one image: the probability of every class."""
        return {"prediction": [round(float(p), 6) for p in self.probabilities(image_features(data))[0]]}


@dataclass(frozen=True)
class DetectorSkill:
    """The simulated detector's stated skill (see the module docstring)."""

    detect: float = 0.92
    jitter: float = 0.06
    confuse: float = 0.06
    spurious: float = 0.3


@dataclass
class SimulatedDetector:
    """Answers from gold boxes ``{file name: [(label, left, top, width, height), ...]}`` with :class:`DetectorSkill`."""

    labels: list[str]
    skill: DetectorSkill
    seed: int
    kind = "simulated-detector"

    def predict(self, file_name: str, gold: Sequence[tuple[str, float, float, float, float]], width: int, height: int
                ) -> dict[str, Any]:  # fmt: skip
        """The built-in detector's response for one image: ``{"prediction": [[class, score, x0, y0, x1, y1], ...]}``."""
        rng = np.random.default_rng([self.seed, *file_name.encode("utf-8")[-16:]])
        skill = self.skill
        rows: list[list[float]] = []
        for label, left, top, box_width, box_height in gold:
            class_index = self.labels.index(label) if label in self.labels else 0
            if rng.uniform() > skill.detect:
                # Missed, but as with a real single-shot detector a weak candidate box remains near the object.
                rows.append(_row(rng, class_index, rng.uniform(0.1, 0.45), left, top, box_width, box_height,
                                 width, height, spread=2 * skill.jitter))  # fmt: skip
                continue
            spread = skill.jitter * rng.gamma(2.0, 0.5)
            confused = rng.uniform() < skill.confuse
            if confused and len(self.labels) > 1:
                class_index = int(rng.choice([i for i in range(len(self.labels)) if i != class_index]))
            score = 1.0 / (1.0 + np.exp(-(4.0 - 25.0 * spread - (2.5 if confused else 0.0) + rng.normal(0, 0.7))))
            rows.append(_row(rng, class_index, score, left, top, box_width, box_height, width, height, spread=spread))
        for _ in range(rng.poisson(skill.spurious)):
            box_width, box_height = rng.uniform(0.05, 0.3) * width, rng.uniform(0.05, 0.3) * height
            left, top = rng.uniform(0, width - box_width), rng.uniform(0, height - box_height)
            rows.append(_row(rng, int(rng.integers(len(self.labels))), rng.beta(1.5, 6.0), left, top, box_width,
                             box_height, width, height, spread=0.0))  # fmt: skip
        return {"prediction": rows}


def _row(rng: np.random.Generator, class_index: int, score: float, left: float, top: float, box_width: float,
         box_height: float, width: int, height: int, *, spread: float) -> list[float]:  # fmt: skip
    dx0, dx1 = rng.normal(0, spread * box_width, 2)
    dy0, dy1 = rng.normal(0, spread * box_height, 2)
    x0, x1 = sorted(((left + dx0) / width, (left + box_width + dx1) / width))
    y0, y1 = sorted(((top + dy0) / height, (top + box_height + dy1) / height))
    return [float(class_index), round(float(score), 6), *(float(np.clip(v, 0.0, 1.0)) for v in (x0, y0, x1, y1))]


# --- model artifacts ------------------------------------------------------------------------------------------------

EmulatedModel = ColourShapeClassifier | SimulatedDetector


def model_artifact(model: EmulatedModel) -> bytes:
    """``model.tar.gz`` holding the model as JSON."""
    document: dict[str, Any] = {"kind": model.kind, **asdict(model)}
    payload = json.dumps(document).encode("utf-8")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(MODEL_FILE)
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def load_model_artifact(data: bytes) -> EmulatedModel:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        member = archive.extractfile(MODEL_FILE)
        if member is None:
            raise ValueError(f"the model artifact has no {MODEL_FILE}")
        document = json.loads(member.read())
    kind = document.pop("kind")
    if kind == ColourShapeClassifier.kind:
        return ColourShapeClassifier(**document)
    if kind == SimulatedDetector.kind:
        return SimulatedDetector(labels=document["labels"], skill=DetectorSkill(**document["skill"]),
                                 seed=document["seed"])  # fmt: skip
    raise ValueError(f"unknown emulated model kind {kind!r}")


def gold_rows(boxes: Sequence[Mapping[str, Any]]) -> list[tuple[str, float, float, float, float]]:
    return [(str(b["label"]), float(b["left"]), float(b["top"]), float(b["width"]), float(b["height"])) for b in boxes]
