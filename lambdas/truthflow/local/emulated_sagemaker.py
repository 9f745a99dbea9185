"""SageMaker training and batch transform jobs in the embedded AWS: what they read, compute and write.

The embedded AWS (:mod:`truthflow.local.emulator`) calls :class:`SageMakerJobs` when a training or transform job is
described, as Step Functions' ``.sync`` integrations do while they wait. Work is done once per job and cached.

* **Training.** Reads the training job's ``train`` and ``validation`` augmented manifests from S3 (and
  ``classes.txt`` beside them), then trains the model of :mod:`truthflow.local.emulated_models` for the algorithm in
  the training image: a real classifier for ``image-classification`` (its ``validation:accuracy`` is measured), the
  simulated detector for ``object-detection`` (its ``validation:mAP`` is the scenario's). The artifact goes where
  SageMaker puts it, ``<S3OutputPath>/<job>/output/model.tar.gz``.
* **Batch transform.** Reads the job's ``ManifestFile`` input (``[{"prefix": ...}, "relative/key", ...]``), loads the
  model's artifact (``ModelDataUrl`` of the named model), predicts every image and writes
  ``<S3OutputPath>/<relative key>.out`` in the built-in algorithm's response format.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import numpy as np
from PIL import Image

from truthflow.aws.s3 import iter_lines, parse_s3_uri, read_bytes, read_text, write_bytes, write_json
from truthflow.local.emulated_models import (
    ColourShapeClassifier,
    DetectorSkill,
    EmulatedModel,
    SimulatedDetector,
    gold_rows,
    image_features,
    load_model_artifact,
    model_artifact,
)

REGION = "us-east-1"
# What the simulated detector's training job reports as validation:mAP unless the scenario sets a metric: a plausible
# figure for a fine-tuned SSD on a small data set, stated in the report as simulated.
SIMULATED_DETECTOR_MAP = 0.78


@dataclass
class TrainingOutcome:
    """What an emulated training job produced: its metrics, the model artifact's URI, and how it was made."""

    metrics: dict[str, float]
    artifact_uri: str
    model_kind: str


@dataclass
class SageMakerJobs:
    """Training and transform work of the embedded account; ``gold_boxes`` (file name -> boxes) feeds the
    simulated detector; ``validation_metric``, when set, is what every training job reports instead of its own."""

    validation_metric: float | None
    detector_skill: DetectorSkill = field(default_factory=DetectorSkill)
    gold_boxes: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    seed: int = 0
    trained: dict[str, TrainingOutcome] = field(default_factory=dict)
    transformed: dict[str, str | None] = field(default_factory=dict)  # job name -> failure reason (None: done)

    # -- training -----------------------------------------------------------------------------------------------
    def train(self, description: Mapping[str, Any]) -> TrainingOutcome:
        name = str(description["TrainingJobName"])
        if name not in self.trained:
            self.trained[name] = self._train(description)
        return self.trained[name]

    def _train(self, description: Mapping[str, Any]) -> TrainingOutcome:
        s3 = boto3.client("s3", region_name=REGION)
        channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in description.get("InputDataConfig", [])}
        image = str(description.get("AlgorithmSpecification", {}).get("TrainingImage", ""))
        train_uri = channels["train"]["S3Uri"]
        attribute = channels["train"].get("AttributeNames", ["source-ref", ""])[-1]
        labels = _class_names(s3, train_uri)
        model: EmulatedModel
        if "image-classification" in image:
            model, accuracy = self._train_classifier(s3, train_uri, channels.get("validation"), attribute, labels)
            metrics = {"validation:accuracy": accuracy if self.validation_metric is None else self.validation_metric}
        else:
            model = SimulatedDetector(labels=labels, skill=self.detector_skill, seed=self.seed)
            reported = SIMULATED_DETECTOR_MAP if self.validation_metric is None else self.validation_metric
            metrics = {"validation:mAP": reported}
        output = str(description.get("OutputDataConfig", {}).get("S3OutputPath", "")).rstrip("/")
        artifact_uri = f"{output}/{description['TrainingJobName']}/output/model.tar.gz"
        write_bytes(s3, artifact_uri, model_artifact(model), content_type="application/gzip")
        return TrainingOutcome(metrics, artifact_uri, model.kind)

    @staticmethod
    def _train_classifier(
        s3: Any, train_uri: str, validation: Mapping[str, Any] | None, attribute: str, labels: list[str]
    ) -> tuple[ColourShapeClassifier, float]:
        features, targets = _labeled_features(s3, train_uri, attribute)
        if len(set(targets)) < 1:
            raise ValueError(f"{train_uri}: no labeled images to train on")
        model = ColourShapeClassifier.fit(features, targets, labels)
        if validation is None:
            return model, float("nan")
        val_features, val_targets = _labeled_features(s3, validation["S3Uri"], attribute)
        if not val_targets:
            return model, float("nan")
        predicted = model.probabilities(val_features).argmax(axis=1)
        return model, float(np.mean(predicted == np.asarray(val_targets)))

    # -- batch transform ----------------------------------------------------------------------------------------
    def transform(self, description: Mapping[str, Any], describe_model: Callable[[str], Mapping[str, Any]]) -> None:
        name = str(description["TransformJobName"])
        if name in self.transformed:
            return
        try:
            self._transform(description, describe_model)
            self.transformed[name] = None
        except Exception as error:  # the job fails with the reason, as SageMaker reports a failed transform
            self.transformed[name] = f"{type(error).__name__}: {error}"

    def _transform(self, description: Mapping[str, Any], describe_model: Callable[[str], Mapping[str, Any]]) -> None:
        s3 = boto3.client("s3", region_name=REGION)
        container = describe_model(str(description["ModelName"]))
        model = load_model_artifact(read_bytes(s3, container["ModelDataUrl"]))
        source = description["TransformInput"]["DataSource"]["S3DataSource"]
        if source["S3DataType"] != "ManifestFile":
            raise ValueError(f"the emulator reads ManifestFile transform inputs, not {source['S3DataType']}")
        manifest = json.loads(read_text(s3, source["S3Uri"]))
        prefix, relative_keys = manifest[0]["prefix"], manifest[1:]
        output = str(description["TransformOutput"]["S3OutputPath"]).rstrip("/")
        for relative in relative_keys:
            data = read_bytes(s3, prefix + relative)
            write_json(s3, f"{output}/{relative}.out", self._predict(model, relative, data))

    def _predict(self, model: EmulatedModel, relative: str, data: bytes) -> dict[str, Any]:
        if isinstance(model, ColourShapeClassifier):
            return model.predict(data)
        file_name = relative.rsplit("/", 1)[-1]
        if file_name not in self.gold_boxes:
            raise ValueError(f"the simulated detector knows no gold boxes for {file_name}")
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
        return model.predict(file_name, gold_rows(self.gold_boxes[file_name]), width, height)


def _class_names(s3: Any, manifest_uri: str) -> list[str]:
    """The training data's class list: ``classes.txt`` beside the manifest."""
    bucket, key = parse_s3_uri(manifest_uri)
    folder = key.rsplit("/", 1)[0]
    return [line for line in read_text(s3, f"s3://{bucket}/{folder}/classes.txt").splitlines() if line]


def _labeled_features(s3: Any, manifest_uri: str, attribute: str) -> tuple[np.ndarray, list[int]]:
    features, targets = [], []
    for line in iter_lines(s3, manifest_uri):
        if not line.strip():
            continue
        record = json.loads(line)
        features.append(image_features(read_bytes(s3, record["source-ref"])))
        targets.append(int(record[attribute]))
    return np.asarray(features, dtype=np.float64).reshape(len(features), -1), targets
