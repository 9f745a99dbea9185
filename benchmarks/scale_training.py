"""The sharded "Build training data" and "Consolidate whole job" on a brought output manifest, at 100,000 and
1,000,000 images, through their Lambda handler on moto S3.

Data, generated with a fixed seed: a consolidated output manifest in Ground Truth's shape (boxes: 0-8 boxes per image,
3 labels, confidences; classification: 5 labels), each image named once. The same manifest is the output manifest
a job brings (``existing_annotations``: "Consolidate whole job" normalises it) and the consolidated manifest
"Build training data" reads (the normalised lines are the same lines).

Measured per Lambda call, as Step Functions makes them: "Plan training data", every shard of the Distributed Map
(min / median / max), "Join training data"; wall time, peak memory (the rise of the process's peak RSS over its RSS
before the call, less the bytes the call stored in moto, which is S3 and not the Lambda's memory), S3 requests by
operation and the bytes each call reads and writes. What the next call reads (the plan, the shard list, the shards'
parts) is stored in moto; the dataset's files are counted and dropped, as in :mod:`benchmarks.scale`. The anchor,
in the same run: the same conversion in one pass in this process (``build_training_data`` over the whole manifest,
every file counted and dropped), the unsharded equivalent.

The AWS estimate adds to a call's own time its S3 requests at 20 ms each on 32 threads and its bytes at 50 MB/s
(single-stream S3 throughput from Lambda is commonly quoted at 50-100 MB/s; moto reads at memory speed). The capacity
is the number of images (for a shard: the shard size) a call handles within a third of 15 minutes and a third of
its function's memory (3,008 MB; "Consolidate whole job" 4,096 MB), extrapolated linearly from its row.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import io
import json
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any

from benchmarks.groundtruth_handlers import _Context

BUCKET = "truthflow-scale"
JOB_ID = "scale-v1"
ATTRIBUTE = "scale-v1-labels"
BOX_LABELS = ["pen", "pencil", "marker"]
CLASS_LABELS = ["apple", "banana", "cherry", "grape", "lemon"]
WIDTH, HEIGHT = 1280, 960
LAMBDA_MEMORY_MB, LAMBDA_SECONDS, MARGIN = 3008, 15 * 60, 3
AWS_REQUEST_SECONDS, S3_THREADS, AWS_BYTES_PER_SECOND = 0.020, 32, 50e6
MIB = 1 << 20


# --- the data --------------------------------------------------------------------------------------------------------


def output_manifest(task_type: str, images: int, seed: int = 0) -> bytes:
    """A consolidated output manifest of ``images`` lines (see the module docstring)."""
    from truthflow.groundtruth.output_manifest import (
        LabeledBox,
        classification_annotation,
        detection_annotation,
        dump_manifest_line,
        output_manifest_line,
    )

    rng = random.Random(seed)
    chunks = []
    for image in range(images):
        data_object = {"source-ref": f"s3://{BUCKET}/jobs/{JOB_ID}/images/{image // 1000}/img{image:07d}.jpg"}
        if task_type == "bounding-box":
            boxes = []
            for _ in range(rng.randint(0, 8)):
                width, height = rng.randint(30, 250), rng.randint(30, 250)
                boxes.append(LabeledBox(rng.choice(BOX_LABELS), rng.randint(0, WIDTH - width),
                                        rng.randint(0, HEIGHT - height), width, height, rng.random()))  # fmt: skip
            annotation = detection_annotation(
                label_attribute_name=ATTRIBUTE, class_names=BOX_LABELS, boxes=boxes, image_width=WIDTH,
                image_height=HEIGHT, job_name=JOB_ID, creation_date="2026-11-20T10:00:00.000000",
            )  # fmt: skip
        else:
            annotation = classification_annotation(
                label_attribute_name=ATTRIBUTE, class_names=CLASS_LABELS, label=CLASS_LABELS[image % 5],
                confidence=rng.random(), job_name=JOB_ID, creation_date="2026-11-20T10:00:00.000000",
            )  # fmt: skip
        chunks.append(dump_manifest_line(output_manifest_line(data_object, annotation)))
    return "".join(chunks).encode()


def put_object(key: str, body: bytes) -> str:
    """Store an object in moto's backend directly (not measured); returns its ETag."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    stored = s3_backends[DEFAULT_ACCOUNT_ID]["global"].put_object(BUCKET, key, body)
    return str(stored.etag).strip('"')


MANIFEST_KEY = f"jobs/{JOB_ID}/dataset/brought.manifest"


def put_job(task_type: str, manifest: bytes) -> dict[str, Any]:
    """The job file, its label-category file and the manifest; returns the events' common part. (The manifest is
    stored in moto for its ETag; the steps read it from a file, see :class:`S3Traffic`.)"""
    labels = BOX_LABELS if task_type == "bounding-box" else CLASS_LABELS
    prefix = f"jobs/{JOB_ID}/"
    etag = put_object(prefix + "job.json", json.dumps({"task_type": task_type, "labels": labels}).encode())
    config = {"document-version": "2018-11-28", "labels": [{"label": label} for label in labels]}
    put_object(prefix + "manifests/label-categories.json", json.dumps(config).encode())
    put_object(MANIFEST_KEY, manifest)
    return {
        "bucket": BUCKET,
        "job_id": JOB_ID,
        "job_file": {"key": prefix + "job.json", "etag": etag},
        "labeling": {
            "labeling_job_name": f"tf-{JOB_ID}-0a1b2c3d",
            "label_attribute_name": ATTRIBUTE,
            "task_type": task_type,
            "label_config_uri": f"s3://{BUCKET}/{prefix}manifests/label-categories.json",
            "start_at": "consolidate",
            "existing_manifest_uri": f"s3://{BUCKET}/{prefix}dataset/brought.manifest",
        },
        "dataset": {"consolidated_manifest_uri": f"s3://{BUCKET}/{prefix}dataset/brought.manifest"},
    }


# --- measuring -------------------------------------------------------------------------------------------------------


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _release_free_memory() -> None:
    """Free what the process no longer uses and reset the peak RSS (Linux clear_refs 5)."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


class S3Traffic:
    """Requests by operation and bytes read and written on one client; writes of keys ``stored`` accepts go to
    moto (the next step reads them), every other write is counted and dropped. Objects in ``from_disk`` (key ->
    local file) are read from that file as S3 streams them: moto copies a whole object into memory for every GET,
    ranged or not, which would put a 700 MB manifest into the memory of every shard."""

    def __init__(self, client: Any, stored: Callable[[str], bool], from_disk: dict[str, Path] | None = None) -> None:
        self.client = client
        self.stored = stored
        self.from_disk = from_disk or {}
        self.requests: collections.Counter[str] = collections.Counter()
        self.read_bytes = 0
        self.written_bytes = 0
        self.stored_bytes = 0

    @contextlib.contextmanager
    def counting(self) -> Iterator[S3Traffic]:
        client = self.client
        saved = (client.upload_fileobj, client.put_object, client.get_object)
        moto_get = client.get_object

        def count(event_name: str, **_: Any) -> None:
            self.requests[event_name.rsplit(".", 1)[-1]] += 1

        def count_read(http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
            if model.name == "GetObject":
                self.read_bytes += int(parsed.get("ContentLength") or 0)

        def put_object(**params: Any) -> dict[str, Any]:
            body = params.get("Body", b"")
            data = body if isinstance(body, bytes) else body.read()
            self._write(params["Key"], data, chunk=None)
            return {"ETag": '"0"'}

        def upload_fileobj(stream: IO[bytes], bucket: str, key: str, **kwargs: Any) -> None:
            config = kwargs.get("Config")
            chunk = getattr(config, "multipart_chunksize", 8 * MIB)
            if self.stored(key):
                self._write(key, stream.read(), chunk=chunk)
                return
            size = 0
            while data := stream.read(8 * MIB):
                size += len(data)
            self._count_write(size, chunk)

        def get_object(**params: Any) -> Any:
            path = self.from_disk.get(params.get("Key", ""))
            if path is None:
                return moto_get(**params)
            self.requests["GetObject"] += 1
            return self._read_from_disk(path, params)

        client.meta.events.register("before-call.s3", count)
        client.meta.events.register("after-call.s3", count_read)
        client.upload_fileobj, client.put_object, client.get_object = upload_fileobj, put_object, get_object
        try:
            yield self
        finally:
            client.upload_fileobj, client.put_object, client.get_object = saved
            client.meta.events.unregister("before-call.s3", count)
            client.meta.events.unregister("after-call.s3", count_read)

    def _read_from_disk(self, path: Path, params: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import ClientError
        from botocore.response import StreamingBody

        etag = f'"{_md5(path)}"'
        if params.get("IfMatch") not in (None, etag):
            raise ClientError({"Error": {"Code": "PreconditionFailed", "Message": "At least one of the pre-conditions "
                                         "you specified did not hold"}}, "GetObject")  # fmt: skip
        size = path.stat().st_size
        start, end = 0, size
        if "Range" in params:
            first, last = params["Range"].removeprefix("bytes=").split("-")
            start, end = int(first), min(int(last) + 1, size)
        self.read_bytes += end - start
        stream = _FileRange(path, start, end - start)
        return {"Body": StreamingBody(stream, end - start), "ETag": etag, "ContentLength": end - start}

    def _write(self, key: str, data: bytes, *, chunk: int | None) -> None:
        self._count_write(len(data), chunk)
        if self.stored(key):
            put_object(key, data)
            self.stored_bytes += len(data)

    def _count_write(self, size: int, chunk: int | None) -> None:
        """One PutObject, or a multipart upload (create, a part per chunk, complete) above the chunk size."""
        self.written_bytes += size
        if chunk is None or size <= chunk:
            self.requests["PutObject"] += 1
        else:
            self.requests["CreateMultipartUpload"] += 1
            self.requests["UploadPart"] += math.ceil(size / chunk)
            self.requests["CompleteMultipartUpload"] += 1


class _FileRange(io.RawIOBase):
    """``length`` bytes of a file from ``start``, read as they are asked for."""

    def __init__(self, path: Path, start: int, length: int) -> None:
        self._file = path.open("rb")
        self._file.seek(start)
        self._left = length

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        wanted = self._left if size is None or size < 0 else min(size, self._left)
        data = self._file.read(wanted)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._file.close()
        super().close()


@functools.lru_cache(maxsize=8)
def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(8 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def measure(call: Callable[[], Any], traffic: S3Traffic | None) -> dict[str, Any]:
    """One call: wall time, S3 traffic, and peak memory (see the module docstring)."""
    _release_free_memory()
    before = _rss_kib("VmRSS")
    with contextlib.redirect_stdout(io.StringIO()), traffic.counting() if traffic else contextlib.nullcontext():
        started = time.perf_counter()
        output = call()
        seconds = time.perf_counter() - started
    stored = traffic.stored_bytes if traffic else 0
    peak = (_rss_kib("VmHWM") - before) / 1024 - stored / MIB
    return {
        "seconds": seconds,
        "peak_mib": max(peak, 0.0),
        "requests": dict(traffic.requests) if traffic else {},
        "read_mb": traffic.read_bytes / 1e6 if traffic else 0.0,
        "written_mb": traffic.written_bytes / 1e6 if traffic else 0.0,
        "output": output,
    }


def aws_seconds(row: dict[str, Any]) -> float:
    requests = sum(row["requests"].values())
    transfer = (row["read_mb"] + row["written_mb"]) * 1e6 / AWS_BYTES_PER_SECOND
    return float(row["seconds"] + requests * AWS_REQUEST_SECONDS / S3_THREADS + transfer)


def capacity(row: dict[str, Any]) -> int:
    """Images a call handles within a third of the Lambda's time and memory, extrapolated from this row."""
    by_time = LAMBDA_SECONDS / MARGIN / aws_seconds(row) * row["images"]
    by_memory = row.get("memory_mb", LAMBDA_MEMORY_MB) / MARGIN / max(row["peak_mib"], 1.0) * row["images"]
    return int(min(by_time, by_memory))


class _Discarded:
    """A training-data destination that counts what it is given and keeps nothing (the one-pass anchor)."""

    def __init__(self) -> None:
        self.files = 0
        self.characters = 0

    @contextlib.contextmanager
    def open_text(self, path: str) -> Iterator[Any]:
        stream = _CountingText(self)
        yield stream
        self.files += 1

    def write_bytes(self, path: str, data: bytes) -> None:
        self.files += 1
        self.characters += len(data)


class _CountingText(io.TextIOBase):
    def __init__(self, owner: _Discarded) -> None:
        self._owner = owner

    def write(self, text: str) -> int:
        self._owner.characters += len(text)
        return len(text)


# --- the steps -------------------------------------------------------------------------------------------------------


def _handlers() -> AbstractContextManager[None]:
    from benchmarks.scale import _handlers_forgotten

    return _handlers_forgotten()


def consolidate_brought_manifest(common: dict[str, Any], images: int) -> dict[str, Any]:
    """ "Consolidate whole job" normalising the brought output manifest."""
    import importlib

    handler = importlib.import_module("reconsolidate.handler")
    event = {"bucket": BUCKET, "job_id": JOB_ID, "labeling": common["labeling"]}
    traffic = S3Traffic(handler.store._client, stored=lambda key: False, from_disk=common["from_disk"])
    row = measure(lambda: handler.lambda_handler(event, _Context()), traffic)
    return {"step": "Consolidate whole job (brought manifest)", "images": images, "calls": 1, "memory_mb": 4096, **row}


def sharded_build(common: dict[str, Any], images: int, task_type: str) -> list[dict[str, Any]]:
    """The three states of "Build training data", call by call."""
    import importlib

    handler = importlib.import_module("build_training_data.handler")
    traffic = lambda: S3Traffic(  # noqa: E731
        handler.s3, stored=lambda key: "/training-shards/" in key, from_disk=common["from_disk"]
    )
    request = {key: common[key] for key in ("bucket", "job_id", "job_file", "labeling", "dataset")}
    plan = measure(lambda: handler.lambda_handler({**request, "step": "plan"}, _Context()), traffic())
    planned = plan["output"]
    shard_list = handler.s3.get_object(Bucket=BUCKET, Key=planned["shard_list"]["key"])["Body"].read()
    shards = []
    for shard in json.loads(shard_list):
        event = {"step": "convert", "bucket": BUCKET, "job_id": JOB_ID, "plan_uri": planned["plan_uri"],
                 "shard": shard}  # fmt: skip
        shards.append({"images": shard["images"], **measure(lambda e=event: handler.lambda_handler(e, _Context()),
                                                            traffic())})  # fmt: skip
    join_event = {**request, "step": "join", "training_plan": planned}
    join = measure(lambda: handler.lambda_handler(join_event, _Context()), traffic())
    rows = [{"step": "Plan training data", "images": images, "calls": 1, **plan}]
    rows.append(_shard_row(shards))
    rows.append({"step": "Join training data", "images": images, "calls": 1, **join})
    return rows


def _shard_row(shards: list[dict[str, Any]]) -> dict[str, Any]:
    """The shards as one row: the slowest shard's time and traffic, the largest peak; the spread in ``spread``."""
    slowest = max(shards, key=lambda shard: shard["seconds"])
    times = [shard["seconds"] for shard in shards]
    return {
        **slowest,
        "step": "Build training data (one shard)",
        "calls": len(shards),
        "images": max(shard["images"] for shard in shards),
        "peak_mib": max(shard["peak_mib"] for shard in shards),
        "spread": f"{min(times):.1f} / {statistics.median(times):.1f} / {max(times):.1f}",
        "total_seconds": sum(times),
    }


def one_pass(manifest: bytes, task_type: str, images: int) -> dict[str, Any]:
    """The anchor: the same conversion in one pass in this process, every file counted and dropped."""
    from truthflow.training_data import ManifestSource, SplitConfig, build_training_data

    labels = BOX_LABELS if task_type == "bounding-box" else CLASS_LABELS
    destination = _Discarded()

    def convert() -> Any:
        source = ManifestSource(lambda: io.BytesIO(manifest), class_names=labels)
        return build_training_data(source, destination, class_names=labels, split=SplitConfig(0.2, 0))

    row = measure(convert, None)
    # Were it a Lambda, each file would be one PutObject: the estimate counts them so.
    row["requests"] = {"files": destination.files}
    row["written_mb"] = destination.characters / 1e6
    return {"step": "anchor: one pass in one process", "images": images, "calls": 1, **row}


def run_task(task_type: str, images: int) -> list[dict[str, Any]]:
    import boto3
    from moto import mock_aws

    manifest = output_manifest(task_type, images)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="truthflow-scale-") as folder, mock_aws(), _handlers():
        path = Path(folder) / "brought.manifest"
        path.write_bytes(manifest)
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        common = put_job(task_type, manifest) | {"from_disk": {MANIFEST_KEY: path}}
        rows.append(consolidate_brought_manifest(common, images))
        rows.extend(sharded_build(common, images, task_type))
    rows.append(one_pass(manifest, task_type, images))
    for row in rows:
        row["task_type"] = task_type
        row["manifest_mb"] = len(manifest) / 1e6
    return rows


def run(sizes: tuple[int, ...] = (100_000, 1_000_000)) -> list[dict[str, Any]]:
    from benchmarks.scale import benchmark_environment

    with benchmark_environment():
        return [row for task in ("bounding-box", "image-classification") for n in sizes for row in run_task(task, n)]


def table(rows: list[dict[str, Any]]) -> str:
    headers = ["step", "task", "images", "calls", "s (shards: min/med/max)", "AWS est. s", "peak MiB", "MB read",
               "MB written", "S3 requests", "capacity (3x margin)"]  # fmt: skip
    body = []
    for row in rows:
        requests = ", ".join(f"{name} {count:,}" for name, count in sorted(row["requests"].items()))
        seconds = row.get("spread") or f"{row['seconds']:.1f}"
        body.append([row["step"], row["task_type"], f"{row['images']:,}", f"{row['calls']}", seconds,
                     f"{aws_seconds(row):.0f}", f"{row['peak_mib']:.0f}", f"{row['read_mb']:.0f}",
                     f"{row['written_mb']:.0f}", requests, f"{capacity(row):,}"])  # fmt: skip
    widths = [max(len(header), *(len(line[i]) for line in body)) for i, header in enumerate(headers)]
    lines = [" | ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True))]
    lines.append("-|-".join("-" * width for width in widths))
    lines += [" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in body]
    return "\n".join(lines)
