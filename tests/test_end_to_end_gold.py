"""Gold questions end to end: the real state machine and Lambdas on the embedded AWS, a job whose gold file names some
of its images. The gold labels survive both consolidations (the ACS per batch, the whole job), workers are scored on
them in quality.json, and a malformed gold file never starts a run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from test_end_to_end import IMAGES, JOB_ID

from truthflow.local.emulator import EmbeddedAws, EmulatorScenario, quiet_moto_logs

LABELS = ["pen", "pencil", "eraser"]
TRUTH = {name: LABELS[index % 3] for index, (name, _) in enumerate(IMAGES)}
# Gold questions: img01 (truth pencil) is answered "pen" by two of its three workers, so majority vote would get it
# wrong; img04 is right by every worker; img07's gold label is one no worker gives (the gold still stands).
GOLD = {"img01.png": "pencil", "img04.png": "pencil", "img07.png": "eraser"}


def answers_for(name: str) -> list[tuple[str, str]]:
    """Three of five workers per image: w-careful is always right; w-swap answers "pen" for a pencil."""
    index = int(name[3:5])
    truth = TRUTH[name]
    workers = ["w-careful", "w-swap", f"w-{index % 3}"]
    given = {"w-careful": truth, "w-swap": "pen" if truth == "pencil" else truth, f"w-{index % 3}": truth}
    if name == "img01.png":
        given[f"w-{index % 3}"] = "pen"
    if name == "img07.png":
        given = dict.fromkeys(workers, "pen")
    return [(worker, given[worker]) for worker in workers]


def workforce(line: Mapping[str, Any], n_workers: int) -> list[tuple[str, dict[str, Any]]]:
    name = line["source-ref"].rsplit("/", 1)[-1]
    return [(worker, {"crowd-image-classifier": {"label": label}}) for worker, label in answers_for(name)]


def job_file(**extra: Any) -> dict[str, Any]:
    return {"task_type": "image-classification", "labels": LABELS, "gold_labels": "truth/gold.csv", **extra}


def gold_csv(rows: Mapping[str, str]) -> bytes:
    return ("image,label\n" + "".join(f"{image},{label}\n" for image, label in rows.items())).encode()


@pytest.fixture
def aws():
    with quiet_moto_logs(), EmbeddedAws(workforce, EmulatorScenario(validation_metric=0.8)) as embedded:
        yield embedded


def labels_by_image(text: str) -> dict[str, str]:
    labels = {}
    for line in text.splitlines():
        record = json.loads(line)
        metadata = next(value for key, value in record.items() if key.endswith("-metadata"))
        labels[record["source-ref"].rsplit("/", 1)[-1]] = metadata["class-name"]
    return labels


def test_gold_labels_are_never_overridden_and_workers_are_scored_on_them(aws):
    version = aws.upload_job(JOB_ID, job_file(), IMAGES, [("truth/gold.csv", gold_csv(GOLD))])
    started = aws.start_run(JOB_ID, version)
    assert started["started"], started
    assert aws.wait(started["execution_arn"])["status"] == "SUCCEEDED"

    consolidated = labels_by_image(aws.read_text(f"jobs/{JOB_ID}/dataset/consolidated.manifest"))
    [output_manifest] = [key for key in aws.keys(f"jobs/{JOB_ID}/labeling/") if key.endswith("output.manifest")]
    per_batch = labels_by_image(aws.read_text(output_manifest))  # what the ACS Lambda answered Ground Truth
    for image, label in GOLD.items():
        assert consolidated[image] == label and per_batch[image] == label

    quality = aws.read_json(f"jobs/{JOB_ID}/dataset/quality.json")
    assert quality["gold_questions"]["n_gold"] == len(GOLD) == quality["gold_questions"]["n_answered"]
    expected: dict[str, tuple[int, int]] = {}
    for image, label in GOLD.items():
        for worker, given in answers_for(image):
            answered, right = expected.get(worker, (0, 0))
            expected[worker] = (answered + 1, right + (given == label))
    scored = {w["worker_id"]: (w["gold_answers"], w["gold_correct"]) for w in quality["workers"] if w["gold_answers"]}
    assert scored == expected
    workers = {worker["worker_id"]: worker for worker in quality["workers"]}
    assert workers["w-careful"]["gold_accuracy"] == pytest.approx(2 / 3, abs=1e-4)  # img07's gold is nobody's answer
    assert workers["w-careful"]["estimated_accuracy"] is not None


def test_a_malformed_gold_file_starts_no_run_and_says_which_line(aws):
    rows = gold_csv({"img01.png": "pencil"}) + b"img02.png,Pencil\n"
    version = aws.upload_job(JOB_ID, job_file(), IMAGES, [("truth/gold.csv", rows)])
    started = aws.start_run(JOB_ID, version)
    assert started["started"] is False
    status = aws.read_json(f"jobs/{JOB_ID}/status.json")
    assert status["status"] == "invalid"
    assert "jobs/pens-v1/truth/gold.csv line 3: label 'Pencil' is not one of the job's labels" in status["errors"]


def test_a_gold_image_missing_from_the_job_fails_the_preparation_by_name(aws):
    rows = gold_csv({"img01.png": "pencil", "img99.png": "pen"})
    version = aws.upload_job(JOB_ID, job_file(), IMAGES, [("truth/gold.csv", rows)])
    started = aws.start_run(JOB_ID, version)
    description = aws.wait(started["execution_arn"])
    assert description["status"] == "FAILED"
    assert "jobs/pens-v1/truth/gold.csv line 3: image 'img99.png' is not among the job's images" in description["cause"]
