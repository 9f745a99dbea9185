"""Automated labeling, end to end: the real definition and handlers on the embedded AWS, with a real classifier
trained in the emulator (classes) or the simulated detector (boxes). The happy paths, a given model, and every way
the branch can stop: each ends in a named state with its cause and a notification, and no image is lost."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import botocore.session
import pytest

from truthflow.local.emulated_models import DetectorSkill, SimulatedDetector, model_artifact
from truthflow.local.emulator import REGION, EmbeddedAws, EmulatorScenario, quiet_moto_logs
from truthflow.local.sample_data import SampleJob, make_sample_job

N_IMAGES = 130


@pytest.fixture(scope="module")
def boxes() -> SampleJob:
    return make_sample_job(task_type="bounding-box", n_images=N_IMAGES, seed=3)


@pytest.fixture(scope="module")
def classes() -> SampleJob:
    return make_sample_job(task_type="image-classification", n_images=N_IMAGES, seed=3)


def gold_boxes(job: SampleJob) -> dict[str, list[dict[str, Any]]]:
    return {
        image.file_name: [{"label": b.label, "left": b.left, "top": b.top, "width": b.width, "height": b.height}
                          for b in image.boxes]
        for image in job.images
    }  # fmt: skip


def careful_workforce(job: SampleJob):
    """Three workers who answer the truth (boxes a pixel apart): the human labels are the gold."""
    by_name = {image.file_name: image for image in job.images}

    def answer(line: Mapping[str, Any], n_workers: int) -> list[tuple[str, dict[str, Any]]]:
        image = by_name[line["source-ref"].rsplit("/", 1)[-1]]
        answers = []
        for worker in range(n_workers):
            if job.task_type == "image-classification":
                content: dict[str, Any] = {"crowd-image-classifier": {"label": image.label}}
            else:
                drawn = [{"label": b.label, "left": b.left + worker % 2, "top": b.top, "width": b.width,
                          "height": b.height} for b in image.boxes]  # fmt: skip
                size = {"width": image.width, "height": image.height}
                content = {"boundingBox": {"boundingBoxes": drawn, "inputImageProperties": size}}
            answers.append((f"worker-{worker}", content))
        return answers

    return answer


@pytest.fixture
def notifications() -> Iterator[Any]:
    """Reads what the run published to its topic, through an SQS queue subscribed to it."""

    def read(aws: EmbeddedAws) -> list[str]:
        sqs = boto3.client("sqs", region_name=REGION)
        messages = []
        while batch := sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages"):
            for message in batch:
                messages.append(json.loads(message["Body"])["Message"])
                sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return messages

    yield read


def run(job: SampleJob, job_settings: Mapping[str, Any], *, scenario: EmulatorScenario | None = None,
        before: Any = None) -> tuple[EmbeddedAws, dict[str, Any]]:  # fmt: skip
    aws = EmbeddedAws(careful_workforce(job), scenario or EmulatorScenario(), gold_boxes=gold_boxes(job), seed=3)
    aws.__enter__()
    sqs = boto3.client("sqs", region_name=REGION)
    aws.queue_url = sqs.create_queue(QueueName="notifications")["QueueUrl"]  # type: ignore[attr-defined]
    queue_arn = sqs.get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns", region_name=REGION).subscribe(TopicArn=aws.resources.topic_arn, Protocol="sqs",
                                                      Endpoint=queue_arn)  # fmt: skip
    if before is not None:
        before(aws)
    job_file = {**job.job_file, "workers_per_object": 3, **job_settings}
    version = aws.upload_job(job.job_id, job_file, [(image.file_name, image.data) for image in job.images])
    started = aws.start_run(job.job_id, version)
    description = aws.wait(started["execution_arn"], timeout=600)
    history = aws.history(started["execution_arn"])
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    return aws, {"description": description, "entered": entered}


@pytest.fixture
def embedded() -> Iterator[Any]:
    opened: list[EmbeddedAws] = []

    def start(*args: Any, **kwargs: Any) -> tuple[EmbeddedAws, dict[str, Any]]:
        aws, result = run(*args, **kwargs)
        opened.append(aws)
        return aws, result

    with quiet_moto_logs():
        yield start
        for aws in opened:
            aws.__exit__(None, None, None)


def final_manifest(aws: EmbeddedAws, job: SampleJob) -> list[dict[str, Any]]:
    text = aws.read_text(f"jobs/{job.job_id}/dataset/consolidated.manifest")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def machine_labeled(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if any(
        key.endswith("-metadata") and value.get("human-annotated") == "no" for key, value in line.items()
    )]  # fmt: skip


def assert_every_image_once(aws: EmbeddedAws, job: SampleJob) -> list[dict[str, Any]]:
    lines = final_manifest(aws, job)
    names = sorted(line["source-ref"].rsplit("/", 1)[-1] for line in lines)
    assert names == sorted(image.file_name for image in job.images)
    return lines


def test_classification_run_machine_labels_what_the_trained_model_is_sure_of(embedded, classes, notifications):
    aws, result = embedded(classes, {"automated_labeling": {"target": 0.8, "calibration_fraction": 0.6}})
    assert result["description"]["status"] == "SUCCEEDED", result["description"].get("cause")
    assert result["entered"][:11] == [
        "Prepare labeling input", "Labeling needed?", "Label images", "Automated labeling?",
        "Consolidate first batch", "Bootstrap model needed?", "Plan bootstrap training data",
        "Build bootstrap training data", "Join bootstrap training data", "Train bootstrap model",
        "Create bootstrap model",
    ]  # fmt: skip
    assert "Choose confidence threshold" in result["entered"] and result["entered"][-1] == "Done"
    lines = assert_every_image_once(aws, classes)
    machine = machine_labeled(lines)
    report = aws.read_json(f"jobs/{classes.job_id}/dataset/automated-labeling.json")
    assert report["theta"] is not None and len(machine) == report["machine_labeled"] > 0
    assert report["machine_labeled"] + report["human_labeled"] == N_IMAGES
    assert report["calibration_lower_bound"] >= 0.8
    gold = {image.file_name: image.label for image in classes.images}
    attribute = next(key for key in machine[0] if key.endswith("-metadata"))
    right = sum(line[attribute]["class-name"] == gold[line["source-ref"].rsplit("/", 1)[-1]] for line in machine)
    assert right / len(machine) >= 0.8
    quality = aws.read_json(f"jobs/{classes.job_id}/dataset/quality.json")
    assert quality["n_objects"] == N_IMAGES and quality["n_machine_labeled"] == len(machine)
    assert any(message.startswith(f"truthflow job {classes.job_id}") and "Machine-labeled" in message
               for message in notifications(aws))  # fmt: skip
    # The second labeling job asked people about exactly the images the model left, with the job's 3 workers each;
    # the first batch had 5.
    remaining = aws.read_text(f"jobs/{classes.job_id}/manifests/remaining.manifest").splitlines()
    assert len(remaining) == report["for_people"] == N_IMAGES - report["first_batch"] - len(machine)
    jobs = {name: job.request["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"]
            for name, job in aws.ground_truth.jobs.items()}  # fmt: skip
    assert sorted(jobs.values()) == ([3, 5] if remaining else [5])
    assert report["human_tasks"] == report["first_batch"] * 5 + len(remaining) * 3
    assert report["human_tasks_saved"] == N_IMAGES * 3 - report["human_tasks"]


def test_box_run_with_the_simulated_detector(embedded, boxes):
    aws, result = embedded(boxes, {"automated_labeling": {"target": 0.6}})
    assert result["description"]["status"] == "SUCCEEDED", result["description"].get("cause")
    lines = assert_every_image_once(aws, boxes)
    report = aws.read_json(f"jobs/{boxes.job_id}/dataset/automated-labeling.json")
    assert len(machine_labeled(lines)) == report["machine_labeled"] > 0
    assert report["score_threshold"] is not None
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    transforms = sagemaker.list_transform_jobs()["TransformJobSummaries"]
    assert {job["TransformJobName"].rsplit("-", 1)[-1] for job in transforms} == {"jpg", "png"}
    # What the run sent follows the SageMaker API model: names (length, pattern), enums, instance types.
    api = botocore.session.get_session().get_service_model("sagemaker")
    for summary in transforms:
        job = sagemaker.describe_transform_job(TransformJobName=summary["TransformJobName"])
        assert_valid(api, "TransformJobName", job["TransformJobName"])
        assert_valid(api, "ModelName", job["ModelName"])
        assert_valid(api, "TransformInstanceType", job["TransformResources"]["InstanceType"])
        assert_valid(api, "BatchStrategy", job["BatchStrategy"])
        assert_valid(api, "S3DataType", job["TransformInput"]["DataSource"]["S3DataSource"]["S3DataType"])
        assert_valid(api, "SplitType", job["TransformInput"]["SplitType"])
        assert_valid(api, "AssemblyType", job["TransformOutput"]["AssembleWith"])
        assert job["MaxConcurrentTransforms"] * job["MaxPayloadInMB"] <= 100  # the API's documented product limit
    for summary in sagemaker.list_training_jobs()["TrainingJobSummaries"]:
        assert_valid(api, "TrainingJobName", summary["TrainingJobName"])
    for model in sagemaker.list_models()["Models"]:
        assert_valid(api, "ModelName", model["ModelName"])
    for name in aws.ground_truth.jobs:
        assert_valid(api, "LabelingJobName", name)


def test_a_given_model_is_used_without_bootstrap_training(embedded, boxes):
    def register_model(aws: EmbeddedAws) -> None:
        s3 = boto3.client("s3", region_name=REGION)
        detector = SimulatedDetector(labels=list(boxes.labels), skill=DetectorSkill(), seed=3)
        s3.put_object(Bucket=aws.resources.artifacts_bucket, Key="models/previous/model.tar.gz",
                      Body=model_artifact(detector))  # fmt: skip
        boto3.client("sagemaker", region_name=REGION).create_model(
            ModelName="previous-run-model",
            PrimaryContainer={"Image": "object-detection:1",
                              "ModelDataUrl": f"s3://{aws.resources.artifacts_bucket}/models/previous/model.tar.gz"},
            ExecutionRoleArn="arn:aws:iam::123456789012:role/truthflow-emulated",
        )  # fmt: skip

    aws, result = embedded(boxes, {"automated_labeling": {"model": "previous-run-model"}}, before=register_model)
    assert result["description"]["status"] == "SUCCEEDED", result["description"].get("cause")
    assert "Train bootstrap model" not in result["entered"] and "Predict with the model" in result["entered"]
    transforms = boto3.client("sagemaker", region_name=REGION).list_transform_jobs()["TransformJobSummaries"]
    described = boto3.client("sagemaker", region_name=REGION).describe_transform_job(
        TransformJobName=transforms[0]["TransformJobName"]
    )
    assert described["ModelName"] == "previous-run-model"
    assert_every_image_once(aws, boxes)


def assert_valid(api: Any, shape_name: str, value: str) -> None:
    shape = api.shape_for(shape_name)
    metadata = shape.metadata
    assert metadata.get("min", 0) <= len(value) <= metadata.get("max", 1_000_000), (shape_name, value)
    if "pattern" in metadata:
        assert re.fullmatch(metadata["pattern"], value), (shape_name, value)
    if shape.enum:
        assert value in shape.enum, (shape_name, value)


def failed(result: dict[str, Any]) -> tuple[str, str, str]:
    description = result["description"]
    assert description["status"] == "FAILED"
    return result["entered"][-1], description.get("error", ""), description.get("cause", "")


def test_a_failed_transform_job_stops_at_machine_labeling_failed_and_keeps_the_first_batch(
    embedded, boxes, notifications
):
    scenario = EmulatorScenario(transform_status="Failed", failure_reason="ClientError: model container crashed")
    aws, result = embedded(boxes, {"automated_labeling": True}, scenario=scenario)
    state, error, cause = failed(result)
    assert (state, error) == ("Machine labeling failed", "MachineLabelingFailed")
    assert "model container crashed" in cause
    messages = notifications(aws)
    assert any("labeling the remaining images with the model failed" in m and "first-batch" in m for m in messages)
    plan = aws.read_json(f"jobs/{boxes.job_id}/manifests/automated-labeling-plan.json")
    first = aws.read_text(f"jobs/{boxes.job_id}/dataset/first-batch/consolidated.manifest").splitlines()
    assert len(first) == len(plan["first_batch"]) and len(plan["first_batch"]) + len(plan["remaining"]) == N_IMAGES


def test_when_no_threshold_qualifies_every_remaining_image_goes_to_people(embedded, boxes, notifications):
    blind = EmulatorScenario(detector_skill=DetectorSkill(detect=0.2, jitter=0.3, confuse=0.5, spurious=2.0))
    aws, result = embedded(boxes, {"automated_labeling": {"target": 0.6}}, scenario=blind)
    assert result["description"]["status"] == "SUCCEEDED"
    assert "Label remaining images" in result["entered"]
    report = aws.read_json(f"jobs/{boxes.job_id}/dataset/automated-labeling.json")
    assert report["theta"] is None and report["machine_labeled"] == 0
    assert report["for_people"] == report["remaining"] == N_IMAGES - report["first_batch"]
    lines = assert_every_image_once(aws, boxes)
    assert machine_labeled(lines) == []
    assert any("No confidence threshold qualified" in message for message in notifications(aws))


def test_a_failed_second_labeling_job_stops_at_labeling_failed_and_loses_no_image(embedded, boxes, notifications):
    # A weak detector leaves images for people; their labeling job fails.
    scenario = EmulatorScenario(
        labeling_status="Failed", labeling_status_jobs=(2,), failure_reason="the workteam expired",
        detector_skill=DetectorSkill(detect=0.5, jitter=0.2, confuse=0.3),
    )  # fmt: skip
    aws, result = embedded(boxes, {"automated_labeling": {"target": 0.6}}, scenario=scenario)
    state, error, cause = failed(result)
    assert (state, error) == ("Labeling failed", "LabelingFailed") and "the workteam expired" in cause
    assert "Label remaining images" in result["entered"]
    report = aws.read_json(f"jobs/{boxes.job_id}/dataset/automated-labeling.json")
    machine = aws.read_text(f"jobs/{boxes.job_id}/dataset/machine-labels.manifest").splitlines()
    remaining = aws.read_text(f"jobs/{boxes.job_id}/manifests/remaining.manifest").splitlines()
    assert report["first_batch"] + len(machine) + len(remaining) == N_IMAGES
    assert any("the second labeling job failed" in m and "remaining.manifest" in m for m in notifications(aws))
