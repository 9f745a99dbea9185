"""A job that brings tool exports (job.json ``annotations``), through the real handlers on emulated S3: "Prepare
labeling input" lists the exports, "Consolidate whole job" reads them with every reader (fixtures shaped exactly like
the tools' exports, ``tests/exports/``), matches their images to ``jobs/<id>/images/`` and consolidates; everything
it cannot use is listed in ``quality.json``, the step's output and ``status.json``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from emulated_aws import DATA_BUCKET
from PIL import Image

from truthflow.export_consolidation import image_folder
from truthflow.labeling_input import labeling_job_name

JOB_ID = "desk-v1"
RUN_ID = f"{JOB_ID}-0123456789abcdef"
EXPORTS = Path(__file__).parent / "exports"
DESK = [f"desk_0{index}.jpg" for index in range(1, 5)]
PHOTOS = [f"photo_0{index}.jpg" for index in range(1, 5)]
BOX_LABELS = ["pen", "pencil", "eraser"]
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def image(width: int, height: int, image_format: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (190, 170, 140)).save(buffer, format=image_format)
    return buffer.getvalue()


def export(name: str) -> bytes:
    return (EXPORTS / name).read_bytes()


def put(s3: Any, key: str, body: bytes | str) -> Any:
    return s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)


def read(s3: Any, key: str) -> str:
    return s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read().decode("utf-8")


def run_import(
    s3: Any,
    load_handler: Any,
    context: Any,
    *,
    exports: dict[str, bytes],
    images: dict[str, bytes],
    task_type: str = "bounding-box",
    labels: list[str] | None = None,
    export_format: str | None = None,
) -> dict[str, Any]:
    """Upload images, exports and job.json, then run the two steps as the state machine does."""
    for name, data in images.items():
        put(s3, f"jobs/{JOB_ID}/images/{name}", data)
    for path, data in exports.items():
        put(s3, f"jobs/{JOB_ID}/{path}", data)
    section: dict[str, Any] = {"files": list(exports)}
    if export_format is not None:
        section["format"] = export_format
    job = {"task_type": task_type, "labels": labels or BOX_LABELS, "annotations": section}
    uploaded = put(s3, f"jobs/{JOB_ID}/job.json", json.dumps(job))
    job_file = {
        "key": f"jobs/{JOB_ID}/job.json",
        "version_id": uploaded.get("VersionId"),
        "etag": uploaded["ETag"].strip('"'),
    }
    prepared = load_handler("prepare_labeling").lambda_handler(
        {"bucket": DATA_BUCKET, "job_id": JOB_ID, "run_id": RUN_ID, "job_file": job_file}, context
    )
    return load_handler("reconsolidate").lambda_handler(
        {"bucket": DATA_BUCKET, "job_id": JOB_ID, "labeling": prepared}, context
    )


def quality(s3: Any) -> dict[str, Any]:
    return json.loads(read(s3, f"jobs/{JOB_ID}/dataset/quality.json"))


def manifest(s3: Any) -> dict[str, dict[str, Any]]:
    """image file name -> its consolidated manifest line."""
    lines = [json.loads(line) for line in read(s3, f"jobs/{JOB_ID}/dataset/consolidated.manifest").splitlines()]
    return {line["source-ref"].rsplit("/", 1)[-1]: line for line in lines}


def label_of(line: dict[str, Any]) -> Any:
    attribute = next(key for key in line if key.endswith("-metadata"))[: -len("-metadata")]
    return line[attribute]


def class_names(s3: Any) -> dict[str, str | None]:
    """image file name -> its consolidated class (None when it has no label)."""
    found = {}
    for name, line in manifest(s3).items():
        metadata = next(value for key, value in line.items() if key.endswith("-metadata"))
        found[name] = metadata.get("class-name")
    return found


def boxes_of(s3: Any) -> dict[str, list[dict[str, str]]]:
    """consolidated.csv rows per image."""
    rows = csv.DictReader(io.StringIO(read(s3, f"jobs/{JOB_ID}/dataset/consolidated.csv")))
    found: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        found.setdefault(row["img_file"], []).append(row)
    return found


def near(row: dict[str, str], left: float, top: float, width: float, height: float, tolerance: float = 4) -> bool:
    values = [float(row[name]) for name in ("box_left", "box_top", "box_width", "box_height")]
    return all(
        abs(value - wanted) <= tolerance for value, wanted in zip(values, (left, top, width, height), strict=True)
    )


# --- every reader through the pipeline -------------------------------------------------------------------------------

BOX_IMAGES = {name: image(1280, 960) for name in DESK}
CLASS_IMAGES = {name: image(640, 480) for name in PHOTOS}


@pytest.mark.parametrize(
    ("fixture", "file_format", "annotators", "answered"),
    [
        ("label_studio_boxes.json", "label-studio JSON", 3, DESK[:3]),
        ("label_studio_boxes_min.json", "label-studio JSON_MIN", 3, DESK[:3]),
        ("label_studio_boxes.csv", "label-studio CSV", 3, DESK[:3]),
        ("cvat_task.xml", "cvat", 1, DESK[:3]),
        ("cvat_job_dana.xml", "cvat", 1, DESK[:3]),
        ("coco_erin.json", "coco", 1, DESK[:3]),
        ("groundtruth_output.manifest", "groundtruth", 1, DESK[:3]),
    ],
)
def test_each_box_export_reaches_the_consolidated_dataset(
    s3, load_handler, lambda_context, fixture, file_format, annotators, answered
):
    output = run_import(
        s3, load_handler, lambda_context, exports={f"annotations/{fixture}": export(fixture)}, images=BOX_IMAGES
    )
    summary = quality(s3)
    [read_file] = summary["import"]["files"]
    assert read_file["file"] == f"annotations/{fixture}" and read_file["format"].startswith(file_format)
    assert summary["source"] == "annotation-exports" and summary["import"]["annotators"] == annotators
    assert summary["n_workers"] == annotators
    assert all(
        worker["worker_id"].startswith(f"annotations/{fixture}") or "@" in worker["worker_id"]
        for worker in summary["workers"]
    )
    lines = manifest(s3)
    assert sorted(lines) == DESK  # every image of the folder once, answered or not
    assert {name for name, line in lines.items() if label_of(line) is not None} == set(answered)
    assert output["n_consolidated"] == len(answered) and output["n_failed"] == len(DESK) - len(answered)
    assert output["import"]["images_answered"] == len(answered)
    # Every export holds a pen box at about (100, 200, 300 x 60) on desk_01.
    assert any(row["category"] == "pen" and near(row, 100, 200, 300, 60) for row in boxes_of(s3)["desk_01.jpg"])


@pytest.mark.parametrize(
    ("fixture", "file_format"),
    [
        ("label_studio_classes.json", "label-studio JSON"),
        ("label_studio_classes.csv", "label-studio CSV"),
        ("cvat_job_tags.xml", "cvat"),
    ],
)
def test_each_class_export_reaches_the_consolidated_dataset(s3, load_handler, lambda_context, fixture, file_format):
    run_import(
        s3,
        load_handler,
        lambda_context,
        exports={f"annotations/{fixture}": export(fixture)},
        images=CLASS_IMAGES,
        task_type="image-classification",
    )
    summary = quality(s3)
    assert summary["import"]["files"][0]["format"].startswith(file_format)
    names = class_names(s3)
    assert sorted(names) == PHOTOS
    assert names["photo_02.jpg"] == "pencil"  # every annotator of every export says so


def test_several_exports_are_several_annotators_of_one_consensus(s3, load_handler, lambda_context):
    files = {
        "annotations/ls/project-3.json": export("label_studio_boxes.json"),
        "annotations/cvat/job_7.xml": export("cvat_job_dana.xml"),
        "annotations/coco/instances_default.json": export("coco_erin.json"),
        "annotations/gt/output.manifest": export("groundtruth_output.manifest"),
    }
    output = run_import(s3, load_handler, lambda_context, exports=files, images=BOX_IMAGES, labels=["pen", "pencil"])
    summary = quality(s3)
    workers = {worker["worker_id"] for worker in summary["workers"]}
    assert workers == {
        "annotations/ls/project-3.json#1",
        "annotations/ls/project-3.json#2",
        "annotations/ls/project-3.json#3",
        "dana@example.com",
        "annotations/coco/instances_default.json",
        "annotations/gt/output.manifest",
    }
    assert output["import"]["annotators"] == 6 and output["import"]["files"] == 4
    # The job's labels are pen and pencil: every eraser answer is reported, none invented.
    assert summary["import"]["unknown_labels"]["eraser"] >= 4
    assert "labels not in the job's label list: 'eraser'" in output["import"]["message"]
    desk_01 = boxes_of(s3)["desk_01.jpg"]
    assert sorted(row["category"] for row in desk_01) == ["pen", "pencil"]
    # Worker skill is fitted over every file at once: each annotator has an estimate in quality.json.
    assert all(worker["estimated_accuracy"] is not None for worker in summary["workers"])


def test_class_exports_of_two_tools_are_consolidated_together(s3, load_handler, lambda_context):
    files = {
        "annotations/ls.json": export("label_studio_classes.json"),
        "annotations/tags.xml": export("cvat_job_tags.xml"),
    }
    output = run_import(
        s3, load_handler, lambda_context, exports=files, images=CLASS_IMAGES, task_type="image-classification"
    )
    names = class_names(s3)
    assert (names["photo_01.jpg"], names["photo_02.jpg"], names["photo_03.jpg"]) == ("pen", "pencil", "eraser")
    # Ben's answer with two choices is refused and named (file, task, annotation, field), the others are used.
    problems = quality(s3)["import"]["problems"]
    assert any(p.startswith("annotations/ls.json task 4 annotation") and "several choices" in p for p in problems)
    assert output["import"]["problems"] == 1 and "refused" in output["import"]["message"]
    assert quality(s3)["import"]["files"][0]["cancelled_annotations"] == 1


# --- what cannot be used is listed, never dropped silently ---------------------------------------------------------


def test_images_not_found_and_labels_not_in_the_list_are_reported_in_quality_output_and_status(
    s3, load_handler, lambda_context
):
    started = f"arn:aws:states:us-east-1:123456789012:execution:truthflow-pipeline:{RUN_ID}"
    put(s3, f"jobs/{JOB_ID}/status.json", json.dumps({"status": "started", "execution_arn": started}))
    images = {name: data for name, data in BOX_IMAGES.items() if name != "desk_03.jpg"}
    output = run_import(
        s3,
        load_handler,
        lambda_context,
        exports={"annotations/ls.json": export("label_studio_boxes.json")},
        images=images,
        labels=["pen", "pencil"],
    )
    found = quality(s3)["import"]
    assert found["unmatched_images"] == {"desk_03.jpg": "/data/upload/3/0f1e2d3c-desk_03.jpg"}
    assert found["n_unmatched_images"] == 1 and found["images_in_folder"] == 3
    assert found["unknown_labels"] == {"eraser": 3}  # the three annotators' boxes on desk_02
    step = output["import"]
    assert (step["unmatched_images"], step["unmatched_examples"]) == (1, ["desk_03.jpg"])
    assert step["unknown_labels"] == {"eraser": 3}
    assert "1 image(s) the exports name are not in images/ (desk_03.jpg)" in step["message"]
    assert "labels not in the job's label list: 'eraser' (3)" in step["message"]
    assert step["message"].endswith(f"Details: s3://{DATA_BUCKET}/jobs/{JOB_ID}/dataset/quality.json")
    status = json.loads(read(s3, f"jobs/{JOB_ID}/status.json"))
    assert status["status"] == "started" and status["execution_arn"] == started  # the starter's fields are kept
    assert status["import"]["unmatched_examples"] == ["desk_03.jpg"] and status["import"]["message"] == step["message"]
    assert step["status_file"] == f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/status.json updated"


def test_a_status_file_of_a_later_run_is_left_alone(s3, load_handler, lambda_context):
    later = f"arn:aws:states:us-east-1:123456789012:execution:truthflow-pipeline:{JOB_ID}-fedcba9876543210"
    assert labeling_job_name(JOB_ID, f"{JOB_ID}-fedcba9876543210") != labeling_job_name(JOB_ID, RUN_ID)
    put(s3, f"jobs/{JOB_ID}/status.json", json.dumps({"status": "started", "execution_arn": later}))
    output = run_import(
        s3, load_handler, lambda_context, exports={"annotations/a.xml": export("cvat_task.xml")}, images=BOX_IMAGES
    )
    assert output["import"]["status_file"].endswith("not updated: it belongs to another run (" + later + ")")
    assert "import" not in json.loads(read(s3, f"jobs/{JOB_ID}/status.json"))


def test_percent_boxes_without_original_width_take_the_size_from_the_image_header(s3, load_handler, lambda_context):
    tasks = json.loads(export("label_studio_boxes.json"))
    for task in tasks:
        for annotation in task["annotations"]:
            for result in annotation["result"]:
                result.pop("original_width", None)
                result.pop("original_height", None)
    # The photos as uploaded are 640 x 480 (PNG and JPEG): percent boxes are of that size.
    images = {"desk_01.jpg": image(640, 480, "PNG"), "desk_02.jpg": image(640, 480), "desk_03.jpg": image(640, 480)}
    output = run_import(
        s3, load_handler, lambda_context, exports={"annotations/ls.json": json.dumps(tasks).encode()}, images=images
    )
    assert output["import"]["problems"] == 0
    [pen] = [row for row in boxes_of(s3)["desk_01.jpg"] if row["category"] == "pen"]
    # Annotator 1 drew x 7.97 %, y 20.73 %, 23.28 % x 6.35 %; the others within a fraction of a per cent.
    assert near(pen, 0.0797 * 640, 0.2073 * 480, 0.2328 * 640, 0.0635 * 480, tolerance=3)
    assert (pen["img_width"], pen["img_height"]) == ("640", "480")


def test_boxes_an_export_drew_on_a_larger_copy_are_scaled_to_the_uploaded_image(s3, load_handler, lambda_context):
    images = {name: image(640, 480) for name in DESK}
    output = run_import(
        s3, load_handler, lambda_context, exports={"annotations/a.xml": export("cvat_task.xml")}, images=images
    )
    assert quality(s3)["import"]["rescaled_images"] == 3 and output["import"]["converted"]["rescaled_images"] == 3
    [pen] = [row for row in boxes_of(s3)["desk_01.jpg"] if row["category"] == "pen"]
    assert near(pen, 49, 101, 150.5, 28.5, tolerance=1)  # CVAT's 98,202 - 399,259 at half the size


def test_a_malformed_task_is_named_and_the_other_tasks_are_consolidated(s3, load_handler, lambda_context):
    tasks = json.loads(export("label_studio_boxes.json"))
    tasks[1]["annotations"][0]["result"][0]["value"]["x"] = "abc"
    tasks.append("not a task")
    output = run_import(
        s3, load_handler, lambda_context, exports={"annotations/ls.json": json.dumps(tasks).encode()}, images=BOX_IMAGES
    )
    problems = quality(s3)["import"]["problems"]
    assert any(
        p.startswith("annotations/ls.json task 2 annotation") and "value.x: not a finite number: 'abc'" in p
        for p in problems
    )
    assert any("task #5" in p and "expected a task object" in p for p in problems)
    assert output["import"]["problems"] == 2 == quality(s3)["import"]["n_problems"]
    assert output["n_consolidated"] == 3  # desk_01-03, with what was readable of desk_02


def test_images_sharing_a_file_name_are_reported_not_guessed_between(s3, load_handler, lambda_context):
    images = {**BOX_IMAGES, "a/desk_01.jpg": image(1280, 960), "b/desk_01.jpg": image(1280, 960)}
    images.pop("desk_01.jpg")
    output = run_import(
        s3, load_handler, lambda_context, exports={"annotations/a.xml": export("cvat_task.xml")}, images=images
    )
    summary = quality(s3)
    assert summary["import"]["ambiguous_images"] == {
        "desk_01.jpg": [f"jobs/{JOB_ID}/images/a/desk_01.jpg", f"jobs/{JOB_ID}/images/b/desk_01.jpg"]
    }
    failed = {entry["source_ref"].split("/images/")[1]: entry["reason"] for entry in summary["failed"]}
    assert "2 images in the images folder have the file name 'desk_01.jpg'" in failed["a/desk_01.jpg"]
    assert "cannot tell them apart" in failed["b/desk_01.jpg"]
    assert output["import"]["ambiguous_images"] == 1 and summary["n_objects"] == 5


def test_an_image_without_a_readable_header_keeps_the_size_the_export_gives(s3, load_handler, lambda_context):
    images = {**BOX_IMAGES, "desk_01.jpg": b"not an image at all"}
    output = run_import(
        s3, load_handler, lambda_context, exports={"annotations/a.xml": export("cvat_task.xml")}, images=images
    )
    unreadable = quality(s3)["import"]["unreadable_images"]
    assert list(unreadable) == ["desk_01.jpg"] and "not a JPEG or PNG image" in unreadable["desk_01.jpg"]
    assert output["import"]["unreadable_images"] == 1
    assert {row["img_width"] for row in boxes_of(s3)["desk_01.jpg"]} == {"1280"}


def test_a_box_image_whose_size_nobody_knows_is_failed_with_the_reason(s3, load_handler, lambda_context):
    tasks = json.loads(export("label_studio_boxes.json"))[:1]
    for annotation in tasks[0]["annotations"]:
        for result in annotation["result"]:
            result.pop("original_width", None)
            result.pop("original_height", None)
        annotation["result"] = []  # empty answers: nothing in the export gives the size
    images = {"desk_01.jpg": b"\xff\xd8 a cut JPEG"}
    output = run_import(
        s3, load_handler, lambda_context, exports={"annotations/ls.json": json.dumps(tasks).encode()}, images=images
    )
    [failed] = quality(s3)["failed"]
    assert "the image's size is unknown" in failed["reason"]
    assert output["n_failed"] == 1


# --- what stops the step --------------------------------------------------------------------------------------------


def test_a_missing_export_file_stops_the_step_naming_it(s3, load_handler, lambda_context):
    for name, data in BOX_IMAGES.items():
        put(s3, f"jobs/{JOB_ID}/images/{name}", data)
    with pytest.raises(ValueError, match=rf"s3://{DATA_BUCKET}/jobs/{JOB_ID}/annotations/typo.json: no such file"):
        _run_with_listed_files(s3, load_handler, lambda_context, ["annotations/typo.json"])


def _run_with_listed_files(s3: Any, load_handler: Any, context: Any, files: list[str]) -> dict[str, Any]:
    job = {"task_type": "bounding-box", "labels": BOX_LABELS, "annotations": {"files": files}}
    uploaded = put(s3, f"jobs/{JOB_ID}/job.json", json.dumps(job))
    job_file = {"key": f"jobs/{JOB_ID}/job.json", "version_id": None, "etag": uploaded["ETag"].strip('"')}
    prepared = load_handler("prepare_labeling").lambda_handler(
        {"bucket": DATA_BUCKET, "job_id": JOB_ID, "run_id": RUN_ID, "job_file": job_file}, context
    )
    return load_handler("reconsolidate").lambda_handler(
        {"bucket": DATA_BUCKET, "job_id": JOB_ID, "labeling": prepared}, context
    )


def test_a_file_that_is_not_an_export_stops_the_step_naming_it(s3, load_handler, lambda_context):
    with pytest.raises(ValueError, match=r"annotations/notes\.txt: not an export truthflow reads"):
        run_import(
            s3, load_handler, lambda_context, exports={"annotations/notes.txt": b"just some notes\n"}, images=BOX_IMAGES
        )


def test_an_export_over_the_size_limit_is_refused_before_it_is_read(s3, load_handler, lambda_context, monkeypatch):
    import truthflow.export_consolidation

    monkeypatch.setattr(truthflow.export_consolidation, "MAX_EXPORT_BYTES", 1024)
    with pytest.raises(ValueError, match=r"annotations/ls.json: 0 MiB; at most 0 MiB per export file are read"):
        run_import(
            s3,
            load_handler,
            lambda_context,
            exports={"annotations/ls.json": export("label_studio_boxes.json")},
            images=BOX_IMAGES,
        )


def test_exports_naming_none_of_the_images_stop_with_examples_of_both(s3, load_handler, lambda_context):
    images = {f"IMG_{index}.jpg": image(1280, 960) for index in range(3)}
    with pytest.raises(ValueError, match=r"none of the 3 images the exports name is in s3://") as raised:
        run_import(
            s3, load_handler, lambda_context, exports={"annotations/a.xml": export("cvat_task.xml")}, images=images
        )
    assert "'desk_01.jpg'" in str(raised.value) and "'IMG_0.jpg'" in str(raised.value)


def test_a_job_without_images_stops_with_what_to_upload(s3, load_handler, lambda_context):
    with pytest.raises(ValueError, match=rf"s3://{DATA_BUCKET}/jobs/{JOB_ID}/images/: no images"):
        run_import(s3, load_handler, lambda_context, exports={"annotations/a.xml": export("cvat_task.xml")}, images={})


# --- the pieces -----------------------------------------------------------------------------------------------------


def test_prepare_lists_the_exports_once_in_a_file_not_in_the_state(s3, load_handler, lambda_context):
    run_import(
        s3,
        load_handler,
        lambda_context,
        exports={"annotations/a.xml": export("cvat_task.xml")},
        images=BOX_IMAGES,
        export_format="cvat",
    )
    listed = json.loads(read(s3, f"jobs/{JOB_ID}/manifests/annotation-files.json"))
    assert listed == {"format": "cvat", "files": [f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/annotations/a.xml"]}


def test_image_folder_names_images_as_the_exports_do():
    folder = image_folder(
        [
            "jobs/j/images/a1b2c3d4-desk.jpg",
            "jobs/j/images/x/pen.PNG",
            "jobs/j/images/notes.txt",
            "jobs/j/images/a/1.jpg",
            "jobs/j/images/b/1.jpg",
            "jobs/j/images/",
        ]
    )
    assert folder.by_name == {"desk.jpg": "jobs/j/images/a1b2c3d4-desk.jpg", "pen.PNG": "jobs/j/images/x/pen.PNG"}
    assert folder.ambiguous == {"1.jpg": ["jobs/j/images/a/1.jpg", "jobs/j/images/b/1.jpg"]}
    assert len(folder.keys) == 4 and folder.other_files == 1  # notes.txt; the folder marker is no file


def test_every_kind_of_image_reference_finds_the_uploaded_image(s3, load_handler, lambda_context):
    references = {
        "café crème.jpg": "/data/upload/3/0a1b2c3d-caf%C3%A9%20cr%C3%A8me.jpg",
        "pen+pencil.jpg": "https://label-studio.example.com/data/pen%2Bpencil.jpg?token=abc&x=1",
        "100% cotton.png": "s3://our-label-studio-bucket/raw/batch 7/100% cotton.png",
        "日本.jpg": "/data/local-files/?d=photos/%E6%97%A5%E6%9C%AC.jpg",
        "plain.jpg": "plain.jpg",
        "Desk_05.JPG": "desk_05.jpg",  # differs in case: not the same S3 key, reported with a hint
    }
    template = json.loads(export("label_studio_classes.json"))[1]  # everybody answered 'pencil'
    tasks = []
    for position, reference in enumerate(references.values(), start=1):
        task = json.loads(json.dumps(template))
        task["id"], task["data"] = position, {"image": reference}
        tasks.append(task)
    images = {name: image(64, 48, "PNG" if name.endswith(".png") else "JPEG") for name in references}
    output = run_import(s3, load_handler, lambda_context, exports={"annotations/ls.json": json.dumps(tasks).encode()},
                        images=images, task_type="image-classification")  # fmt: skip
    names = class_names(s3)
    assert {name for name, label in names.items() if label == "pencil"} == set(references) - {"Desk_05.JPG"}
    assert output["import"]["unmatched_case_differs"] == {"desk_05.jpg": "Desk_05.JPG"}
    assert "differ only in case from images of the folder: 'desk_05.jpg' / 'Desk_05.JPG'" in output["import"]["message"]
