"""What a run reads, through the real definition on the embedded AWS: the job-file version it started with (also when
the file is replaced while people label), and the labels once, from the label-category file, not in the state."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import boto3
import pytest
from test_end_to_end import IMAGES, JOB_ID, box_workforce, failure, run

from truthflow.local.emulator import REGION, EmbeddedAws, EmulatorScenario, quiet_moto_logs

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

ORIGINAL = {
    "task_type": "bounding-box",
    "labels": ["pen", "pencil"],
    "workers_per_object": 3,
    "training": {"instance_type": "ml.g4dn.xlarge", "hyperparameters": {"epochs": 7}},
    "quality_gate": {"threshold": 0.3},
}
# What someone uploads while people label: another task type, other settings, the most expensive instances.
REPLACEMENT = {
    "task_type": "image-classification",
    "labels": ["pen", "pencil"],
    "training": {"instance_type": "ml.p3.16xlarge", "hyperparameters": {"epochs": 99}},
    "quality_gate": {"threshold": 0.01},
}


class ReplacingWorkforce:
    """The box workforce; while it answers the first image, the job file is replaced."""

    def __init__(self) -> None:
        self.aws: EmbeddedAws | None = None

    def __call__(self, line: Mapping[str, Any], n_workers: int) -> list[tuple[str, dict[str, Any]]]:
        if self.aws is not None:
            self.aws.put_job_file(JOB_ID, json.dumps(REPLACEMENT))
            self.aws = None
        return box_workforce(line, n_workers)


def sagemaker() -> Any:
    return boto3.client("sagemaker", region_name=REGION)


def test_every_step_reads_the_job_file_version_the_run_started_with(monkeypatch):
    workforce = ReplacingWorkforce()
    with quiet_moto_logs(), EmbeddedAws(workforce, EmulatorScenario()) as aws:
        workforce.aws = aws
        result = run(aws, ORIGINAL)
        assert result["description"]["status"] == "SUCCEEDED"
        assert json.loads(aws.read_text(f"jobs/{JOB_ID}/job.json"))["task_type"] == "image-classification"
        [summary] = sagemaker().list_training_jobs()["TrainingJobSummaries"]
        job = sagemaker().describe_training_job(TrainingJobName=summary["TrainingJobName"])
        assert job["ResourceConfig"]["InstanceType"] == "ml.g4dn.xlarge"
        assert job["HyperParameters"]["epochs"] == "7"
        assert job["AlgorithmSpecification"]["TrainingImage"].endswith("/object-detection:1")
        assert json.loads(result["description"]["output"])["quality"]["threshold"] == 0.3


def test_without_bucket_versioning_a_replaced_job_file_stops_the_run_with_a_clear_error():
    workforce = ReplacingWorkforce()
    with quiet_moto_logs(), EmbeddedAws(workforce, EmulatorScenario(), versioned_data_bucket=False) as aws:
        workforce.aws = aws
        fail_state, error, cause = failure(run(aws, ORIGINAL))
        assert (fail_state, error) == ("Training data failed", "TrainingDataFailed")
        assert f"jobs/{JOB_ID}/job.json: was replaced after this run started" in cause
        assert sagemaker().list_training_jobs()["TrainingJobSummaries"] == []


def test_an_unversioned_bucket_runs_from_the_etag_of_an_unchanged_job_file():
    with quiet_moto_logs(), EmbeddedAws(box_workforce, EmulatorScenario(), versioned_data_bucket=False) as aws:
        result = run(aws, ORIGINAL)
        assert result["description"]["status"] == "SUCCEEDED"
        run_input = json.loads(result["description"]["input"])
        assert run_input["job_version"] is None and run_input["job_etag"]


def test_the_labels_travel_once_in_the_label_category_file_not_in_the_state():
    labels = [f"{index:02d} " + "long label " * 22 + "end!" for index in range(50)]  # 50 labels of 249 characters
    job = {"task_type": "bounding-box", "labels": labels, "workers_per_object": 2}

    def workforce(line: Mapping[str, Any], n_workers: int) -> list[tuple[str, dict[str, Any]]]:
        answers = box_workforce(line, n_workers)
        for _, content in answers:
            for box in content["boundingBox"]["boundingBoxes"]:
                box["label"] = labels[0] if box["label"] == "pen" else labels[1]
        return answers

    with quiet_moto_logs(), EmbeddedAws(workforce, EmulatorScenario()) as aws:
        result = run(aws, job)
        assert result["description"]["status"] == "SUCCEEDED"
        output = result["description"]["output"]
        assert not [label for label in labels if label in output]
        categories = aws.read_json(f"jobs/{JOB_ID}/manifests/label-categories.json")
        assert [entry["label"] for entry in categories["labels"]] == labels
        assert aws.read_text(f"jobs/{JOB_ID}/dataset/training/classes.txt").splitlines() == labels
        assert len(IMAGES) == json.loads(output)["dataset"]["n_objects"]
