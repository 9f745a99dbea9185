"""``truthflow demo``: the whole pipeline on this machine — the real state machine definition and Lambda handlers on
the embedded AWS, a simulated (or replayed) Ground Truth workforce, and a report of the run and its label quality."""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import numpy as np

from truthflow.job_file import JobFile
from truthflow.local.emulated_sagemaker import SIMULATED_DETECTOR_MAP
from truthflow.local.emulator import REGION, EmbeddedAws, EmulatorScenario, quiet_moto_logs
from truthflow.local.export_demo import ExportDataset, is_export, load_export_dataset
from truthflow.local.report import ReportInputs, format_summary, summarize, write_report
from truthflow.local.sample_data import SampleImage, SampleJob, make_sample_job
from truthflow.local.workforce import (
    WORKER_KINDS,
    ReplayWorkforce,
    SimulatedWorker,
    WorkerKind,
    answer,
    make_workforce,
    true_skill,
)
from truthflow.tables import InputError

DEFAULT_WORKERS: dict[WorkerKind, int] = {"careful": 2, "sloppy": 2, "biased": 1, "spammer": 1}
# The demo's automated-labeling settings (job.json "automated_labeling"): the seed's mean IoU 0.6 for boxes; for
# classes 0.75, what 200 images allow: the first batch's minimum of 100 leaves 50 calibration images, and θ's walk
# starts with the 25 the model is surest of, where a 95 % bound passes 0.75 with two disagreements (0.9 would need
# 29 in a row to agree with the human labels, which a crowd of this make does not give).
DEMO_AUTOMATED_LABELING: dict[str, dict[str, Any]] = {
    "bounding-box": {"target": 0.6},
    "image-classification": {"target": 0.75},
}
# Ground Truth's NumberOfHumanWorkersPerDataObject takes 1 to 9 (the job file's workers_per_object likewise).
MAX_WORKERS_PER_OBJECT = 9
# The demo's sample: 200 images answered by 3 of the 6 workers each (the job file's default) give every worker about
# 100 answers, some 33 per true class of the 3, so each row of a worker's confusion matrix rests on ~30 answers (a
# standard error of ~0.07 on an accuracy of 0.8); 40 images x 5 workers gave ~11 per row, and with 5 answers per image
# majority vote was already right wherever the model was. Warm, the run takes ~15 s on the 2-core machine.
DEMO_IMAGES = 200
JOB_FILE_WORKERS_PER_OBJECT = int(JobFile.model_fields["workers_per_object"].default)
GOLD_FILE = "gold.csv"


@dataclass(frozen=True)
class DemoOptions:
    """What ``truthflow demo`` runs: the generated sample (boxes or classes) or a replayed crowd data set folder."""

    dataset: str = "sample"
    task_type: str = "bounding-box"
    n_images: int = DEMO_IMAGES
    workers: Mapping[WorkerKind, int] = field(default_factory=lambda: dict(DEFAULT_WORKERS))
    workers_per_object: int | None = None
    """``None``: the job file's default (3), or the workforce's size when that is smaller."""
    seed: int = 0
    out: Path = Path("demo-output")
    max_items: int = 200
    scenario: EmulatorScenario = field(default_factory=EmulatorScenario)
    automated_labeling: bool = False
    gold_share: float = 0.0
    """The share of a classification job's images that become gold questions (job.json ``gold_labels``): drawn at
    random (seeded) among the images whose truth is known, at least one when the share is above 0."""


@dataclass
class OfflineRun:
    status: str
    execution_arn: str
    failed_state: str | None
    error: str | None
    cause: str | None
    seconds: float
    report: Path | None
    outputs: Path
    summary: dict[str, Any]
    timeline: list[tuple[str, float, float, str]]


class _RecordingWorkforce:
    """The workforce the emulator asks, remembering every answer for the report."""

    def __init__(
        self, job: SampleJob, answer_object: Callable[[SampleImage, int], list[tuple[str, dict[str, Any]]]]
    ) -> None:
        self.by_file = {image.file_name: image for image in job.images}
        self.answer_object = answer_object
        self.answers: dict[str, list[tuple[str, dict[str, Any]]]] = {}

    def __call__(self, line: Mapping[str, Any], n_workers: int) -> list[tuple[str, dict[str, Any]]]:
        file_name = str(line.get("source-ref", "")).rsplit("/", 1)[-1]
        image = self.by_file.get(file_name)
        if image is None:
            return []
        given = self.answer_object(image, n_workers)
        self.answers[file_name] = given
        return given


def _simulated(job: SampleJob, workers: list[SimulatedWorker], seed: int) -> _RecordingWorkforce:
    def answer_object(image: SampleImage, n_workers: int) -> list[tuple[str, dict[str, Any]]]:
        rng = np.random.default_rng([seed, int.from_bytes(image.file_name.encode()[-8:], "little")])
        chosen = rng.choice(len(workers), size=min(n_workers, len(workers)), replace=False)
        return [
            (workers[i].worker_id, answer(workers[i], image, job.labels, rng, job.task_type)) for i in sorted(chosen)
        ]

    return _RecordingWorkforce(job, answer_object)


def check_options(options: DemoOptions) -> None:
    """Refuse options the run cannot honour, as ``InputError`` naming the option (the CLI exits 2 with it)."""
    for name, value, smallest in (("--images", options.n_images, 1), ("--max-items", options.max_items, 1),
                                  ("--seed", options.seed, 0)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
            raise InputError(f"{name}: must be an integer of at least {smallest} (got {value!r})")
    share = options.gold_share
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0.0 <= share < 1.0:
        raise InputError(f"--gold-share: must be a number from 0 to below 1 (got {share!r})")
    if share > 0 and options.automated_labeling:
        raise InputError("--gold-share: gold questions cannot be combined with --automated-labeling yet")
    if share > 0 and options.dataset == "sample":
        raise InputError(
            "--gold-share: gold questions are supported for image classification only (e.g. --dataset "
            "sample-classification); box gold is not implemented yet"
        )
    wanted = options.workers_per_object
    if wanted is not None:
        if isinstance(wanted, bool) or not isinstance(wanted, int) or not 1 <= wanted <= MAX_WORKERS_PER_OBJECT:
            raise InputError(f"--workers-per-object: must be between 1 and {MAX_WORKERS_PER_OBJECT} (got {wanted!r})")
        workforce = sum(options.workers.values())
        if options.dataset in ("sample", "sample-classification") and wanted > workforce:
            mix = ",".join(f"{kind}={count}" for kind, count in options.workers.items() if count)
            raise InputError(
                f"--workers-per-object {wanted}: the workforce has only {workforce} worker(s) ({mix}); "
                "lower --workers-per-object or add workers with --workers"
            )
    out = options.out
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file; name a folder (it is created when missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"--out {out}: cannot create the folder ({error.strerror or error})") from None


def workers_per_object(options: DemoOptions, default: int) -> int:
    """The workers per image of a generated sample: the option, else ``default`` capped to the workforce."""
    if options.workers_per_object is not None:
        return options.workers_per_object
    return min(default, sum(options.workers.values()))


def run_offline(options: DemoOptions, *, progress: Callable[[str], None] = print) -> OfflineRun:
    check_options(options)
    started = time.perf_counter()
    workers: list[SimulatedWorker] = []
    exported: ExportDataset | None = None
    if options.dataset in ("sample", "sample-classification"):
        task_type = "image-classification" if options.dataset == "sample-classification" else options.task_type
        job = make_sample_job(task_type=task_type, n_images=options.n_images, seed=options.seed)  # type: ignore[arg-type]
        job_file = {
            **job.job_file,
            "workers_per_object": workers_per_object(
                options, int(job.job_file.get("workers_per_object", JOB_FILE_WORKERS_PER_OBJECT))
            ),
        }
        if options.automated_labeling:
            job_file["automated_labeling"] = DEMO_AUTOMATED_LABELING[job.task_type]
        workers = make_workforce(options.workers, seed=options.seed)
        workforce = _simulated(job, workers, options.seed)
        source = f"generated sample ({len(job.images)} images of {', '.join(job.labels)})"
    elif is_export(Path(options.dataset)):
        if options.automated_labeling:
            raise InputError("--automated-labeling: an export brings its labels, so nothing is labeled in the run")
        exported = load_export_dataset(Path(options.dataset), max_items=options.max_items, seed=options.seed)
        job = exported.job
        job_file = dict(job.job_file)
        workforce = _RecordingWorkforce(job, lambda image, n: [])
        source = (
            f"labels imported from {options.dataset} ({len(exported.files)} export file(s), {len(job.images)} images "
            f"with stand-ins, {job.task_type})"
        )
    else:
        if not Path(options.dataset).exists():
            raise InputError(f"--dataset {options.dataset}: no such file or folder")
        replay = ReplayWorkforce.load(Path(options.dataset), max_items=options.max_items, seed=options.seed)
        job = replay.job
        job_file = dict(job.job_file)
        workforce = _RecordingWorkforce(job, lambda image, n: replay.answers_for(image.file_name))
        source = f"replayed crowd answers from {options.dataset} ({len(job.images)} items)"
    if options.gold_share > 0 and job.task_type != "image-classification":
        raise InputError(
            f"--gold-share: {options.dataset} is a bounding-box data set; gold questions are supported for image "
            "classification only"
        )
    gold_questions = choose_gold_questions(job, options.gold_share, seed=options.seed)
    if options.gold_share > 0 and not gold_questions:
        raise InputError(f"--gold-share: {options.dataset} has no item whose true label is known")
    files: list[tuple[str, bytes]] = []
    if gold_questions:
        job_file["gold_labels"] = GOLD_FILE
        files.append((GOLD_FILE, gold_csv(gold_questions)))
    progress(f"truthflow offline run: {source}")
    if exported is not None:
        for note in exported.notes:
            progress(f"note: {note}")
        progress("annotators: the exports' own; no labeling job (labeling is skipped); embedded AWS (moto)")
    else:
        described = _describe_workforce(options, workers, int(job_file.get("workers_per_object", 0)))
        progress(f"workforce: {described}; embedded AWS (moto) with emulated Ground Truth")
    if gold_questions:
        progress(f"gold questions: {len(gold_questions)} images with known labels mixed into the job ({GOLD_FILE})")

    timeline: list[tuple[str, float, float, str]] = []
    gold_boxes = {image.file_name: _gold(image, "bounding-box") for image in job.images}
    with quiet_moto_logs(), EmbeddedAws(workforce, options.scenario, gold_boxes=gold_boxes, seed=options.seed) as aws:
        if exported is not None:
            _upload(aws.resources.data_bucket, f"jobs/{job.job_id}/", exported.files)
            progress(f"uploaded {len(exported.files)} export file(s) to jobs/{job.job_id}/annotations/")
        images = [(image.file_name, image.data) for image in job.images]
        version = aws.upload_job(job.job_id, job_file, images, files)
        progress(
            f"uploaded {len(job.images)} images and job.json to s3://{aws.resources.data_bucket}/jobs/{job.job_id}/"
        )
        started_run = aws.start_run(job.job_id, version)
        if not started_run.get("started"):
            raise RuntimeError(f"the starter Lambda started nothing: {started_run}")
        execution_arn = started_run["execution_arn"]
        progress(f"started execution {started_run['execution_name']} (as the S3 upload trigger does)")
        printer = _ProgressPrinter(progress, started)
        description = aws.wait(execution_arn, on_event=printer)
        timeline = printer.timeline
        outputs = options.out / "s3" / aws.resources.data_bucket
        # A previous run's copy would mix its labeling folders with this run's.
        shutil.rmtree(outputs, ignore_errors=True)
        _download(aws.resources.data_bucket, f"jobs/{job.job_id}/", outputs)
        dataset = outputs / "jobs" / job.job_id / "dataset"
        quality = _read_json(dataset / "quality.json")
        consolidated, machine_labeled = _consolidated(dataset / "consolidated.manifest")
        routing = _read_json(dataset / "automated-labeling.json") or None
        imported = (_read_json(outputs / "jobs" / job.job_id / "status.json").get("import") or {}).get("message")
        if imported:
            progress(f"import: {imported}")
    seconds = time.perf_counter() - started
    status = str(description["status"])
    failed_state = printer.failed_state
    inputs = ReportInputs(
        task_type=job.task_type,
        labels=list(job.labels),
        job_id=job.job_id,
        execution_name=execution_arn.rsplit(":", 1)[-1],
        execution_status=status,
        outputs_location=str(outputs),
        # A stand-in image shows what one annotator drew, not the truth: an export run has no gold.
        gold={} if exported is not None else {image.file_name: _gold(image, job.task_type) for image in job.images},
        worker_answers=(
            exported.answers
            if exported is not None
            else {name: _answers(given, job.task_type) for name, given in workforce.answers.items()}
        ),
        consolidated=consolidated,
        true_skill=true_skill(workers) if workers else {},
        estimated_skill=_estimated_skill(quality),
        timeline=timeline,
        sample_images={image.file_name: image.data for image in job.images[:6]},
        run_seconds=seconds,
        notes=[
            _model_note(job.task_type, options.scenario),
            source,
            *(exported.notes if exported is not None else []),
            *([f"Import: {imported}"] if imported else []),
        ],
        automated_labeling=routing,
        machine_labeled=machine_labeled,
        gold_questions=sorted(gold_questions),
        gold_question_scores=_gold_question_scores(quality),
        images={image.file_name: image.data for image in job.images},
    )
    report = write_report(inputs, options.out)
    return OfflineRun(
        status=status,
        execution_arn=execution_arn,
        failed_state=failed_state,
        error=description.get("error"),
        cause=description.get("cause"),
        seconds=seconds,
        report=report,
        outputs=outputs,
        summary=summarize(inputs),
        timeline=timeline,
    )


def choose_gold_questions(job: SampleJob, share: float, *, seed: int) -> dict[str, str]:
    """Image file name -> true label for a seeded random ``share`` of the images whose truth is known (at least one
    when ``share`` is above 0); none for a box job or a share of 0."""
    known = [image for image in job.images if image.label is not None]
    if share <= 0 or not known:
        return {}
    count = min(len(known), max(1, round(share * len(job.images))))
    rng = np.random.default_rng([seed, 0x601D])
    chosen = sorted(int(index) for index in rng.choice(len(known), size=count, replace=False))
    return {known[index].file_name: str(known[index].label) for index in chosen}


def gold_csv(gold: Mapping[str, str]) -> bytes:
    """The gold file: ``image,label`` rows (paths under the job's images/ folder)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("image", "label"))
    writer.writerows(sorted(gold.items()))
    return buffer.getvalue().encode("utf-8")


def _gold_question_scores(quality: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """worker -> {"answers", "correct"} on the gold questions, from quality.json's per-worker entries."""
    return {
        str(worker["worker_id"]): {"answers": int(worker["gold_answers"]), "correct": int(worker["gold_correct"])}
        for worker in quality.get("workers") or []
        if worker.get("gold_answers")
    }


def _model_note(task_type: str, scenario: EmulatorScenario) -> str:
    if scenario.validation_metric is not None:
        return f"Training jobs ran in the emulator and report the scenario's metric {scenario.validation_metric:.2f}."
    if task_type == "image-classification":
        return (
            "Models were trained for real on this machine: a logistic-regression classifier on colour and shape "
            "features (in place of SageMaker's ResNet), scored on the validation split."
        )
    return (
        "The detector is simulated with stated skill (not trained): it finds objects from the gold boxes with noise, "
        f"and its training job reports mAP {SIMULATED_DETECTOR_MAP:.2f}; see truthflow.local.emulated_models."
    )


def parse_worker_mix(text: str) -> dict[WorkerKind, int]:
    """``careful=2,sloppy=1`` -> {"careful": 2, "sloppy": 1}; unknown kinds and bad counts are named."""
    mix: dict[WorkerKind, int] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        kind, _, count = part.partition("=")
        if kind not in WORKER_KINDS or not count.isdigit():
            raise InputError(f"--workers: {part!r} is not <kind>=<count> with kind one of {', '.join(WORKER_KINDS)}")
        mix[kind] = int(count)
    if sum(mix.values()) < 1:
        raise InputError("--workers: the workforce needs at least one worker")
    return mix


def print_outcome(run: OfflineRun, write: Callable[[str], None] = print) -> None:
    write("")
    write(f"execution {run.execution_arn.rsplit(':', 1)[-1]}: {run.status} in {run.seconds:.1f} s")
    if run.status != "SUCCEEDED":
        write(f"  stopped in state {run.failed_state!r}: {run.error}: {run.cause}")
    for line in format_summary(run.summary):
        write(f"  {line}")
    write(f"outputs (the job's S3 folder): {run.outputs}")
    if run.report is not None:
        write(f"report: {run.report}")


def _describe_workforce(options: DemoOptions, workers: list[SimulatedWorker], per_image: int) -> str:
    if not workers:
        return "recorded crowd workers"
    mix = ", ".join(f"{count} {kind}" for kind, count in options.workers.items() if count)
    return f"{len(workers)} simulated workers ({mix}), {per_image} per image"


class _ProgressPrinter:
    """Prints each state as it starts and ends, with timings, from the execution history."""

    def __init__(self, progress: Callable[[str], None], origin: float) -> None:
        self.progress = progress
        self.origin = origin
        self.entered: dict[str, float] = {}
        self.timeline: list[tuple[str, float, float, str]] = []
        self.failed_state: str | None = None
        self._current: str | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        now = time.perf_counter() - self.origin
        kind = str(event["type"])
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            self.entered[name] = now
            self._current = name
            self.progress(f"  {now:6.2f}s  > {name}")
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            start = self.entered.pop(name, now)
            self.timeline.append((name, start, now, "ok"))
            self.progress(f"  {now:6.2f}s  < {name} ({now - start:.2f}s)")
        elif kind in ("TaskFailed", "LambdaFunctionFailed") and self._current:
            self.failed_state = self._current
            self.progress(f"  {now:6.2f}s  ! {self._current} failed")
        elif kind == "FailStateEntered":
            name = event["stateEnteredEventDetails"]["name"]
            self.timeline.append((name, now, now, "failed"))


def _upload(bucket: str, prefix: str, files: list[tuple[str, bytes]]) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for name, data in files:
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=data)


def _download(bucket: str, prefix: str, target: Path) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            path = target / entry["Key"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read())


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _consolidated(path: Path) -> tuple[dict[str, Any], list[str]]:
    """file name -> the consolidated label (class and confidence, or boxes) from the consolidated manifest, and the
    file names whose label came from the model (``"human-annotated": "no"``)."""
    result: dict[str, Any] = {}
    machine: list[str] = []
    if not path.is_file():
        return result, machine
    from truthflow.groundtruth.output_manifest import ClassificationRecord, iter_output_manifest

    with path.open() as lines:
        for record in iter_output_manifest(lines):
            name = record.source_ref.rsplit("/", 1)[-1]
            if record.line.get(f"{record.label_attribute_name}-metadata", {}).get("human-annotated") == "no":
                machine.append(name)
            if isinstance(record, ClassificationRecord):
                result[name] = {"label": record.label, "confidence": record.confidence}
            else:
                result[name] = [
                    {"label": b.label, "left": b.left, "top": b.top, "width": b.width, "height": b.height,
                     "confidence": b.confidence}
                    for b in record.boxes
                ]  # fmt: skip
    return result, machine


def _gold(image: SampleImage, task_type: str) -> Any:
    if task_type == "image-classification":
        return image.label
    return [{"label": b.label, "left": b.left, "top": b.top, "width": b.width, "height": b.height} for b in image.boxes]


def _answers(given: list[tuple[str, dict[str, Any]]], task_type: str) -> dict[str, Any]:
    from truthflow.groundtruth.worker_answers import parse_bounding_box_content, parse_image_classification_content

    answers: dict[str, Any] = {}
    for worker, content in given:
        if task_type == "image-classification":
            answers[worker] = parse_image_classification_content(content).label
        else:
            answers[worker] = [
                {"label": b.label, "left": b.left, "top": b.top, "width": b.width, "height": b.height}
                for b in parse_bounding_box_content(content).boxes
            ]
    return answers


def _estimated_skill(quality: Mapping[str, Any]) -> dict[str, float]:
    """worker -> the pipeline's estimated accuracy, from quality.json's per-worker entries."""
    return {
        str(worker["worker_id"]): float(worker["estimated_accuracy"])
        for worker in quality.get("workers") or []
        if worker.get("estimated_accuracy") is not None
    }
