"""The trainers a job can use: one :class:`BuiltInAlgorithm` per task type, the only place that says which.

Both are SageMaker built-in MXNet algorithms (image tag ``:1``), served from one ECR registry account per region
(the SageMaker Python SDK's ``image_uri_config`` for both algorithms, limited to the regions where Ground Truth runs).
They train from augmented manifests in Pipe mode (RecordIO wrapping), the format "Build training data" writes.

What each algorithm accepts comes from its developer-guide page:

* training instances: GPU only. The algorithm pages list P2 and P3 (``ml.p2.*``, ``ml.p3.*``: "we support the
  following GPU instances for training"); SageMaker's common instance guidance adds G4dn and G5 ("for most algorithm
  training, we support P2, P3, G4dn, and G5 GPU instances ... exceptions are noted in this guide"). Newer families
  (P4d, P5, G6, ...) are not named for these containers, so a job file may not ask for them;
* batch transform (automated labeling) and hosting: "both CPU (such as C4) and GPU (such as P2 and P3) instances
  can be used for the inference"; the families below are those of the older CPU and the training GPU generations that
  the API's ``TransformInstanceType`` lists (``ml.m4``, ``ml.m5``, ``ml.c4``, ``ml.c5`` and the GPU families above);
* image classification: "Distributed training is currently not supported in pipe mode and can only be used in file
  mode", so one training instance (a multi-GPU instance such as ``ml.p3.8xlarge`` still uses all its GPUs);
* hyperparameter defaults: the object-detection notebook (ResNet-50 SSD, pretrained) and the Ground Truth ->
  image-classification example (ResNet-18, pretrained, ``image_shape`` 3,224,224 with ``resize`` 224 so that
  full-size photos are scaled before the 224 x 224 crop). Strings, because CreateTrainingJob takes a string map.

Adding a trainer means adding an entry here (and, if it reads another format, its training data writer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from truthflow.groundtruth.label_config import TaskType

ALGORITHM_REGISTRIES = MappingProxyType(
    {
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
)
# ml.<family>.<size>; the families the built-in MXNet algorithms are documented to train on.
BUILT_IN_GPU_FAMILIES = ("p2", "p3", "g4dn", "g5")
# Families the built-in MXNet containers predict on in a batch transform job (see the module docstring).
BUILT_IN_INFERENCE_FAMILIES = ("m4", "m5", "c4", "c5", *BUILT_IN_GPU_FAMILIES)
_INSTANCE_TYPE = re.compile(r"ml\.(?P<family>[a-z0-9-]+)\.[a-z0-9]+")


@dataclass(frozen=True)
class BuiltInAlgorithm:
    """A SageMaker built-in algorithm as the pipeline uses it."""

    name: str
    validation_metric: str
    default_hyperparameters: MappingProxyType[str, str]
    training_families: tuple[str, ...] = BUILT_IN_GPU_FAMILIES
    input_mode: Literal["Pipe", "File"] = "Pipe"
    distributed_training: bool = True

    def image(self, region: str) -> str:
        """``<account>.dkr.ecr.<region>.amazonaws.com/<algorithm>:1``."""
        account = ALGORITHM_REGISTRIES.get(region)
        if account is None:
            raise ValueError(
                f"region {region!r} has no built-in {self.name} image in our table; "
                f"Ground Truth regions are {', '.join(sorted(ALGORITHM_REGISTRIES))}"
            )
        return f"{account}.dkr.ecr.{region}.amazonaws.com/{self.name}:1"

    def training_instance_problem(self, instance_type: str) -> str | None:
        """Why ``instance_type`` cannot train this algorithm, or ``None``."""
        match = _INSTANCE_TYPE.fullmatch(instance_type)
        if match is None:
            return "must be a SageMaker instance type such as 'ml.p3.2xlarge'"
        if match["family"] not in self.training_families:
            families = ", ".join(f"ml.{family}.*" for family in self.training_families)
            return (
                f"the built-in {self.name} algorithm trains on GPU instances of the families {families} "
                f"(its documented ones); {instance_type!r} is not one of them"
            )
        return None

    def instance_count_problem(self, instance_count: int) -> str | None:
        """Why ``instance_count`` training instances cannot be used, or ``None``."""
        if instance_count > 1 and not self.distributed_training:
            return (
                f"must be 1: the built-in {self.name} algorithm does not support distributed training in "
                f"{self.input_mode} mode, which truthflow trains in (a multi-GPU instance such as "
                "'ml.p3.8xlarge' uses all its GPUs)"
            )
        return None


OBJECT_DETECTION = BuiltInAlgorithm(
    name="object-detection",
    validation_metric="validation:mAP",
    default_hyperparameters=MappingProxyType(
        {
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
        }
    ),
)
IMAGE_CLASSIFICATION = BuiltInAlgorithm(
    name="image-classification",
    validation_metric="validation:accuracy",
    default_hyperparameters=MappingProxyType(
        {
            "num_layers": "18",
            "use_pretrained_model": "1",
            "image_shape": "3,224,224",
            "resize": "224",
            "mini_batch_size": "32",
            "epochs": "10",
            "learning_rate": "0.001",
            "optimizer": "sgd",
            "momentum": "0.9",
            "weight_decay": "0.0005",
        }
    ),
    distributed_training=False,
)
ALGORITHM_FOR_TASK: MappingProxyType[str, BuiltInAlgorithm] = MappingProxyType(
    {"bounding-box": OBJECT_DETECTION, "image-classification": IMAGE_CLASSIFICATION}
)


def algorithm_for(task_type: TaskType) -> BuiltInAlgorithm:
    return ALGORITHM_FOR_TASK[task_type]


def transform_instance_problem(instance_type: str) -> str | None:
    """Why a batch transform job of a built-in algorithm cannot run on ``instance_type``, or ``None``."""
    match = _INSTANCE_TYPE.fullmatch(instance_type)
    if match is None:
        return "must be a SageMaker instance type such as 'ml.m5.xlarge'"
    if match["family"] not in BUILT_IN_INFERENCE_FAMILIES:
        families = ", ".join(f"ml.{family}.*" for family in BUILT_IN_INFERENCE_FAMILIES)
        return f"the built-in algorithms' batch transform runs on the families {families}; {instance_type!r} is not one"
    return None
