"""Tests of bounding-box consolidation (truthflow.consolidation.boxes) and its metrics (box_metrics)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from truthflow.consolidation import box_clustering
from truthflow.consolidation.box_metrics import DetectionScore, iou, iou_matrix, match_boxes, score_image
from truthflow.consolidation.boxes import (
    Box,
    BoxConsolidation,
    ConsolidatedBox,
    ImageAnswers,
    WorkerAnswer,
    consolidate_boxes,
)

LABELS = ["pedestrian"]


def box(left: float, top: float, width: float, height: float, label: str = "pedestrian") -> Box:
    return Box(label, left, top, width, height)


def image(name: str, *answers: WorkerAnswer, width: float | None = 640.0, height: float | None = 480.0) -> ImageAnswers:
    return ImageAnswers(name, width, height, answers)


def answer(worker: str, *drawn: Box) -> WorkerAnswer:
    return WorkerAnswer(worker, drawn)


def members(result: BoxConsolidation) -> Counter[tuple[str, str]]:
    """(image, worker) once per box that ended up in a kept or dropped cluster, or rejected."""
    counted: Counter[tuple[str, str]] = Counter()
    for group in (result.boxes, result.dropped):
        for name, found in group.items():
            for consolidated in found:
                counted.update((name, worker) for worker in consolidated.workers)
    counted.update((rejected.image, rejected.worker) for rejected in result.rejected)
    return counted


# --- consolidation: known answers ---------------------------------------------------------------------------------


def test_two_agreeing_workers_give_one_box_at_the_median() -> None:
    data = [image("1", answer("A", box(100, 100, 50, 120)), answer("B", box(104, 96, 50, 128)))]
    result = consolidate_boxes(data, label_set=LABELS)
    assert result.rejected == []
    [only] = result.boxes["1"]
    # Two boxes: their per-edge median is the midpoint; the skill model weighs two equally skilled workers equally.
    assert (only.left, only.top) == pytest.approx((102.0, 98.0))
    assert (only.left + only.width, only.top + only.height) == pytest.approx((152.0, 222.0))
    assert only.n_workers == 2
    assert only.confidence == pytest.approx(1.0)
    assert sorted(only.workers) == ["A", "B"]


def test_median_coordinates_of_three_workers() -> None:
    data = [
        image(
            "1",
            answer("A", box(100, 100, 50, 100)),
            answer("B", box(110, 90, 50, 120)),
            answer("C", box(104, 94, 40, 110)),
        )
    ]
    [only] = consolidate_boxes(data, label_set=LABELS, coordinates="median").boxes["1"]
    assert (only.left, only.top, only.left + only.width, only.top + only.height) == pytest.approx((104, 94, 150, 204))


def test_a_workers_two_overlapping_boxes_never_share_a_cluster() -> None:
    data = [
        image(
            "1",
            answer("A", box(100, 100, 50, 100), box(102, 102, 50, 100)),  # IoU ~0.9 with each other
            answer("B", box(101, 101, 50, 100)),
            answer("C", box(100, 101, 50, 100)),
        )
    ]
    result = consolidate_boxes(data, label_set=LABELS)
    clusters = result.boxes["1"] + result.dropped["1"]
    assert all(len(set(c.workers)) == len(c.workers) for c in clusters)
    assert sorted(c.n_workers for c in clusters) == [1, 3]
    [kept] = result.boxes["1"]
    assert sorted(kept.workers) == ["A", "B", "C"]
    [dropped] = result.dropped["1"]
    assert dropped.workers == ("A",)


def test_empty_answers_count_toward_the_quorum() -> None:
    lonely = image("1", answer("A", box(10, 10, 30, 60)), *(answer(w) for w in "BCDE"))
    result = consolidate_boxes([lonely], label_set=LABELS)
    assert result.boxes == {"1": []}
    [dropped] = result.dropped["1"]
    assert dropped.n_workers == 1
    assert dropped.confidence == pytest.approx(1 / 5)
    # The same box with only one worker who saw the image is kept.
    alone = consolidate_boxes([image("1", answer("A", box(10, 10, 30, 60)))], label_set=LABELS)
    assert len(alone.boxes["1"]) == 1


def test_quorum_is_at_least_half_by_default() -> None:
    def drawn_by(k: int, n: int) -> ImageAnswers:
        return image(
            "1", *(answer(f"w{i}", box(10 + i, 10, 30, 60)) for i in range(k)), *(answer(f"e{i}") for i in range(n - k))
        )

    assert len(consolidate_boxes([drawn_by(3, 5)], label_set=LABELS).boxes["1"]) == 1
    assert len(consolidate_boxes([drawn_by(2, 5)], label_set=LABELS).boxes["1"]) == 0
    assert len(consolidate_boxes([drawn_by(2, 4)], label_set=LABELS).boxes["1"]) == 1
    assert len(consolidate_boxes([drawn_by(2, 5)], label_set=LABELS, quorum=0.4).boxes["1"]) == 1


def test_separate_objects_stay_separate() -> None:
    left, right = box(10, 10, 40, 100), box(300, 20, 40, 100)
    data = [image("1", answer("A", left, right), answer("B", right, left), answer("C", left))]
    result = consolidate_boxes(data, label_set=LABELS)
    found = sorted(result.boxes["1"], key=lambda b: b.left)
    assert [b.n_workers for b in found] == [3, 2]
    assert found[0].left == pytest.approx(10) and found[1].left == pytest.approx(300)
    assert found[1].confidence == pytest.approx(2 / 3)


def test_majority_label_and_dawid_skene_resolve_disagreement() -> None:
    labels = ["cat", "dog"]
    data = []
    # Twenty images where A, C and D label correctly and B swaps cat and dog: Dawid-Skene learns B's confusion.
    for i in range(20):
        truth, swapped = ("cat", "dog") if i % 2 else ("dog", "cat")
        data.append(
            image(
                f"train{i}",
                answer("A", box(10 + i, 10, 40, 40, truth)),
                answer("B", box(10 + i, 10, 40, 40, swapped)),
                answer("C", box(10 + i, 10, 40, 40, truth)),
                answer("D", box(10 + i, 10, 40, 40, truth)),
            )
        )
    # A tie between A ("dog") and B ("cat", which from B means dog): majority vote cannot decide, Dawid-Skene can.
    data.append(image("tie", answer("A", box(5, 5, 40, 40, "dog")), answer("B", box(5, 5, 40, 40, "cat"))))
    result = consolidate_boxes(data, label_set=labels)
    assert [b.label for b in result.boxes["train1"]] == ["cat"]
    [tie] = result.boxes["tie"]
    assert tie.label == "dog"
    assert 0.0 < tie.confidence < 1.0  # a disputed label carries its posterior into the confidence
    # Unanimous clusters keep their label with full label confidence.
    unanimous = consolidate_boxes([image("u", answer("A", box(1, 1, 9, 9, "dog")))], label_set=labels)
    assert unanimous.boxes["u"][0].label == "dog" and unanimous.boxes["u"][0].confidence == 1.0


def test_bad_boxes_are_rejected_with_reasons_naming_image_and_worker() -> None:
    data = [
        image(
            "101264",
            answer("A1HB", box(10, 10, 0, 50)),  # zero width
            answer("NAN", box(math.nan, 10, 20, 50)),
            answer("INF", box(10, 10, math.inf, 50)),
            answer("LBL", box(10, 10, 20, 50, label="cyclist")),
            answer("OUT", box(700, 10, 20, 50)),  # right of a 640-wide image
            answer("NEG", box(10, 10, 20, -5)),
            answer("OK", box(10, 10, 20, 50)),
        )
    ]
    result = consolidate_boxes(data, label_set=LABELS)
    reasons = {r.worker: r.reason for r in result.rejected}
    assert set(reasons) == {"A1HB", "NAN", "INF", "LBL", "OUT", "NEG"}
    for worker, reason in reasons.items():
        assert reason.startswith(f"image 101264, worker {worker}: ")
    assert "zero or negative width" in reasons["A1HB"]
    assert "non-finite" in reasons["NAN"] and "non-finite" in reasons["INF"]
    assert "'cyclist' is not in the label set" in reasons["LBL"]
    assert "zero or negative width after clipping to 640x480" in reasons["OUT"]
    assert "zero or negative height (-5)" in reasons["NEG"]
    assert all(r.image == "101264" for r in result.rejected)
    assert {r.box for r in result.rejected} == {a.boxes[0] for a in data[0].answers if a.worker != "OK"}
    assert members(result)[("101264", "OK")] == 1


def test_boxes_are_clipped_to_the_image() -> None:
    sticking_out = box(-20, 400, 60, 120)  # 640x480 image: clipped to x 0..40, y 400..480
    data = [image("1", answer("A", sticking_out), answer("B", sticking_out))]
    [only] = consolidate_boxes(data, label_set=LABELS).boxes["1"]
    assert (only.left, only.top, only.width, only.height) == pytest.approx((0, 400, 40, 80))
    # Unknown size: nothing to clip to, the box is kept as drawn.
    unknown = [image("1", answer("A", sticking_out), answer("B", sticking_out), width=None, height=None)]
    [raw] = consolidate_boxes(unknown, label_set=LABELS).boxes["1"]
    assert (raw.left, raw.top, raw.width, raw.height) == pytest.approx((-20, 400, 60, 120))


def test_every_input_image_is_in_the_output() -> None:
    data = [
        image("no answers"),
        image("only empty", answer("A"), answer("B")),
        image("only rejected", answer("A", box(1, 1, -1, 1))),
        image("normal", answer("A", box(1, 1, 10, 10))),
    ]
    result = consolidate_boxes(data, label_set=LABELS)
    assert list(result.boxes) == [d.image for d in data]
    assert list(result.dropped) == [d.image for d in data]
    assert result.boxes["no answers"] == [] and result.boxes["only empty"] == []
    assert consolidate_boxes([], label_set=LABELS) == BoxConsolidation(boxes={}, rejected=[], dropped={})


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError, match="unique"):
        consolidate_boxes([image("1"), image("1")], label_set=LABELS)
    with pytest.raises(ValueError, match="iou_threshold"):
        consolidate_boxes([], label_set=LABELS, iou_threshold=0.0)
    with pytest.raises(ValueError, match="quorum"):
        consolidate_boxes([], label_set=LABELS, quorum=1.5)
    with pytest.raises(ValueError, match="linkage"):
        consolidate_boxes([], label_set=LABELS, linkage="ward")  # type: ignore[arg-type]


# --- clustering: the batched mutual-nearest-pair merges equal one-pair-at-a-time greedy agglomeration -------------


def _reference_partition(
    corners: np.ndarray, workers: list[int], threshold: float, linkage: str
) -> set[frozenset[int]]:
    """Textbook greedy agglomeration with cannot-link, one merge at a time (slow, obviously correct)."""
    overlap = iou_matrix(
        np.column_stack([corners[:, 0], corners[:, 1], corners[:, 2] - corners[:, 0], corners[:, 3] - corners[:, 1]]),
        np.column_stack([corners[:, 0], corners[:, 1], corners[:, 2] - corners[:, 0], corners[:, 3] - corners[:, 1]]),
    )
    clusters = [[i] for i in range(len(workers))]
    while True:
        best, pair = -1.0, None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                if {workers[i] for i in clusters[a]} & {workers[j] for j in clusters[b]}:
                    continue
                values = [overlap[i, j] for i in clusters[a] for j in clusters[b]]
                link = {"single": max, "complete": min}.get(linkage, lambda v: sum(v) / len(v))(values)
                if link > best:
                    best, pair = link, (a, b)
        if pair is None or best < threshold:
            return {frozenset(c) for c in clusters}
        a, b = pair
        clusters[a] = clusters[a] + clusters[b]
        del clusters[b]


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    n_boxes=st.integers(1, 12),
    linkage=st.sampled_from(["single", "average", "complete"]),
    threshold=st.sampled_from([0.1, 0.3, 0.5]),
)
def test_batched_clustering_matches_greedy_reference(
    data: st.DataObject, n_boxes: int, linkage: str, threshold: float
) -> None:
    # Random real coordinates make IoU ties (where the merge order could legitimately differ) improbable.
    xy = np.array(data.draw(st.lists(st.tuples(*[st.floats(0, 50)] * 2), min_size=n_boxes, max_size=n_boxes)))
    size = np.array(data.draw(st.lists(st.tuples(*[st.floats(5, 40)] * 2), min_size=n_boxes, max_size=n_boxes)))
    workers = data.draw(st.lists(st.integers(0, 3), min_size=n_boxes, max_size=n_boxes))
    corners = np.column_stack([xy, xy + size])
    cluster = box_clustering.cluster_boxes(
        np.zeros(n_boxes, dtype=np.int64),
        np.asarray(workers, dtype=np.int64),
        corners,
        1,
        threshold=threshold,
        linkage=linkage,  # type: ignore[arg-type]
    )
    found = {frozenset(np.flatnonzero(cluster == c).tolist()) for c in np.unique(cluster)}
    assert found == _reference_partition(corners, workers, threshold, linkage)


# --- property test of the public API ------------------------------------------------------------------------------

coordinate = st.one_of(st.floats(-200, 900), st.sampled_from([math.nan, math.inf, -math.inf, 0.0]))
random_box = st.builds(
    Box,
    label=st.sampled_from(["a", "b", "z"]),
    left=coordinate,
    top=coordinate,
    width=st.one_of(st.floats(-10, 300), st.just(0.0), st.just(math.nan)),
    height=st.one_of(st.floats(-10, 300), st.just(0.0)),
)
random_answer = st.builds(
    WorkerAnswer, worker=st.sampled_from(["w1", "w2", "w3", "w4"]), boxes=st.lists(random_box, max_size=4).map(tuple)
)
side = st.one_of(st.none(), st.floats(1, 1000), st.just(math.nan), st.just(-5.0))


@st.composite
def random_images(draw: st.DrawFn) -> list[ImageAnswers]:
    names = draw(st.lists(st.text(min_size=1, max_size=4), max_size=5, unique=True))
    return [
        ImageAnswers(name, draw(side), draw(side), tuple(draw(st.lists(random_answer, max_size=5)))) for name in names
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images=random_images(), linkage=st.sampled_from(["single", "average", "complete"]))
def test_random_input_never_raises_and_accounts_for_every_box(images: list[ImageAnswers], linkage: str) -> None:
    result = consolidate_boxes(images, label_set=["a", "b"], linkage=linkage)  # type: ignore[arg-type]
    assert list(result.boxes) == [im.image for im in images]
    assert list(result.dropped) == [im.image for im in images]
    expected: Counter[tuple[str, str]] = Counter(
        (im.image, a.worker) for im in images for a in im.answers for _ in a.boxes
    )
    assert members(result) == expected
    for im in images:
        n_seen = len({a.worker for a in im.answers})
        for kept in (True, False):
            for found in (result.boxes if kept else result.dropped)[im.image]:
                assert isinstance(found, ConsolidatedBox)
                assert 0.0 <= found.confidence <= 1.0
                assert found.label in ("a", "b")
                assert found.n_workers == len(found.workers) == len(set(found.workers)) >= 1
                assert found.width > 0 and found.height > 0
                assert all(math.isfinite(v) for v in (found.left, found.top, found.width, found.height))
                assert (found.n_workers >= 0.5 * n_seen - 1e-9) == kept
                w, h = im.width, im.height
                if w is not None and math.isfinite(w) and w > 0:
                    assert found.left >= -1e-6 and found.left + found.width <= w + 1e-6
                if h is not None and math.isfinite(h) and h > 0:
                    assert found.top >= -1e-6 and found.top + found.height <= h + 1e-6


# --- metrics ------------------------------------------------------------------------------------------------------


def test_iou_of_known_boxes() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 0, 10), (0, 0, 0, 10)) == 0.0
    assert iou_matrix(np.zeros((0, 4)), [(0, 0, 1, 1)]).shape == (0, 1)


def test_matching_is_one_to_one_and_maximises_matches() -> None:
    gold = [(0, 0, 10, 10), (3, 0, 10, 10)]
    # Prediction 0 overlaps gold 0 best (IoU .82) and gold 1 too (.67); prediction 1 fits only gold 0 (.54). Greedy
    # best-IoU matching pairs prediction 0 with gold 0 and leaves prediction 1 unmatched; the assignment finds both.
    predicted = [(1, 0, 10, 10), (-3, 0, 10, 10)]
    rows, cols = match_boxes(predicted, gold, threshold=0.5)
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 1), (1, 0)]
    assert len(set(cols.tolist())) == len(cols)
    assert score_image([(0, 0, 10, 10), (0, 0, 10, 10)], [(0, 0, 10, 10)], threshold=0.5) == DetectionScore(
        0.5, 1, 2, 1
    )


def test_detection_score_ratios() -> None:
    result = DetectionScore(0.5, 3, 4, 6)
    assert (result.precision, result.recall) == pytest.approx((0.75, 0.5))
    assert result.f1 == pytest.approx(2 * 3 / 10)
    assert DetectionScore(0.5, 0, 0, 0).f1 == 1.0


def test_carried_label_counts_decide_a_disputed_box_label_and_this_inputs_counts_come_back():
    # Two workers box the same object and disagree on its label; earlier batches say "good" is right, "bad" is not.
    box = (10.0, 10.0, 40.0, 20.0)
    images = [
        ImageAnswers(
            image="im",
            width=100,
            height=100,
            answers=(
                WorkerAnswer("bad", (Box("pen", *box),)),
                WorkerAnswer("good", (Box("pencil", *box),)),
            ),
        )
    ]
    labels = ["pen", "pencil"]
    carried = {"good": np.array([[40.0, 0.0], [0.0, 40.0]]), "bad": np.array([[5.0, 35.0], [35.0, 5.0]])}
    result = consolidate_boxes(images, label_set=labels, prior_label_counts=carried)
    assert [b.label for b in result.boxes["im"]] == ["pencil"]
    assert set(result.label_counts) == {"good", "bad"}
    assert all(counts.sum() == pytest.approx(1.0) for counts in result.label_counts.values())
