"""``truthflow demo --dataset <export file or folder>`` as a user runs it: tool exports through the whole offline
pipeline with stand-in images, and a report that shows per-annotator quality as agreement (exports carry no gold)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from test_end_to_end_imports import label_studio_classes_export

from truthflow.cli import main
from truthflow.local.sample_data import make_sample_job

EXPORTS = Path(__file__).parent / "exports"


def test_a_folder_of_exports_from_three_tools_runs_the_pipeline_and_reports_agreement(tmp_path, capsys):
    folder = tmp_path / "exports"
    (folder / "cvat").mkdir(parents=True)
    shutil.copy(EXPORTS / "label_studio_boxes.json", folder / "project-3.json")
    shutil.copy(EXPORTS / "cvat_job_dana.xml", folder / "cvat" / "job_7.xml")
    shutil.copy(EXPORTS / "coco_erin.json", folder / "instances_default.json")
    (folder / ".DS_Store").write_bytes(b"\x00\x01")  # hidden files are not exports
    out = tmp_path / "demo"
    assert main(["demo", "--dataset", str(folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "labels imported from" in printed and "3 export file(s)" in printed and ": SUCCEEDED in" in printed
    assert "> Label images" not in printed and "> Notify import result" in printed
    assert "import: imported 3 export file(s): 5 annotator(s) answered 3 of the 3 images" in printed
    assert "no gold: agreement between annotators (mean pairwise F1 per image)" in printed
    assert "stand-in" in printed
    summary = json.loads((out / "summary.json").read_text())
    annotators = summary["agreement"]["annotators"]
    assert set(annotators) == {
        "annotations/project-3.json#1", "annotations/project-3.json#2", "annotations/project-3.json#3",
        "dana@example.com", "annotations/instances_default.json",
    }  # fmt: skip
    assert all(stats["f1_with_consolidated"] is not None for stats in annotators.values())
    # The annotators as the report names them are the run's: each has the pipeline's estimated accuracy.
    assert all(summary["workers"][name]["estimated_accuracy"] is not None for name in annotators)
    report = (out / "report.html").read_text()
    assert "Agreement between annotators" in report and "No image has gold labels" in report
    job = out / "s3" / "truthflow-data" / "jobs" / "import-exports"
    assert (job / "annotations" / "cvat" / "job_7.xml").read_bytes() == (EXPORTS / "cvat_job_dana.xml").read_bytes()
    assert json.loads((job / "status.json").read_text())["import"]["annotators"] == 5


def test_a_classification_export_file_reports_fleiss_kappa(tmp_path, capsys):
    sample = make_sample_job(task_type="image-classification", n_images=60, seed=2)
    answers = {}
    for index, image in enumerate(sample.images):
        assert image.label is not None
        other = next(label for label in sample.labels if label != image.label)
        answers[image.file_name] = [("ana@example.com", image.label), ("ben@example.com", image.label),
                                    ("cho@example.com", other if index % 4 == 0 else image.label)]  # fmt: skip
    export = tmp_path / "project-7-at-2026-11-20.json"
    export.write_bytes(label_studio_classes_export(answers))
    assert main(["demo", "--dataset", str(export), "--out", str(tmp_path / "demo")]) == 0
    printed = capsys.readouterr().out
    assert "image-classification" in printed and "no gold: agreement between annotators (Fleiss' kappa)" in printed
    agreement = json.loads((tmp_path / "demo" / "summary.json").read_text())["agreement"]
    assert agreement["annotators"]["cho@example.com"]["agreement_with_consolidated"] == 0.75  # wrong on 15 of 60
    assert agreement["annotators"]["ana@example.com"]["kappa_with_consolidated"] == 1.0


def test_max_items_keeps_the_first_images_and_the_run_reports_the_rest(tmp_path, capsys):
    export = EXPORTS / "label_studio_boxes.json"
    assert main(["demo", "--dataset", str(export), "--max-items", "2", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "stand-in images for the first 2 of 3 images (--max-items)" in printed
    assert "1 image(s) the exports name are not in images/ (desk_03.jpg)" in printed


def test_export_options_the_run_cannot_honour_are_clear_errors(tmp_path, capsys):
    export = str(EXPORTS / "cvat_task.xml")
    assert main(["demo", "--dataset", export, "--automated-labeling", "--out", str(tmp_path)]) == 2
    assert main(["demo", "--dataset", str(tmp_path / "missing.json"), "--out", str(tmp_path)]) == 2
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not an export\n")
    assert main(["demo", "--dataset", str(tmp_path / "notes"), "--out", str(tmp_path / "out")]) == 2
    errors = capsys.readouterr().err
    assert "--automated-labeling: an export brings its labels" in errors
    assert f"--dataset {tmp_path / 'missing.json'}: no such file or folder" in errors
    assert "annotations/readme.txt: not an export truthflow reads" in errors
    assert "Traceback" not in errors
