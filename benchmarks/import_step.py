"""The "Consolidate whole job" step for a job that brings tool exports (job.json ``annotations``), at full scale.

Data, generated with a fixed seed: Label Studio JSON exports in the exact shape the tool writes
(:func:`benchmarks.annotation_imports.label_studio_tasks`: every field of a task and an annotation), 3 annotators per
task with 2 boxes each, split into files of at most 50,000 tasks (a 100,000-task export of this project is 401 MB,
over the step's 256 MiB per file: the README tells users to split or to export JSON_MIN), and the job's images under
``images/`` (each a JPEG header of the size the export gives: the step reads only headers). Everything is put into
moto's S3 store directly (setting up is not measured).

Measured as :mod:`benchmarks.scale` measures the worker-response case, through the Lambda handler: wall time, S3
requests, peak RSS rise, the step's own work (moto time less its GetObjects at the anchor's cost each) and an AWS
estimate (own work plus every request at 20 ms on 32 threads). The anchor, in the same run: the reads the step cannot
avoid, one at a time: a ranged GetObject of each image's header, and GetObject + ``json.loads`` of each export.

Run ``.venv/bin/python -m benchmarks.import_step [--images 100000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LAMBDAS = REPO / "lambdas"
if str(LAMBDAS) not in sys.path:
    sys.path.insert(0, str(LAMBDAS))

from benchmarks import annotation_imports, scale  # noqa: E402
from benchmarks.groundtruth_handlers import ENVIRONMENT, REGION  # noqa: E402

BUCKET, JOB_ID = scale.BUCKET, "import-v1"
JOB_NAME = "tf-import-v1-0a1b2c3d"
TASKS_PER_FILE = 50_000
ANNOTATORS, BOXES_PER_ANSWER = 3, 2


def jpeg_header(width: int, height: int) -> bytes:
    """SOI and a baseline frame header (ITU-T T.81 B.2.2): all :func:`truthflow.image_headers.image_size` reads."""
    frame = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    return b"\xff\xd8\xff\xc0" + struct.pack(">H", len(frame) + 2) + frame


def put_job(images: int) -> tuple[dict[str, Any], list[str]]:
    """The job in moto's S3 store; returns "Prepare labeling input"'s output and the export keys."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    prefix = f"jobs/{JOB_ID}/"
    annotation_imports.TASKS = images
    tasks = annotation_imports.label_studio_tasks(ANNOTATORS, BOXES_PER_ANSWER)
    header = jpeg_header(annotation_imports.WIDTH, annotation_imports.HEIGHT)
    for task in tasks:
        name = task["file_upload"][9:]  # the upload prefix is Label Studio's, not the image's
        backend.put_object(BUCKET, f"{prefix}images/{name}", header)
    keys = []
    for start in range(0, images, TASKS_PER_FILE):
        key = f"{prefix}annotations/project-3-part-{start // TASKS_PER_FILE + 1}.json"
        backend.put_object(BUCKET, key, json.dumps(tasks[start : start + TASKS_PER_FILE]).encode())
        keys.append(key)
    del tasks
    listed = {"format": "label-studio", "files": [f"s3://{BUCKET}/{key}" for key in keys]}
    backend.put_object(BUCKET, prefix + "manifests/annotation-files.json", json.dumps(listed).encode())
    categories = {"document-version": "2018-11-28", "labels": [{"label": label} for label in annotation_imports.LABELS]}
    backend.put_object(BUCKET, prefix + "manifests/label-categories.json", json.dumps(categories).encode())
    labeling = {
        "labeling_job_name": JOB_NAME,
        "label_attribute_name": JOB_NAME,
        "task_type": "bounding-box",
        "label_config_uri": f"s3://{BUCKET}/{prefix}manifests/label-categories.json",
        "output_path_uri": f"s3://{BUCKET}/{prefix}labeling/",
        "start_at": "import",
        "annotations_uri": f"s3://{BUCKET}/{prefix}manifests/annotation-files.json",
    }
    return labeling, keys


def anchor_seconds(client: Any, images: int, keys: list[str], sample: int = 500) -> tuple[float, float]:
    """(the anchor's seconds, one ranged header GetObject's seconds): headers one at a time (scaled from a sample),
    then each export read and parsed."""
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"jobs/{JOB_ID}/images/", MaxKeys=sample)["Contents"]
    started = time.perf_counter()
    for entry in listed:
        client.get_object(Bucket=BUCKET, Key=entry["Key"], Range="bytes=0-65535")["Body"].read()
    per_header = (time.perf_counter() - started) / len(listed)
    started = time.perf_counter()
    for key in keys:
        json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    return per_header * images + time.perf_counter() - started, per_header


def run_import(images: int) -> dict[str, Any]:
    import importlib

    import boto3
    from moto import mock_aws

    with mock_aws(), scale._handlers_forgotten():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        labeling, keys = put_job(images)
        consolidate = importlib.import_module("reconsolidate.handler")
        event = {"bucket": BUCKET, "job_id": JOB_ID, "labeling": labeling}
        measured = scale.measure(consolidate, event, consolidate.store._client, {})
        anchor, per_read = anchor_seconds(s3, images, keys)
    output = measured["output"]
    assert output["n_consolidated"] == images, output
    return {"step": "Consolidate whole job (exports)", "task_type": "bounding-box", "images": images, **measured,
            "anchor_seconds": anchor, "read_seconds": per_read, "files": len(keys)}  # fmt: skip


def run(images: int = 100_000, small: int = 10_000) -> list[dict[str, Any]]:
    saved = {name: os.environ.get(name) for name in ENVIRONMENT}
    os.environ.update(ENVIRONMENT)
    try:
        return [run_import(count) for count in dict.fromkeys((small, images))]
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.import_step", description=__doc__)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    args = parser.parse_args()
    print(scale.table(run(args.images, args.small)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
