"""The real state machine definition and Lambda handlers, run end to end on the embedded AWS (moto) with an emulated
Ground Truth workforce: the happy paths and every way a run can stop."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import boto3
import pytest
from PIL import Image

from truthflow.groundtruth.output_manifest import detection_annotation, dump_manifest_line
from truthflow.local.emulator import REGION, EmbeddedAws, EmulatorScenario, quiet_moto_logs

JOB_ID = "pens-v1"
LABELS = ["pen", "pencil"]
N_IMAGES = 10


def image_bytes(index: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (190 + index, 170, 140)).save(buffer, format="PNG")
    return buffer.getvalue()


IMAGES = [(f"img{index:02d}.png", image_bytes(index)) for index in range(N_IMAGES)]
GOLD = {name: ("pen" if index % 2 else "pencil", 20 + 5 * index, 30, 90, 24) for index, (name, _) in enumerate(IMAGES)}


def box_workforce(line: Mapping[str, Any], n_workers: int) -> list[tuple[str, dict[str, Any]]]:
    """Three careful workers who agree to within a pixel or two; one of them adds a stray box now and then."""
    label, left, top, width, height = GOLD[line["source-ref"].rsplit("/", 1)[-1]]
    answers = []
    for worker in range(n_workers):
        boxes = [
            {"label": label, "left": left + worker, "top": top - worker, "width": width, "height": height + worker}
        ]
        if worker == 0 and left % 2:
            boxes.append({"label": "pen", "left": 250, "top": 200, "width": 30, "height": 20})
        content = {"boundingBox": {"boundingBoxes": boxes, "inputImageProperties": {"width": 320, "height": 240}}}
        answers.append((f"worker-{worker}", content))
    return answers


def class_workforce(line: Mapping[str, Any], n_workers: int) -> list[tuple[str, dict[str, Any]]]:
    label = GOLD[line["source-ref"].rsplit("/", 1)[-1]][0]
    return [(f"worker-{w}", {"crowd-image-classifier": {"label": label}}) for w in range(n_workers)]


def job_file(task_type: str = "bounding-box", **extra: Any) -> dict[str, Any]:
    return {"task_type": task_type, "labels": LABELS, "workers_per_object": 3, **extra}


def run(aws: EmbeddedAws, job: Mapping[str, Any] | str) -> dict[str, Any]:
    version = aws.upload_job(JOB_ID, job if isinstance(job, str) else dict(job), IMAGES)
    started = aws.start_run(JOB_ID, version)
    assert started["started"], started
    description = aws.wait(started["execution_arn"])
    history = aws.history(started["execution_arn"])
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    return {"description": description, "entered": entered, "arn": started["execution_arn"]}


@pytest.fixture
def embedded():
    def start(workforce=box_workforce, **scenario: Any) -> EmbeddedAws:
        # The flow is under test, not the model: training jobs report a set metric unless a test says otherwise.
        return EmbeddedAws(workforce, EmulatorScenario(**{"validation_metric": 0.78, **scenario}))

    with quiet_moto_logs():
        yield start


def sagemaker() -> Any:
    return boto3.client("sagemaker", region_name=REGION)


def test_bounding_box_run_labels_trains_and_serves(embedded):
    with embedded() as aws:
        result = run(aws, job_file())
        assert result["description"]["status"] == "SUCCEEDED"
        assert result["entered"][:9] == [
            "Prepare labeling input",
            "Labeling needed?",
            "Label images",
            "Automated labeling?",
            "Consolidate whole job",
            "Labels imported?",  # no: nothing to tell about an import
            "Plan training data",
            "Build training data",
            "Join training data",
        ]
        assert result["entered"][-2:] == ["Notify success", "Done"]
        keys = set(aws.keys(f"jobs/{JOB_ID}/"))
        labeling_manifests = [key for key in keys if key.endswith("manifests/output/output.manifest")]
        assert len(labeling_manifests) == 1
        responses = [key for key in keys if "/annotations/worker-response/iteration-1/" in key]
        assert len(responses) == N_IMAGES
        quality = aws.read_json(f"jobs/{JOB_ID}/dataset/quality.json")
        assert quality["n_objects"] == N_IMAGES and quality["n_failed"] == 0
        assert {
            f"jobs/{JOB_ID}/dataset/training/train.manifest",
            f"jobs/{JOB_ID}/dataset/training/validation.manifest",
        } <= keys
        endpoint = sagemaker().describe_endpoint(EndpointName=f"truthflow-{JOB_ID}")
        assert endpoint["EndpointStatus"] == "InService"
        output = json.loads(aws.read_text(labeling_manifests[0]).splitlines()[0])
        attribute = next(key for key in output if key.endswith("-metadata"))[: -len("-metadata")]
        assert output[f"{attribute}-metadata"]["type"] == "groundtruth/object-detection"
        assert len(output[attribute]["annotations"]) == 1  # the stray box of one worker is outvoted


def test_image_classification_run_succeeds(embedded):
    with embedded(class_workforce) as aws:
        result = run(aws, job_file("image-classification"))
        assert result["description"]["status"] == "SUCCEEDED"
        quality = aws.read_json(f"jobs/{JOB_ID}/dataset/quality.json")
        assert quality["task_type"] == "image-classification" and quality["n_consolidated"] == N_IMAGES


def failure(result: dict[str, Any]) -> tuple[str, str, str]:
    description = result["description"]
    assert description["status"] == "FAILED"
    return result["entered"][-1], description.get("error", ""), description.get("cause", "")


def test_failed_labeling_job_stops_at_labeling_failed_and_builds_nothing(embedded):
    with embedded(labeling_status="Failed", failure_reason="workers declined every task") as aws:
        fail_state, error, cause = failure(run(aws, job_file()))
        assert fail_state == "Labeling failed" and error == "LabelingFailed"
        assert "workers declined every task" in cause
        assert "Notify labeling failed" in run_states(aws)
        assert not [key for key in aws.keys(f"jobs/{JOB_ID}/") if "/dataset/" in key]


def run_states(aws: EmbeddedAws) -> list[str]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.list_executions(stateMachineArn=aws.resources.state_machine_arn)["executions"][0]["executionArn"]
    return [e["stateEnteredEventDetails"]["name"] for e in aws.history(arn) if "stateEnteredEventDetails" in e]


def test_failed_training_job_creates_no_model(embedded):
    with embedded(training_status="Failed", failure_reason="AlgorithmError: out of memory") as aws:
        fail_state, error, cause = failure(run(aws, job_file()))
        assert fail_state == "Training failed" and error == "TrainingFailed"
        assert "AlgorithmError: out of memory" in cause
        assert sagemaker().list_models()["Models"] == []


def test_model_below_the_quality_threshold_is_not_deployed(embedded):
    with embedded(validation_metric=0.2) as aws:
        result = run(aws, job_file(quality_gate={"threshold": 0.5}))
        fail_state, error, _ = failure(result)
        assert fail_state == "Model below quality threshold" and error == "QualityGateNotMet"
        assert "Check model quality" in result["entered"]
        assert sagemaker().list_endpoints()["Endpoints"] == []


def test_failed_endpoint_stops_at_endpoint_failed(embedded):
    with embedded(endpoint_status="Failed") as aws:
        fail_state, error, _ = failure(run(aws, job_file()))
        assert fail_state == "Endpoint failed" and error == "EndpointFailed"


def test_a_duplicate_upload_event_starts_one_execution(embedded):
    with embedded() as aws:
        version = aws.upload_job(JOB_ID, job_file(), IMAGES)
        first = aws.start_run(JOB_ID, version)
        second = aws.start_run(JOB_ID, version)
        # Same upload, same execution name: Step Functions starts nothing new (the call is idempotent).
        assert first["execution_name"] == second["execution_name"]
        sfn = boto3.client("stepfunctions", region_name=REGION)
        assert len(sfn.list_executions(stateMachineArn=aws.resources.state_machine_arn)["executions"]) == 1
        aws.wait(first["execution_arn"])


def test_a_malformed_job_file_starts_nothing_and_records_the_error(embedded):
    with embedded() as aws:
        bad = '{"task_type": "bounding-box", "labels": ["pen"], "workers_per_object": 0}'
        started = aws.start_run(JOB_ID, aws.upload_job(JOB_ID, bad, IMAGES))
        assert started["started"] is False
        assert "jobs/pens-v1/job.json" in started["errors"] and "workers_per_object" in started["errors"]
        status = aws.read_json(f"jobs/{JOB_ID}/status.json")
        assert status["status"] == "invalid" and "workers_per_object" in status["errors"]
        sfn = boto3.client("stepfunctions", region_name=REGION)
        assert sfn.list_executions(stateMachineArn=aws.resources.state_machine_arn)["executions"] == []
        assert not [key for key in aws.keys(f"jobs/{JOB_ID}/") if "/manifests/" in key]


def test_bring_your_own_annotations_skips_labeling(embedded):
    with embedded() as aws:
        s3 = boto3.client("s3", region_name=REGION)
        lines = []
        for name, (label, left, top, width, height) in GOLD.items():
            box = type(
                "Box",
                (),
                {"label": label, "left": left, "top": top, "width": width, "height": height, "confidence": 0.9},
            )
            annotation = detection_annotation(
                label_attribute_name="made-elsewhere", class_names=LABELS, boxes=[box], image_width=320,
                image_height=240, job_name="made-elsewhere",
            )  # fmt: skip
            lines.append(
                dump_manifest_line(
                    {"source-ref": f"s3://{aws.resources.data_bucket}/jobs/{JOB_ID}/images/{name}", **annotation}
                )
            )
        key = f"jobs/{JOB_ID}/imports/output.manifest"
        s3.put_object(Bucket=aws.resources.data_bucket, Key=key, Body="".join(lines).encode())
        uri = f"s3://{aws.resources.data_bucket}/jobs/{JOB_ID}/imports/output.manifest"
        result = run(aws, job_file(existing_annotations={"output_manifest": uri}))
        assert result["description"]["status"] == "SUCCEEDED"
        assert "Label images" not in result["entered"]
        assert "Consolidate whole job" in result["entered"]
