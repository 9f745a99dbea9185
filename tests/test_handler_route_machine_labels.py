"""The "Choose confidence threshold" Lambda through ``lambda_handler`` on emulated S3: transform outputs of every
kind, good and hostile, and the images they belong to; every remaining image ends machine-labeled or with people."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from emulated_aws import DATA_BUCKET
from PIL import Image

from truthflow.groundtruth.output_manifest import classification_annotation, dump_manifest_line, output_manifest_line

JOB_ID = "pens-v1"
JOB = f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/"
NAME = "tf-pens-v1-0a1b2c3d"
LABELS = ["pen", "pencil"]
CALIBRATION = [f"{JOB}images/cal-{index:03d}.jpg" for index in range(60)]
REMAINING = [f"{JOB}images/rest-{index:03d}.jpg" for index in range(10)]
PREDICTIONS = f"{JOB}predictions/{NAME}-pred-img/"
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def put(s3: Any, uri: str, body: bytes | str) -> None:
    key = uri.removeprefix(f"s3://{DATA_BUCKET}/")
    s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)


def read(s3: Any, uri: str) -> str:
    key = uri.removeprefix(f"s3://{DATA_BUCKET}/")
    return s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read().decode()


def event(task_type: str = "image-classification") -> dict[str, Any]:
    batch = {
        "job_name": f"{NAME}-pred-img",
        "content_type": "application/x-image",
        "manifest_uri": f"{JOB}manifests/transform-img.json",
        "output_uri": PREDICTIONS,
        "n_images": 70,
    }
    automated = {
        "plan_uri": f"{JOB}manifests/automated-labeling-plan.json", "bootstrap": True,
        "bootstrap_job_name": f"{NAME}-boot", "model_name": f"{NAME}-boot", "second_labeling_job_name": f"{NAME}-rest",
        "transform_batches": [batch], "target": 0.9, "confidence_level": 0.95, "price_per_task": 0.08,
        "workers_per_object": 3, "first_batch_workers_per_object": 5,
    }  # fmt: skip
    labeling = {"labeling_job_name": NAME, "label_attribute_name": NAME, "task_type": task_type,
                "label_config_uri": f"{JOB}manifests/label-categories.json", "automated": automated}  # fmt: skip
    return {
        "bucket": DATA_BUCKET,
        "job_id": JOB_ID,
        "labeling": labeling,
        "first_batch": {"consolidated_manifest_uri": f"{JOB}dataset/first-batch/consolidated.manifest"},
    }


def put_run(s3: Any, outputs: dict[str, bytes | str]) -> None:
    plan = {
        "first_batch": CALIBRATION,
        "calibration": CALIBRATION,
        "remaining": REMAINING,
        "note": "",
        "manifest_attributes": {"truthflow-task": {"task_type": "image-classification", "labels": LABELS}},
    }
    put(s3, f"{JOB}manifests/automated-labeling-plan.json", json.dumps(plan))
    put(s3, f"{JOB}manifests/label-categories.json",
        json.dumps({"document-version": "2018-11-28", "labels": [{"label": label} for label in LABELS]}))  # fmt: skip
    lines = [
        output_manifest_line({"source-ref": uri}, classification_annotation(
            label_attribute_name=NAME, class_names=LABELS, label="pen", confidence=0.9, job_name=NAME))
        for uri in CALIBRATION
    ]  # fmt: skip
    put(s3, f"{JOB}dataset/first-batch/consolidated.manifest", "".join(dump_manifest_line(line) for line in lines))
    for name, body in outputs.items():
        put(s3, PREDICTIONS + name + ".out", body)


def test_sure_predictions_become_machine_labels_and_hostile_outputs_go_to_people(s3, load_handler, lambda_context):
    outputs: dict[str, bytes | str] = {uri.rsplit("/", 1)[-1]: "[0.99, 0.01]" for uri in CALIBRATION}
    outputs |= {f"rest-{index:03d}.jpg": json.dumps({"prediction": [0.995, 0.005]}) for index in range(4)}
    outputs["rest-004.jpg"] = "[0.6, 0.4]"  # unsure
    outputs["rest-005.jpg"] = "not json at all"
    outputs["rest-006.jpg"] = "[" * 100_000 + "]" * 100_000  # nested far too deep
    outputs["rest-007.jpg"] = "[0.5, 0.4, 0.1]"  # three classes for two labels
    outputs["rest-008.jpg"] = b"\xff\xfe\x00garbage"
    # rest-009.jpg: no output at all
    put_run(s3, outputs)
    response = load_handler("route_machine_labels").lambda_handler(event(), lambda_context)
    assert response["theta"] == 0.99
    assert (response["machine_labeled"], response["for_people"]) == (4, 6)
    machine = [json.loads(line) for line in read(s3, response["machine_labels_uri"]).splitlines()]
    assert sorted(line["source-ref"] for line in machine) == REMAINING[:4]
    assert all(line[f"{NAME}-metadata"]["human-annotated"] == "no" for line in machine)
    remaining = [json.loads(line) for line in read(s3, response["remaining_manifest_uri"]).splitlines()]
    assert sorted(line["source-ref"] for line in remaining) == REMAINING[4:]
    assert all(line["truthflow-task"]["labels"] == LABELS for line in remaining)
    report = json.loads(read(s3, response["report_uri"]))
    reasons = report["not_predicted_examples"]
    assert "not JSON" in reasons[REMAINING[5]] and "nested too deeply" in reasons[REMAINING[6]]
    assert "3 probabilities for 2 classes" in reasons[REMAINING[7]] and "UTF-8" in reasons[REMAINING[8]]
    assert reasons[REMAINING[9]] == "the transform job wrote no output for it"
    assert "Machine-labeled 4 of 10" in response["message"]


def test_an_oversized_output_is_not_read_and_its_image_goes_to_people(s3, load_handler, lambda_context):
    outputs: dict[str, bytes | str] = {uri.rsplit("/", 1)[-1]: "[0.99, 0.01]" for uri in CALIBRATION}
    outputs |= {f"rest-{index:03d}.jpg": "[0.99, 0.01]" for index in range(10)}
    outputs["rest-000.jpg"] = b" " * (5 * 1024 * 1024)
    put_run(s3, outputs)
    response = load_handler("route_machine_labels").lambda_handler(event(), lambda_context)
    assert (response["machine_labeled"], response["for_people"]) == (9, 1)
    report = json.loads(read(s3, response["report_uri"]))
    assert "more than a prediction can be" in report["not_predicted_examples"][REMAINING[0]]


def jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 190, 170)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_boxes_read_image_sizes_from_the_image_headers(s3, load_handler, lambda_context):
    put_run(s3, {})
    # Re-use the classification plan for a box job: first-batch labels say "no objects" on every image.
    lines = [json.dumps({"source-ref": uri, NAME: {"image_size": [{"width": 64, "height": 48, "depth": 3}],
                         "annotations": []}, f"{NAME}-metadata": {"objects": [], "class-map": {},
                         "type": "groundtruth/object-detection", "human-annotated": "yes",
                         "creation-date": "2026-12-01T00:00:00.000000", "job-name": f"labeling-job/{NAME}"}})
             for uri in CALIBRATION]  # fmt: skip
    put(s3, f"{JOB}dataset/first-batch/consolidated.manifest", "\n".join(lines) + "\n")
    for uri in [*CALIBRATION, *REMAINING]:
        put(s3, uri, jpeg(64, 48))
        put(
            s3,
            PREDICTIONS + uri.rsplit("/", 1)[-1] + ".out",
            json.dumps({"prediction": [[0, 0.02, 0.1, 0.1, 0.5, 0.5]]}),
        )
    put(s3, REMAINING[0], b"not an image")
    request = event("bounding-box")
    request["labeling"]["automated"]["target"] = 0.6
    response = load_handler("route_machine_labels").lambda_handler(request, lambda_context)
    assert response["theta"] is not None and response["machine_labeled"] == 9
    report = json.loads(read(s3, response["report_uri"]))
    assert "not a JPEG or PNG image" in report["not_predicted_examples"][REMAINING[0]]
    machine = [json.loads(line) for line in read(s3, response["machine_labels_uri"]).splitlines()]
    assert machine[0][NAME]["image_size"] == [{"width": 64, "height": 48, "depth": 3}]
    assert machine[0][NAME]["annotations"] == []
