"""The whole-job consolidation Lambda through ``lambda_handler``: raw worker responses laid out in emulated S3 exactly
as Ground Truth writes them (reference §2.5), and bring-your-own output manifests."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from emulated_aws import DATA_BUCKET, EVENTS, load_event

from truthflow.groundtruth.consolidated_dataset import box_matches
from truthflow.groundtruth.job_consolidation import latest_worker_responses, parse_worker_response_key
from truthflow.groundtruth.output_manifest import DetectionRecord, LabeledBox
from truthflow.groundtruth.worker_answers import PixelBox

JOB_ID = "pens-v1"
JOB_NAME = "tf-Pens-v1-0a1b2c3d"
OUTPUT_PATH = f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/labeling/"
INPUT_MANIFEST_KEY = f"jobs/{JOB_ID}/manifests/input.manifest"
DATASET = f"jobs/{JOB_ID}/dataset/"
TABLE_HEADER = "img_file,category,box_left,box_top,box_height,box_width,img_width,img_height"


def image_uri(name: str) -> str:
    return f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/images/{name}"


def put_input_manifest(s3: Any, names: list[str]) -> None:
    text = "".join(json.dumps({"source-ref": image_uri(name)}) + "\n" for name in names)
    s3.put_object(Bucket=DATA_BUCKET, Key=INPUT_MANIFEST_KEY, Body=text.encode())


def put_worker_response(
    s3: Any, object_id: int, answers: list[dict[str, Any]], *, iteration: int = 1, stamp: str = "2024-05-01_10:00:00"
) -> str:
    key = (
        f"jobs/{JOB_ID}/labeling/{JOB_NAME}/annotations/worker-response/iteration-{iteration}/{object_id}/{stamp}.json"
    )
    s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=json.dumps({"answers": answers}).encode())
    return key


def answer(worker: str, content: dict[str, Any], submitted: str = "2024-05-01T10:00:00.000Z") -> dict[str, Any]:
    return {
        "acceptanceTime": "2024-05-01T09:59:00.000Z",
        "answerContent": content,
        "submissionTime": submitted,
        "timeSpentInSeconds": 60.0,
        "workerId": worker,
        "workerMetadata": {"identityData": {"identityProviderType": "Cognito", "sub": f"sub-{worker}"}},
    }


def boxes(*drawn: tuple[str, int, int, int, int], size: tuple[int, int] = (640, 480)) -> dict[str, Any]:
    return {
        "boundingBox": {
            "boundingBoxes": [
                {"label": label, "left": left, "top": top, "width": width, "height": height}
                for label, left, top, width, height in drawn
            ],
            "inputImageProperties": {"width": size[0], "height": size[1]},
        }
    }


def category(label: str) -> dict[str, Any]:
    return {"crowd-image-classifier": {"label": label}}


LABEL_CONFIG_KEY = f"jobs/{JOB_ID}/manifests/label-categories.json"


def put_label_config(s3: Any, labels: list[str]) -> None:
    """The label-category file "Prepare labeling input" writes: the steps read the labels from it."""
    config = {"document-version": "2018-11-28", "labels": [{"label": label} for label in labels]}
    s3.put_object(Bucket=DATA_BUCKET, Key=LABEL_CONFIG_KEY, Body=json.dumps(config).encode())


def labeling_event(s3: Any, task_type: str | None, labels: list[str], **changes: Any) -> dict[str, Any]:
    put_label_config(s3, labels)
    labeling: dict[str, Any] = {
        "labeling_job_name": JOB_NAME,
        "label_attribute_name": JOB_NAME,
        "task_type": task_type,
        "n_objects": 4,
        "input_manifest_uri": f"s3://{DATA_BUCKET}/{INPUT_MANIFEST_KEY}",
        "label_config_uri": f"s3://{DATA_BUCKET}/{LABEL_CONFIG_KEY}",
        "output_path_uri": OUTPUT_PATH,
        "workers_per_object": 3,
        "start_at": "label",
        "existing_manifest_uri": None,
    }
    labeling.update(changes)
    return {"bucket": DATA_BUCKET, "job_id": JOB_ID, "labeling": labeling}


def keys(s3: Any) -> list[str]:
    return [entry["Key"] for entry in s3.list_objects_v2(Bucket=DATA_BUCKET).get("Contents", [])]


def read(s3: Any, key: str) -> str:
    text: str = s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read().decode()
    return text


def manifest_lines(s3: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in read(s3, DATASET + "consolidated.manifest").splitlines()]


def table_rows(s3: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(read(s3, DATASET + "consolidated.csv"))))


def quality(s3: Any) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(read(s3, DATASET + "quality.json"))
    return summary


# --- the recorded response file, and what the job writes ----------------------------------------------------------


def test_recorded_worker_response_becomes_a_consolidated_line_a_csv_row_and_objects_without_one_fail(
    s3, load_handler, lambda_context
):
    put_input_manifest(s3, ["bird1.jpg", "bird2.jpg"])
    recorded = (EVENTS / "worker_response_bounding_box.json").read_text()
    key = f"jobs/{JOB_ID}/labeling/{JOB_NAME}/annotations/worker-response/iteration-1/0/2020-12-28_18:59:58.json"
    s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=recorded.encode())
    handler = load_handler("reconsolidate")

    result = handler.lambda_handler(labeling_event(s3, "bounding-box", ["Bird"]), lambda_context)

    assert result == {
        "consolidated_manifest_uri": f"s3://{DATA_BUCKET}/{DATASET}consolidated.manifest",
        "table_uri": f"s3://{DATA_BUCKET}/{DATASET}consolidated.csv",
        "quality_uri": f"s3://{DATA_BUCKET}/{DATASET}quality.json",
        "n_objects": 2,
        "n_consolidated": 1,
        "n_failed": 1,
        "label_attribute_name": JOB_NAME,
        "task_type": "bounding-box",
    }
    first, second = manifest_lines(s3)
    assert first["source-ref"] == image_uri("bird1.jpg")
    assert first[JOB_NAME] == {
        "image_size": [{"width": 3745, "height": 2497, "depth": 3}],
        "annotations": [{"class_id": 0, "left": 583, "top": 302, "width": 1375, "height": 2052}],
    }
    metadata = first[f"{JOB_NAME}-metadata"]
    assert metadata["type"] == "groundtruth/object-detection"
    assert metadata["class-map"] == {"0": "Bird"}
    assert metadata["job-name"] == "labeling-job/tf-pens-v1-0a1b2c3d"
    assert metadata["human-annotated"] == "yes"
    assert second[JOB_NAME] is None
    assert second[f"{JOB_NAME}-metadata"]["failure-reason"] == "no worker response"
    assert table_rows(s3) == [
        TABLE_HEADER.split(","),
        ["bird1.jpg", "Bird", "583", "302", "2052", "1375", "3745", "2497"],
    ]
    summary = quality(s3)
    assert (summary["n_objects"], summary["n_consolidated"], summary["n_failed"]) == (2, 1, 1)
    assert summary["failed"] == [
        {"dataset_object_id": "1", "line": 2, "source_ref": image_uri("bird2.jpg"), "reason": "no worker response"}
    ]
    assert summary["workers"] == [
        {
            "worker_id": "a12b3cdefg4h5i67",
            "answers": 1,
            "answers_not_used": 0,
            "estimated_accuracy": 1.0,
            "boxes": 1,
            "matched_boxes": 1,
        }
    ]


def test_bounding_box_job_is_consolidated_over_all_responses_with_agreement_and_worker_accuracy(
    s3, load_handler, lambda_context
):
    put_input_manifest(s3, ["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
    pen, pencil = ("pen", 100, 50, 200, 100), ("pencil", 400, 300, 100, 50)
    # a.jpg: all three box the pen, two of three the pencil (kept: 2 of 3 meets the "at least half" quorum).
    put_worker_response(
        s3, 0, [answer("A", boxes(pen, pencil)), answer("B", boxes(pen, pencil)), answer("C", boxes(pen))]
    )
    # b.jpg: A and B box a pen; C's lone pencil is 1 of 3 and is dropped.
    small_pen = ("pen", 10, 10, 50, 50)
    put_worker_response(
        s3,
        1,
        [
            answer("A", boxes(small_pen)),
            answer("B", boxes(small_pen)),
            answer("C", boxes(("pencil", 300, 300, 40, 40))),
        ],
    )
    # c.jpg: nobody answered. d.jpg: a first iteration is superseded by the second.
    put_worker_response(s3, 3, [answer("A", boxes(("pencil", 0, 0, 30, 30)))], iteration=1)
    tiny_pen = ("pen", 5, 5, 20, 20)
    put_worker_response(s3, 3, [answer("A", boxes(tiny_pen)), answer("B", boxes(tiny_pen))], iteration=2)
    handler = load_handler("reconsolidate")

    result = handler.lambda_handler(labeling_event(s3, "bounding-box", ["pen", "pencil"]), lambda_context)

    assert (result["n_objects"], result["n_consolidated"], result["n_failed"]) == (4, 3, 1)
    lines = manifest_lines(s3)
    assert lines[0][JOB_NAME]["annotations"] == [
        {"class_id": 0, "left": 100, "top": 50, "width": 200, "height": 100},
        {"class_id": 1, "left": 400, "top": 300, "width": 100, "height": 50},
    ]
    assert lines[0][f"{JOB_NAME}-metadata"]["objects"] == [{"confidence": 1.0}, {"confidence": 0.67}]
    assert lines[1][JOB_NAME]["annotations"] == [{"class_id": 0, "left": 10, "top": 10, "width": 50, "height": 50}]
    assert lines[2][JOB_NAME] is None
    assert lines[3][JOB_NAME]["annotations"] == [{"class_id": 0, "left": 5, "top": 5, "width": 20, "height": 20}]
    assert table_rows(s3)[1:] == [
        ["a.jpg", "pen", "100", "50", "100", "200", "640", "480"],
        ["a.jpg", "pencil", "400", "300", "50", "100", "640", "480"],
        ["b.jpg", "pen", "10", "10", "50", "50", "640", "480"],
        ["d.jpg", "pen", "5", "5", "20", "20", "640", "480"],
    ]
    summary = quality(s3)
    assert summary["n_boxes"] == 4
    # Per kept box, the share of the image's workers who drew a matching box: 3/3, 2/3 (a.jpg), 2/3, 2/2.
    assert summary["agreement"] == pytest.approx((1 + 2 / 3 + 2 / 3 + 1) / 4, abs=1e-4)
    assert summary["confidence_histogram"]["counts"] == [0, 0, 0, 0, 0, 0, 2, 0, 0, 2]
    assert summary["confidence_histogram"]["bin_edges"][:2] == [0.0, 0.1]
    workers = {worker["worker_id"]: worker for worker in summary["workers"]}
    assert {name: (w["answers"], w["boxes"], w["matched_boxes"]) for name, w in workers.items()} == {
        "A": (3, 4, 4),
        "B": (3, 4, 4),
        "C": (2, 2, 1),
    }
    assert workers["C"]["estimated_accuracy"] == 0.5
    assert workers["A"]["estimated_accuracy"] == 1.0
    assert summary["failed"] == [
        {"dataset_object_id": "2", "line": 3, "source_ref": image_uri("c.jpg"), "reason": "no worker response"}
    ]


def test_classification_job_takes_the_latest_answer_of_a_worker_and_reports_model_accuracy(
    s3, load_handler, lambda_context
):
    put_input_manifest(s3, ["0.jpg", "1.jpg", "2.jpg", "3.jpg"])
    put_worker_response(
        s3, 0, [answer("A", category("cat")), answer("B", category("cat")), answer("C", category("cat"))]
    )
    put_worker_response(
        s3, 1, [answer("A", category("dog")), answer("B", category("dog")), answer("C", category("cat"))]
    )
    put_worker_response(
        s3, 2, [answer("A", category("cat")), answer("B", category("cat"))], stamp="2024-05-01_10:00:00"
    )
    # C answered 2.jpg twice (two files of one iteration): the later submission counts.
    put_worker_response(s3, 2, [answer("C", category("cat"), "2024-05-01T10:00:00.000Z")], stamp="2024-05-01_10:00:01")
    put_worker_response(s3, 2, [answer("C", category("dog"), "2024-05-01T11:00:00.000Z")], stamp="2024-05-01_11:00:00")
    handler = load_handler("reconsolidate")

    # task_type left out: it is told from the answers.
    result = handler.lambda_handler(labeling_event(s3, None, ["cat", "dog"]), lambda_context)

    assert (result["task_type"], result["n_consolidated"], result["n_failed"]) == ("image-classification", 3, 1)
    lines = manifest_lines(s3)
    assert [line[JOB_NAME] for line in lines] == [0, 1, 0, None]
    assert lines[1][f"{JOB_NAME}-metadata"]["class-name"] == "dog"
    assert lines[1][f"{JOB_NAME}-metadata"]["type"] == "groundtruth/image-classification"
    assert table_rows(s3) == [
        TABLE_HEADER.split(","),
        ["0.jpg", "cat", "", "", "", "", "", ""],
        ["1.jpg", "dog", "", "", "", "", "", ""],
        ["2.jpg", "cat", "", "", "", "", "", ""],
    ]
    summary = quality(s3)
    assert summary["agreement"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3, abs=1e-4)
    assert summary["n_answers"] == 9
    assert sum(summary["confidence_histogram"]["counts"]) == 3
    workers = {worker["worker_id"]: worker for worker in summary["workers"]}
    assert {name: worker["answers"] for name, worker in workers.items()} == {"A": 3, "B": 3, "C": 3}
    assert 0 <= workers["C"]["estimated_accuracy"] < workers["A"]["estimated_accuracy"] <= 1
    assert summary["failed"][0]["dataset_object_id"] == "3"


def test_unusable_answers_and_stray_responses_are_reported_not_raised(s3, load_handler, lambda_context):
    put_input_manifest(s3, ["0.jpg", "1.jpg", "2.jpg"])
    put_worker_response(s3, 0, [answer("A", category("cat")), answer("B", category("parrot"))])
    put_worker_response(s3, 1, [answer("B", category("parrot"))])
    broken = put_worker_response(s3, 2, [])
    s3.put_object(Bucket=DATA_BUCKET, Key=broken, Body=b'{"answers": [')
    put_worker_response(s3, 7, [answer("A", category("dog"))])  # not a line of the input manifest
    handler = load_handler("reconsolidate")

    result = handler.lambda_handler(labeling_event(s3, "image-classification", ["cat", "dog"]), lambda_context)

    assert (result["n_consolidated"], result["n_failed"]) == (1, 2)
    summary = quality(s3)
    assert [failed["dataset_object_id"] for failed in summary["failed"]] == ["1", "2"]
    assert "'parrot' is not in the label set" in summary["failed"][0]["reason"]
    assert summary["failed"][1]["reason"].startswith(f"{broken}: not valid JSON")
    assert summary["answers_not_used"]["count"] == 3
    assert [problem["worker"] for problem in summary["answers_not_used"]["listed"]] == ["B", "B", None]
    assert summary["responses_without_object"] == ["7"]


# --- bring your own labels -------------------------------------------------------------------------------------------


IMPORTED_KEY = f"jobs/{JOB_ID}/imports/output.manifest"
IMPORTED_URI = f"s3://{DATA_BUCKET}/{IMPORTED_KEY}"


def test_existing_output_manifest_is_kept_as_it_is_and_its_label_attribute_found(
    s3, load_handler, lambda_context, monkeypatch
):
    real = json.loads((EVENTS / "output_manifest_object_detection_real.json").read_text())
    unlabeled = {"source-ref": "s3://mlops-2021/labeling/data/2/image.jpeg"}
    text = json.dumps(real) + "\n" + json.dumps(unlabeled) + "\n" + "this is not json\n"
    s3.put_object(Bucket=DATA_BUCKET, Key=IMPORTED_KEY, Body=text.encode())
    monkeypatch.setenv("INPUT_BUCKETS", '["mlops-2021"]')  # the images live in a bucket the deployment allows
    handler = load_handler("reconsolidate")
    event = labeling_event(
        s3,
        "bounding-box",
        ["reject", "merchantName"],
        start_at="consolidate",
        input_manifest_uri=None,
        existing_manifest_uri=IMPORTED_URI,
    )

    result = handler.lambda_handler(event, lambda_context)

    attribute = "job11-merchantName-20210611222523"
    assert result["label_attribute_name"] == attribute
    assert "labels" not in result  # the labels stay in the label-category file
    assert (result["n_objects"], result["n_consolidated"], result["n_failed"]) == (3, 1, 2)
    assert manifest_lines(s3) == [real, unlabeled]
    assert table_rows(s3)[1:] == [["image.jpeg", "merchantName", "292", "134", "61", "298", "900", "1200"]]
    summary = quality(s3)
    assert summary["source"] == "existing-manifest"
    assert summary["agreement"] is None
    assert summary["workers"] == []
    assert summary["failed"][0]["reason"] == "no label"
    assert summary["failed"][1]["line"] == 3
    assert "not valid JSON" in summary["failed"][1]["reason"]


def test_existing_manifest_labels_come_from_the_label_category_file(s3, load_handler, lambda_context, monkeypatch):
    line = load_event("output_manifest_object_detection_real.json")
    s3.put_object(Bucket=DATA_BUCKET, Key=IMPORTED_KEY, Body=(json.dumps(line) + "\n").encode())
    monkeypatch.setenv("INPUT_BUCKETS", '["mlops-2021"]')
    handler = load_handler("reconsolidate")
    event = labeling_event(
        s3, None, ["merchantName", "reject"], start_at="consolidate", existing_manifest_uri=IMPORTED_URI
    )

    result = handler.lambda_handler(event, lambda_context)

    assert result["task_type"] == "bounding-box"
    assert quality(s3)["labels"] == ["merchantName", "reject"]


def test_an_image_outside_the_job_in_an_existing_manifest_is_refused(s3, load_handler, lambda_context):
    line = load_event("output_manifest_object_detection_real.json")  # its image is in the bucket mlops-2021
    s3.put_object(Bucket=DATA_BUCKET, Key=IMPORTED_KEY, Body=(json.dumps(line) + "\n").encode())
    handler = load_handler("reconsolidate")
    event = labeling_event(s3, None, ["merchantName"], start_at="consolidate", existing_manifest_uri=IMPORTED_URI)

    expected = rf"{IMPORTED_URI} line 1: source-ref 's3://mlops-2021/.*' is outside this job"
    with pytest.raises(ValueError, match=expected):
        handler.lambda_handler(event, lambda_context)
    assert not [key for key in keys(s3) if key.startswith(DATASET)]


def test_a_manifest_of_another_job_is_refused(s3, load_handler, lambda_context):
    other = "s3://truthflow-data/jobs/other-job/dataset/consolidated.manifest"
    handler = load_handler("reconsolidate")
    event = labeling_event(s3, None, ["pen"], start_at="consolidate", existing_manifest_uri=other)

    with pytest.raises(ValueError, match=rf"'{other}' is outside this job: a job reads only under "):
        handler.lambda_handler(event, lambda_context)


def test_existing_manifest_without_a_labeled_line_is_a_clear_error(s3, load_handler, lambda_context):
    s3.put_object(Bucket=DATA_BUCKET, Key=f"jobs/{JOB_ID}/imports/garbage.manifest", Body=b"garbage\n{}\n")
    handler = load_handler("reconsolidate")
    event = labeling_event(
        s3,
        "bounding-box",
        ["pen"],
        start_at="consolidate",
        existing_manifest_uri=f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/imports/garbage.manifest",
    )

    with pytest.raises(ValueError, match=r"garbage\.manifest: the manifest holds no labeled line \(2 lines read\)"):
        handler.lambda_handler(event, lambda_context)


def test_a_labeling_run_needs_its_input_manifest_and_labels(s3, load_handler, lambda_context):
    handler = load_handler("reconsolidate")
    with pytest.raises(ValueError, match="start_at 'label' needs input_manifest_uri"):
        handler.lambda_handler(labeling_event(s3, "bounding-box", [], input_manifest_uri=None), lambda_context)


# --- worker-response keys (pure) ----------------------------------------------------------------------------------


def test_worker_response_keys_are_parsed_and_the_latest_iteration_of_each_object_wins():
    base = "out/job/annotations/worker-response"
    keys = [
        f"{base}/iteration-1/0/2024-01-01_00:00:00.json",
        f"{base}/iteration-2/0/2024-01-02_00:00:00.json",
        f"{base}/iteration-10/0/2024-01-03_00:00:01.json",
        f"{base}/iteration-10/0/2024-01-03_00:00:00.json",
        f"{base}/iteration-1/5/2024-01-01_00:00:00.json",
        f"{base}/iteration-1/5/frames/frame_0001.jpeg.json",  # video-frame layout: not ours
        "out/job/annotations/consolidated-annotation/consolidation-request/iteration-1/x.json",
    ]
    assert parse_worker_response_key(keys[2]).iteration == 10
    assert parse_worker_response_key(keys[5]) is None
    assert latest_worker_responses(keys) == {"0": [keys[3], keys[2]], "5": [keys[4]]}


def test_worker_boxes_match_kept_boxes_one_to_one_even_when_pairs_are_ambiguous():
    kept = (LabeledBox("pen", 0, 0, 100, 100), LabeledBox("pen", 10, 0, 100, 100), LabeledBox("pencil", 300, 0, 50, 50))
    record = DetectionRecord("s3://b/x.jpg", 640, 480, 3, kept, "attr", {})
    drawn = {
        "one box near both pens": [PixelBox("pen", 5, 0, 100, 100)],
        "two boxes near both pens": [PixelBox("pen", 0, 0, 100, 100), PixelBox("pen", 10, 0, 100, 100)],
        "pencil drawn as pen": [PixelBox("pen", 300, 0, 50, 50)],
        "past the edge": [PixelBox("pencil", 300, -40, 50, 90)],  # clipped to (300, 0, 50, 50)
    }

    matches = box_matches(drawn, record)

    assert len(matches["one box near both pens"]) == 1
    assert matches["two boxes near both pens"] == [0, 1]
    assert matches["pencil drawn as pen"] == []
    assert matches["past the edge"] == [2]
