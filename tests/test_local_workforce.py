"""The simulated and the replayed Ground Truth workforce: answers in the exact answerContent shapes."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from truthflow.consolidation.box_metrics import iou_matrix
from truthflow.groundtruth.worker_answers import parse_bounding_box_content, parse_image_classification_content
from truthflow.job_file import parse_job_file
from truthflow.local.sample_data import LABELS, GoldBox, SampleImage, SampleJob, make_sample_job
from truthflow.local.workforce import (
    SKILL_RANGES,
    ReplayWorkforce,
    SimulatedWorker,
    answer,
    expected_accuracy,
    make_workforce,
    true_skill,
)

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "crowd_datasets"
needs_datasets = pytest.mark.skipif(
    not DATASETS.is_dir(), reason=f"the crowd data sets are not beside the repository ({DATASETS} is missing)"
)
MIX = {"careful": 3, "sloppy": 2, "biased": 1, "spammer": 1}


@cache
def sample(task_type: str = "bounding-box") -> SampleJob:
    return make_sample_job(task_type=task_type, seed=11)


def worker(kind="careful", **skill) -> SimulatedWorker:
    values = {"accuracy": 0.9, "box_jitter": 0.03, "miss_rate": 0.0, "false_box_rate": 0.0, **skill}
    return SimulatedWorker(worker_id=f"{kind}-x", kind=kind, **values)


def big_image(*boxes: GoldBox, label: str | None = None) -> SampleImage:
    return SampleImage("big.jpg", 2000, 1500, b"", tuple(boxes), label)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --- simulated workers ------------------------------------------------------------------------------------------------


def test_make_workforce_draws_skills_from_the_documented_ranges():
    workers = make_workforce(MIX, seed=4)
    assert [w.worker_id for w in workers] == [
        "careful-1", "careful-2", "careful-3", "sloppy-1", "sloppy-2", "biased-1", "spammer-1"
    ]  # fmt: skip
    for w in workers:
        for name, (low, high) in SKILL_RANGES[w.kind].items():
            assert low <= getattr(w, name) <= high, (w.worker_id, name)
    careful, sloppy, biased, spammer = workers[0], workers[3], workers[5], workers[6]
    assert careful.confusion is None and careful.accuracy > sloppy.accuracy
    assert careful.box_jitter < sloppy.box_jitter and careful.miss_rate < sloppy.miss_rate
    assert spammer.accuracy == pytest.approx(1 / 3) and spammer.miss_rate == 1.0
    assert biased.confusion is not None
    ((confused, answered),) = biased.confusion.items()
    assert {confused, answered} <= set(LABELS) and confused != answered
    assert make_workforce(MIX, seed=4) == workers
    assert make_workforce(MIX, seed=5) != workers


def test_make_workforce_for_other_labels():
    workers = make_workforce({"biased": 2, "spammer": 1}, seed=0, labels=["a", "b", "c", "d", "e"])
    assert all(set(w.confusion or {}) | set((w.confusion or {}).values()) <= set("abcde") for w in workers)
    assert workers[2].accuracy == pytest.approx(0.2)
    (alone,) = make_workforce({"biased": 1}, seed=0, labels=["pedestrian"])
    assert alone.confusion is None and alone.confusion_rate == 0.0


@pytest.mark.parametrize(
    ("mix", "message"),
    [({"lazy": 1}, "unknown worker kind"), ({"careful": -1}, "non-negative"), ({"careful": 0}, "at least one")],
)
def test_make_workforce_refuses_bad_mixes(mix, message):
    with pytest.raises(ValueError, match=message):
        make_workforce(mix, seed=0)


def test_a_worker_refuses_impossible_skills():
    with pytest.raises(ValueError, match="accuracy"):
        worker(accuracy=1.2)
    with pytest.raises(ValueError, match="box_jitter"):
        worker(box_jitter=-0.1)


def test_box_answers_have_the_exact_ground_truth_shape():
    job = sample("bounding-box")
    rng = np.random.default_rng(0)
    for w in make_workforce(MIX, seed=0):
        for image in job.images:
            content = answer(w, image, job.labels, rng, "bounding-box")
            assert list(content) == ["boundingBox"]
            assert set(content["boundingBox"]) == {"boundingBoxes", "inputImageProperties"}
            assert content["boundingBox"]["inputImageProperties"] == {"width": image.width, "height": image.height}
            for box in content["boundingBox"]["boundingBoxes"]:
                assert set(box) == {"label", "left", "top", "width", "height"}
                assert box["label"] in job.labels
                numbers = [box[key] for key in ("left", "top", "width", "height")]
                assert all(type(value) is int for value in numbers)
                assert box["left"] >= 0 and box["top"] >= 0 and box["width"] >= 1 and box["height"] >= 1
                assert box["left"] + box["width"] <= image.width and box["top"] + box["height"] <= image.height
            parsed = parse_bounding_box_content(json.dumps(content), labels=job.labels)  # as annotationData.content
            assert parsed == parse_bounding_box_content(content, element_name="boundingBox", labels=job.labels)
            assert (parsed.image_width, parsed.image_height) == (image.width, image.height)


def test_classification_answers_have_the_exact_ground_truth_shape():
    job = sample("image-classification")
    rng = np.random.default_rng(0)
    for w in make_workforce(MIX, seed=0):
        for image in job.images:
            content = answer(w, image, job.labels, rng, "image-classification")
            assert content == {"crowd-image-classifier": {"label": content["crowd-image-classifier"]["label"]}}
            parsed = parse_image_classification_content(json.dumps(content), labels=job.labels)
            assert parsed.label in job.labels and parsed.worker_comment is None


def best_iou_per_gold_box(w: SimulatedWorker, job: SampleJob, repeats: int) -> list[float]:
    rng = np.random.default_rng(1)
    best = []
    for _ in range(repeats):
        for image in job.images:
            if not image.boxes:
                continue
            drawn = answer(w, image, job.labels, rng, "bounding-box")["boundingBox"]["boundingBoxes"]
            gold = [(b.left, b.top, b.width, b.height) for b in image.boxes]
            if not drawn:
                best.extend([0.0] * len(gold))
                continue
            overlap = iou_matrix(gold, [(b["left"], b["top"], b["width"], b["height"]) for b in drawn])
            best.extend(overlap.max(axis=1).tolist())
    return best


def test_careful_workers_box_the_objects_and_spammers_do_not():
    job = sample("bounding-box")
    workers = {w.kind: w for w in make_workforce({"careful": 1, "sloppy": 1, "spammer": 1}, seed=2)}
    share = {
        kind: float(np.mean(np.asarray(best_iou_per_gold_box(w, job, repeats=5)) >= 0.7)) for kind, w in workers.items()
    }
    assert share["careful"] >= 0.9  # expected about 0.97: 2-3 % misses, almost never IoU < 0.7
    assert share["spammer"] <= 0.05  # random boxes only
    assert share["spammer"] < share["sloppy"] < share["careful"]


def test_class_accuracy_is_the_configured_accuracy():
    rng = np.random.default_rng(3)
    w = worker(accuracy=0.8)
    draws = 6000
    right = Counter()
    wrong = Counter()
    for position in range(draws):
        truth = LABELS[position % 3]
        given = answer(w, big_image(label=truth), LABELS, rng, "image-classification")["crowd-image-classifier"]
        (right if given["label"] == truth else wrong)[given["label"]] += 1
    assert sum(right.values()) / draws == pytest.approx(0.8, abs=0.02)
    assert all(count / sum(wrong.values()) == pytest.approx(1 / 3, abs=0.04) for count in wrong.values())
    assert expected_accuracy(w) == pytest.approx(0.8)


def test_a_spammer_answers_at_chance_level():
    (spammer,) = make_workforce({"spammer": 1}, seed=0)
    rng = np.random.default_rng(4)
    given = Counter(
        answer(spammer, big_image(label="pen"), LABELS, rng, "image-classification")["crowd-image-classifier"]["label"]
        for _ in range(3000)
    )
    assert all(count / 3000 == pytest.approx(1 / 3, abs=0.03) for count in given.values())
    assert set(given) == set(LABELS)


def test_a_biased_worker_confuses_its_class_pair():
    w = worker("biased", accuracy=0.95, confusion={"pencil": "pen"}, confusion_rate=0.8)
    rng = np.random.default_rng(5)
    pencils = Counter(
        answer(w, big_image(label="pencil"), LABELS, rng, "image-classification")["crowd-image-classifier"]["label"]
        for _ in range(4000)
    )
    erasers = Counter(
        answer(w, big_image(label="eraser"), LABELS, rng, "image-classification")["crowd-image-classifier"]["label"]
        for _ in range(4000)
    )
    # pencil -> pen with 0.8 + 0.2 * 0.05 / 2; right with 0.2 * 0.95
    assert pencils["pen"] / 4000 == pytest.approx(0.8 + 0.2 * 0.025, abs=0.02)
    assert pencils["pencil"] / 4000 == pytest.approx(0.2 * 0.95, abs=0.02)
    assert erasers["eraser"] / 4000 == pytest.approx(0.95, abs=0.015)
    assert expected_accuracy(w) == pytest.approx((0.2 * 0.95 + 0.95 + 0.95) / 3)
    skill = true_skill([w])[w.worker_id]
    assert skill == {"kind": "biased", "accuracy": expected_accuracy(w), "box_jitter": 0.03, "miss_rate": 0.0}


def test_misses_spurious_boxes_and_edge_errors_follow_the_configuration():
    w = worker("sloppy", box_jitter=0.1, miss_rate=0.15, false_box_rate=0.25, accuracy=1.0)
    gold = GoldBox("pen", 500, 400, 600, 300)
    rng = np.random.default_rng(6)
    kept, spurious, left_errors, top_errors = 0, 0, [], []
    draws = 4000
    for _ in range(draws):
        for box in answer(w, big_image(gold), LABELS, rng, "bounding-box")["boundingBox"]["boundingBoxes"]:
            if iou_matrix([(gold.left, gold.top, gold.width, gold.height)],
                          [(box["left"], box["top"], box["width"], box["height"])])[0, 0] > 0.4:  # fmt: skip
                kept += 1
                left_errors.append((box["left"] - gold.left) / gold.width)
                top_errors.append((box["top"] - gold.top) / gold.height)
            else:
                spurious += 1
    assert 1 - kept / draws == pytest.approx(0.15, abs=0.02)
    assert spurious / draws == pytest.approx(0.25, abs=0.05)  # a few random boxes overlap the object: loose bound
    assert float(np.std(left_errors)) == pytest.approx(0.1, rel=0.06)
    assert float(np.std(top_errors)) == pytest.approx(0.1, rel=0.06)
    assert abs(float(np.mean(left_errors))) < 0.01


def test_true_skill_reports_every_worker():
    workers = make_workforce(MIX, seed=0)
    skills = true_skill(workers)
    assert list(skills) == [w.worker_id for w in workers]
    for w in workers:
        assert skills[w.worker_id]["kind"] == w.kind
        assert skills[w.worker_id]["box_jitter"] == w.box_jitter
        assert skills[w.worker_id]["miss_rate"] == w.miss_rate
    assert skills["biased-1"]["accuracy"] < workers[5].accuracy  # its confused class counts
    assert skills["careful-1"]["accuracy"] == workers[0].accuracy


def test_answers_are_deterministic_for_a_seed():
    job = sample("bounding-box")
    workers = make_workforce(MIX, seed=0)

    def all_answers(seed: int) -> list[dict]:
        rng = np.random.default_rng(seed)
        return [answer(w, image, job.labels, rng, "bounding-box") for image in job.images for w in workers]

    assert all_answers(1) == all_answers(1)
    assert all_answers(1) != all_answers(2)


def test_answer_refuses_what_a_worker_cannot_answer():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="true label"):
        answer(worker(), big_image(), LABELS, rng, "image-classification")
    with pytest.raises(ValueError, match="not in the job's labels"):
        answer(worker(), big_image(label="stapler"), LABELS, rng, "image-classification")
    with pytest.raises(ValueError, match="task_type"):
        answer(worker(), big_image(), LABELS, rng, "polygon")  # type: ignore[arg-type]


# --- replayed workers -------------------------------------------------------------------------------------------------


@needs_datasets
def test_replay_of_a_classification_data_set_gives_the_recorded_answers():
    folder = DATASETS / "weather"
    replay = ReplayWorkforce.load(folder, max_items=50, seed=0)
    assert replay.task_type == "image-classification"
    assert replay.labels == ("class-0", "class-1", "class-2", "class-3", "class-4")
    assert len(replay.images) == 50 and replay.gold_items == {image.file_name for image in replay.images}
    recorded = defaultdict(list)
    for row in read_csv(folder / "answers.csv"):
        recorded[row["item"]].append((row["worker"], {"crowd-image-classifier": {"label": f"class-{row['label']}"}}))
    truth = {row["item"]: f"class-{row['label']}" for row in read_csv(folder / "truth.csv")}
    for image in replay.images:
        item = replay.item_ids[image.file_name]
        assert image.file_name == f"{item}.png"
        assert replay.answers_for(image.file_name) == recorded[item]
        assert replay.answers_for(image) == replay.answers_for(item) == recorded[item]
        assert image.label == truth[item]
        for _, content in replay.answers_for(image):
            parse_image_classification_content(json.dumps(content), labels=replay.labels)
        picture = Image.open(io.BytesIO(image.data))
        assert (picture.format, picture.size) == ("PNG", (image.width, image.height))
    # Checked by hand against answers.csv lines 9-15 and truth.csv line 3.
    assert [(worker_id, content["crowd-image-classifier"]["label"]) for worker_id, content in
            replay.answers_for("79185724")] == [
        ("1701", "class-4"), ("38", "class-3"), ("703", "class-1"), ("353", "class-1"), ("165", "class-0"),
        ("1025", "class-4"), ("1638", "class-4"),
    ]  # fmt: skip
    assert next(image for image in replay.images if image.file_name == "79185724.png").label == "class-1"
    parsed = parse_job_file(json.dumps(replay.job.job_file), source="jobs/replay-weather/job.json")
    assert parsed.task_type == "image-classification" and parsed.labels == list(replay.labels)
    assert replay.job.job_id == "replay-weather"
    assert ReplayWorkforce.load(folder, max_items=50, seed=0) == replay
    assert ReplayWorkforce.load(folder, max_items=50, seed=1).item_ids != replay.item_ids


@needs_datasets
def test_replay_of_the_pedestrian_boxes_gives_the_recorded_answers():
    folder = DATASETS / "boxes_caltech_pedestrians"
    replay = ReplayWorkforce.load(folder, max_items=20, seed=0)
    assert replay.task_type == "bounding-box" and replay.labels == ("pedestrian",)
    assert len(replay.images) == 20
    gold_images = {row["image"] for row in read_csv(folder / "gold_images.csv")}
    assert {replay.item_ids[name] for name in replay.gold_items} == set(replay.item_ids.values()) <= gold_images

    sizes = {row["image"]: (int(row["width"]), int(row["height"])) for row in read_csv(folder / "images.csv")}
    boxes = defaultdict(list)
    for row in read_csv(folder / "answers.csv"):
        boxes[row["image"], row["worker"]].append(row)
    truth = defaultdict(list)
    for row in read_csv(folder / "truth.csv"):
        truth[row["image"]].append(row)
    assignments = defaultdict(list)
    for row in read_csv(folder / "assignments.csv"):
        assignments[row["image"]].append(row)

    for image in replay.images:
        item = replay.item_ids[image.file_name]
        assert (image.width, image.height) == sizes[item]
        picture = Image.open(io.BytesIO(image.data))
        assert (picture.format, picture.size) == ("JPEG", sizes[item])
        given = replay.answers_for(image.file_name)
        assert [worker_id for worker_id, _ in given] == [row["worker"] for row in assignments[item]]
        for (worker_id, content), assignment in zip(given, assignments[item], strict=True):
            assert content["boundingBox"]["inputImageProperties"] == {"width": 1280, "height": 720}
            drawn = content["boundingBox"]["boundingBoxes"]
            rows = sorted(boxes[item, worker_id], key=lambda row: int(row["box"]))
            assert len(drawn) == len(rows) == int(assignment["n_boxes"])
            for box, row in zip(drawn, rows, strict=True):
                assert box["label"] == "pedestrian"
                assert box["left"] == float(row["x1"]) and box["top"] == float(row["y1"])
                assert box["left"] + box["width"] == pytest.approx(float(row["x2"]), abs=1e-9)
                assert box["top"] + box["height"] == pytest.approx(float(row["y2"]), abs=1e-9)
            parse_bounding_box_content(json.dumps(content), labels=replay.labels)
        gold = sorted(truth[item], key=lambda row: int(row["box"]))
        assert len(image.boxes) == len(gold)
        for box, row in zip(image.boxes, gold, strict=True):
            assert abs(box.left - float(row["x1"])) <= 0.5 and abs(box.top - float(row["y1"])) <= 0.5
            assert abs(box.left + box.width - float(row["x2"])) <= 1.0
            assert abs(box.top + box.height - float(row["y2"])) <= 1.0
    # Checked by hand against answers.csv line 89 and truth.csv line 19 (image 101274, one pedestrian).
    assert replay.answers_for("101274")[2] == (
        "A8PM8FMPL99QB",
        {"boundingBox": {
            "boundingBoxes": [{"label": "pedestrian", "left": 20.47, "top": 322.76, "width": 67.7, "height": 151.14}],
            "inputImageProperties": {"width": 1280, "height": 720},
        }},
    )  # fmt: skip
    assert len(replay.answers_for("101274")) == 7
    (image_101274,) = (image for image in replay.images if image.file_name == "101274.jpg")
    assert image_101274.boxes == (GoldBox("pedestrian", 30, 338, 47, 136),)
    parsed = parse_job_file(json.dumps(replay.job.job_file), source="jobs/replay/job.json")
    assert parsed.task_type == "bounding-box" and parsed.workers_per_object == 7


@needs_datasets
def test_replay_keeps_or_drops_repeated_answers():
    folder = DATASETS / "zencrowd_all"
    kept = ReplayWorkforce.load(folder, max_items=100, seed=0)
    deduplicated = ReplayWorkforce.load(folder, max_items=100, seed=0, deduplicate=True)
    assert kept.item_ids == deduplicated.item_ids
    all_rows = sum(len(kept.answers_for(name)) for name in kept.item_ids)
    unique_rows = sum(len(deduplicated.answers_for(name)) for name in kept.item_ids)
    assert unique_rows < all_rows  # zencrowd_all repeats 1,730 (item, worker) pairs
    for name in kept.item_ids:
        workers = [worker_id for worker_id, _ in deduplicated.answers_for(name)]
        assert len(workers) == len(set(workers))
        assert name.endswith(".png") and "/" not in name and ":" not in name


def test_replay_of_a_folder_in_the_classification_layout(tmp_path):
    (tmp_path / "answers.csv").write_text("item,worker,label\na/1,w1,2\na/1,w2,10\nb,w1,2\nc,w3,10\n")
    (tmp_path / "truth.csv").write_text("item,label\nb,2\n")
    replay = ReplayWorkforce.load(tmp_path, max_items=2, seed=0)
    assert replay.labels == ("class-2", "class-10")  # numeric order
    assert "b" in replay.item_ids.values()  # gold items first
    assert replay.answers_for("b") == [("w1", {"crowd-image-classifier": {"label": "class-2"}})]
    everything = ReplayWorkforce.load(tmp_path)
    assert everything.answers_for("a/1") == [
        ("w1", {"crowd-image-classifier": {"label": "class-2"}}),
        ("w2", {"crowd-image-classifier": {"label": "class-10"}}),
    ]
    assert {image.label for image in everything.images} == {"class-2", None}
    assert everything.workers == ("w1", "w2", "w3")
    with pytest.raises(KeyError):
        everything.answers_for("nothing")


def test_replay_refuses_a_folder_that_is_no_data_set(tmp_path):
    with pytest.raises(ValueError, match="not a crowd data set"):
        ReplayWorkforce.load(tmp_path)
