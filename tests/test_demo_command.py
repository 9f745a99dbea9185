"""``truthflow demo`` as a user runs it: the whole offline pipeline, its progress, its outcome and its report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from truthflow.cli import main

CALTECH = Path(__file__).resolve().parents[2] / "shared" / "crowd_datasets" / "boxes_caltech_pedestrians"


def test_demo_runs_the_pipeline_and_writes_the_report(tmp_path, capsys):
    out = tmp_path / "demo"
    status = main(["demo", "--images", "12", "--workers", "careful=2,sloppy=1,spammer=1", "--workers-per-object", "3",
                   "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert status == 0
    assert "> Label images" in printed and "< Build training data" in printed
    assert ": SUCCEEDED in" in printed
    assert "F1 at IoU ≥ 0.5: Consolidated (pipeline)" in printed
    report = (out / "report.html").read_text()
    for picture in ("quality.png", "confusion.png", "skill.png", "timeline.png"):
        assert picture in report and (out / picture).is_file()
    job_folder = out / "s3" / "truthflow-data" / "jobs" / "pens-v1"
    assert (job_folder / "dataset" / "quality.json").is_file()
    assert (job_folder / "dataset" / "training" / "train.manifest").is_file()


def test_demo_classification_sample(tmp_path, capsys):
    assert main(["demo", "--dataset", "sample-classification", "--images", "12", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed.lower() and "Dawid-Skene" in printed


@pytest.mark.skipif(not CALTECH.is_dir(), reason=f"{CALTECH} is not beside the repository")
def test_gold_share_on_a_replayed_box_data_set_is_refused(tmp_path, capsys):
    arguments = ["demo", "--dataset", str(CALTECH), "--max-items", "5", "--gold-share", "0.2", "--out", str(tmp_path)]
    assert main(arguments) == 2
    assert "is a bounding-box data set; gold questions are supported for image classification only" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "s3").exists()


@pytest.mark.skipif(not CALTECH.is_dir(), reason=f"{CALTECH} is not beside the repository")
def test_demo_replays_real_crowd_boxes(tmp_path, capsys):
    assert main(["demo", "--dataset", str(CALTECH), "--max-items", "15", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "replayed crowd answers" in printed and ": SUCCEEDED in" in printed


def test_demo_refuses_an_unknown_worker_kind(tmp_path, capsys):
    assert main(["demo", "--workers", "careful=2,lazy=1", "--out", str(tmp_path)]) == 2
    assert "--workers: 'lazy=1' is not <kind>=<count>" in capsys.readouterr().err


def test_a_second_demo_run_replaces_the_first_runs_outputs(tmp_path, capsys):
    arguments = ["demo", "--images", "6", "--workers", "careful=3", "--workers-per-object", "3", "--out", str(tmp_path)]
    assert main(arguments) == 0
    assert main([*arguments[:-2], "--seed", "1", "--out", str(tmp_path)]) == 0
    labeling = tmp_path / "s3" / "truthflow-data" / "jobs" / "pens-v1" / "labeling"
    assert len(list(labeling.iterdir())) == 1  # only the latest run's labeling job


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--images", "0"], "--images: must be an integer of at least 1 (got 0)"),
        (["--seed", "-1"], "--seed: must be an integer of at least 0 (got -1)"),
        (["--max-items", "0"], "--max-items: must be an integer of at least 1 (got 0)"),
        (["--workers-per-object", "0"], "--workers-per-object: must be between 1 and 9 (got 0)"),
        (["--workers-per-object", "10"], "--workers-per-object: must be between 1 and 9 (got 10)"),
        (
            ["--workers-per-object", "9", "--workers", "careful=2"],
            "--workers-per-object 9: the workforce has only 2 worker(s) (careful=2)",
        ),
    ],
)
def test_impossible_demo_options_are_clear_errors(tmp_path, capsys, arguments, message):
    assert main(["demo", *arguments, "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert f"truthflow: error: {message}" in captured.err
    assert "Traceback" not in captured.err and not captured.out
    assert not (tmp_path / "out" / "s3").exists()  # refused before anything ran


def test_out_naming_a_file_is_a_clear_error(tmp_path, capsys):
    a_file = tmp_path / "report.html"
    a_file.write_text("keep me")
    assert main(["demo", "--out", str(a_file)]) == 2
    assert main(["demo", "--out", str(a_file / "inside")]) == 2
    errors = capsys.readouterr().err
    assert f"--out {a_file}: is a file; name a folder" in errors
    assert f"--out {a_file / 'inside'}: cannot create the folder" in errors
    assert a_file.read_text() == "keep me"


def test_a_smaller_workforce_without_workers_per_object_labels_with_everyone(tmp_path, capsys):
    assert main(["demo", "--images", "4", "--workers", "careful=2", "--out", str(tmp_path)]) == 0
    assert "2 simulated workers (2 careful), 2 per image" in capsys.readouterr().out


def test_by_default_three_workers_answer_each_image_as_the_job_files_default(tmp_path, capsys):
    assert main(["demo", "--images", "6", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "6 simulated workers (2 careful, 2 sloppy, 1 biased, 1 spammer), 3 per image" in printed
    job = json.loads((tmp_path / "s3" / "truthflow-data" / "jobs" / "pens-v1" / "job.json").read_text())
    assert job["workers_per_object"] == 3
    assert "pipeline and majority differ on " in printed


def test_gold_share_mixes_gold_questions_into_the_job_and_the_report_shows_what_they_bought(tmp_path, capsys):
    assert main(["demo", "--dataset", "sample-classification", "--images", "30", "--gold-share", "0.2",
                 "--out", str(tmp_path)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "gold questions: 6 images with known labels mixed into the job (gold.csv)" in printed
    assert "gold questions: 6 (left out of the scores); the pipeline's engine without them" in printed
    job_folder = tmp_path / "s3" / "truthflow-data" / "jobs" / "pens-v1"
    assert json.loads((job_folder / "job.json").read_text())["gold_labels"] == "gold.csv"
    gold = dict(line.split(",") for line in (job_folder / "gold.csv").read_text().splitlines()[1:])
    assert len(gold) == 6
    consolidated = {}
    for line in (job_folder / "dataset" / "consolidated.manifest").read_text().splitlines():
        record = json.loads(line)
        metadata = next(value for key, value in record.items() if key.endswith("-metadata"))
        consolidated[record["source-ref"].rsplit("/", 1)[-1]] = metadata["class-name"]
    assert all(consolidated[image] == label for image, label in gold.items())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n_gold_questions"] == 6 and summary["accuracy"]["n_scored"] == 24
    assert "pipeline_without_gold" in summary["accuracy"]
    answered = [stats["gold_questions_answered"] for stats in summary["workers"].values()]
    assert sum(answered) == 6 * 3  # every gold question was answered by three workers, each scored on it
    report = (tmp_path / "report.html").read_text()
    assert "On gold questions (pipeline)" in report and "Dawid-Skene without the gold questions" in report


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--gold-share", "1"], "--gold-share: must be a number from 0 to below 1 (got 1.0)"),
        (["--gold-share", "-0.1"], "--gold-share: must be a number from 0 to below 1 (got -0.1)"),
        (["--gold-share", "0.1"], "--gold-share: gold questions are supported for image classification only"),
        (
            ["--dataset", "sample-classification", "--gold-share", "0.1", "--automated-labeling"],
            "--gold-share: gold questions cannot be combined with --automated-labeling yet",
        ),
    ],
)
def test_gold_share_the_run_cannot_honour_is_refused(tmp_path, capsys, arguments, message):
    assert main(["demo", *arguments, "--out", str(tmp_path / "out")]) == 2
    assert f"truthflow: error: {message}" in capsys.readouterr().err
    assert not (tmp_path / "out" / "s3").exists()
