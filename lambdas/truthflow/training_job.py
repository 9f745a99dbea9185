"""Settings of the SageMaker training job and endpoint for a job, and the quality gate on its final metric.

The algorithm, its image and its hyperparameter defaults come from :mod:`truthflow.algorithms` (one entry per task
type). User hyperparameters are merged over the defaults; ``mini_batch_size`` is then capped at the number of
training samples (an epoch needs at least one full batch: a 40-image job with a 0.2 validation split has 31).
SageMaker names are case-insensitive, so every name made here is lower case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from truthflow.algorithms import algorithm_for
from truthflow.groundtruth.label_config import TaskType
from truthflow.job_file import JobFile

TRAINING_VOLUME_GB = 50
ENDPOINT_NAME_PREFIX = "truthflow-"


@dataclass(frozen=True)
class DeploymentDefaults:
    """Defaults the deployment sets (cdk.json context) for what a job file leaves out; the job file always wins."""

    training_instance_type: str | None = None
    endpoint_instance_type: str | None = None

    @classmethod
    def from_environment(cls, environment: Mapping[str, str]) -> DeploymentDefaults:
        return cls(
            training_instance_type=environment.get("DEFAULT_TRAINING_INSTANCE_TYPE") or None,
            endpoint_instance_type=environment.get("DEFAULT_ENDPOINT_INSTANCE_TYPE") or None,
        )


def _given_or(section: Any, field: str, default: Any) -> Any:
    """The job file's value when the file states it, else the deployment default, else the model's default."""
    if field in section.model_fields_set or default is None:
        return getattr(section, field)
    return default


# SageMaker resource names: 1-63 characters of letters, digits and hyphens.
MAX_SAGEMAKER_NAME = 63


def algorithm_image(task_type: TaskType, region: str) -> str:
    """``<account>.dkr.ecr.<region>.amazonaws.com/<algorithm>:1`` for the task type's built-in algorithm."""
    return algorithm_for(task_type).image(region)


def endpoint_name(job_id: str) -> str:
    """``truthflow-<job id>`` in lower case (SageMaker compares names case-insensitively)."""
    return f"{ENDPOINT_NAME_PREFIX}{job_id.lower()}"[:MAX_SAGEMAKER_NAME]


def cap_mini_batch_size(hyperparameters: dict[str, str], num_training_samples: int) -> str | None:
    """Lower ``mini_batch_size`` to ``num_training_samples`` when it is larger; returns a note saying so, or
    ``None``. A value that is not a whole number is left for the algorithm to refuse."""
    given = hyperparameters.get("mini_batch_size")
    if given is None or num_training_samples < 1:
        return None
    try:
        size = int(given)
    except ValueError:
        return None
    if size <= num_training_samples:
        return None
    hyperparameters["mini_batch_size"] = str(num_training_samples)
    return (
        f"mini_batch_size lowered from {size} to {num_training_samples}: the train split has only "
        f"{num_training_samples} samples"
    )


def training_settings(
    job: JobFile,
    *,
    job_id: str,
    job_name: str,
    num_classes: int,
    num_training_samples: int,
    label_width: int | None,
    region: str,
    output_path_uri: str,
    defaults: DeploymentDefaults | None = None,
) -> dict[str, Any]:
    """Everything the state machine's training, quality and deployment states read, JSON-serialisable."""
    defaults = defaults or DeploymentDefaults()
    task_type = job.task_type
    algorithm = algorithm_for(task_type)
    hyperparameters = dict(algorithm.default_hyperparameters)
    hyperparameters["num_classes"] = str(num_classes)
    hyperparameters["num_training_samples"] = str(num_training_samples)
    if task_type == "bounding-box" and label_width is not None:
        # The .lst/RecordIO header needs room for the image with the most boxes (2 + 5 per box); 350 is the notebook's.
        hyperparameters["label_width"] = str(max(350, label_width))
    hyperparameters.update({name: str(value) for name, value in job.training.hyperparameters.items()})
    note = cap_mini_batch_size(hyperparameters, num_training_samples)
    metric = job.quality_gate.metric or algorithm.validation_metric
    return {
        "job_name": job_name,
        "algorithm": algorithm.name,
        "image": algorithm.image(region),
        "input_mode": algorithm.input_mode,
        "hyperparameters": hyperparameters,
        "instance_type": _given_or(job.training, "instance_type", defaults.training_instance_type),
        "instance_count": job.training.instance_count,
        "volume_size_gb": TRAINING_VOLUME_GB,
        "max_runtime_seconds": job.training.max_runtime_seconds,
        "output_path_uri": output_path_uri,
        "metric_name": metric,
        "threshold": job.quality_gate.threshold,
        "endpoint_name": endpoint_name(job_id),
        "endpoint_instance_type": _given_or(job.endpoint, "instance_type", defaults.endpoint_instance_type),
        "endpoint_instance_count": job.endpoint.initial_instance_count,
        "notes": [note] if note else [],
    }


def check_quality(*, metric_name: str, threshold: float, final_metrics: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Compare the training job's final ``metric_name`` (from ``FinalMetricDataList``) with ``threshold``.

    A missing metric is not a pass: the model is not deployed, and the message says which metrics were reported.
    """
    values = [float(entry["Value"]) for entry in final_metrics if entry.get("MetricName") == metric_name]
    reported = sorted({str(entry.get("MetricName")) for entry in final_metrics})
    if not values:
        return {
            "metric": metric_name,
            "value": None,
            "threshold": threshold,
            "good_enough": False,
            "message": f"the training job reported no {metric_name} (it reported: {', '.join(reported) or 'nothing'})",
        }
    value = values[-1]
    good_enough = value >= threshold
    verdict = "reaches" if good_enough else "is below"
    return {
        "metric": metric_name,
        "value": value,
        "threshold": threshold,
        "good_enough": good_enough,
        "message": f"{metric_name} = {value:.4f} {verdict} the threshold {threshold:.4f}",
    }
