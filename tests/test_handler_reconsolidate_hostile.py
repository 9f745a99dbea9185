"""Whole-job consolidation against unreadable worker responses: each bad file, answer or box is reported in
quality.json and the rest of the job is consolidated (through the Lambda handler on moto, and through the step's
storage interface for a file that S3 cannot return)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

from emulated_aws import DATA_BUCKET
from test_handler_reconsolidate import (
    INPUT_MANIFEST_KEY,
    JOB_ID,
    JOB_NAME,
    LABEL_CONFIG_KEY,
    OUTPUT_PATH,
    answer,
    boxes,
    category,
    labeling_event,
    manifest_lines,
    put_input_manifest,
    put_worker_response,
    quality,
)

from truthflow.groundtruth.job_consolidation import WorkerResponseFile
from truthflow.job_dataset import ConsolidateJobRequest, consolidate_whole_job

PEN = ("pen", 10, 10, 50, 20)


def test_a_file_that_is_not_utf8_or_nested_too_deeply_is_reported_and_the_job_goes_on(s3, load_handler, lambda_context):
    put_input_manifest(s3, ["0.jpg", "1.jpg", "2.jpg", "3.jpg"])
    put_worker_response(s3, 0, [answer("A", category("cat")), answer("B", category("cat"))])
    latin = put_worker_response(s3, 1, [])
    s3.put_object(Bucket=DATA_BUCKET, Key=latin, Body='{"answers": [{"workerId": "Andr\xe9"}]}'.encode("latin-1"))
    deep = put_worker_response(s3, 2, [])
    s3.put_object(Bucket=DATA_BUCKET, Key=deep, Body=b'{"answers": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    put_worker_response(s3, 3, [answer("A", category("dog")), answer("B", category("dog"))])
    put_worker_response(s3, 3, [answer("C", {"crowd-image-classifier": {"label": "[" * 100}})], stamp="2024-05-01_11")

    result = load_handler("reconsolidate").lambda_handler(
        labeling_event(s3, "image-classification", ["cat", "dog"]), lambda_context
    )

    assert (result["n_objects"], result["n_consolidated"], result["n_failed"]) == (4, 2, 2)
    summary = quality(s3)
    reasons = {failed["dataset_object_id"]: failed["reason"] for failed in summary["failed"]}
    assert reasons["1"].startswith(f"{latin}: not UTF-8 text")
    assert reasons["2"] == f"{deep} is nested 5001 levels deep; at most 64 levels are read (file left out)"
    assert summary["answers_not_used"]["over_limit"] == 1
    labels = [line.get("tf-Pens-v1-0a1b2c3d-metadata", {}).get("class-name") for line in manifest_lines(s3)]
    assert labels == ["cat", None, None, "dog"]


def test_a_bad_box_or_answer_in_a_file_leaves_the_rest_of_the_file_in_use(s3, load_handler, lambda_context):
    put_input_manifest(s3, ["0.jpg"])
    good = boxes(PEN)
    with_bad_box = boxes(PEN)
    with_bad_box["boundingBox"]["boundingBoxes"].append({"label": "pen", "left": None, "top": 1, "width": 2})
    put_worker_response(
        s3,
        0,
        [
            answer("A", good),
            answer("B", with_bad_box),
            {"answerContent": good},  # no workerId
            answer("C", boxes(*[PEN] * 501)),  # more boxes than one answer may have
        ],
    )

    load_handler("reconsolidate").lambda_handler(labeling_event(s3, "bounding-box", ["pen"]), lambda_context)

    summary = quality(s3)
    assert summary["n_consolidated"] == 1
    reasons = [problem["reason"] for problem in summary["answers_not_used"]["listed"]]
    assert any("boundingBoxes[1].left: expected a finite number, got None (box left out)" in r for r in reasons)
    assert any("answers[2] has no workerId" in reason for reason in reasons)
    assert any("501 boxes; at most 500 per answer are read" in reason for reason in reasons)
    assert summary["answers_not_used"]["over_limit"] == 1
    workers = {worker["worker_id"]: worker for worker in summary["workers"]}
    assert workers["B"]["boxes"] == 1 and workers["B"]["matched_boxes"] == 1  # its good box counted


class OneFileUnreadable:
    """A :class:`truthflow.job_dataset.JobStore` in memory whose store refuses one key, as S3 does for a key that
    is listed but whose GetObject is denied."""

    def __init__(self, objects: dict[str, bytes], refused: str) -> None:
        self.objects = objects
        self.refused = refused
        self.written: dict[str, Any] = {}

    def list_keys(self, bucket: str, prefix: str) -> Iterable[str]:
        return [key for key in self.objects if key.startswith(prefix)]

    def read_files(self, bucket: str, keys: Sequence[str]) -> Iterator[WorkerResponseFile]:
        for key in keys:
            if key == self.refused:
                yield WorkerResponseFile(key, b"", error="AccessDenied")
            else:
                yield WorkerResponseFile(key, self.objects[key])

    def iter_lines(self, uri: str) -> Iterable[str]:
        return self.read_text(uri).splitlines()

    def read_text(self, uri: str) -> str:
        return self.objects[uri.split("/", 3)[3]].decode()

    def upload_text(self, stream: IO[str], uri: str, content_type: str) -> None:
        stream.seek(0)
        self.written[uri] = stream.read()

    def write_json(self, uri: str, value: Any) -> None:
        self.written[uri] = value


def test_a_file_that_cannot_be_read_is_reported_and_the_job_goes_on():
    event = {
        "bucket": DATA_BUCKET,
        "job_id": JOB_ID,
        "labeling": {
            "labeling_job_name": JOB_NAME, "label_attribute_name": JOB_NAME, "task_type": "image-classification",
            "input_manifest_uri": f"s3://{DATA_BUCKET}/{INPUT_MANIFEST_KEY}",
            "label_config_uri": f"s3://{DATA_BUCKET}/{LABEL_CONFIG_KEY}", "output_path_uri": OUTPUT_PATH,
        },
    }  # fmt: skip
    prefix = f"jobs/{JOB_ID}/labeling/{JOB_NAME}/annotations/worker-response/iteration-1/"
    images = f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/images"
    objects = {
        LABEL_CONFIG_KEY: json.dumps(
            {"document-version": "2018-11-28", "labels": [{"label": "cat"}, {"label": "dog"}]}
        ).encode(),
        INPUT_MANIFEST_KEY: f'{{"source-ref": "{images}/0.jpg"}}\n{{"source-ref": "{images}/1.jpg"}}\n'.encode(),
        prefix + "0/a.json": json.dumps({"answers": [answer("A", category("cat"))]}).encode(),
        prefix + "1/a.json": json.dumps({"answers": [answer("A", category("dog"))]}).encode(),
    }
    store = OneFileUnreadable(objects, refused=prefix + "1/a.json")
    output, summary = consolidate_whole_job(ConsolidateJobRequest.model_validate(event), store)
    assert (output["n_consolidated"], output["n_failed"]) == (1, 1)
    assert summary.failed[0].reason == f"{prefix}1/a.json: cannot be read (AccessDenied)"
    assert store.written[output["quality_uri"]]["n_failed"] == 1
