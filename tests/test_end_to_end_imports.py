"""Labels from the tools people use, end to end offline: a Label Studio export uploaded beside the job's images, the
real state machine definition and Lambda handlers on the embedded AWS, no labeling job, and a trained model served
from an endpoint; what the import left out reaches the notification topic, the run's output and status.json."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from PIL import Image

from truthflow.local.emulator import REGION, EmbeddedAws, EmulatorScenario, quiet_moto_logs
from truthflow.local.sample_data import make_sample_job

EXPORTS = Path(__file__).parent / "exports"
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def no_labeling(line: Mapping[str, Any], n_workers: int) -> list[tuple[str, dict[str, Any]]]:
    raise AssertionError("a job that brings its annotations must not start a labeling job")


def jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 180, 150)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def embedded() -> Iterator[Any]:
    opened: list[EmbeddedAws] = []

    def start(scenario: EmulatorScenario) -> EmbeddedAws:
        aws = EmbeddedAws(no_labeling, scenario)
        aws.__enter__()
        opened.append(aws)
        sqs = boto3.client("sqs", region_name=REGION)
        aws.queue_url = sqs.create_queue(QueueName="notifications")["QueueUrl"]  # type: ignore[attr-defined]
        queue = sqs.get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        boto3.client("sns", region_name=REGION).subscribe(
            TopicArn=aws.resources.topic_arn, Protocol="sqs", Endpoint=queue
        )
        return aws

    with quiet_moto_logs():
        yield start
        for aws in opened:
            aws.__exit__(None, None, None)


def notifications(aws: EmbeddedAws) -> list[dict[str, str]]:
    sqs = boto3.client("sqs", region_name=REGION)
    found = []
    while batch := sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages"):  # type: ignore[attr-defined]
        for message in batch:
            body = json.loads(message["Body"])
            found.append({"subject": body.get("Subject", ""), "message": body["Message"]})
            sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])  # type: ignore[attr-defined]
    return found


def run(aws: EmbeddedAws, job_id: str, job: dict[str, Any], images: dict[str, bytes], exports: dict[str, bytes]):
    s3 = boto3.client("s3", region_name=REGION)
    for path, data in exports.items():
        s3.put_object(Bucket=aws.resources.data_bucket, Key=f"jobs/{job_id}/{path}", Body=data)
    version = aws.upload_job(job_id, job, list(images.items()))
    started = aws.start_run(job_id, version)
    assert started["started"], started
    description = aws.wait(started["execution_arn"], timeout=600)
    history = aws.history(started["execution_arn"])
    entered = [event["stateEnteredEventDetails"]["name"] for event in history if "stateEnteredEventDetails" in event]
    return description, entered


def test_a_label_studio_export_reaches_a_served_model_without_labeling(embedded):
    aws = embedded(EmulatorScenario(validation_metric=0.78))
    job = {
        "task_type": "bounding-box",
        "labels": ["pen", "pencil", "eraser"],
        "annotations": {"format": "label-studio", "files": ["annotations/project-3-at-2026-11-20.json"]},
    }
    # desk_04's task has no annotation: its photo is not uploaded.
    images = {f"desk_0{index}.jpg": jpeg(1280, 960) for index in range(1, 4)}
    export = (EXPORTS / "label_studio_boxes.json").read_bytes()
    description, entered = run(aws, "desk-v1", job, images, {"annotations/project-3-at-2026-11-20.json": export})
    assert description["status"] == "SUCCEEDED", description
    assert entered[:8] == [
        "Prepare labeling input",
        "Labeling needed?",
        "Consolidate whole job",
        "Labels imported?",
        "Notify import result",
        "Plan training data",
        "Build training data",
        "Join training data",
    ]
    assert entered[-2:] == ["Notify success", "Done"] and "Label images" not in entered
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    assert sagemaker.describe_endpoint(EndpointName="truthflow-desk-v1")["EndpointStatus"] == "InService"
    [training] = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    assert training["TrainingJobStatus"] == "Completed"
    # The model was trained on the consolidated export: desk_01 and desk_02 with their boxes; on desk_03 two of the
    # three annotators drew nothing, so its consensus is "no object" and the detector's training data leaves it out.
    lines = [
        json.loads(line)
        for split in ("train", "validation")
        for line in aws.read_text(f"jobs/desk-v1/dataset/training/{split}.manifest").splitlines()
    ]
    assert sorted(line["source-ref"].rsplit("/", 1)[-1] for line in lines) == ["desk_01.jpg", "desk_02.jpg"]
    # What the import could not use is told in the run's output, the notification and status.json.
    output = json.loads(description["output"])["dataset"]["import"]
    assert (output["annotators"], output["images"], output["consolidated"], output["unmatched_images"]) == (3, 3, 3, 0)
    [imported] = [note for note in notifications(aws) if note["subject"] == "truthflow: labels imported"]
    assert imported["message"].startswith("truthflow job desk-v1 (run desk-v1-")
    assert "imported 1 export file(s): 3 annotator(s) answered 3 of the 3 images" in imported["message"]
    assert "1 cancelled annotation(s); 1 prediction(s)" in imported["message"]
    status = aws.read_json("jobs/desk-v1/status.json")
    assert status["status"] == "started" and status["import"]["message"] == output["message"]


def label_studio_classes_export(answers: dict[str, list[tuple[str, str]]]) -> bytes:
    """A Label Studio JSON export of image -> [(annotator e-mail, choice)], every task and annotation in the exact
    shape of Label Studio's own (the fixture's first task as the template)."""
    template = json.loads((EXPORTS / "label_studio_classes.json").read_bytes())[0]
    tasks = []
    annotation_id = 0
    for task_id, (name, given) in enumerate(answers.items(), start=1):
        task = copy.deepcopy(template)
        task["id"] = task_id
        task["data"] = {"image": f"/data/upload/7/{task_id:08x}-{name}"}
        annotations = []
        for user, (email, label) in enumerate(given, start=1):
            annotation_id += 1
            annotation = copy.deepcopy(template["annotations"][0])
            annotation.update(id=annotation_id, task=task_id, project=7)
            annotation["completed_by"] = {"id": user, "email": email, "first_name": "", "last_name": ""}
            annotation["result"][0]["value"] = {"choices": [label]}
            annotations.append(annotation)
        task["annotations"] = annotations
        tasks.append(task)
    return json.dumps(tasks, indent=2).encode()


def test_a_classification_export_trains_a_real_classifier_on_the_consolidated_labels(embedded):
    # No set metric: the emulator trains a classifier on the images and scores it on the validation split.
    aws = embedded(EmulatorScenario())
    sample = make_sample_job(task_type="image-classification", n_images=30, seed=4, job_id="photos-v1")
    answers = {}
    for index, image in enumerate(sample.images):
        assert image.label is not None
        wrong = next(label for label in sample.labels if label != image.label)
        # Two careful annotators and one who is wrong on every third photo.
        third = wrong if index % 3 == 0 else image.label
        answers[image.file_name] = [("ana@example.com", image.label), ("ben@example.com", image.label),
                                    ("cho@example.com", third)]  # fmt: skip
    job = {
        "task_type": "image-classification",
        "labels": list(sample.labels),
        "annotations": {"files": ["annotations/project-7.json"]},
        "quality_gate": {"threshold": 0.5},
    }
    images = {image.file_name: image.data for image in sample.images}
    description, entered = run(aws, "photos-v1", job, images, {"annotations/project-7.json":
                                                                label_studio_classes_export(answers)})  # fmt: skip
    assert description["status"] == "SUCCEEDED", description
    quality = aws.read_json("jobs/photos-v1/dataset/quality.json")
    consolidated = {line["source-ref"].rsplit("/", 1)[-1]: line for line in _manifest(aws, "photos-v1")}
    truth = {image.file_name: image.label for image in sample.images}
    assert all(_class(line) == truth[name] for name, line in consolidated.items())  # the majority is right
    workers = {worker["worker_id"]: worker["estimated_accuracy"] for worker in quality["workers"]}
    assert workers["cho@example.com"] < workers["ana@example.com"]  # the pipeline sees who is less reliable
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    [training] = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    metrics = sagemaker.describe_training_job(TrainingJobName=training["TrainingJobName"])["FinalMetricDataList"]
    assert [metric["MetricName"] for metric in metrics] == ["validation:accuracy"]
    assert "Model good enough?" in entered and entered[-1] == "Done"


def _manifest(aws: EmbeddedAws, job_id: str) -> list[dict[str, Any]]:
    text = aws.read_text(f"jobs/{job_id}/dataset/consolidated.manifest")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _class(line: Mapping[str, Any]) -> str | None:
    metadata = next(value for key, value in line.items() if key.endswith("-metadata"))
    return metadata.get("class-name")
