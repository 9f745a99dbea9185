"""Speed of the Ground Truth-facing code: the ACS Lambda on a full batch, and the training-data converters.

(a) The annotation-consolidation handler (``lambdas/annotation_consolidation/handler.py``) called through
    ``lambda_handler`` inside moto, as its tests call it: a 1,000-object payload, 5 workers per object, each drawing
    up to 10 boxes (0-8 real objects per image, each missed with probability 0.1, edges jittered by a few pixels, and
    a spurious box now and then), 3 labels, no worker-skill table. Time per invocation is the median of several
    runs (S3 read of the payload included, moto in-process). Cold import: ``import annotation_consolidation.handler``
    timed inside a fresh interpreter (boto3, Powertools, numpy, scipy, pydantic and our core), median of 3.
    Targets: < 1 s per batch, < 0.5 s import.
(b) ``build_training_data`` streaming a generated detection output manifest (1-5 boxes per image, 3 classes) from a
    local file into a destination that discards what it is given (so the figure is the converter, not the disk):
    the augmented manifest alone and every format (augmented manifest, .lst, YOLO, COCO, VOC), best of 2 runs after a
    warm-up. Peak memory is
    ``tracemalloc``'s peak in a separate run of all formats, at 10,000 and 100,000 lines: flat memory means the two
    peaks are close (the conversion's plan keeps 32 bytes per image by design, ~3 MB per 100,000 lines: split
    hash, stratum, kept boxes, stem hash and renamed-name hash, what fixes every shard exactly). Target:
    >= 20,000 lines/s.

Run ``.venv/bin/python -m benchmarks.groundtruth_handlers``; it prints a table and takes under two minutes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

REPO = Path(__file__).resolve().parents[1]
LAMBDAS = REPO / "lambdas"
if str(LAMBDAS) not in sys.path:
    sys.path.insert(0, str(LAMBDAS))

from truthflow.training_data import ManifestSource, build_training_data  # noqa: E402

BUCKET = "truthflow-bench"
REGION = "us-east-1"
LABELS = ["pen", "pencil", "marker"]
IMAGE_WIDTH, IMAGE_HEIGHT = 1280, 960
ACS_OBJECTS, ACS_WORKERS, ACS_MAX_BOXES = 1_000, 5, 10
ACS_RUNS, IMPORT_RUNS, CONVERTER_RUNS = 5, 3, 2
CONVERTER_SIZES = (10_000, 100_000)
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "POWERTOOLS_SERVICE_NAME": "truthflow-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "truthflow",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
}


# --- (a) the ACS handler -------------------------------------------------------------------------------------------


def acs_payload(seed: int = 0) -> list[dict[str, Any]]:
    """A batch as Ground Truth sends it: answers as JSON strings, at most ``ACS_MAX_BOXES`` boxes per answer."""
    rng = random.Random(seed)
    payload = []
    for object_id in range(ACS_OBJECTS):
        truth = []
        for _ in range(rng.randint(0, 8)):
            width, height = rng.uniform(40, 300), rng.uniform(40, 300)
            left, top = rng.uniform(0, IMAGE_WIDTH - width), rng.uniform(0, IMAGE_HEIGHT - height)
            truth.append((rng.choice(LABELS), left, top, width, height))
        annotations = []
        for worker in range(ACS_WORKERS):
            drawn = [
                {
                    "label": label,
                    "left": round(left + rng.gauss(0, 4)),
                    "top": round(top + rng.gauss(0, 4)),
                    "width": round(max(2.0, width + rng.gauss(0, 6))),
                    "height": round(max(2.0, height + rng.gauss(0, 6))),
                }
                for label, left, top, width, height in truth
                if rng.random() > 0.1
            ]
            if rng.random() < 0.2:
                drawn.append({"label": rng.choice(LABELS), "left": 10, "top": 10, "width": 50, "height": 50})
            content = {
                "boundingBox": {
                    "boundingBoxes": drawn[:ACS_MAX_BOXES],
                    "inputImageProperties": {"width": IMAGE_WIDTH, "height": IMAGE_HEIGHT},
                }
            }
            annotations.append(
                {"workerId": f"private.us-east-1.worker{worker}", "annotationData": {"content": json.dumps(content)}}
            )
        payload.append(
            {
                "datasetObjectId": str(object_id),
                "dataObject": {"s3Uri": f"s3://{BUCKET}/images/{object_id}.jpg"},
                "annotations": annotations,
            }
        )
    return payload


@contextlib.contextmanager
def emulated_aws() -> Iterator[Any]:
    """moto with the environment the stack gives the Lambda; yields an S3 client with the bench bucket."""
    import boto3
    from moto import mock_aws

    saved = {name: os.environ.get(name) for name in ENVIRONMENT}
    os.environ.update(ENVIRONMENT)
    try:
        with mock_aws():
            client = boto3.client("s3", region_name=REGION)
            client.create_bucket(Bucket=BUCKET)
            yield client
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _Context:
    function_name = "truthflow-bench"
    memory_limit_in_mb = 1769
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:truthflow-bench"
    aws_request_id = "00000000-0000-0000-0000-000000000000"


def time_acs_handler() -> dict[str, object]:
    payload = acs_payload()
    n_boxes = sum(
        len(json.loads(a["annotationData"]["content"])["boundingBox"]["boundingBoxes"])
        for obj in payload
        for a in obj["annotations"]
    )
    key = "labeling/job/annotations/consolidated-annotation/consolidation-request/iteration-1/batch.json"
    event = {
        "version": "2018-10-06",
        "labelingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:labeling-job/bench-job",
        "labelCategories": LABELS,
        "labelAttributeName": "bench-job",
        "roleArn": "arn:aws:iam::123456789012:role/gt-role",
        "payload": {"s3Uri": f"s3://{BUCKET}/{key}"},
    }
    with emulated_aws() as s3:
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(payload).encode())
        sys.modules.pop("annotation_consolidation.handler", None)
        import annotation_consolidation.handler as handler

        seconds = []
        for _ in range(ACS_RUNS):
            # Powertools prints metrics (EMF) and logs to stdout: keep them out of the table.
            with contextlib.redirect_stdout(io.StringIO()):
                started = time.perf_counter()
                response = handler.lambda_handler(event, _Context())
                seconds.append(time.perf_counter() - started)
    assert len(response) == ACS_OBJECTS
    return {
        "benchmark": "ACS handler, 1,000 objects x 5 workers (in-process, moto)",
        "size": f"{n_boxes:,} boxes",
        "value": statistics.median(seconds),
        "unit": "s / batch (median)",
        "target": "< 1 s",
        "met": statistics.median(seconds) < 1.0,
        "runs": [round(value, 3) for value in seconds],
    }


def time_cold_import() -> dict[str, object]:
    code = (
        "import time; started = time.perf_counter(); import annotation_consolidation.handler; "
        "print(time.perf_counter() - started)"
    )
    environment = {**os.environ, **ENVIRONMENT, "PYTHONPATH": str(LAMBDAS)}
    seconds = []
    for _ in range(IMPORT_RUNS):
        completed = subprocess.run(
            [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True, cwd=REPO
        )
        seconds.append(float(completed.stdout.strip().splitlines()[-1]))
    heaviest = heaviest_imports(environment)
    return {
        "benchmark": "ACS handler module, cold import (fresh interpreter)",
        "size": "heaviest: " + ", ".join(f"{name} {value:.2f}s" for name, value in heaviest),
        "value": statistics.median(seconds),
        "unit": "s (median)",
        "target": "< 0.5 s",
        "met": statistics.median(seconds) < 0.5,
        "runs": [round(value, 3) for value in seconds],
    }


def heaviest_imports(environment: dict[str, str], top: int = 4) -> list[tuple[str, float]]:
    """The handler module's direct imports with the largest cumulative import time (``python -X importtime``;
    a module shared by several is charged to the first that imports it)."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import annotation_consolidation.handler"],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    direct: list[tuple[str, float]] = []
    for line in completed.stderr.splitlines():
        # "import time: self [us] | cumulative | <two spaces per nesting level><module>"
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].removeprefix(" ")
        if name.startswith("  ") and not name.startswith("   "):
            direct.append((name.strip(), int(parts[1]) / 1e6))
    return sorted(direct, key=lambda item: -item[1])[:top]


# --- (b) the converters ----------------------------------------------------------------------------------------------


def write_detection_manifest(path: Path, lines: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    attribute = "bench-job"
    with path.open("w", encoding="utf-8") as stream:
        for index in range(lines):
            annotations, objects, class_map = [], [], {}
            for _ in range(rng.randint(1, 5)):
                class_id = rng.randrange(len(LABELS))
                width, height = rng.randint(10, 300), rng.randint(10, 300)
                annotations.append(
                    {
                        "class_id": class_id,
                        "left": rng.randint(0, IMAGE_WIDTH - width),
                        "top": rng.randint(0, IMAGE_HEIGHT - height),
                        "width": width,
                        "height": height,
                    }
                )
                objects.append({"confidence": round(rng.random(), 2)})
                class_map[str(class_id)] = LABELS[class_id]
            line = {
                "source-ref": f"s3://{BUCKET}/jobs/bench/images/{index // 1000}/img{index:06d}.jpg",
                attribute: {
                    "image_size": [{"width": IMAGE_WIDTH, "height": IMAGE_HEIGHT, "depth": 3}],
                    "annotations": annotations,
                },
                f"{attribute}-metadata": {
                    "objects": objects,
                    "class-map": class_map,
                    "type": "groundtruth/object-detection",
                    "human-annotated": "yes",
                    "creation-date": "2024-05-01T10:00:00.000000",
                    "job-name": "labeling-job/bench-job",
                },
            }
            stream.write(json.dumps(line, separators=(",", ":")) + "\n")


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


class DiscardDestination:
    """A destination that accepts every file and keeps nothing (only a count of characters)."""

    def __init__(self) -> None:
        self.characters = 0
        self.files = 0

    @contextlib.contextmanager
    def open_text(self, path: str) -> Iterator[TextIO]:
        self.files += 1
        yield _Discard()  # type: ignore[misc]

    def write_bytes(self, path: str, data: bytes) -> None:
        self.files += 1
        self.characters += len(data)


def convert(path: Path, formats: list[str] | None, *, trace_memory: bool) -> tuple[float, float | None, int]:
    destination = DiscardDestination()
    if trace_memory:
        tracemalloc.start()
    started = time.perf_counter()
    build_training_data(ManifestSource.from_path(path), destination, formats=formats, class_names=LABELS)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    peak = None
    if trace_memory:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return seconds, peak, destination.files


def time_converters() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as folder:
        warm_up = Path(folder) / "warm-up.manifest"
        write_detection_manifest(warm_up, 1_000)
        convert(warm_up, None, trace_memory=False)
        for lines in CONVERTER_SIZES:
            path = Path(folder) / f"output-{lines}.manifest"
            write_detection_manifest(path, lines)
            for name, formats in (("augmented manifest", ["augmented-manifest"]), ("all formats", None)):
                timings = [convert(path, formats, trace_memory=False) for _ in range(CONVERTER_RUNS)]
                seconds, files = min(timing[0] for timing in timings), timings[0][2]
                rate = lines / seconds
                rows.append(
                    {
                        "benchmark": f"converters, {name}",
                        "size": f"{lines:,} lines, {files:,} files",
                        "value": rate,
                        "unit": "lines/s",
                        "target": ">= 20,000",
                        "met": rate >= 20_000,
                        "runs": [round(timing[0], 2) for timing in timings],
                    }
                )
            _, peak, _ = convert(path, None, trace_memory=True)
            rows.append(
                {
                    "benchmark": "converters, all formats, peak memory (tracemalloc)",
                    "size": f"{lines:,} lines",
                    "value": peak,
                    "unit": "MiB",
                    "target": "flat: 100k <= 2 x 10k + 5 MiB",
                    "met": None,
                    "runs": [],
                }
            )
    peaks = [float(row["value"]) for row in rows if row["unit"] == "MiB"]  # type: ignore[arg-type]
    flat = peaks[-1] <= 2 * peaks[0] + 5
    for row in rows:
        if row["unit"] == "MiB":
            row["met"] = flat
    return rows


def run() -> list[dict[str, object]]:
    """Every measurement as a row: benchmark, size, value, unit, target, met (bool or None), runs."""
    return [time_acs_handler(), time_cold_import(), *time_converters()]


def table(rows: list[dict[str, object]]) -> str:
    headers = ["benchmark", "size", "value", "unit", "target", "met"]
    body = []
    for row in rows:
        value = float(row["value"])  # type: ignore[arg-type]
        shown = f"{value:,.0f}" if value >= 1000 else f"{value:.3f}" if value < 10 else f"{value:.1f}"
        met = {True: "yes", False: "NO", None: ""}[row["met"]]  # type: ignore[index]
        body.append([str(row["benchmark"]), str(row["size"]), shown, str(row["unit"]), str(row["target"]), met])
    widths = [max(len(header), *(len(line[i]) for line in body)) for i, header in enumerate(headers)]
    lines = [" | ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True))]
    lines.append("-|-".join("-" * width for width in widths))
    lines += [" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in body]
    return "\n".join(lines)


def main() -> int:
    started = time.perf_counter()
    rows = run()
    print("## Ground Truth handlers and converters\n")
    print(table(rows))
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
