"""State machine step "Build training data", sharded: plan, convert every shard (a Distributed Map), join.

One code path for every size: a small job is one shard. The three calls share one event shape
``{"bucket", "job_id", "job_file", "labeling", "dataset", "purpose"}`` (the join adds ``training_plan``, the plan's
output; a shard gets ``{"bucket", "job_id", "plan_uri", "shard"}``):

``job_file`` is the version of ``jobs/<id>/job.json`` the run started with (its ``split``, ``exclusion``, training and
endpoint settings are used, after the starter's checks are made again); ``labeling`` is the output of "Prepare
labeling input" (``labeling_job_name`` names the training job, ``label_config_uri`` holds the labels in class-id
order); ``dataset`` is the output of "Consolidate whole job" or, for a consolidated manifest brought by the job file,
just ``consolidated_manifest_uri`` (the label attribute is then found in the file). The manifest and every image it
names must lie within the job's scope (:mod:`truthflow.job_scope`). ``"purpose": "bootstrap"`` (automated labeling)
builds the bootstrap model's training data: ``dataset`` is the first batch's consolidated manifest, its calibration
images (listed in the plan ``labeling.automated.plan_uri``) are left out so that θ is calibrated on images the model
never saw, the files go to ``jobs/<id>/dataset/bootstrap/training/``, the training job is
``labeling.automated.bootstrap_job_name``.

1. **Plan** (:func:`plan_step`): one streaming pass over the manifest (:class:`~truthflow.training_data.plan.
   TrainingDataPlanner`): every line is checked (JSON, labels, scope), exclusions counted, the split, the file
   names and the shards fixed. An empty train split stops the run here, before any file is written. Writes
   ``<work>/plan.json``, ``<work>/names/<n>.json`` (which of shard n's images are renamed) and ``<work>/shards.json``
   (the Distributed Map's items), where ``<work>`` is ``jobs/<id>/dataset/training-shards/`` (bootstrap:
   ``dataset/bootstrap/training-shards/``).
2. **Convert a shard** (:func:`convert_step`): reads its byte range of the manifest (if the manifest is still the
   planned object), writes its per-image files into the dataset and its parts to ``<work>/parts/<n>/``, and its
   counts to ``<work>/parts/<n>/result.json``; an error is recorded in ``<work>/parts/<n>/failed.json`` and raised.
3. **Join** (:func:`join_step`): concatenates the parts into the dataset's files, exactly the files one pass over
   the manifest writes (:mod:`truthflow.training_data.join`), marks the plan joined (``<work>/joined.json``: a retried
   join writes nothing again) and deletes the parts, and returns what CreateTrainingJob
   needs (``s3://`` URIs, ``attribute_names``, ``num_classes``, ``num_training_samples``, ``label_width``, ...) and
   ``training``, the settings of :func:`truthflow.training_job.training_settings`. A shard without a result fails
   the join, naming the shard, its lines and its error.

Storage comes in through :class:`TrainingDataStore` (``truthflow.aws.training_data_store`` on S3).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from truthflow.automated_labeling.plan import LabelingPlan
from truthflow.aws.s3 import parse_s3_uri, s3_uri
from truthflow.groundtruth.label_config import parse_label_category_config
from truthflow.groundtruth.output_manifest import (
    ManifestLineError,
    ManifestReadStats,
    ManifestRecord,
    parse_output_manifest_line,
)
from truthflow.job_acceptance import accept_job_file
from truthflow.job_file import JOB_FILE_NAME, JOBS_PREFIX, JobFile
from truthflow.job_scope import SOURCE_REF, JobScope, OutOfScopeError
from truthflow.run_start import JobFileVersion
from truthflow.training_data import (
    ConversionSummary,
    Destination,
    ExclusionCounts,
    ExclusionRule,
    ManifestLine,
    ShardNames,
    ShardPlan,
    ShardResult,
    SplitConfig,
    TrainingDataPlan,
    TrainingDataPlanner,
    convert_shard,
    join_training_data,
    kept_record,
    manifest_lines,
    merged_summary,
    part_paths,
)
from truthflow.training_data_requests import JoinRequest, ShardRequest, TrainingDataRequest
from truthflow.training_job import DeploymentDefaults, training_settings

__all__ = ["SHARD_LINES", "JoinRequest", "ShardRequest", "TrainingDataRequest", "TrainingDataStore", "convert_step",
           "join_step", "plan_step"]  # fmt: skip

# Non-blank manifest lines per shard, chosen from the scale benchmark (README, "The whole-job steps"): a box shard of
# this size writes 100,000 per-image objects in ~78 s (estimated on AWS), a quarter of a third of the Lambda's 15
# minutes; the largest shard within that third has ~190,000 lines.
SHARD_LINES = 50_000


# --- storage ---------------------------------------------------------------------------------------------------------


class TrainingDataStore(Protocol):
    """What the three calls read and write (``truthflow.aws.training_data_store.S3TrainingDataStore``)."""

    def read_job_file(self, bucket: str, job_file: JobFileVersion) -> str: ...

    def read_text(self, uri: str) -> str: ...

    def read_json(self, uri: str) -> Any: ...

    def write_json(self, uri: str, value: Any) -> None: ...

    def list_uris(self, prefix_uri: str) -> set[str]:
        """Every object under a prefix (as ``s3://`` URIs)."""
        ...

    def open_manifest(self, uri: str) -> tuple[str, int, Iterator[bytes]]:
        """The object's version tag (ETag), its size and its bytes as chunks."""
        ...

    def read_range(self, uri: str, start: int, end: int, etag: str) -> Iterator[bytes]:
        """Bytes ``[start, end)``, provided the object still has ``etag``."""
        ...

    def files(self, prefix_uri: str) -> AbstractContextManager[Destination]:
        """The dataset folder (many small files; every write is done when the context exits)."""
        ...

    def parts(self, prefix_uri: str) -> Destination: ...

    def read_text_chunks(self, uri: str) -> Iterable[str]:
        """A text object as chunks, opened when the iteration starts."""
        ...

    def write_chunks(self, uri: str, chunks: Iterable[str]) -> None: ...

    def delete(self, uris: Sequence[str]) -> None: ...


# --- 1. plan ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Inputs:
    """What the plan and the join read besides the manifest."""

    scope: JobScope
    job: JobFile
    labels: list[str]


def plan_step(
    request: TrainingDataRequest,
    store: TrainingDataStore,
    *,
    input_buckets: frozenset[str] = frozenset(),
    shard_lines: int = SHARD_LINES,
) -> tuple[dict[str, Any], TrainingDataPlan]:
    """Plan the conversion (see the module docstring); returns the state output and the plan."""
    inputs = _read_inputs(request, store, input_buckets)
    manifest_uri = request.dataset.consolidated_manifest_uri
    bootstrap = request.bootstrap
    held_out_uri = bootstrap.plan_uri if bootstrap else None
    held_out = set(LabelingPlan.from_dict(store.read_json(held_out_uri)).calibration) if held_out_uri else set()
    job = inputs.job
    planner = TrainingDataPlanner(
        split=SplitConfig(validation_fraction=job.split.validation_fraction, seed=job.split.seed),
        exclusion=ExclusionRule(**job.exclusion.model_dump()),
        shard_lines=shard_lines,
    )
    planner.begin_source(inputs.labels)
    stats = ManifestReadStats()
    etag, size, chunks = store.open_manifest(manifest_uri)
    plan_id = uuid.uuid4().hex
    try:
        lines = manifest_lines(chunks)
        attribute = request.dataset.label_attribute_name
        for record in _records(
            lines, manifest_uri, inputs.scope, held_out, attribute, inputs.labels, stats, on_line=planner.line
        ):
            planner.add(record)
        plan, names = planner.finish(
            end=size,
            unlabeled_lines=stats.unlabeled,
            class_names=inputs.labels or None,
            label_attribute_name=request.dataset.label_attribute_name,
        )
    except OutOfScopeError:
        raise
    except ValueError as error:
        raise ValueError(f"{manifest_uri}: cannot build training data: {error}") from error
    _refuse_an_empty_train_split(plan, manifest_uri)
    work = request.work_prefix
    for shard, shard_names in zip(plan.shards, names, strict=True):
        store.write_json(f"{work}names/{shard.index}.json", shard_names.to_dict())
    plan_uri = work + "plan.json"
    store.write_json(
        plan_uri,
        {
            "plan_id": plan_id,
            "manifest": {"uri": manifest_uri, "etag": etag, "held_out_uri": held_out_uri},
            "reading": {"label_attribute_name": request.dataset.label_attribute_name, "labels": inputs.labels},
            "training_prefix": request.training_prefix,
            "work_prefix": work,
            "plan": plan.to_dict(),
        },
    )
    shard_list = work + "shards.json"
    store.write_json(shard_list, [shard.to_dict() for shard in plan.shards])
    bucket, key = parse_s3_uri(shard_list)
    output = {
        "plan_uri": plan_uri,
        "shard_list": {"bucket": bucket, "key": key},
        "shards": len(plan.shards),
        "images": plan.images,
    }
    return output, plan


def _refuse_an_empty_train_split(plan: TrainingDataPlan, manifest_uri: str) -> None:
    """Nothing to train on is known after the plan: stop before any file is written."""
    if plan.manifest_lines("train") > 0:
        return
    train = plan.totals["train"].images
    without = f", {plan.without_boxes['train']} of them without a box" if plan.task == "object-detection" else ""
    raise ValueError(
        f"{manifest_uri}: the train split is empty ({train} train images{without}, "
        f"{plan.totals['validation'].images} validation images, {plan.excluded.boxes_excluded} boxes excluded "
        f"({_excluded_text(plan.excluded)}), {plan.unlabeled_lines} unlabeled lines): label more images, lower "
        "split.validation_fraction, or relax the exclusion rule"
    )


def _excluded_text(excluded: ExclusionCounts) -> str:
    counts = excluded.to_dict()
    counts.pop("boxes_excluded")
    return ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in counts.items() if count) or "none"


# --- 2. convert a shard ----------------------------------------------------------------------------------------------


def convert_step(
    request: ShardRequest, store: TrainingDataStore, *, input_buckets: frozenset[str] = frozenset()
) -> ShardResult:
    """Convert one shard (see the module docstring); a failure is recorded for the join, then raised."""
    stored = store.read_json(request.plan_uri)
    plan = TrainingDataPlan.from_dict(stored["plan"])
    work = stored["work_prefix"]
    index = int(request.shard.get("index", -1))
    if not 0 <= index < len(plan.shards):
        raise ValueError(f"{request.plan_uri}: no shard {request.shard.get('index')!r} in the plan")
    shard = plan.shards[index]
    marker = {"plan_id": stored["plan_id"]}
    try:
        result = _convert(request, store, stored, plan, shard, input_buckets)
    except Exception as error:
        failure = marker | {"error": type(error).__name__, "message": str(error)}
        with contextlib.suppress(Exception):  # the error itself is what must surface
            store.write_json(f"{work}parts/{index}/failed.json", failure)
        raise
    store.write_json(f"{work}parts/{index}/result.json", marker | result.to_dict())
    return result


def _convert(
    request: ShardRequest,
    store: TrainingDataStore,
    stored: dict[str, Any],
    plan: TrainingDataPlan,
    shard: ShardPlan,
    input_buckets: frozenset[str],
) -> ShardResult:
    work = stored["work_prefix"]
    manifest = stored["manifest"]
    reading = stored["reading"]
    names = ShardNames.from_dict(store.read_json(f"{work}names/{shard.index}.json"))
    held_out_uri = manifest["held_out_uri"]
    held_out = set(LabelingPlan.from_dict(store.read_json(held_out_uri)).calibration) if held_out_uri else set()
    scope = JobScope(request.bucket, request.job_id, input_buckets)
    chunks = store.read_range(manifest["uri"], shard.start, shard.end, manifest["etag"])
    lines = manifest_lines(chunks, start=shard.start, first_number=shard.first_line)
    records = _records(lines, manifest["uri"], scope, held_out, reading["label_attribute_name"], reading["labels"],
                       ManifestReadStats())  # fmt: skip
    kept = (image for record in records if (image := kept_record(record, plan.exclusion, ExclusionCounts())))
    with store.files(stored["training_prefix"]) as files:
        return convert_shard(plan, shard, names, kept, files=files, parts=store.parts(f"{work}parts/{shard.index}/"))


# --- 3. join ---------------------------------------------------------------------------------------------------------


def join_step(
    request: JoinRequest,
    store: TrainingDataStore,
    *,
    input_buckets: frozenset[str] = frozenset(),
    artifacts_bucket: str,
    region: str,
    defaults: DeploymentDefaults | None = None,
) -> tuple[dict[str, Any], ConversionSummary, list[str]]:
    """Join the shards' parts (see the module docstring); returns the state output, the summary and the notes on
    adjusted training settings."""
    inputs = _read_inputs(request, store, input_buckets)
    stored = store.read_json(request.training_plan.plan_uri)
    plan = TrainingDataPlan.from_dict(stored["plan"])
    work, training = stored["work_prefix"], stored["training_prefix"]
    manifest_uri = stored["manifest"]["uri"]
    plan_id = stored["plan_id"]
    results = _shard_results(plan, store, work, manifest_uri, plan_id)
    joined = f"{work}joined.json"
    if _marker(store, store.list_uris(joined), joined, plan_id) is not None:
        # The join ran to its end before (a retried call): its files are written and the parts are gone.
        summary = merged_summary(plan, results)
    else:
        summary = join_training_data(plan, results, _JoinStorage(store, work, training))
        store.write_json(joined, {"plan_id": plan_id})
        store.delete([f"{work}parts/{shard.index}/{path}" for shard in plan.shards for path in part_paths(plan)])
    bootstrap = request.bootstrap
    training_samples = plan.manifest_lines("train")
    settings = training_settings(
        inputs.job,
        job_id=request.job_id,
        job_name=bootstrap.bootstrap_job_name if bootstrap else request.labeling.labeling_job_name,
        num_classes=len(summary.class_names),
        num_training_samples=training_samples,
        label_width=summary.lst_label_width,
        region=region,
        output_path_uri=s3_uri(artifacts_bucket, f"training/{request.job_id}/{'bootstrap/' if bootstrap else ''}"),
        defaults=defaults,
    )
    output = {
        "train_manifest_uri": training + "train.manifest",
        "validation_manifest_uri": training + "validation.manifest",
        "attribute_names": ["source-ref", summary.label_attribute_name],
        "task": summary.task,
        "num_classes": len(summary.class_names),
        "num_training_samples": training_samples,
        "num_validation_samples": plan.manifest_lines("validation"),
        "label_width": summary.lst_label_width,
        "excluded": summary.excluded.to_dict(),
        "summary_uri": training + "summary.json",
        "training_prefix_uri": training,
        "training": settings,
    }
    return output, summary, list(settings["notes"])


def _shard_results(
    plan: TrainingDataPlan, store: TrainingDataStore, work: str, manifest_uri: str, plan_id: str
) -> list[ShardResult]:
    """Every shard's result for this plan; shards without one are named with their lines and what they recorded
    (results and failures of an earlier run of the job carry another plan id and do not count)."""
    written = store.list_uris(f"{work}parts/")
    results, problems = [], []
    for shard in plan.shards:
        folder = f"{work}parts/{shard.index}/"
        result = _marker(store, written, folder + "result.json", plan_id)
        if result is not None:
            results.append(ShardResult.from_dict(result))
            continue
        where = f"shard {shard.index} (bytes {shard.start}-{shard.end}, from line {shard.first_line})"
        failure = _marker(store, written, folder + "failed.json", plan_id)
        if failure is not None:
            problems.append(f"{where}: {failure.get('error')}: {failure.get('message')}")
        else:
            problems.append(f"{where}: no result (the conversion timed out, ran out of memory or did not run)")
    if problems:
        raise ValueError(
            f"{manifest_uri}: cannot build training data: {len(problems)} of {len(plan.shards)} shards failed: "
            + "; ".join(problems[:10])
            + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        )
    return results


def _marker(store: TrainingDataStore, written: set[str], uri: str, plan_id: str) -> dict[str, Any] | None:
    if uri not in written:
        return None
    value = store.read_json(uri)
    return value if isinstance(value, dict) and value.get("plan_id") == plan_id else None


class _JoinStorage:
    def __init__(self, store: TrainingDataStore, work: str, training: str) -> None:
        self._store, self._work, self._training = store, work, training

    def read_part(self, shard: int, path: str) -> Iterator[str]:
        yield from self._store.read_text_chunks(f"{self._work}parts/{shard}/{path}")

    def write_file(self, path: str, chunks: Iterable[str]) -> None:
        self._store.write_chunks(self._training + path, chunks)


# --- reading ---------------------------------------------------------------------------------------------------------


def _read_inputs(request: TrainingDataRequest, store: TrainingDataStore, input_buckets: frozenset[str]) -> _Inputs:
    """The job file version the run started with (checked as the starter checked it), the labels, and the scope
    every address of the manifest must lie in."""
    scope = JobScope(request.bucket, request.job_id, input_buckets)
    expected = f"{JOBS_PREFIX}{request.job_id}/{JOB_FILE_NAME}"
    if request.job_file.key != expected:
        raise ValueError(f"job_file.key must be {expected!r}, got {request.job_file.key!r}")
    job = accept_job_file(store.read_job_file(request.bucket, request.job_file), source=expected, scope=scope)
    for uri in (request.dataset.consolidated_manifest_uri, request.labeling.label_config_uri):
        problem = scope.problem(uri)
        if problem is not None:
            raise ValueError(problem)
    label_config_uri = request.labeling.label_config_uri
    try:
        labels = parse_label_category_config(store.read_text(label_config_uri)).label_names
    except ValueError as error:
        raise ValueError(f"{label_config_uri}: {error}") from error
    return _Inputs(scope, job, labels)


def _records(
    lines: Iterable[ManifestLine],
    manifest_uri: str,
    scope: JobScope,
    held_out: set[str],
    label_attribute_name: str | None,
    labels: Sequence[str],
    stats: ManifestReadStats,
    *,
    on_line: Any = None,
) -> Iterator[ManifestRecord]:
    """The labeled records of manifest lines, each line parsed once: a ``source-ref`` outside the job's scope is an
    :class:`~truthflow.job_scope.OutOfScopeError` naming the line, held-out images are left out, unlabeled lines
    are counted in ``stats``; ``on_line(start, number)`` sees every non-blank line first."""
    for line in lines:
        if not line.text.strip():
            continue
        if on_line is not None:
            on_line(line.start, line.number)
        try:
            parsed = json.loads(line.text)
        except json.JSONDecodeError as error:
            raise ManifestLineError(f"line {line.number}: not valid JSON: {error}") from error
        reference = parsed.get(SOURCE_REF) if isinstance(parsed, dict) else None
        if reference is not None:
            problem = scope.problem(reference)
            if problem is not None:
                raise OutOfScopeError(f"{manifest_uri} line {line.number}: source-ref {problem}")
            if reference in held_out:
                continue
        stats.lines += 1
        record = parse_output_manifest_line(
            parsed, label_attribute_name=label_attribute_name, class_names=labels, line_number=line.number
        )
        if record is None:
            stats.unlabeled += 1
            continue
        stats.records += 1
        yield record
