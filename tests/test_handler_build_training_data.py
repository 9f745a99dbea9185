"""The training-data Lambda through ``lambda_handler``, its three calls run as the state machine runs them (plan,
every shard of the plan's list, join): consolidated manifests on emulated S3 in, every training format and what
CreateTrainingJob needs out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from emulated_aws import DATA_BUCKET
from test_handler_reconsolidate import (
    JOB_NAME,
    LABEL_CONFIG_KEY,
    answer,
    boxes,
    labeling_event,
    put_input_manifest,
    put_label_config,
    put_worker_response,
)

from truthflow.groundtruth.output_manifest import (
    LabeledBox,
    classification_annotation,
    detection_annotation,
    dump_manifest_line,
    output_manifest_line,
)
from truthflow.job_file import JobFileError

JOB_ID = "pens-v1"
TRAINING = f"jobs/{JOB_ID}/dataset/training/"
MANIFEST_KEY = f"jobs/{JOB_ID}/dataset/consolidated.manifest"
MANIFEST_URI = f"s3://{DATA_BUCKET}/{MANIFEST_KEY}"
ATTRIBUTE = "pens"
ARTIFACTS_BUCKET = "truthflow-artifacts"
LABELING_JOB_NAME = "tf-pens-v1-0a1b2c3d"


@pytest.fixture
def handler(load_handler, monkeypatch):
    monkeypatch.setenv("ARTIFACTS_BUCKET", ARTIFACTS_BUCKET)  # the stack always sets it; read at import
    return load_handler("build_training_data")


def image(index: int) -> str:
    return f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/images/{index}.jpg"


def detection_lines(count: int, *, confidence: float = 0.9) -> str:
    lines = []
    for index in range(count):
        annotation = detection_annotation(
            label_attribute_name=ATTRIBUTE,
            class_names=["pen", "pencil"],
            boxes=[
                LabeledBox("pen", 10, 20, 100, 50, confidence),
                LabeledBox("pencil", 200, 100, 40, 80, confidence),
            ][: 1 + index % 2],
            image_width=640,
            image_height=480,
            job_name="pens",
        )
        lines.append(dump_manifest_line(output_manifest_line({"source-ref": image(index)}, annotation)))
    return "".join(lines)


def classification_lines(count: int) -> str:
    return "".join(
        dump_manifest_line(
            output_manifest_line(
                {"source-ref": image(index)},
                classification_annotation(
                    label_attribute_name=ATTRIBUTE,
                    class_names=["cat", "dog"],
                    label=("cat", "dog")[index % 2],
                    confidence=0.8,
                    job_name="pets",
                ),
            )
        )
        for index in range(count)
    )


def put_manifest(s3: Any, text: str) -> None:
    s3.put_object(Bucket=DATA_BUCKET, Key=MANIFEST_KEY, Body=text.encode())


JOB_FILE: dict[str, Any] = {}  # the reference to the last job file put, as the state machine passes it


def put_job_file(s3: Any, **fields: Any) -> dict[str, Any]:
    """Put the job file and the label-category file "Prepare labeling input" writes from it."""
    job = {"task_type": "bounding-box", "labels": ["pen", "pencil"]} | fields
    put = s3.put_object(Bucket=DATA_BUCKET, Key=f"jobs/{JOB_ID}/job.json", Body=json.dumps(job).encode())
    JOB_FILE.clear()
    JOB_FILE.update(key=f"jobs/{JOB_ID}/job.json", version_id=put.get("VersionId"), etag=put["ETag"].strip('"'))
    put_label_config(s3, job["labels"])
    return dict(JOB_FILE)


def build(handler: Any, request: dict[str, Any], context: Any) -> dict[str, Any]:
    """The "Build training data" states: plan, the Distributed Map over the shard list, join."""
    planned = handler.lambda_handler({**request, "step": "plan"}, context)
    listed = handler.s3.get_object(Bucket=planned["shard_list"]["bucket"], Key=planned["shard_list"]["key"])
    for shard in json.loads(listed["Body"].read()):
        handler.lambda_handler(
            {"step": "convert", "bucket": request["bucket"], "job_id": request["job_id"],
             "plan_uri": planned["plan_uri"], "shard": shard},
            context,
        )  # fmt: skip
    result: dict[str, Any] = handler.lambda_handler({**request, "step": "join", "training_plan": planned}, context)
    return result


def event(**dataset: Any) -> dict[str, Any]:
    return {
        "bucket": DATA_BUCKET,
        "job_id": JOB_ID,
        "job_file": dict(JOB_FILE) or {"key": f"jobs/{JOB_ID}/job.json", "etag": "0" * 32},
        "labeling": {
            "labeling_job_name": LABELING_JOB_NAME,
            "label_config_uri": f"s3://{DATA_BUCKET}/{LABEL_CONFIG_KEY}",
        },
        "dataset": {"consolidated_manifest_uri": MANIFEST_URI, "label_attribute_name": ATTRIBUTE} | dataset,
    }


def keys(s3: Any) -> set[str]:
    listing = s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix=TRAINING)
    return {entry["Key"].removeprefix(TRAINING) for entry in listing.get("Contents", [])}


def read(s3: Any, path: str) -> str:
    text: str = s3.get_object(Bucket=DATA_BUCKET, Key=TRAINING + path)["Body"].read().decode()
    return text


def all_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in all_strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in all_strings(item)]
    return []


def test_detection_manifest_gives_every_format_and_the_training_job_settings(s3, handler, lambda_context):
    put_manifest(s3, detection_lines(10))
    put_job_file(s3)

    result = build(handler, event(), lambda_context)

    prefix = f"s3://{DATA_BUCKET}/{TRAINING}"
    assert result["train_manifest_uri"] == prefix + "train.manifest"
    assert result["validation_manifest_uri"] == prefix + "validation.manifest"
    assert result["summary_uri"] == prefix + "summary.json"
    assert result["training_prefix_uri"] == prefix
    assert result["attribute_names"] == ["source-ref", ATTRIBUTE]
    assert result["num_classes"] == 2
    # Every image's stratum is "pen" (its most frequent class, ties to the first name): 20% of 10 to validation.
    train = read(s3, "train.manifest").splitlines()
    validation = read(s3, "validation.manifest").splitlines()
    assert (len(train), len(validation)) == (8, 2)
    assert result["num_training_samples"] == 8
    assert result["num_validation_samples"] == 2
    assert result["label_width"] == 2 + 5 * 2
    assert result["excluded"]["boxes_excluded"] == 0
    first = json.loads(train[0])
    assert set(first) == {"source-ref", ATTRIBUTE, f"{ATTRIBUTE}-metadata"}
    written = keys(s3)
    assert {"train.lst", "validation.lst", "data.yaml", "coco/train.json", "coco/validation.json"} <= written
    assert {"images.csv", "classes.txt", "summary.json"} <= written
    assert sum(key.startswith("labels/train/") for key in written) == 8
    assert sum(key.startswith("voc/validation/") for key in written) == 2
    assert read(s3, "classes.txt") == "pen\npencil\n"
    summary = json.loads(read(s3, "summary.json"))
    assert summary["images"] == {"train": 8, "validation": 2}
    uris = [text for text in all_strings(result) if "://" in text]
    assert uris and all(uri.startswith("s3://") for uri in uris)


def test_classification_manifest_gives_augmented_manifests_and_lst(s3, handler, lambda_context):
    put_manifest(s3, classification_lines(20))
    put_job_file(
        s3, task_type="image-classification", labels=["cat", "dog"], split={"validation_fraction": 0.3, "seed": 7}
    )

    result = build(handler, event(), lambda_context)

    assert (result["num_training_samples"], result["num_validation_samples"]) == (14, 6)
    assert result["num_classes"] == 2
    # The classifier's default batch of 32 is more than the 14 training images: capped, and said so.
    assert result["training"]["hyperparameters"]["mini_batch_size"] == "14"
    assert result["training"]["hyperparameters"]["resize"] == "224"
    assert "class_names" not in result  # the labels stay in the label-category file and classes.txt
    assert keys(s3) == {
        "train.manifest",
        "validation.manifest",
        "train.lst",
        "validation.lst",
        "images.csv",
        "classes.txt",
        "summary.json",
    }
    line = json.loads(read(s3, "train.manifest").splitlines()[0])
    assert line[ATTRIBUTE] in (0, 1)


def test_exclusion_rule_comes_from_the_job_file_and_is_counted(s3, handler, lambda_context):
    put_manifest(s3, detection_lines(6, confidence=0.4))
    put_job_file(s3, exclusion={"min_confidence": 0.5, "min_box_width": 1, "min_box_height": 1})

    # Known from the plan: the run stops before any shard converts anything.
    with pytest.raises(
        ValueError,
        match=r"consolidated\.manifest: the train split is empty \(5 train images, 5 of them without a box, 1 "
        r"validation images, 9 boxes excluded \(9 boxes low confidence\), 0 unlabeled lines\)",
    ):
        build(handler, event(), lambda_context)
    assert keys(s3) == set()


def test_reconsolidated_job_flows_into_training_data_and_failed_objects_are_skipped(
    s3, load_handler, handler, lambda_context
):
    put_input_manifest(s3, [f"{index}.jpg" for index in range(6)])
    put_job_file(s3)
    for index in range(5):  # 5.jpg has no response: failed, written unlabeled, skipped here
        drawn = ("pen", 10 + index, 20, 100, 60)
        put_worker_response(s3, index, [answer("A", boxes(drawn)), answer("B", boxes(drawn))])
    request = labeling_event(s3, "bounding-box", ["pen", "pencil"])
    request["job_file"] = dict(JOB_FILE)
    request["dataset"] = load_handler("reconsolidate").lambda_handler(request, lambda_context)

    result = build(handler, request, lambda_context)

    assert result["attribute_names"] == ["source-ref", JOB_NAME]
    assert result["training"]["job_name"] == JOB_NAME
    assert result["num_classes"] == 2
    assert result["num_training_samples"] + result["num_validation_samples"] == 5
    assert json.loads(read(s3, "summary.json"))["unlabeled_lines"] == 1


def test_a_consolidated_manifest_from_the_job_file_needs_only_its_uri(s3, handler, lambda_context):
    put_manifest(s3, detection_lines(5))
    put_job_file(s3, existing_annotations={"consolidated_manifest": MANIFEST_URI})
    # What the state machine's Pass state builds from the prepare step's output.
    request = {
        "bucket": DATA_BUCKET,
        "job_id": JOB_ID,
        "job_file": dict(JOB_FILE),
        "labeling": {
            "labeling_job_name": LABELING_JOB_NAME,
            "label_config_uri": f"s3://{DATA_BUCKET}/{LABEL_CONFIG_KEY}",
            "start_at": "build",
            "existing_manifest_uri": MANIFEST_URI,
        },
        "dataset": {"consolidated_manifest_uri": MANIFEST_URI},
    }

    result = build(handler, request, lambda_context)

    assert result["attribute_names"] == ["source-ref", ATTRIBUTE]
    assert result["num_classes"] == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no labeled images"),
        (f'{{"source-ref": "s3://{DATA_BUCKET}/jobs/{JOB_ID}/images/1.jpg"}}\n', "no labeled images"),
        ("garbage\n", "line 1: not valid JSON"),
    ],
)
def test_an_empty_or_garbage_manifest_is_a_clear_error(s3, handler, lambda_context, text, message):
    put_manifest(s3, text)
    put_job_file(s3)

    with pytest.raises(ValueError, match=rf"{MANIFEST_URI}: cannot build training data: .*{message}"):
        build(handler, event(label_attribute_name=None), lambda_context)


def test_a_job_file_with_an_unknown_key_is_refused(s3, handler, lambda_context):
    put_manifest(s3, detection_lines(5))
    put_job_file(s3, split={"validation_fracton": 0.1})

    with pytest.raises(JobFileError, match=rf"jobs/{JOB_ID}/job\.json: split\.validation_fracton: unknown field"):
        build(handler, event(), lambda_context)


def test_a_missing_job_file_is_a_clear_error(s3, handler, lambda_context):
    put_manifest(s3, detection_lines(5))
    JOB_FILE.clear()

    with pytest.raises(JobFileError, match=rf"jobs/{JOB_ID}/job\.json: not found"):
        build(handler, event(), lambda_context)
    assert keys(s3) == set()


def test_settings_come_from_the_job_file_and_training_is_configured(s3, handler, lambda_context):
    put_manifest(s3, detection_lines(10))
    put_job_file(s3, split={"validation_fraction": 0.5, "seed": 3})

    result = build(handler, event(), lambda_context)

    assert (result["num_training_samples"], result["num_validation_samples"]) == (5, 5)
    training = result["training"]
    assert training["job_name"] == LABELING_JOB_NAME
    assert training["output_path_uri"] == f"s3://{ARTIFACTS_BUCKET}/training/{JOB_ID}/"
    assert training["hyperparameters"]["num_classes"] == "2"
    assert training["hyperparameters"]["num_training_samples"] == "5"
    assert int(training["hyperparameters"]["label_width"]) >= result["label_width"]
    uris = [text for text in all_strings(result) if "://" in text and not text.startswith("arn:")]
    assert all(uri.startswith("s3://") for uri in uris)


def test_a_replaced_job_file_is_not_read_in_its_place(s3, handler, lambda_context):
    put_manifest(s3, detection_lines(10))
    started_with = put_job_file(s3, split={"validation_fraction": 0.5, "seed": 3})
    put_job_file(s3, split={"validation_fraction": 0.1, "seed": 3})  # uploaded while the run was labeling
    request = event() | {"job_file": started_with}

    with pytest.raises(JobFileError, match=rf"jobs/{JOB_ID}/job\.json: was replaced after this run started"):
        build(handler, request, lambda_context)
    assert keys(s3) == set()


def test_a_manifest_of_another_job_is_refused(s3, handler, lambda_context):
    put_job_file(s3)
    other = f"s3://{DATA_BUCKET}/jobs/other-job/dataset/consolidated.manifest"
    with pytest.raises(ValueError, match=rf"'{other}' is outside this job"):
        build(handler, event(consolidated_manifest_uri=other), lambda_context)


def test_an_image_of_another_job_in_the_manifest_is_refused_naming_the_line(s3, handler, lambda_context):
    foreign = detection_lines(2).replace(f"jobs/{JOB_ID}/images/1.jpg", "jobs/other-job/images/1.jpg")
    put_manifest(s3, detection_lines(3) + foreign)
    put_job_file(s3)
    with pytest.raises(ValueError, match=rf"{MANIFEST_URI} line 5: source-ref 's3://{DATA_BUCKET}/jobs/other-job/"):
        build(handler, event(), lambda_context)
