"""The offline run's report: summary numbers worked out by hand on tiny inputs, and the HTML with its figures."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from truthflow.local.report import (
    MAX_PNG_BYTES,
    THUMBNAIL_SIDE,
    ReportInputs,
    format_summary,
    summarize,
    write_report,
)
from truthflow.training_data.visualize import class_colour

# ---------------------------------------------------------------------------------------------------------------
# Classification: 3 workers, 6 gold images (plus one without gold and one nobody answered)
# ---------------------------------------------------------------------------------------------------------------

GOLD_CLASSES = {"i1": "cat", "i2": "cat", "i3": "dog", "i4": "dog", "i5": "cat", "i6": "dog", "i8": "cat"}
# w1 is always right (6/6), w2 is right on i1, i3, i5, i6 (4/6), w3 only on i3, i4 (2/6).
# Majority vote: i2 gets dog (cat, dog, dog), every other image its gold label: 5/6.
CLASS_ANSWERS = {
    "i1": {"w1": "cat", "w2": "cat", "w3": "dog"},
    "i2": {"w1": "cat", "w2": "dog", "w3": "dog"},
    "i3": {"w1": "dog", "w2": "dog", "w3": "dog"},
    "i4": {"w1": "dog", "w2": "cat", "w3": "dog"},
    "i5": {"w1": "cat", "w2": "cat", "w3": "dog"},
    "i6": {"w1": "dog", "w2": "dog", "w3": "cat"},
    "i7": {"w1": "cat", "w2": "dog"},  # no gold: not scored
}
TRUE_SKILL = {
    "w1": {"kind": "careful", "accuracy": 0.9, "box_jitter": 0.02, "miss_rate": 0.0},
    "w2": {"kind": "sloppy", "accuracy": 0.7, "box_jitter": 0.1, "miss_rate": 0.2},
    "w3": {"kind": "spammer", "accuracy": 0.4, "box_jitter": 0.3, "miss_rate": 0.5},
}
ESTIMATED = {"w1": 0.95, "w2": 0.7, "w3": 0.3}  # |error|: 0.05, 0, 0.1 -> mean 0.05
TIMELINE = [("StartRun", 10.0, 11.0, "ok"), ("Labeling", 11.0, 14.0, "SUCCEEDED"), ("Training", 14.0, 15.0, "FAILED")]


def png_bytes(width: int, height: int, colour: tuple[int, int, int] = (90, 120, 150)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def classification_inputs(**changes) -> ReportInputs:
    consolidated = {image: {"label": GOLD_CLASSES.get(image, "cat"), "confidence": 0.9} for image in CLASS_ANSWERS}
    fields = {
        "task_type": "image-classification",
        "labels": ["cat", "dog"],
        "gold": dict(GOLD_CLASSES),
        "worker_answers": {image: dict(row) for image, row in CLASS_ANSWERS.items()},
        "consolidated": consolidated,  # the pipeline is right on every scored image
        "dataset": "pets",
        "job_id": "job-1",
        "execution_name": "run-1",
        "execution_status": "SUCCEEDED",
        "outputs_location": "demo-output/s3/data",
        "outputs": {"output manifest": "s3://data/jobs/job-1/output.manifest"},
        "true_skill": TRUE_SKILL,
        "estimated_skill": ESTIMATED,
        "timeline": list(TIMELINE),
        "sample_images": {"i1": png_bytes(64, 48)},
        "run_seconds": 4.2,
    }
    fields.update(changes)
    return ReportInputs(**fields)


def test_classification_summary_matches_hand_counts():
    summary = summarize(classification_inputs())
    assert summary["n_images"] == 8
    assert summary["n_gold_images"] == 7
    assert summary["n_scored_images"] == 6  # i7 has no gold, i8 no answers
    assert summary["n_workers"] == 3
    assert summary["n_answers"] == 20
    accuracy = summary["accuracy"]
    assert summary["detection"] is None
    assert accuracy["pipeline"] == pytest.approx(1.0)
    assert accuracy["majority"] == pytest.approx(5 / 6)
    assert accuracy["single_worker_mean"] == pytest.approx((6 / 6 + 4 / 6 + 2 / 6) / 3)
    assert accuracy["single_worker_best"] == pytest.approx(1.0)
    assert accuracy["best_worker"] == "w1"
    assert accuracy["pipeline_missing"] == 0
    workers = summary["workers"]
    assert [workers[w]["gold_accuracy"] for w in ("w1", "w2", "w3")] == pytest.approx([1.0, 4 / 6, 2 / 6])
    assert workers["w1"]["n_answers"] == 7 and workers["w1"]["n_gold_answers"] == 6
    assert workers["w3"]["kind"] == "spammer" and workers["w3"]["true_accuracy"] == 0.4
    assert workers["w2"]["estimated_accuracy"] == 0.7
    assert summary["skill_mean_abs_error"] == pytest.approx(0.05)
    assert summary["timeline"] == {"n_states": 3, "seconds": pytest.approx(5.0), "failed": ["Training"]}
    json.dumps(summary)  # plain JSON types throughout


def test_a_missing_or_wrong_pipeline_label_counts_against_it():
    inputs = classification_inputs()
    del inputs.consolidated["i1"]
    inputs.consolidated["i2"] = {"label": "dog", "confidence": 0.6}
    accuracy = summarize(inputs)["accuracy"]
    assert accuracy["pipeline"] == pytest.approx(4 / 6)
    assert accuracy["pipeline_missing"] == 1


def test_labels_outside_the_label_set_and_json_round_trip_timeline_are_accepted():
    answers = {image: dict(row) for image, row in CLASS_ANSWERS.items()}
    answers["i1"]["w3"] = "fox"
    timeline = json.loads(json.dumps(TIMELINE))  # lists, as after a JSON round trip
    summary = summarize(classification_inputs(worker_answers=answers, timeline=timeline))
    assert summary["labels"] == ["cat", "dog", "fox"]
    assert summary["timeline"]["failed"] == ["Training"]


def test_inputs_of_the_wrong_shape_are_named():
    with pytest.raises(ValueError, match=r"gold\['i1'\].*list of boxes"):
        summarize(classification_inputs(task_type="bounding-box"))
    with pytest.raises(ValueError, match=r"timeline\[0\]"):
        summarize(classification_inputs(timeline=[("StartRun", "soon")]))


def referenced_pngs(html_text: str) -> list[str]:
    return re.findall(r'<img[^>]*src="([^"]+)"', html_text)


def check_figures(out_dir, html_text: str) -> list[str]:
    names = referenced_pngs(html_text)
    assert names, "the report shows no images"
    for name in names:
        assert "/" not in name and name.endswith(".png")  # relative, beside the report
        data = (out_dir / name).read_bytes()
        assert len(data) <= MAX_PNG_BYTES, f"{name} is {len(data)} bytes"
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            assert image.format == "PNG"
            assert image.width > 50 and image.height > 30
    return names


def test_classification_report_html_and_figures(tmp_path):
    path = write_report(classification_inputs(), tmp_path / "out")
    assert path == tmp_path / "out" / "report.html"
    text = path.read_text(encoding="utf-8")
    names = check_figures(tmp_path / "out", text)
    assert set(names) == {"quality.png", "confusion.png", "skill.png", "timeline.png", "sample-01.png"}
    for heading in (
        "What this is",
        "1. Label quality against gold",
        "2. Where the pipeline and majority vote disagree",
        "3. Confusion matrices",
        "4. Worker skill: estimated vs true",
        "5. Sample images",
        "6. Execution timeline",
    ):
        assert f"<h2>{heading}</h2>" in text
    assert "<style>" in text and "<table" in text
    assert 'Dawid-Skene (pipeline)</td><td class="num">1.000' in text
    assert 'Majority vote</td><td class="num">0.833' in text
    assert "Best single worker (w1)" in text
    assert "without model weights" in text  # the emulator note
    assert "s3://data/jobs/job-1/output.manifest" in text
    assert '<tr class="failed"><td>Training</td>' in text
    assert "pipeline: cat (0.90)" in text  # the sample's caption
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == json.loads(
        json.dumps(summarize(classification_inputs()))
    )


def test_text_is_escaped_and_notes_replace_the_default(tmp_path):
    answers = {image: dict(row) for image, row in CLASS_ANSWERS.items()}
    answers["i1"]["<b>w4</b>"] = "cat"
    path = write_report(
        classification_inputs(worker_answers=answers, notes=["replayed <data>"], dataset="a & b"), tmp_path
    )
    text = path.read_text(encoding="utf-8")
    assert "<b>w4</b>" not in text and "&lt;b&gt;w4&lt;/b&gt;" in text
    assert "replayed &lt;data&gt;" in text and "a &amp; b" in text
    assert "without model weights" not in text


def test_without_true_skill_or_timeline_the_report_still_reads(tmp_path):
    inputs = classification_inputs(true_skill=None, timeline=[], sample_images={}, run_seconds=None)
    summary = summarize(inputs)
    assert summary["skill_mean_abs_error"] is None
    assert summary["timeline"] == {"n_states": 0, "seconds": None, "failed": []}
    text = write_report(inputs, tmp_path).read_text(encoding="utf-8")
    assert "accuracy measured against gold" in text  # the scatter's x axis falls back to gold
    assert "No state timeline was recorded." in text and "No sample images were given." in text
    assert set(check_figures(tmp_path, text)) == {"quality.png", "confusion.png", "skill.png"}


def test_format_summary_lines():
    lines = format_summary(summarize(classification_inputs()))
    assert lines[0].startswith("pets: 8 images, 3 workers, 20 answers; 6 images scored")
    assert "Dawid-Skene (pipeline) 1.000, Majority vote 0.833, Single worker (mean) 0.667" in lines[1]
    # i2 (majority "dog", gold "cat") and i7 (a tie, no gold) are the images where the two differ.
    assert lines[2] == "pipeline and majority differ on 2 of 7 images (right: pipeline 1, majority vote 0)"
    assert lines[3].endswith("= 0.050")


# ---------------------------------------------------------------------------------------------------------------
# Bounding boxes: 3 workers, 2 gold images
# ---------------------------------------------------------------------------------------------------------------


def b(label: str, left: float, top: float, width: float, height: float, **extra) -> dict:
    return {"label": label, "left": left, "top": top, "width": width, "height": height, **extra}


CAR, PERSON_1, PERSON_2 = b("car", 10, 10, 100, 50), b("person", 200, 50, 40, 100), b("person", 50, 50, 50, 100)
GOLD_BOXES = {"s3://data/img1.png": [CAR, PERSON_1], "s3://data/img2.png": [PERSON_2]}
BOX_ANSWERS = {
    # w1 exact everywhere; w2 boxes only the car of img1 and nothing on img2 (an empty answer); w3 draws the car
    # 25 px to the right (IoU 75/125 = 0.6), misses the person of img1, and adds a spurious car on img2.
    "s3://data/img1.png": {"w1": [CAR, PERSON_1], "w2": [CAR], "w3": [b("car", 35, 10, 100, 50)]},
    "s3://data/img2.png": {"w1": [PERSON_2], "w2": [], "w3": [PERSON_2, b("car", 300, 300, 20, 20)]},
}
# The pipeline gets the car, labels img1's person "car", gets img2's person and adds a spurious car there.
PIPELINE_BOXES = {
    "s3://data/img1.png": [{**CAR, "confidence": 1.0}, {**PERSON_1, "label": "car", "confidence": 0.6}],
    "s3://data/img2.png": [{**PERSON_2, "confidence": 0.67}, b("car", 400, 10, 30, 30, confidence=0.5)],
}


def box_inputs(**changes) -> ReportInputs:
    fields = {
        "task_type": "bounding-box",
        "labels": ["car", "person"],
        "gold": GOLD_BOXES,
        "worker_answers": BOX_ANSWERS,
        "consolidated": PIPELINE_BOXES,
        "true_skill": TRUE_SKILL,
        "estimated_skill": ESTIMATED,
        "timeline": list(TIMELINE),
        "sample_images": {"img1.png": png_bytes(800, 600), "img2.png": png_bytes(300, 200, (200, 200, 200))},
        "run_seconds": 9.5,
    }
    fields.update(changes)
    return ReportInputs(**fields)


def test_box_summary_matches_hand_counts():
    summary = summarize(box_inputs())
    detection = summary["detection"]
    assert summary["accuracy"] is None
    assert detection["n_scored"] == 2 and detection["best_worker"] == "w1"
    for threshold in ("0.5", "0.7"):
        block = detection[threshold]
        # Class-aware: the pipeline's "car" on img1's person matches nothing; 2 of 4 boxes right, 2 of 3 found.
        assert block["pipeline"]["true_positives"] == 2
        assert (block["pipeline"]["n_predicted"], block["pipeline"]["n_gold"]) == (4, 3)
        assert block["pipeline"]["precision"] == pytest.approx(0.5)
        assert block["pipeline"]["recall"] == pytest.approx(2 / 3)
        assert block["pipeline"]["f1"] == pytest.approx(4 / 7)
        # Naive majority: img1's car (3 of 3 workers, median edges exact) and img2's person (2 of 3); the rest
        # misses the at-least-half quorum.
        assert block["majority"]["precision"] == pytest.approx(1.0)
        assert block["majority"]["recall"] == pytest.approx(2 / 3)
        assert block["majority"]["f1"] == pytest.approx(0.8)
        assert block["single_worker_best"]["f1"] == pytest.approx(1.0)
    # Single workers: w1 1/1/1; w2 P 1, R 1/3, F1 1/2; w3 at 0.5 2/3 each, at 0.7 (the car misses) 1/3 each.
    at_05, at_07 = detection["0.5"]["single_worker_mean"], detection["0.7"]["single_worker_mean"]
    assert at_05["precision"] == pytest.approx((1 + 1 + 2 / 3) / 3)
    assert at_05["recall"] == pytest.approx((1 + 1 / 3 + 2 / 3) / 3)
    assert at_05["f1"] == pytest.approx((1 + 1 / 2 + 2 / 3) / 3)
    assert at_07["precision"] == pytest.approx((1 + 1 + 1 / 3) / 3)
    assert at_07["recall"] == pytest.approx((1 + 1 / 3 + 1 / 3) / 3)
    assert at_07["f1"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    workers = summary["workers"]
    assert [workers[w]["n_boxes"] for w in ("w1", "w2", "w3")] == [3, 1, 3]
    assert [workers[w]["f1_at_0.5"] for w in ("w1", "w2", "w3")] == pytest.approx([1.0, 0.5, 2 / 3])
    assert [workers[w]["gold_accuracy"] for w in ("w1", "w2", "w3")] == pytest.approx([1.0, 1.0, 1.0])
    # The pipeline's box estimate is the share of a worker's boxes that are kept, so its reference is the share of
    # their boxes matching a gold box and its label at IoU 0.5: w1 3/3, w2 1/1, w3 2/3 (not the spurious car).
    assert [workers[w]["skill_reference"] for w in ("w1", "w2", "w3")] == pytest.approx([1.0, 1.0, 2 / 3])
    json.dumps(summary)


def test_box_report_html_figures_and_thumbnails(tmp_path):
    text = write_report(box_inputs(), tmp_path).read_text(encoding="utf-8")
    names = check_figures(tmp_path, text)
    assert {"quality.png", "confusion.png", "skill.png", "timeline.png", "sample-01.png", "sample-02.png"} == set(names)
    assert "F1 @ IoU \u2265 0.7" in text and "Naive majority (median edges)" in text
    assert '<tr class="pipeline"><td>Consolidated (pipeline)</td><td class="num">0.500</td>' in text
    assert "(missed)" in text and "(no object)" in text
    # Sample keys are file names, image keys S3 URIs: matched by file name; thumbnails shrink big images only.
    assert "s3://data/img1.png" in text and "2 consolidated boxes (solid, with confidence), 2 gold boxes" in text
    with Image.open(tmp_path / "sample-01.png") as big, Image.open(tmp_path / "sample-02.png") as small:
        assert big.size == (THUMBNAIL_SIDE, THUMBNAIL_SIDE * 600 // 800)
        assert small.size == (300, 200)
        assert small.convert("RGB").getpixel((150, 150)) == (200, 200, 200)  # nothing drawn there
        # img2's gold person (left 50): dashed, so some of its left edge is white and some black.
        edge = {small.convert("RGB").getpixel((50, y)) for y in range(60, 140)}
        assert (255, 255, 255) in edge and (0, 0, 0) in edge
        # The consolidated person box on the same spot is drawn under it, 2 px wide: its inner pixel shows.
        assert small.convert("RGB").getpixel((51, 100)) == class_colour("person", ["car", "person"])


def test_box_class_confusion_counts(tmp_path):
    from truthflow.local.report import _analyse

    (confusion,) = _analyse(box_inputs()).confusions
    assert confusion.rows == ["car", "person", "(no object)"]
    assert confusion.columns == ["car", "person", "(missed)"]
    np.testing.assert_array_equal(confusion.counts, [[1, 0, 0], [1, 1, 0], [1, 0, 0]])


def test_a_two_hundred_image_run_gets_a_complete_report(tmp_path):
    # Its speed is measured in make bench (benchmarks/local_tools.py), not here: a busy machine must not fail a test.
    rng = np.random.default_rng(3)
    gold, answers = {}, {}
    for i in range(200):
        boxes = [
            b(
                str(rng.choice(["car", "person"])),
                *map(float, rng.uniform(0, 300, 2)),
                *map(float, rng.uniform(20, 90, 2)),
            )
            for _ in range(int(rng.integers(0, 5)))
        ]
        gold[f"img{i}"] = boxes
        answers[f"img{i}"] = {
            f"w{w}": [{**box, "left": box["left"] + float(rng.normal(0, 3))} for box in boxes if rng.random() > 0.1]
            for w in range(5)
        }
    inputs = box_inputs(
        gold=gold,
        worker_answers=answers,
        consolidated=gold,
        sample_images={f"img{i}": png_bytes(640, 480) for i in range(6)},
    )
    text = write_report(inputs, tmp_path).read_text(encoding="utf-8")
    for picture in ("quality.png", "confusion.png", "skill.png", "timeline.png"):
        assert picture in text and (tmp_path / picture).is_file()
    assert summarize(inputs)["detection"]["n_scored"] == 200


# ---------------------------------------------------------------------------------------------------------------
# Where the pipeline and majority vote disagree; gold questions
# ---------------------------------------------------------------------------------------------------------------


def test_classification_disagreements_are_listed_with_their_answers_and_gold():
    found = summarize(classification_inputs())["disagreements"]
    # i2: majority "dog" (cat, dog, dog), pipeline "cat" = gold. i7: a cat/dog tie without gold, the pipeline says cat.
    assert (found["n"], found["n_answered"], found["pipeline_right"], found["majority_right"]) == (2, 7, 1, 0)
    first = found["images"][0]
    assert first == {
        "image": "i2",
        "answers": {"w1": "cat", "w2": "dog", "w3": "dog"},
        "majority": "dog",
        "pipeline": "cat",
        "confidence": 0.9,
        "gold": "cat",
        "gold_question": False,
        "winner": "pipeline",
    }
    assert found["images"][1]["image"] == "i7" and found["images"][1]["winner"] is None


def test_box_disagreements_are_judged_by_f1_against_gold():
    found = summarize(box_inputs())["disagreements"]
    # img1: the pipeline keeps w1's lone person box as a car (F1 1/2), the majority drops it (F1 2/3); img2: the
    # pipeline adds a spurious car (F1 2/3), the majority does not (F1 1).
    assert (found["n"], found["pipeline_right"], found["majority_right"]) == (2, 0, 2)
    img1 = found["images"][0]
    assert (img1["pipeline_boxes"], img1["majority_boxes"], img1["gold_boxes"]) == (2, 1, 2)
    assert img1["pipeline_f1"] == {"0.5": 0.5, "0.7": 0.5}
    assert img1["majority_f1"] == pytest.approx({"0.5": 2 / 3, "0.7": 2 / 3})


def test_boxes_that_match_each_other_but_not_gold_alike_are_a_disagreement():
    gold = {"a": [b("car", 0, 0, 100, 100)]}
    answers = {"a": {"w1": [b("car", 0, 0, 100, 100)], "w2": [b("car", 0, 0, 100, 100)]}}
    # The pipeline's box overlaps the majority's at IoU 0.65 (same object), but only the majority's matches gold at 0.7.
    pipeline = {"a": [b("car", 0, 0, 65, 100, confidence=1.0)]}
    found = summarize(box_inputs(gold=gold, worker_answers=answers, consolidated=pipeline))["disagreements"]
    assert found["n"] == 1 and found["images"][0]["same_objects"] is True
    assert found["images"][0]["winner"] == "majority"
    agreeing = summarize(box_inputs(gold=gold, worker_answers=answers, consolidated=gold))["disagreements"]
    assert agreeing["n"] == 0


def test_gold_questions_are_left_out_of_the_scores_and_workers_show_their_score_on_them(tmp_path):
    inputs = classification_inputs(
        gold_questions=["i2"],
        gold_question_scores={"w1": {"answers": 1, "correct": 1}, "w2": {"answers": 1, "correct": 0}},
        images={"i2": png_bytes(64, 48)},
    )
    summary = summarize(inputs)
    accuracy = summary["accuracy"]
    # i2, majority vote's only miss, is a gold question now: both score 5/5 on the other images.
    assert (accuracy["n_scored"], accuracy["pipeline"], accuracy["majority"]) == (5, 1.0, 1.0)
    assert accuracy["pipeline_without_gold"] is not None and summary["n_gold_questions"] == 1
    assert summary["disagreements"]["n_gold_questions"] == 1 and summary["disagreements"]["pipeline_right"] == 0
    workers = summary["workers"]
    assert (workers["w1"]["gold_questions_answered"], workers["w1"]["gold_question_accuracy"]) == (1, 1.0)
    assert (workers["w2"]["gold_questions_answered"], workers["w2"]["gold_question_accuracy"]) == (1, 0.0)
    assert (workers["w3"]["gold_questions_answered"], workers["w3"]["gold_question_accuracy"]) == (0, None)
    text = write_report(inputs, tmp_path).read_text(encoding="utf-8")
    assert "Dawid-Skene without the gold questions" in text and "On gold questions (pipeline)" in text
    assert "1 are gold questions" in text and (tmp_path / "disagreement-01-labels.png").is_file()
    assert "pipeline: cat \u00b7 majority: dog \u00b7 gold: cat" in text


def test_a_report_without_disagreements_says_so(tmp_path):
    consolidated = {image: {"label": label, "confidence": 1.0} for image, label in GOLD_CLASSES.items()}
    answers = {image: {"w1": label, "w2": label} for image, label in GOLD_CLASSES.items()}
    inputs = classification_inputs(worker_answers=answers, consolidated=consolidated)
    assert summarize(inputs)["disagreements"]["n"] == 0
    text = write_report(inputs, tmp_path).read_text(encoding="utf-8")
    assert "On none of the 7 answered images does the pipeline differ from majority vote." in text
