"""Training settings and the quality gate, including the quality Lambda through its handler."""

from __future__ import annotations

import pytest

from truthflow.job_file import parse_job_file
from truthflow.training_job import DeploymentDefaults, algorithm_image, check_quality, endpoint_name, training_settings


def job(text: str):
    return parse_job_file(text, source="jobs/pens-v1/job.json")


def test_object_detection_settings_merge_user_hyperparameters_over_the_notebook_defaults():
    settings = training_settings(
        job(
            '{"task_type": "bounding-box", "labels": ["pen", "pencil"], "training": {"hyperparameters": {"epochs": 5}}}'
        ),
        job_id="pens-v1",
        job_name="tf-pens-v1-0a1b2c3d",
        num_classes=2,
        num_training_samples=80,
        label_width=402,
        region="eu-west-1",
        output_path_uri="s3://artifacts/training/",
    )
    assert settings["image"] == "685385470294.dkr.ecr.eu-west-1.amazonaws.com/object-detection:1"
    hyper = settings["hyperparameters"]
    assert hyper["epochs"] == "5" and hyper["base_network"] == "resnet-50"
    assert hyper["num_classes"] == "2" and hyper["num_training_samples"] == "80" and hyper["label_width"] == "402"
    assert all(isinstance(value, str) for value in hyper.values())
    assert settings["metric_name"] == "validation:mAP" and settings["threshold"] == 0.5
    assert settings["endpoint_name"] == "truthflow-pens-v1"


def test_classification_uses_its_own_image_and_metric():
    settings = training_settings(
        job('{"task_type": "image-classification", "labels": ["cat", "dog"]}'),
        job_id="pets",
        job_name="tf-pets-00000000",
        num_classes=2,
        num_training_samples=10,
        label_width=None,
        region="us-east-1",
        output_path_uri="s3://a/t/",
    )
    assert settings["image"].endswith("/image-classification:1")
    assert settings["metric_name"] == "validation:accuracy"
    assert "label_width" not in settings["hyperparameters"]


def test_unknown_region_is_named():
    with pytest.raises(ValueError, match="region 'mars-1' has no built-in object-detection image"):
        algorithm_image("bounding-box", "mars-1")


@pytest.mark.parametrize(("value", "good"), [(0.49, False), (0.5, True), (0.8, True)])
def test_quality_gate_compares_the_final_metric_with_the_threshold(value, good):
    verdict = check_quality(
        metric_name="validation:mAP",
        threshold=0.5,
        final_metrics=[{"MetricName": "train:loss", "Value": 0.1}, {"MetricName": "validation:mAP", "Value": value}],
    )
    assert verdict["good_enough"] is good
    assert verdict["value"] == value


def test_a_missing_metric_fails_the_gate_and_says_what_was_reported(load_handler, lambda_context):
    handler = load_handler("check_model_quality")
    verdict = handler.lambda_handler(
        {
            "task_type": "bounding-box",
            "training": {"metric_name": "validation:mAP", "threshold": 0.5},
            "final_metrics": [{"MetricName": "train:progress", "Value": 100.0}],
        },
        lambda_context,
    )
    assert verdict["good_enough"] is False
    assert verdict["message"] == "the training job reported no validation:mAP (it reported: train:progress)"


def test_deployment_instance_types_fill_what_the_job_file_leaves_out_and_the_file_wins():
    defaults = DeploymentDefaults.from_environment(
        {"DEFAULT_TRAINING_INSTANCE_TYPE": "ml.g5.xlarge", "DEFAULT_ENDPOINT_INSTANCE_TYPE": "ml.c5.large"}
    )  # fmt: skip
    common = {
        "job_id": "pens-v1",
        "job_name": "tf-pens-v1-00000000",
        "num_classes": 2,
        "num_training_samples": 8,
        "label_width": None,
        "region": "us-east-1",
        "output_path_uri": "s3://a/t/",
        "defaults": defaults,
    }
    silent = training_settings(job('{"task_type": "bounding-box", "labels": ["pen", "pencil"]}'), **common)
    assert (silent["instance_type"], silent["endpoint_instance_type"]) == ("ml.g5.xlarge", "ml.c5.large")
    explicit = training_settings(
        job(
            '{"task_type": "bounding-box", "labels": ["pen", "pencil"], "training": {"instance_type": "ml.p3.8xlarge"},'
            ' "endpoint": {"instance_type": "ml.m5.large"}, "quality_gate": {"threshold": 0.4}}'
        ),
        **common,
    )
    assert (explicit["instance_type"], explicit["endpoint_instance_type"]) == ("ml.p3.8xlarge", "ml.m5.large")


def classification_settings(num_training_samples: int, hyperparameters: str = "{}") -> dict:
    return training_settings(
        job(
            '{"task_type": "image-classification", "labels": ["cat", "dog"], '
            f'"training": {{"hyperparameters": {hyperparameters}}}}}'
        ),
        job_id="pets",
        job_name="tf-pets-00000000",
        num_classes=2,
        num_training_samples=num_training_samples,
        label_width=None,
        region="us-east-1",
        output_path_uri="s3://a/t/",
    )


def test_classification_resizes_full_size_photos_to_the_224_pixel_network_input():
    hyper = classification_settings(500)["hyperparameters"]
    assert hyper["image_shape"] == "3,224,224" and hyper["resize"] == "224"


@pytest.mark.parametrize("task_type", ["bounding-box", "image-classification"])
def test_mini_batch_size_never_exceeds_the_training_samples(task_type):
    # The 40-image job trained on 31 images: the default batch of 32 for classification was too large.
    settings = training_settings(
        job(f'{{"task_type": "{task_type}", "labels": ["a", "b"]}}'),
        job_id="small",
        job_name="tf-small-00000000",
        num_classes=2,
        num_training_samples=31,
        label_width=7,
        region="us-east-1",
        output_path_uri="s3://a/t/",
    )
    assert int(settings["hyperparameters"]["mini_batch_size"]) <= 31
    few = classification_settings(5, '{"mini_batch_size": 64}')
    assert few["hyperparameters"]["mini_batch_size"] == "5"
    assert few["notes"] == ["mini_batch_size lowered from 64 to 5: the train split has only 5 samples"]
    assert classification_settings(500)["notes"] == []
    assert classification_settings(5, '{"mini_batch_size": "auto"}')["hyperparameters"]["mini_batch_size"] == "auto"


def test_the_training_input_mode_and_image_come_from_the_algorithm_table():
    settings = classification_settings(100)
    assert settings["input_mode"] == "Pipe" and settings["algorithm"] == "image-classification"


def test_endpoint_names_are_lower_case():
    assert endpoint_name("pens-v1") == "truthflow-pens-v1"
    assert endpoint_name("PENS") == endpoint_name("pens")  # SageMaker compares names case-insensitively
