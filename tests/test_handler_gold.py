"""Gold questions through the Lambda handlers on emulated AWS (moto): refused at upload when malformed, written by
"Prepare labeling input", and used by both consolidation steps (a gold image's label is never overridden; workers are
scored on gold)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from emulated_aws import DATA_BUCKET, REGION
from test_gold import confused_majority
from test_handler_annotation_consolidation import (
    _describe_labeling_job,
    class_answer,
    data_object,
    put_payload,
    request,
)
from test_handler_prepare_labeling import event as prepare_event
from test_handler_prepare_labeling import put_job as put_prepared_job
from test_handler_reconsolidate import (
    DATASET,
    JOB_NAME,
    answer,
    category,
    labeling_event,
    manifest_lines,
    put_input_manifest,
    put_worker_response,
    quality,
)
from test_handler_start_run import object_created, put, put_job, status

from truthflow.gold_questions import GoldFileError

JOB_ID = "pens-v1"
LABELS = ["pen", "pencil", "eraser"]
CLASSIFICATION_JOB = {"task_type": "image-classification", "labels": LABELS, "gold_labels": "gold.csv"}
GOLD_LABELS_KEY = f"jobs/{JOB_ID}/manifests/gold-labels.json"
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def image_uri(name: str) -> str:
    return f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/images/{name}"


def put_gold_document(s3: Any, labels: dict[str, str], jobs: list[str]) -> str:
    document = {"labeling_jobs": jobs, "gold_file": f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/gold.csv", "labels": labels}
    s3.put_object(Bucket=DATA_BUCKET, Key=GOLD_LABELS_KEY, Body=json.dumps(document).encode())
    return f"s3://{DATA_BUCKET}/{GOLD_LABELS_KEY}"


# --- at upload: the starter ------------------------------------------------------------------------------------------


@pytest.fixture
def starter(s3, load_handler, monkeypatch):
    """The starter Lambda over a versioned data bucket and a state machine that does nothing."""
    s3.put_bucket_versioning(Bucket=DATA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    sfn = boto3.client("stepfunctions", region_name=REGION)
    role = boto3.client("iam", region_name=REGION).create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    arn = sfn.create_state_machine(name="pipeline", definition=definition, roleArn=role["Role"]["Arn"])
    monkeypatch.setenv("STATE_MACHINE_ARN", arn["stateMachineArn"])
    return load_handler("start_run"), sfn, arn["stateMachineArn"]


def test_a_job_with_a_good_gold_file_starts(s3, starter, lambda_context):
    handler, _, _ = starter
    put(s3, f"jobs/{JOB_ID}/gold.csv", "image,label\ndesk-1.jpg,pen\n")
    version = put_job(s3, JOB_ID, CLASSIFICATION_JOB)
    assert handler.lambda_handler(object_created(f"jobs/{JOB_ID}/job.json", version), lambda_context)["started"]
    assert status(s3, JOB_ID)["status"] == "started"


@pytest.mark.parametrize(
    ("gold_file", "expected"),
    [
        ("image,label\ndesk-1.jpg,pen\ndesk-2.jpg,pencl\n", "jobs/pens-v1/gold.csv line 3: label 'pencl' is not one"),
        ("image,label\ndesk-1.jpg,pen\ndesk-1.jpg,eraser\n", "jobs/pens-v1/gold.csv line 3: image 'desk-1.jpg' has"),
        ('image,label\n"desk-1.jpg,pen\n', "jobs/pens-v1/gold.csv line 2: a value opened with a double quote"),
        (None, "jobs/pens-v1/job.json: gold_labels: jobs/pens-v1/gold.csv: no such file"),
    ],
)
def test_a_malformed_or_missing_gold_file_is_refused_at_upload_naming_file_and_line(
    s3, starter, lambda_context, gold_file, expected
):
    handler, sfn, arn = starter
    if gold_file is not None:
        put(s3, f"jobs/{JOB_ID}/gold.csv", gold_file)
    version = put_job(s3, JOB_ID, CLASSIFICATION_JOB)
    result = handler.lambda_handler(object_created(f"jobs/{JOB_ID}/job.json", version), lambda_context)
    assert result["started"] is False
    recorded = status(s3, JOB_ID)
    assert recorded["status"] == "invalid" and expected in recorded["errors"]
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []


def test_gold_for_a_box_job_is_refused_at_upload(s3, starter, lambda_context):
    handler, _, _ = starter
    put(s3, f"jobs/{JOB_ID}/gold.csv", "image,label\ndesk-1.jpg,pen\n")
    version = put_job(s3, JOB_ID, {**CLASSIFICATION_JOB, "task_type": "bounding-box"})
    handler.lambda_handler(object_created(f"jobs/{JOB_ID}/job.json", version), lambda_context)
    assert (
        "gold_labels: gold questions are supported for image-classification jobs only" in status(s3, JOB_ID)["errors"]
    )


# --- "Prepare labeling input" ----------------------------------------------------------------------------------------


def prepare_job(s3: Any, gold_file: str, images: list[str]) -> None:
    for name in images:
        s3.put_object(Bucket=DATA_BUCKET, Key=f"jobs/{JOB_ID}/images/{name}", Body=b"\xff\xd8 image")
    s3.put_object(Bucket=DATA_BUCKET, Key=f"jobs/{JOB_ID}/gold.csv", Body=gold_file.encode())
    put_prepared_job(s3, CLASSIFICATION_JOB)  # remembers the version the run's prepare step reads


def test_prepare_writes_the_runs_gold_copy_and_gold_images_look_like_the_others(s3, load_handler, lambda_context):
    prepare_job(s3, "image,label\nb.jpg,eraser\n", ["a.jpg", "b.jpg", "c.jpg"])
    output = load_handler("prepare_labeling").lambda_handler(prepare_event(), lambda_context)
    assert output["gold_labels_uri"] == f"s3://{DATA_BUCKET}/{GOLD_LABELS_KEY}"
    document = json.loads(s3.get_object(Bucket=DATA_BUCKET, Key=GOLD_LABELS_KEY)["Body"].read())
    assert document == {
        "labeling_jobs": [output["labeling_job_name"]],
        "gold_file": f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/gold.csv",
        "labels": {image_uri("b.jpg"): "eraser"},
    }
    manifest = s3.get_object(Bucket=DATA_BUCKET, Key=f"jobs/{JOB_ID}/manifests/input.manifest")["Body"].read()
    lines = [json.loads(line) for line in manifest.decode().splitlines()]
    # Workers cannot tell a gold image from the others: every line has the same keys and the same task.
    assert [line["source-ref"] for line in lines] == [image_uri(name) for name in ("a.jpg", "b.jpg", "c.jpg")]
    assert all(line.keys() == lines[0].keys() == {"source-ref", "truthflow-task"} for line in lines)
    assert all(line["truthflow-task"] == lines[0]["truthflow-task"] for line in lines)


def test_a_gold_image_that_is_not_uploaded_stops_the_preparation_naming_its_line(s3, load_handler, lambda_context):
    prepare_job(s3, "image,label\na.jpg,pen\nz.jpg,pencil\n", ["a.jpg", "b.jpg"])
    with pytest.raises(GoldFileError, match=r"jobs/pens-v1/gold.csv line 3: image 'z.jpg' is not among the job's"):
        load_handler("prepare_labeling").lambda_handler(prepare_event(), lambda_context)


# --- "Consolidate whole job" -----------------------------------------------------------------------------------------


def confused_job(s3: Any) -> tuple[dict[str, str], dict[str, str], dict[str, str], dict[str, list[tuple[str, str]]]]:
    """The confused-majority crowd of test_gold laid out as a finished labeling job: four of six workers answer the
    next class 80 % of the time. Returns truth, gold, the names of the items' images, and the answers per item."""
    items, workers, labels, truth, gold = confused_majority(n_items=120)
    by_item: dict[str, list[tuple[str, str]]] = {}
    for item, worker, label in zip(items, workers, labels, strict=True):
        by_item.setdefault(item, []).append((worker, label))
    names = {item: f"{item}.jpg" for item in truth}
    order = sorted(truth, key=lambda item: int(item[1:]))
    put_input_manifest(s3, [names[item] for item in order])
    for object_id, item in enumerate(order):
        if item in by_item:
            put_worker_response(s3, object_id, [answer(worker, category(label)) for worker, label in by_item[item]])
    return truth, gold, names, by_item


def test_whole_job_consolidation_keeps_gold_labels_scores_workers_and_turns_a_confused_majority_around(
    s3, load_handler, lambda_context
):
    truth, gold, names, by_item = confused_job(s3)
    uri = put_gold_document(s3, {image_uri(names[item]): label for item, label in gold.items()}, [JOB_NAME])
    handler = load_handler("reconsolidate")
    handler.lambda_handler(labeling_event(s3, "image-classification", ["c0", "c1", "c2"], gold_labels_uri=uri),
                           lambda_context)  # fmt: skip

    consolidated = {line["source-ref"].rsplit("/", 1)[-1]: line[f"{JOB_NAME}-metadata"] for line in manifest_lines(s3)}
    for item, label in gold.items():
        assert consolidated[names[item]]["class-name"] == label and consolidated[names[item]]["confidence"] == 1.0
    others = [item for item in by_item if item not in gold]
    right = sum(consolidated[names[item]]["class-name"] == truth[item] for item in others)
    assert right / len(others) > 0.85  # without gold the shifted majority wins (tests/test_gold.py)

    summary = quality(s3)
    assert summary["gold_questions"] == {
        "gold_file": f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/gold.csv",
        "n_gold": len(gold),
        "n_answered": sum(item in by_item for item in gold),
    }
    expected: dict[str, list[int]] = {}
    for item, label in gold.items():
        for worker, given in by_item.get(item, []):
            counts = expected.setdefault(worker, [0, 0])
            counts[0] += 1
            counts[1] += given == label
    workers = {worker["worker_id"]: worker for worker in summary["workers"]}
    assert {name: [w["gold_answers"], w["gold_correct"]] for name, w in workers.items()} == expected
    for name, worker in workers.items():
        assert worker["gold_accuracy"] == pytest.approx(expected[name][1] / expected[name][0], abs=1e-4)
    assert max(workers[f"w{n}"]["estimated_accuracy"] for n in range(4)) < 0.5 < workers["w5"]["estimated_accuracy"]


def test_a_gold_label_every_worker_contradicts_or_nobody_answered_still_stands(s3, load_handler, lambda_context):
    put_input_manifest(s3, ["0.jpg", "1.jpg", "2.jpg", "3.jpg"])
    put_worker_response(s3, 0, [answer("D", category("pen")), answer("E", category("pen"))])
    put_worker_response(s3, 1, [answer("A", {"crowd-image-classifier": {"label": "owl"}})])  # unusable
    put_worker_response(s3, 3, [answer(worker, category("pen")) for worker in "ABC"])
    gold = {image_uri("1.jpg"): "pencil", image_uri("2.jpg"): "eraser", image_uri("3.jpg"): "eraser"}
    uri = put_gold_document(s3, gold, [JOB_NAME])
    handler = load_handler("reconsolidate")
    result = handler.lambda_handler(labeling_event(s3, "image-classification", LABELS, gold_labels_uri=uri),
                                    lambda_context)  # fmt: skip
    assert (result["n_consolidated"], result["n_failed"]) == (4, 0)
    lines = manifest_lines(s3)
    # (What 0.jpg becomes is the model's call: its workers' only gold answers were wrong in the same way.)
    assert [line[f"{JOB_NAME}-metadata"]["class-name"] for line in lines[1:]] == ["pencil", "eraser", "eraser"]
    assert [line[JOB_NAME] for line in lines[1:]] == [1, 2, 2]
    summary = quality(s3)
    assert (summary["gold_questions"]["n_gold"], summary["gold_questions"]["n_answered"]) == (3, 1)
    workers = {worker["worker_id"]: worker for worker in summary["workers"]}
    assert [(workers[w]["gold_answers"], workers[w]["gold_correct"]) for w in "ABC"] == [(1, 0)] * 3


def test_a_gold_copy_of_another_run_stops_the_step_with_its_name(s3, load_handler, lambda_context):
    put_input_manifest(s3, ["0.jpg"])
    put_worker_response(s3, 0, [answer("A", category("pen"))])
    uri = put_gold_document(s3, {image_uri("0.jpg"): "pencil"}, ["tf-pens-v1-99999999"])
    handler = load_handler("reconsolidate")
    with pytest.raises(ValueError, match=r"belongs to the labeling job\(s\) tf-pens-v1-99999999, not to this run.s"):
        handler.lambda_handler(labeling_event(s3, "image-classification", LABELS, gold_labels_uri=uri), lambda_context)
    assert not any(entry["Key"].startswith(DATASET) for entry in s3.list_objects_v2(Bucket=DATA_BUCKET)["Contents"])


# --- the ACS Lambda, batch by batch ----------------------------------------------------------------------------------


def acs_batch(s3: Any) -> None:
    """Three workers call image 0 a pen and image 1 a pencil; the gold says image 0 is an eraser."""
    put_payload(
        s3,
        [
            data_object("0", [class_answer("w1", "pen"), class_answer("w2", "pen"), class_answer("w3", "pen")]),
            data_object("1", [class_answer("w1", "pencil"), class_answer("w2", "pencil"), class_answer("w3", "pen")]),
        ],
    )


def run_acs(handler: Any, lambda_context: Any) -> list[dict[str, Any]]:
    describe = _describe_labeling_job(f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/manifests/label-categories.json")
    describe["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"] = (
        f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/manifests/input.manifest"
    )
    with Stubber(handler.client("sagemaker")) as stub:
        stub.add_response("describe_labeling_job", describe, {"LabelingJobName": "pens-v1"})
        response: list[dict[str, Any]] = handler.lambda_handler(request(LABELS), lambda_context)
    return response


def labels_of(response: list[dict[str, Any]]) -> dict[str, str]:
    return {
        entry["datasetObjectId"]: entry["consolidatedAnnotation"]["content"]["pens-v1-metadata"]["class-name"]
        for entry in response
    }


def test_the_acs_finds_the_jobs_gold_and_never_overrides_a_gold_label(s3, load_handler, lambda_context, capsys):
    acs_batch(s3)
    put_gold_document(s3, {image_uri("0.jpg"): "eraser"}, ["pens-v1"])
    response = run_acs(load_handler("annotation_consolidation"), lambda_context)
    assert labels_of(response) == {"0": "eraser", "1": "pencil"}
    assert response[0]["consolidatedAnnotation"]["content"]["pens-v1-metadata"]["confidence"] == 1.0
    assert '"GoldObjects":[1.0]' in capsys.readouterr().out


@pytest.mark.parametrize(
    "document",
    [
        None,  # no gold questions in this job
        {"labeling_jobs": ["tf-pens-v1-other"], "labels": {image_uri("0.jpg"): "eraser"}},  # another run's
        "{not json",  # unreadable: consolidated without it, never raised
        {"labeling_jobs": ["pens-v1"], "labels": {image_uri("0.jpg"): "owl"}},  # a label outside the job's: ignored
    ],
)
def test_the_acs_without_usable_gold_consolidates_as_before(s3, load_handler, lambda_context, capsys, document):
    acs_batch(s3)
    if document is not None:
        body = document if isinstance(document, str) else json.dumps(document)
        s3.put_object(Bucket=DATA_BUCKET, Key=GOLD_LABELS_KEY, Body=body.encode())
    response = run_acs(load_handler("annotation_consolidation"), lambda_context)
    assert labels_of(response) == {"0": "pen", "1": "pencil"}
    assert ("GoldUnavailable" in capsys.readouterr().out) == (document == "{not json")
