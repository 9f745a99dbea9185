""" "Consolidate whole job" at the scale of a full Ground Truth job: every worker response of 100,000 images, for boxes
and for classification, on moto S3 in this process ("Build training data", sharded, and the consolidation of a brought
manifest are measured up to a million images in :mod:`benchmarks.scale_training`).

Data, generated with a fixed seed: a finished labeling job's input manifest and one worker-response file per image
(Ground Truth's layout), 3 workers per image from a pool of 60; boxes: 0-8 objects per image, each drawn by each
worker with probability 0.9 and a few pixels of jitter, 3 labels; classification: 5 labels, workers right 60-95% of
the time. The files are put into moto's S3 store directly (setting up is not measured).

For each step: wall time of the Lambda handler (``lambda_handler``, as Step Functions calls it), its S3 requests by
operation (counted on the handler's client), and its peak memory: how far the process's peak RSS rises above its
RSS before the call (Linux ``VmHWM``, reset first). Reads go to moto; writes are counted but not stored (moto would
hold every written byte in this process, a Lambda does not), so the time is the step's own work plus its reads.
The anchor, measured in the same run: one GetObject + json.loads of a worker-response file, times the number of
files, i.e. what reading the job costs one request at a time.

Moto answers a request in a few milliseconds of this process's CPU, AWS in ~10-30 ms of network wait, so the table
also gives the step's own work (moto time less its GetObjects at the anchor's cost each; its writes are not stored)
and an AWS estimate: own work plus every request at 20 ms on the steps' 32 threads. The capacity divides 15 minutes
(AWS estimate) and the Lambda's memory (4,096 MB) by three and extrapolates linearly in images from each row (time,
requests and memory all grow linearly: compare the 10,000-image rows).

Run ``.venv/bin/python -m benchmarks.scale [--images 100000]``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
LAMBDAS = REPO / "lambdas"
if str(LAMBDAS) not in sys.path:
    sys.path.insert(0, str(LAMBDAS))

from benchmarks.groundtruth_handlers import ENVIRONMENT, REGION, _Context  # noqa: E402

BUCKET = "truthflow-scale"
JOB_ID = "scale-v1"
JOB_NAME = "tf-scale-v1-0a1b2c3d"
WORKERS, WORKERS_PER_IMAGE = 60, 3
BOX_LABELS = ["pen", "pencil", "marker"]
CLASS_LABELS = ["apple", "banana", "cherry", "grape", "lemon"]
WIDTH, HEIGHT = 1280, 960
# The consolidation function's memory (stacks/pipeline.py, consolidation_memory_mb in cdk.json).
LAMBDA_MEMORY_MB, LAMBDA_MINUTES, MARGIN = 4096, 15, 3
# The AWS estimate: S3 requests take about this long each on AWS and both steps run them on 32 threads.
AWS_REQUEST_SECONDS, S3_THREADS = 0.020, 32


# --- the job ---------------------------------------------------------------------------------------------------------


def worker_response(image: int, task_type: str, rng: random.Random) -> dict[str, Any]:
    workers = rng.sample(range(WORKERS), WORKERS_PER_IMAGE)
    answers = []
    if task_type == "bounding-box":
        truth = []
        for _ in range(rng.randint(0, 8)):
            width, height = rng.uniform(30, 250), rng.uniform(30, 250)
            truth.append((rng.choice(BOX_LABELS), rng.uniform(0, WIDTH - width), rng.uniform(0, HEIGHT - height),
                          width, height))  # fmt: skip
    else:
        truth_label = CLASS_LABELS[image % len(CLASS_LABELS)]
    for worker in workers:
        if task_type == "bounding-box":
            boxes = [
                {"label": label, "left": round(left + rng.gauss(0, 3)), "top": round(top + rng.gauss(0, 3)),
                 "width": round(width + rng.gauss(0, 4)), "height": round(height + rng.gauss(0, 4))}
                for label, left, top, width, height in truth
                if rng.random() < 0.9
            ]  # fmt: skip
            content: dict[str, Any] = {
                "boundingBox": {"boundingBoxes": boxes, "inputImageProperties": {"width": WIDTH, "height": HEIGHT}}
            }
        else:
            right = rng.random() < 0.6 + 0.35 * (worker % 8) / 7
            content = {"crowd-image-classifier": {"label": truth_label if right else rng.choice(CLASS_LABELS)}}
        answers.append(
            {
                "workerId": f"private.us-east-1.worker{worker:03d}",
                "answerContent": content,
                "submissionTime": "2026-11-20T10:00:00.000Z",
                "acceptanceTime": "2026-11-20T09:59:00.000Z",
                "timeSpentInSeconds": 42.0,
            }
        )
    return {"answers": answers}


def put_job(task_type: str, images: int, seed: int = 0) -> dict[str, Any]:
    """Store the job in moto's S3 backend directly; returns the "Prepare labeling input" output the steps read."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    rng = random.Random(seed)
    prefix = f"jobs/{JOB_ID}/"
    manifest = "".join(
        json.dumps({"source-ref": f"s3://{BUCKET}/{prefix}images/{image // 1000}/img{image:06d}.jpg"}) + "\n"
        for image in range(images)
    )
    backend.put_object(BUCKET, prefix + "manifests/input.manifest", manifest.encode())
    responses = f"{prefix}labeling/{JOB_NAME}/annotations/worker-response/iteration-1/"
    for image in range(images):
        body = json.dumps(worker_response(image, task_type, rng)).encode()
        backend.put_object(BUCKET, f"{responses}{image}/2026-11-20_10:00:00.json", body)
    job_file = {"task_type": task_type, "labels": BOX_LABELS if task_type == "bounding-box" else CLASS_LABELS}
    backend.put_object(BUCKET, prefix + "job.json", json.dumps(job_file).encode())
    labels = job_file["labels"]
    config = {"document-version": "2018-11-28", "labels": [{"label": label} for label in labels]}
    backend.put_object(BUCKET, prefix + "manifests/label-categories.json", json.dumps(config).encode())
    return {
        "label_config_uri": f"s3://{BUCKET}/{prefix}manifests/label-categories.json",
        "labeling_job_name": JOB_NAME,
        "label_attribute_name": JOB_NAME,
        "task_type": task_type,
        "labels": labels,
        "input_manifest_uri": f"s3://{BUCKET}/{prefix}manifests/input.manifest",
        "output_path_uri": f"s3://{BUCKET}/{prefix}labeling/",
        "start_at": "label",
        "existing_manifest_uri": None,
    }


# --- measuring ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def counted_requests(client: Any) -> Iterator[collections.Counter[str]]:
    counts: collections.Counter[str] = collections.Counter()

    def count(event_name: str, **_: Any) -> None:
        counts[event_name.rsplit(".", 1)[-1]] += 1

    client.meta.events.register("before-call.s3", count)
    try:
        yield counts
    finally:
        client.meta.events.unregister("before-call.s3", count)


@contextlib.contextmanager
def writes_kept_out_of_moto(
    client: Any, counts: collections.Counter[str], kept: dict[str, bytes], keep: tuple[str, ...] = ()
) -> Iterator[None]:
    """PutObject and uploads counted but not stored in moto: moto would hold every written byte in this process (and
    ~2 KB per key), which a Lambda does not. Keys ending in ``keep`` are kept in ``kept`` for the next step."""
    saved = (client.upload_fileobj, client.put_object)

    def upload_fileobj(stream: IO[bytes], bucket: str, key: str, **_: Any) -> None:
        counts["PutObject"] += 1  # one upload (a multipart upload for a large file on AWS)
        chunks = []
        while chunk := stream.read(8 << 20):
            if key.endswith(keep):
                chunks.append(chunk)
        if key.endswith(keep):
            kept[key] = b"".join(chunks)

    def put_object(**params: Any) -> dict[str, Any]:
        counts["PutObject"] += 1
        return {}

    client.upload_fileobj, client.put_object = upload_fileobj, put_object
    try:
        yield
    finally:
        client.upload_fileobj, client.put_object = saved


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _release_free_memory() -> None:
    """Free what the process no longer uses (gc, glibc's malloc_trim) and reset the peak RSS (Linux clear_refs 5),
    so that the next peak is the next step's."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")


def measure(handler: Any, event: dict[str, Any], client: Any, kept: dict[str, bytes]) -> dict[str, Any]:
    """One run: wall time, S3 requests, and peak memory as the rise of the process's peak RSS over its RSS before."""
    _release_free_memory()
    before = _rss_kib("VmRSS")
    with (
        contextlib.redirect_stdout(io.StringIO()),
        counted_requests(client) as requests,
        writes_kept_out_of_moto(client, requests, kept, keep=()),
    ):
        started = time.perf_counter()
        output = handler.lambda_handler(event, _Context())
        seconds = time.perf_counter() - started
    peak_mib = (_rss_kib("VmHWM") - before) / 1024
    return {"seconds": seconds, "requests": dict(requests), "peak_mib": peak_mib, "output": output}


def anchor_seconds(client: Any, labeling: dict[str, Any], files: int, sample: int = 500) -> float:
    """One GetObject + json.loads per worker-response file, sequentially, scaled from a sample to ``files``."""
    prefix = f"jobs/{JOB_ID}/labeling/{JOB_NAME}/annotations/worker-response/iteration-1/"
    sample = min(sample, files)
    started = time.perf_counter()
    for image in range(sample):
        key = f"{prefix}{image}/2026-11-20_10:00:00.json"
        json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    return (time.perf_counter() - started) / sample * files


@contextlib.contextmanager
def _handlers_forgotten() -> Iterator[None]:
    """Handler modules imported here are dropped afterwards: their clients and Powertools settings belong to this
    benchmark's environment, not to whatever imports them next (the offline run)."""
    try:
        yield
    finally:
        for module in ("reconsolidate.handler", "build_training_data.handler"):
            sys.modules.pop(module, None)


def run_task(task_type: str, images: int) -> list[dict[str, Any]]:
    import importlib

    import boto3
    from moto import mock_aws

    rows = []
    with mock_aws(), _handlers_forgotten():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        labeling = put_job(task_type, images)
        consolidate = importlib.import_module("reconsolidate.handler")
        event = {"bucket": BUCKET, "job_id": JOB_ID, "labeling": labeling}
        consolidated = measure(consolidate, event, consolidate.store._client, {})
        anchor = anchor_seconds(s3, labeling, images)
        rows.append({"step": "Consolidate whole job", "task_type": task_type, "images": images, **consolidated,
                     "anchor_seconds": anchor, "read_seconds": anchor / images})  # fmt: skip
    return rows


def compute_seconds(row: dict[str, Any]) -> float:
    """The step's own work: its moto time less its GetObjects at the anchor's cost per request (writes cost nothing
    here: they are counted, not stored)."""
    reads = row["requests"].get("GetObject", 0)
    per_read = row["read_seconds"]
    return max(row["seconds"] - reads * per_read, 0.0)


def aws_seconds(row: dict[str, Any]) -> float:
    """Estimated time on AWS: the step's own work plus every S3 request at AWS_REQUEST_SECONDS on S3_THREADS."""
    return compute_seconds(row) + sum(row["requests"].values()) * AWS_REQUEST_SECONDS / S3_THREADS


def capacity(row: dict[str, Any]) -> int:
    """Images the step handles within a third of 15 minutes (AWS estimate) and a third of its memory, extrapolated
    linearly from this row."""
    by_time = LAMBDA_MINUTES * 60 / MARGIN / aws_seconds(row) * row["images"]
    by_memory = LAMBDA_MEMORY_MB / MARGIN / max(row["peak_mib"], 1e-9) * row["images"]
    return int(min(by_time, by_memory))


def table(rows: list[dict[str, Any]]) -> str:
    headers = ["step", "task", "images", "moto s", "anchor s", "own work s", "AWS est. s", "peak MiB", "S3 requests",
               "capacity (3x margin)"]  # fmt: skip
    body = []
    for row in rows:
        requests = ", ".join(f"{name} {count:,}" for name, count in sorted(row["requests"].items()))
        anchor = "" if row["anchor_seconds"] is None else f"{row['anchor_seconds']:.1f}"
        body.append([row["step"], row["task_type"], f"{row['images']:,}", f"{row['seconds']:.1f}", anchor,
                     f"{compute_seconds(row):.1f}", f"{aws_seconds(row):.0f}", f"{row['peak_mib']:.0f}", requests,
                     f"{capacity(row):,}"])  # fmt: skip
    widths = [max(len(header), *(len(line[i]) for line in body)) for i, header in enumerate(headers)]
    lines = [" | ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True))]
    lines.append("-|-".join("-" * width for width in widths))
    lines += [" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in body]
    return "\n".join(lines)


@contextlib.contextmanager
def benchmark_environment() -> Iterator[None]:
    """The environment the handlers read at import (as the stacks set it), restored afterwards."""
    import os

    saved = {name: os.environ.get(name) for name in (*ENVIRONMENT, "ARTIFACTS_BUCKET")}
    os.environ.update({**ENVIRONMENT, "ARTIFACTS_BUCKET": "truthflow-scale-artifacts"})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run(images: int = 100_000, small: int = 10_000) -> list[dict[str, Any]]:
    with benchmark_environment():
        return [row for task_type in ("bounding-box", "image-classification")
                for count in dict.fromkeys((small, images)) for row in run_task(task_type, count)]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    args = parser.parse_args()
    print(table(run(args.images, args.small)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
