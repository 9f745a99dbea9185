"""The prepare step through ``lambda_handler`` on emulated S3, and its pure core (``truthflow.labeling_input``)."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from emulated_aws import DATA_BUCKET, load_event
from pydantic import ValidationError

from truthflow.groundtruth.label_config import parse_label_category_config
from truthflow.job_file import JobFileError, parse_job_file
from truthflow.labeling_input import (
    ImageListingError,
    JobPaths,
    labeling_job_name,
    prepare_labeling_input,
    select_images,
)

JOB_ID = "pens-v1"
RUN_ID = "pens-v1-2024-06-01T10-00-00"
OUTPUT_KEYS = {
    "labeling_job_name",
    "label_attribute_name",
    "task_type",
    "n_objects",
    "input_manifest_uri",
    "label_config_uri",
    "ui_template_uri",
    "output_path_uri",
    "workers_per_object",
    "task_title",
    "task_description",
    "task_time_limit_seconds",
    "task_availability_lifetime_seconds",
    "max_concurrent_task_count",
    "automated",
    "start_at",
    "existing_manifest_uri",
    "annotations_uri",
    "gold_labels_uri",
}
# A run that fails, or that starts from existing annotations, lists no images and so publishes no metric.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
GROUND_TRUTH_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


JOB_FILES: dict[str, dict[str, Any]] = {}  # job id -> the job file version the run "started" with


def event(job_id: str = JOB_ID, run_id: str = RUN_ID) -> dict[str, Any]:
    job_file = JOB_FILES.get(job_id) or {"key": f"jobs/{job_id}/job.json", "version_id": None, "etag": "0" * 32}
    return {"bucket": DATA_BUCKET, "job_id": job_id, "run_id": run_id, "job_file": job_file}


def put(s3: Any, key: str, body: bytes | str = b"\xff\xd8 image bytes") -> None:
    s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)


def put_job(s3: Any, job: dict[str, Any] | str, job_id: str = JOB_ID) -> None:
    text = job if isinstance(job, str) else json.dumps(job)
    response = s3.put_object(Bucket=DATA_BUCKET, Key=f"jobs/{job_id}/job.json", Body=text.encode())
    JOB_FILES[job_id] = {
        "key": f"jobs/{job_id}/job.json",
        "version_id": response.get("VersionId"),
        "etag": response["ETag"].strip('"'),
    }


@pytest.fixture(autouse=True)
def _forget_job_files():
    JOB_FILES.clear()


def put_many(s3: Any, keys: list[str], body: bytes = b"\xff\xd8 image bytes") -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda key: put(s3, key, body), keys))


def read(s3: Any, key: str) -> str:
    return s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read().decode("utf-8")


def keys_under(s3: Any, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=DATA_BUCKET, Prefix=prefix)
    return sorted(entry["Key"] for page in pages for entry in page.get("Contents", []))


# --- a full labeling run ----------------------------------------------------------------------------------------------


def test_bounding_box_job_with_2500_images_writes_the_three_files(s3, load_handler, lambda_context, capsys):
    job = load_event("job_bounding_box.json")
    put_job(s3, job)
    prefix = f"jobs/{JOB_ID}/images/"
    extensions = [".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".Png"]
    images = [f"{prefix}batch-{i // 500}/img-{i:05d}{extensions[i % len(extensions)]}" for i in range(2_490)]
    awkward = [
        f"{prefix}desk 01.jpg",  # a space (S3 event keys would show it as '+')
        f"{prefix}pen+pencil.png",  # a literal plus
        f"{prefix}100%25 cotton.jpeg",  # a literal '%25', not to be decoded
        f"{prefix}caf\u00e9/cr\u00e8me.jpg",  # non-ASCII
        f"{prefix}a&b=c?.png",
        f"{prefix}deep/er/still.JPG",
        f"{prefix}x.jpg.jpg",
        f"{prefix}UPPER.JPEG",
        f"{prefix}#hash.jpg",
        f"{prefix}tab\u00a0nbsp.png",
    ]
    not_images = [
        f"{prefix}notes.txt",
        f"{prefix}img.jpg.bak",
        f"{prefix}photo.gif",
        f"{prefix}raw.heic",
        f"{prefix}sub/",
    ]
    empty = [f"{prefix}empty.jpg", f"{prefix}zero.PNG"]
    put_many(s3, images + awkward + not_images[:-1])
    put(s3, not_images[-1], b"")  # a "folder" marker
    for key in empty:
        put(s3, key, b"")
    put(s3, f"jobs/{JOB_ID}/elsewhere.jpg")  # outside images/: not listed
    put(s3, "jobs/pens-v10/images/other-job.jpg")  # another job sharing the id as a prefix

    handler = load_handler("prepare_labeling")
    output = handler.lambda_handler(event(), lambda_context)

    expected_keys = sorted(images + awkward)
    assert len(expected_keys) == 2_500
    assert set(output) == OUTPUT_KEYS
    assert output["n_objects"] == 2_500

    manifest = read(s3, f"jobs/{JOB_ID}/manifests/input.manifest")
    assert manifest.endswith("\n") and manifest.count("\n") == 2_500
    task = {"task_type": "bounding-box", "labels": job["labels"], "header": job["instructions"]["header"]}
    assert [json.loads(line) for line in manifest.splitlines()] == [
        {"source-ref": f"s3://{DATA_BUCKET}/{key}", "truthflow-task": task} for key in expected_keys
    ]
    assert manifest.splitlines()[0] == json.dumps(
        {"source-ref": f"s3://{DATA_BUCKET}/{expected_keys[0]}", "truthflow-task": task},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert f'"s3://{DATA_BUCKET}/{prefix}desk 01.jpg"' in manifest
    assert f'"s3://{DATA_BUCKET}/{prefix}100%25 cotton.jpeg"' in manifest
    assert f'"s3://{DATA_BUCKET}/{prefix}caf\u00e9/cr\u00e8me.jpg"' in manifest

    assert json.loads(read(s3, f"jobs/{JOB_ID}/manifests/label-categories.json")) == {
        "document-version": "2018-11-28",
        "labels": [{"label": "pen"}, {"label": "pencil"}, {"label": "marker"}],
        "instructions": {
            "shortInstruction": job["instructions"]["short"],
            "fullInstruction": job["instructions"]["full"],
        },
    }
    template = read(s3, f"jobs/{JOB_ID}/manifests/worker-template.liquid.html")
    assert "<crowd-bounding-box" in template and 'name="boundingBox"' in template
    assert "{{ task.input.taskObject | grant_read_access }}" in template
    assert "Draw a box around each pen, pencil and marker." in template
    assert "cap and clip included" in template

    assert keys_under(s3, f"jobs/{JOB_ID}/manifests/") == [
        f"jobs/{JOB_ID}/manifests/input.manifest",
        f"jobs/{JOB_ID}/manifests/label-categories.json",
        f"jobs/{JOB_ID}/manifests/worker-template.liquid.html",
    ]
    head = s3.head_object(Bucket=DATA_BUCKET, Key=f"jobs/{JOB_ID}/manifests/worker-template.liquid.html")
    assert head["ContentType"].startswith("text/html")

    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(entry.get("ImagesListed") == [2_500.0] or entry.get("ImagesListed") == 2_500.0 for entry in metrics)


def test_state_output_holds_the_labeling_settings_as_s3_uris(s3, load_handler, lambda_context):
    job = load_event("job_bounding_box.json")
    put_job(s3, job)
    put(s3, f"jobs/{JOB_ID}/images/a.jpg")
    output = load_handler("prepare_labeling").lambda_handler(event(), lambda_context)
    name = output["labeling_job_name"]
    assert output == {
        "labeling_job_name": name,
        "label_attribute_name": name,
        "task_type": "bounding-box",
        "n_objects": 1,
        "input_manifest_uri": f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/manifests/input.manifest",
        "label_config_uri": f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/manifests/label-categories.json",
        "ui_template_uri": f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/manifests/worker-template.liquid.html",
        "output_path_uri": f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/labeling/",
        "workers_per_object": 3,
        "task_title": job["task_title"],
        "task_description": job["task_description"],
        "task_time_limit_seconds": 300,
        "task_availability_lifetime_seconds": 864_000,
        "max_concurrent_task_count": 1_000,
        "automated": None,
        "start_at": "label",
        "existing_manifest_uri": None,
        "annotations_uri": None,
        "gold_labels_uri": None,
    }
    assert json.loads(json.dumps(output)) == output
    assert name.startswith(f"tf-{JOB_ID}-") and not name.endswith("-metadata")


def test_classification_job_writes_the_classifier_template(s3, load_handler, lambda_context):
    job = load_event("job_image_classification.json")
    put_job(s3, job, job_id="fruit-v1")
    put_many(s3, [f"jobs/fruit-v1/images/{name}" for name in ("b.png", "a.jpg", "c.jpeg")])
    output = load_handler("prepare_labeling").lambda_handler(event("fruit-v1"), lambda_context)
    assert (output["task_type"], output["n_objects"], output["workers_per_object"]) == ("image-classification", 3, 5)
    assert output["task_time_limit_seconds"] == 120 and output["max_concurrent_task_count"] == 500
    template = read(s3, "jobs/fruit-v1/manifests/worker-template.liquid.html")
    assert "<crowd-image-classifier" in template and 'name="crowd-image-classifier"' in template
    config = parse_label_category_config(read(s3, "jobs/fruit-v1/manifests/label-categories.json"))
    assert config.label_names == ["apple", "banana", "orange"]
    lines = [json.loads(line) for line in read(s3, "jobs/fruit-v1/manifests/input.manifest").splitlines()]
    assert [line["source-ref"].rsplit("/", 1)[1] for line in lines] == ["a.jpg", "b.png", "c.jpeg"]
    assert lines[0]["truthflow-task"]["task_type"] == "image-classification"


def test_labeling_job_name_is_stable_per_run_and_new_per_run(s3, load_handler, lambda_context):
    put_job(s3, {"task_type": "bounding-box", "labels": ["pen"]})
    put(s3, f"jobs/{JOB_ID}/images/a.jpg")
    handler = load_handler("prepare_labeling")
    first = handler.lambda_handler(event(), lambda_context)
    again = handler.lambda_handler(event(), lambda_context)
    other = handler.lambda_handler(event(run_id="pens-v1-2024-06-02T09-00-00"), lambda_context)
    assert first == again
    assert other["labeling_job_name"] != first["labeling_job_name"]
    assert other["input_manifest_uri"] == first["input_manifest_uri"]


# --- failures the state machine reports -------------------------------------------------------------------------------


def test_invalid_job_file_raises_job_file_error_naming_file_and_field(s3, load_handler, lambda_context):
    put_job(s3, {"task_type": "image-classification", "labels": ["pen"], "workers_per_object": 12})
    put(s3, f"jobs/{JOB_ID}/images/a.jpg")
    with pytest.raises(JobFileError) as caught:
        load_handler("prepare_labeling").lambda_handler(event(), lambda_context)
    lines = str(caught.value).splitlines()
    assert "jobs/pens-v1/job.json: workers_per_object: must be between 1 and 9 (got 12)" in lines
    assert any(line.startswith("jobs/pens-v1/job.json: labels: ") for line in lines)
    assert keys_under(s3, f"jobs/{JOB_ID}/manifests/") == []


def test_malformed_job_json_raises_job_file_error(s3, load_handler, lambda_context):
    put_job(s3, '{"task_type": "bounding-box", "labels": ["pen"]')
    with pytest.raises(JobFileError, match=r"^jobs/pens-v1/job.json: is not valid JSON"):
        load_handler("prepare_labeling").lambda_handler(event(), lambda_context)


def test_missing_job_file_is_reported_as_such(s3, load_handler, lambda_context):
    expected = r"^jobs/pens-v1/job.json: not found: it was deleted after this run started$"
    with pytest.raises(JobFileError, match=expected):
        load_handler("prepare_labeling").lambda_handler(event(), lambda_context)


def test_no_images_is_a_clear_error(s3, load_handler, lambda_context):
    put_job(s3, {"task_type": "bounding-box", "labels": ["pen"]})
    put(s3, f"jobs/{JOB_ID}/images/readme.txt")
    put(s3, f"jobs/{JOB_ID}/images/empty.jpg", b"")
    with pytest.raises(ImageListingError) as caught:
        load_handler("prepare_labeling").lambda_handler(event(), lambda_context)
    message = str(caught.value)
    assert message.startswith(f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/images/: no images to label")
    assert "skipped 1 other and 1 empty objects" in message
    assert keys_under(s3, f"jobs/{JOB_ID}/manifests/") == []


GOOD_JOB_FILE = {"key": f"jobs/{JOB_ID}/job.json", "version_id": "v1", "etag": None}


@pytest.mark.parametrize(
    "bad",
    [
        {"bucket": DATA_BUCKET, "job_id": "pens_v1", "run_id": RUN_ID, "job_file": GOOD_JOB_FILE},
        {"bucket": DATA_BUCKET, "job_id": JOB_ID, "run_id": "", "job_file": GOOD_JOB_FILE},
        {"bucket": f"s3://{DATA_BUCKET}", "job_id": JOB_ID, "run_id": RUN_ID, "job_file": GOOD_JOB_FILE},
        {"bucket": DATA_BUCKET, "job_id": JOB_ID, "job_file": GOOD_JOB_FILE},
        {"bucket": DATA_BUCKET, "job_id": JOB_ID, "run_id": RUN_ID, "job_file": GOOD_JOB_FILE, "extra": 1},
        {"bucket": DATA_BUCKET, "job_id": JOB_ID, "run_id": RUN_ID},
        {"bucket": DATA_BUCKET, "job_id": JOB_ID, "run_id": RUN_ID, "job_file": {"key": "jobs/pens-v1/job.json"}},
        {
            "bucket": DATA_BUCKET,
            "job_id": JOB_ID,
            "run_id": RUN_ID,
            "job_file": {"key": "jobs/other-job/job.json", "version_id": "v1"},
        },
    ],
)
def test_malformed_state_machine_input_is_rejected(s3, load_handler, lambda_context, bad):
    with pytest.raises(ValidationError):
        load_handler("prepare_labeling").lambda_handler(bad, lambda_context)


# --- bring your own annotations ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "start_at"),
    [
        ({"output_manifest": "s3://truthflow-data/jobs/pens-v1/imports/gt/output.manifest"}, "consolidate"),
        ({"consolidated_manifest": "s3://truthflow-data/jobs/pens-v1/imports/consolidated.manifest"}, "build"),
    ],
)
def test_existing_annotations_skip_the_images_and_the_labeling_files(
    s3, load_handler, lambda_context, existing, start_at
):
    put_job(s3, {"task_type": "bounding-box", "labels": ["pen", "pencil"], "existing_annotations": existing})
    # No images at all: with existing annotations that is no error.
    output = load_handler("prepare_labeling").lambda_handler(event(), lambda_context)
    assert set(output) == OUTPUT_KEYS
    assert output["start_at"] == start_at
    assert output["existing_manifest_uri"] == next(iter(existing.values()))
    assert output["n_objects"] is None
    assert output["input_manifest_uri"] is None and output["ui_template_uri"] is None
    assert output["label_config_uri"] == f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/manifests/label-categories.json"
    # The label order is still recorded: it fixes the class ids of the later stages.
    assert keys_under(s3, f"jobs/{JOB_ID}/manifests/") == [f"jobs/{JOB_ID}/manifests/label-categories.json"]


# --- the pure core ----------------------------------------------------------------------------------------------------


def test_select_images_filters_by_extension_and_size_and_sorts():
    selection = select_images(
        [
            ("p/b.PNG", 10),
            ("p/a.jpeg", 1),
            ("p/c.Jpg", 5),
            ("p/notes.txt", 5),
            ("p/empty.jpg", 0),
            ("p/", 0),
            ("p/jpg", 4),
            ("p/image.jpg.txt", 4),
        ]
    )
    assert selection.keys == ["p/a.jpeg", "p/b.PNG", "p/c.Jpg"]
    assert (selection.skipped_not_images, selection.skipped_empty) == (4, 1)


def test_labeling_job_name_fits_ground_truth_rules():
    longest = "a" * 40
    name = labeling_job_name(longest, "x" * 80)
    assert len(name) == 52 and GROUND_TRUTH_NAME.fullmatch(name)
    assert name == name.lower()
    with pytest.raises(ValueError, match=r"has upper-case letters; use 'pens-v1'"):
        labeling_job_name("Pens-v1", RUN_ID)
    assert labeling_job_name("pens-v1", RUN_ID) == labeling_job_name("pens-v1", RUN_ID)
    assert re.fullmatch(r"tf-pens-v1-[0-9a-f]{8}", labeling_job_name("pens-v1", RUN_ID))
    with pytest.raises(ValueError, match="letters, digits and hyphens"):
        labeling_job_name("pens_v1", RUN_ID)


def test_more_images_than_one_labeling_job_takes_is_an_error():
    job = parse_job_file('{"task_type": "bounding-box", "labels": ["pen"]}', source="jobs/big/job.json")
    listing = ((f"jobs/big/images/{i:06d}.jpg", 100) for i in range(100_001))
    with pytest.raises(ImageListingError, match="100,001 images; a labeling job takes at most 100,000"):
        prepare_labeling_input(job, paths=JobPaths("b", "big"), run_id="r", objects=listing)


# --- automated labeling -------------------------------------------------------------------------------------------


def test_automated_labeling_labels_a_first_batch_and_plans_the_transform_jobs(s3, load_handler, lambda_context):
    job = {**load_event("job_bounding_box.json"), "automated_labeling": {"target": 0.6, "initial_fraction": 0.2}}
    put_job(s3, job)
    names = [f"img-{index:03d}.{'png' if index % 5 == 0 else 'jpg'}" for index in range(600)]
    put_many(s3, [f"jobs/{JOB_ID}/images/{name}" for name in names])
    output = load_handler("prepare_labeling").lambda_handler(event(), lambda_context)
    assert output["start_at"] == "automated" and output["n_objects"] == 600
    automated = output["automated"]
    assert (automated["n_first_batch"], automated["n_calibration"], automated["n_remaining"]) == (120, 60, 480)
    assert automated["model_name"] == automated["bootstrap_job_name"] == output["labeling_job_name"] + "-boot"
    assert automated["bootstrap"] is True
    # The first batch is the yardstick: 5 people per image unless the job says otherwise; the rest the job's 3.
    assert output["workers_per_object"] == automated["first_batch_workers_per_object"] == 5
    assert automated["workers_per_object"] == 3
    first = read(s3, f"jobs/{JOB_ID}/manifests/input.manifest").splitlines()
    assert len(first) == 120 and all(json.loads(line)["truthflow-task"]["labels"] == job["labels"] for line in first)
    plan = json.loads(read(s3, f"jobs/{JOB_ID}/manifests/automated-labeling-plan.json"))
    assert {json.loads(line)["source-ref"] for line in first} == set(plan["first_batch"])
    # Boxes: one transform job per image format, predicting calibration, remaining and the first batch's training
    # images (where the detector's score threshold is chosen).
    batches = {batch["content_type"]: batch for batch in automated["transform_batches"]}
    assert set(batches) == {"image/jpeg", "image/png"}
    predicted: list[str] = []
    for batch in batches.values():
        assert GROUND_TRUTH_NAME.fullmatch(batch["job_name"]) and len(batch["job_name"]) <= 63
        manifest = json.loads(read(s3, batch["manifest_uri"].removeprefix(f"s3://{DATA_BUCKET}/")))
        assert manifest[0] == {"prefix": f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/images/"}
        predicted += manifest[1:]
        assert batch["n_images"] == len(manifest) - 1
    assert sorted(predicted) == sorted(names)


def test_classification_transform_predicts_calibration_and_remaining_images_only(s3, load_handler, lambda_context):
    job = {**load_event("job_image_classification.json"), "automated_labeling": True}
    put_job(s3, job)
    put_many(s3, [f"jobs/{JOB_ID}/images/{index:04d}.jpg" for index in range(1000)])
    automated = load_handler("prepare_labeling").lambda_handler(event(), lambda_context)["automated"]
    # Target 0.95 needs 59 images for a perfect record: twice that, at half the first batch.
    assert (automated["n_first_batch"], automated["n_calibration"]) == (236, 118)
    [batch] = automated["transform_batches"]
    assert batch["content_type"] == "application/x-image" and batch["n_images"] == 118 + 764


def test_automated_labeling_of_too_few_images_labels_them_all_with_people(s3, load_handler, lambda_context):
    put_job(s3, {**load_event("job_bounding_box.json"), "automated_labeling": True})
    put_many(s3, [f"jobs/{JOB_ID}/images/{index:02d}.jpg" for index in range(80)])
    output = load_handler("prepare_labeling").lambda_handler(event(), lambda_context)
    assert output["start_at"] == "label" and output["automated"] is None
    assert len(read(s3, f"jobs/{JOB_ID}/manifests/input.manifest").splitlines()) == 80
    plan = json.loads(read(s3, f"jobs/{JOB_ID}/manifests/automated-labeling-plan.json"))
    assert "all 80 images go to people" in plan["note"]
