"""Memory is bounded by the answers, not by their square: thousands of distinct labels (and, for boxes, thousands of
boxes on one image) must not allocate labels^2 or boxes^2 cells. Peaks are measured with tracemalloc (numpy reports
its buffers to it), never with a clock."""

from __future__ import annotations

import tracemalloc
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truthflow.cli import main
from truthflow.consolidation import box_clustering
from truthflow.consolidation.boxes import Box, ImageAnswers, WorkerAnswer, consolidate_boxes
from truthflow.consolidation.labels import METHODS, consolidate_labels

MIB = 1 << 20


def peak_bytes(run: Callable[[], Any]) -> tuple[int, Any]:
    tracemalloc.start()
    try:
        result = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result


def all_different_labels(n_rows: int = 2000, n_workers: int = 200) -> tuple[list[str], list[str], list[str]]:
    """One answer per item, every answer a different label: per-worker confusion matrices would hold
    200 x 2,000 x 2,000 cells (6.4 GB of float64)."""
    return (
        [f"item {i}" for i in range(n_rows)],
        [f"w{i % n_workers}" for i in range(n_rows)],
        [f"label {i}" for i in range(n_rows)],
    )


@pytest.mark.parametrize("method", METHODS)
def test_two_thousand_distinct_labels_stay_small_with_every_method(method):
    items, workers, labels = all_different_labels()
    peak, result = peak_bytes(lambda: consolidate_labels(items, workers, labels, method=method))
    assert peak < 32 * MIB
    assert result.labels == labels  # each item's only answer is its label
    if method != "mv":
        assert any("too many for a confusion matrix per worker" in note for note in result.notes)


def test_many_labels_with_several_answers_per_item_find_the_agreed_label():
    rng = np.random.default_rng(0)
    items, workers, labels = [], [], []
    for item in range(3000):
        truth = f"label {rng.integers(5000)}"
        for worker in rng.choice(400, 5, replace=False):
            items.append(f"i{item}")
            workers.append(f"w{worker}")
            labels.append(truth if rng.random() < 0.7 else f"label {rng.integers(5000)}")
    agreed = {item: max(set(ls), key=ls.count) for item, ls in _group(items, labels).items()}
    peak, result = peak_bytes(lambda: consolidate_labels(items, workers, labels))
    assert peak < 64 * MIB
    consolidated = dict(zip(result.item_names, result.labels, strict=True))
    assert np.mean([consolidated[item] == label for item, label in agreed.items()]) > 0.97
    assert np.allclose(np.asarray(result.posterior_matrix.sum(axis=1)).ravel(), 1.0)
    worker, _, _, counts = result.counts.cells()
    assert counts.sum() == pytest.approx(len(items))  # every answer spread over its item's labels
    answered = Counter(workers)
    assert np.allclose(np.bincount(worker, weights=counts), [answered[name] for name in result.worker_names])


def _group(items: list[str], labels: list[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for item, label in zip(items, labels, strict=True):
        grouped.setdefault(item, []).append(label)
    return grouped


@pytest.mark.parametrize("method", ["mv", "auto"])
def test_the_command_line_with_two_thousand_distinct_labels(tmp_path, capsys, method):
    items, workers, labels = all_different_labels()
    answers = tmp_path / "answers.csv"
    answers.write_text(
        "item,worker,label\n" + "".join(f"{i},{w},{lab}\n" for i, w, lab in zip(items, workers, labels, strict=True)),
        encoding="utf-8",
    )
    args = ["consolidate", "--answers", str(answers), "--out", str(tmp_path / "out.csv"), "--method", method]
    peak, status = peak_bytes(lambda: main(args))
    assert status == 0
    assert peak < 32 * MIB
    assert "2000 items consolidated" in capsys.readouterr().out


# --- boxes -------------------------------------------------------------------------------------------------------


def crowded_image(n_workers: int, n_objects: int, seed: int = 0) -> list[ImageAnswers]:
    """Every worker boxes the same ``n_objects`` people in one large image, each box jittered by a few pixels."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform([50, 50], [3950, 2950], size=(n_objects, 2))
    answers = []
    for worker in range(n_workers):
        jittered = centres + rng.normal(0, 2, size=centres.shape)
        answers.append(WorkerAnswer(f"w{worker}", tuple(Box("person", x - 15, y - 30, 30, 60) for x, y in jittered)))
    return [ImageAnswers("crowd.jpg", 4000.0, 3000.0, tuple(answers))]


def test_ten_thousand_boxes_on_one_image_stay_small_and_are_consolidated():
    # 10 workers x 1,000 people: (N, N) arrays would hold 10^8 cells (800 MB each).
    images = crowded_image(10, 1000)
    peak, result = peak_bytes(lambda: consolidate_boxes(images, label_set=["person"]))
    assert peak < 64 * MIB
    consolidated = result.boxes["crowd.jpg"]
    assert 990 <= len(consolidated) <= 1010  # neighbours that overlap may split or merge once in a while
    assert np.mean([box.n_workers == 10 for box in consolidated]) > 0.95


def test_a_pile_of_identical_boxes_stays_small():
    pile = tuple(WorkerAnswer(f"w{w}", tuple(Box("person", 10, 10, 50, 50) for _ in range(1000))) for w in range(10))
    peak, result = peak_bytes(
        lambda: consolidate_boxes([ImageAnswers("pile", 100.0, 100.0, pile)], label_set=["person"])
    )
    assert peak < 64 * MIB
    boxes = result.boxes["pile"] + result.dropped["pile"]
    assert sum(box.n_workers for box in boxes) == 10_000  # every box is accounted for


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_cutting_a_large_image_into_groups_changes_no_cluster(seed):
    # Objects far enough apart that no group exceeds 4 boxes: the cut must reproduce the uncut clustering exactly.
    rng = np.random.default_rng(seed)
    n_objects = 12
    corners, workers = [], []
    for obj in range(n_objects):
        x, y = 100.0 * obj, 100.0 * rng.integers(0, 3)
        for worker in range(3):
            left, top = x + rng.normal(0, 3), y + rng.normal(0, 3)
            corners.append((left, top, left + 40 + rng.normal(0, 3), top + 60 + rng.normal(0, 3)))
            workers.append(worker)
    corners_array, workers_array = np.array(corners), np.array(workers, dtype=np.int64)
    image = np.zeros(len(corners), dtype=np.int64)
    uncut = box_clustering.cluster_boxes(image, workers_array, corners_array, 1, threshold=0.3, linkage="single")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(box_clustering, "MAX_DENSE_BOXES", 4)
        cut = box_clustering.cluster_boxes(image, workers_array, corners_array, 1, threshold=0.3, linkage="single")
    assert cut.tolist() == uncut.tolist()
