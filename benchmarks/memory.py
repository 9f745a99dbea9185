"""Peak memory of consolidation on inputs whose naive arrays grow with the square of the input (``tracemalloc``
peaks; numpy reports its buffers to it). Targets: far below what the square would need, linear in the answers."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from truthflow.consolidation.boxes import Box, ImageAnswers, WorkerAnswer, consolidate_boxes
from truthflow.consolidation.labels import METHODS, consolidate_labels

MIB = 1 << 20


def peak_mib(run: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / MIB


def distinct_labels(n_rows: int, n_workers: int) -> tuple[list[str], list[str], list[str]]:
    return (
        [f"item {i}" for i in range(n_rows)],
        [f"w{i % n_workers}" for i in range(n_rows)],
        [f"label {i}" for i in range(n_rows)],
    )


def crowded_image(n_workers: int, boxes_per_worker: int, seed: int = 0) -> list[ImageAnswers]:
    """One 4,000 x 3,000 image on which every worker boxes the same ``boxes_per_worker`` small objects, jittered."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform([50, 50], [3950, 2950], size=(boxes_per_worker, 2))
    answers = []
    for worker in range(n_workers):
        jitter = rng.normal(0, 2, size=centres.shape)
        boxes = tuple(Box("person", x - 15, y - 30, 30, 60) for x, y in centres + jitter)
        answers.append(WorkerAnswer(f"w{worker}", boxes))
    return [ImageAnswers("crowd.jpg", 4000.0, 3000.0, tuple(answers))]


def rows() -> list[dict[str, object]]:
    result: list[dict[str, object]] = []
    items, workers, labels = distinct_labels(2000, 200)
    dense = 200 * 2000 * 2000 * 8 / MIB
    for method in METHODS:
        result.append(
            {
                "case": f"2,000 answers, 2,000 distinct labels, 200 workers, --method {method}",
                "peak MiB": peak_mib(lambda m=method: consolidate_labels(items, workers, labels, method=m)),
                "dense would need MiB": dense,
            }
        )
    rng = np.random.default_rng(0)
    n = 100_000
    many_items = [f"i{i // 5}" for i in range(n)]
    many_workers = [f"w{w}" for w in rng.integers(0, 500, n)]
    many_labels = [f"l{k}" for k in rng.integers(0, 5000, n)]
    result.append(
        {
            "case": "100,000 answers, 5,000 labels, 500 workers (auto)",
            "peak MiB": peak_mib(lambda: consolidate_labels(many_items, many_workers, many_labels)),
            "dense would need MiB": 500 * 5000 * 5000 * 8 / MIB,
        }
    )
    images = crowded_image(10, 1000)
    result.append(
        {
            "case": "one image, 10 workers x 1,000 boxes (consolidate_boxes)",
            "peak MiB": peak_mib(lambda: consolidate_boxes(images, label_set=["person"])),
            "dense would need MiB": 10_000 * 10_000 * 8 / MIB,
        }
    )
    return result
