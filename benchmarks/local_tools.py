"""Speed of the offline run's own tools, which the test suite used to time (tests keep only what they check).

(a) The report of a 200-image box run (5 workers per image, 0-4 boxes each, 6 sample images): ``write_report`` from
    its inputs to the written HTML and figures. Target < 3 s. Anchor, measured in the same run: one empty matplotlib
    figure saved as a PNG (the report draws four figures and six thumbnails), so a slow machine shows as a slow
    anchor too.
(b) The generated sample job of 40 images (``make_sample_job``), per task type, after a warm-up. Target < 1 s.
    Anchor: encoding one 1280x960 RGB PNG with Pillow (the sample encodes 40 such images).

Each figure is the best of a few runs. Run ``.venv/bin/python -m benchmarks.local_tools``.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LAMBDAS = REPO / "lambdas"
if str(LAMBDAS) not in sys.path:
    sys.path.insert(0, str(LAMBDAS))

from truthflow.local.report import ReportInputs, write_report  # noqa: E402
from truthflow.local.sample_data import make_sample_job  # noqa: E402

RUNS = 3
REPORT_IMAGES, REPORT_WORKERS = 200, 5
SAMPLE_IMAGES = 40


def best_seconds(work: Callable[[], object], runs: int = RUNS) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 150)).save(buffer, format="PNG")
    return buffer.getvalue()


def report_inputs(seed: int = 3) -> ReportInputs:
    """The 200-image box run the report test used to time: gold boxes, five jittered workers, gold as consolidated."""
    rng = np.random.default_rng(seed)
    gold: dict[str, list[dict[str, float | str]]] = {}
    answers: dict[str, dict[str, list[dict[str, float | str]]]] = {}
    for index in range(REPORT_IMAGES):
        boxes: list[dict[str, float | str]] = []
        for _ in range(int(rng.integers(0, 5))):
            left, top = map(float, rng.uniform(0, 300, 2))
            width, height = map(float, rng.uniform(20, 90, 2))
            label = str(rng.choice(["car", "person"]))
            boxes.append({"label": label, "left": left, "top": top, "width": width, "height": height})
        name = f"img{index}"
        gold[name] = boxes
        answers[name] = {
            f"w{worker}": [
                {**box, "left": float(box["left"]) + float(rng.normal(0, 3))} for box in boxes if rng.random() > 0.1
            ]
            for worker in range(REPORT_WORKERS)
        }
    return ReportInputs(
        task_type="bounding-box",
        labels=["car", "person"],
        gold=gold,  # type: ignore[arg-type]
        worker_answers=answers,  # type: ignore[arg-type]
        consolidated=gold,  # type: ignore[arg-type]
        sample_images={f"img{index}": _png(640, 480) for index in range(6)},
    )


def time_report() -> dict[str, object]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inputs = report_inputs()

    def empty_figure() -> None:
        figure = plt.figure(figsize=(6, 4))
        figure.savefig(io.BytesIO(), format="png")
        plt.close(figure)

    with tempfile.TemporaryDirectory() as folder:
        write_report(inputs, Path(folder) / "warm-up")
        seconds = best_seconds(lambda: write_report(inputs, Path(folder) / "report"))
    return {
        "benchmark": f"report of a {REPORT_IMAGES}-image box run",
        "value": seconds,
        "anchor": "one empty matplotlib figure saved as PNG",
        "anchor_value": best_seconds(empty_figure),
        "target": "< 3 s",
        "met": seconds < 3.0,
    }


def time_sample_jobs() -> list[dict[str, object]]:
    make_sample_job(n_images=1, seed=99)  # imports and caches warmed
    anchor = best_seconds(lambda: _png(1280, 960))
    rows: list[dict[str, object]] = []
    for task_type in ("bounding-box", "image-classification"):
        seconds = best_seconds(lambda: make_sample_job(task_type=task_type, n_images=SAMPLE_IMAGES, seed=5))  # type: ignore[arg-type]  # noqa: B023
        rows.append(
            {
                "benchmark": f"sample job, {SAMPLE_IMAGES} images, {task_type}",
                "value": seconds,
                "anchor": "one 1280x960 PNG encoded by Pillow",
                "anchor_value": anchor,
                "target": "< 1 s",
                "met": seconds < 1.0,
            }
        )
    return rows


def run() -> list[dict[str, object]]:
    return [time_report(), *time_sample_jobs()]


def table(rows: list[dict[str, object]]) -> str:
    headers = ["benchmark", "seconds", "anchor", "anchor s", "target", "met"]
    body = [
        [
            str(row["benchmark"]),
            f"{float(row['value']):.3f}",  # type: ignore[arg-type]
            str(row["anchor"]),
            f"{float(row['anchor_value']):.4f}",  # type: ignore[arg-type]
            str(row["target"]),
            "yes" if row["met"] else "NO",
        ]
        for row in rows
    ]
    widths = [max(len(header), *(len(line[i]) for line in body)) for i, header in enumerate(headers)]
    lines = [" | ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True))]
    lines.append("-|-".join("-" * width for width in widths))
    lines += [" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in body]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run()))
