"""Settings of the SageMaker training job and endpoint for a job, and the quality gate on its final metric.

The built-in algorithms (SageMaker Object Detection and Image Classification, image tag ``:1``) are served from
one ECR registry account per region; the table below is the SageMaker Python SDK's ``image_uri_config`` for both
algorithms, limited to the regions where Ground Truth runs. Hyperparameter defaults follow the SageMaker
object-detection notebook (ResNet-50 SSD, pretrained) and the image-classification notebook (ResNet-18,
pretrained), as strings because CreateTrainingJob takes ``HyperParameters`` as a string map.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from truthflow.groundtruth.label_config import TaskType
from truthflow.job_file import JobFile

ALGORITHM_REGISTRIES = {
    "us-east-1": "811284229777",
    "us-east-2": "825641698319",
    "us-west-2": "433757028032",
    "ca-central-1": "469771592824",
    "eu-west-1": "685385470294",
    "eu-west-2": "644912444149",
    "eu-central-1": "813361260812",
    "ap-northeast-1": "501404015308",
    "ap-northeast-2": "306986355934",
    "ap-south-1": "991648021394",
    "ap-southeast-1": "475088953585",
    "ap-southeast-2": "544295431143",
}
ALGORITHMS: dict[str, str] = {"bounding-box": "object-detection", "image-classification": "image-classification"}
# The validation metric each algorithm reports in FinalMetricDataList (both are higher-is-better).
VALIDATION_METRICS: dict[str, str] = {"bounding-box": "validation:mAP", "image-classification": "validation:accuracy"}

DEFAULT_HYPERPARAMETERS: dict[str, dict[str, str]] = {
    "bounding-box": {
        "base_network": "resnet-50",
        "use_pretrained_model": "1",
        "mini_batch_size": "16",
        "epochs": "30",
        "learning_rate": "0.001",
        "lr_scheduler_step": "10",
        "lr_scheduler_factor": "0.1",
        "optimizer": "sgd",
        "momentum": "0.9",
        "weight_decay": "0.0005",
        "overlap_threshold": "0.5",
        "nms_threshold": "0.45",
        "image_shape": "300",
    },
    "image-classification": {
        "num_layers": "18",
        "use_pretrained_model": "1",
        "image_shape": "3,224,224",
        "mini_batch_size": "32",
        "epochs": "10",
        "learning_rate": "0.001",
        "optimizer": "sgd",
        "momentum": "0.9",
        "weight_decay": "0.0005",
    },
}
TRAINING_VOLUME_GB = 50


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
    account = ALGORITHM_REGISTRIES.get(region)
    if account is None:
        raise ValueError(
            f"region {region!r} has no built-in {ALGORITHMS[task_type]} image in our table; "
            f"Ground Truth regions are {', '.join(sorted(ALGORITHM_REGISTRIES))}"
        )
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{ALGORITHMS[task_type]}:1"


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
    hyperparameters = dict(DEFAULT_HYPERPARAMETERS[task_type])
    hyperparameters["num_classes"] = str(num_classes)
    hyperparameters["num_training_samples"] = str(num_training_samples)
    if task_type == "bounding-box" and label_width is not None:
        # The .lst/RecordIO header needs room for the image with the most boxes (2 + 5 per box); 350 is the notebook's.
        hyperparameters["label_width"] = str(max(350, label_width))
    hyperparameters.update({name: str(value) for name, value in job.training.hyperparameters.items()})
    metric = job.quality_gate.metric or VALIDATION_METRICS[task_type]
    return {
        "job_name": job_name,
        "algorithm": ALGORITHMS[task_type],
        "image": algorithm_image(task_type, region),
        "hyperparameters": hyperparameters,
        "instance_type": _given_or(job.training, "instance_type", defaults.training_instance_type),
        "instance_count": job.training.instance_count,
        "volume_size_gb": TRAINING_VOLUME_GB,
        "max_runtime_seconds": job.training.max_runtime_seconds,
        "output_path_uri": output_path_uri,
        "metric_name": metric,
        "threshold": job.quality_gate.threshold,
        "endpoint_name": f"truthflow-{job_id}"[:MAX_SAGEMAKER_NAME],
        "endpoint_instance_type": _given_or(job.endpoint, "instance_type", defaults.endpoint_instance_type),
        "endpoint_instance_count": job.endpoint.initial_instance_count,
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
