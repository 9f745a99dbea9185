"""State machine step "Consolidate whole job": a job's consolidated dataset, from every worker response of the
finished labeling job or from an output manifest the job file brought along.

Event ``{"bucket", "job_id", "labeling": {...}, "stage"}`` where ``labeling`` is the output of "Prepare labeling
input" (``labeling_job_name``, ``label_attribute_name``, ``task_type``, ``label_config_uri``, ``input_manifest_uri``,
``output_path_uri``, ``start_at``, ``existing_manifest_uri``, ``automated``, ``annotations_uri``,
``gold_labels_uri``; other keys are ignored). The labels, in class-id order, are read from the label-category file
at ``label_config_uri``. Every manifest read, and every image its lines name, must lie within the job's scope
(:mod:`truthflow.job_scope`).

* ``start_at`` ``"label"``: lists ``<output_path_uri><job>/annotations/worker-response/`` (all pages), reads the latest
  iteration's files of every object (the storage reads them concurrently, a bounded number ahead, in object order)
  and the input manifest, and runs :func:`truthflow.groundtruth.job_consolidation.consolidate_job`, which reads each
  object's answers as its files arrive. A file that cannot be read is reported in ``quality.json``, not raised.
* ``start_at`` ``"consolidate"``: ``existing_manifest_uri`` is an output manifest labeled elsewhere; it is streamed
  through :func:`truthflow.groundtruth.existing_manifest.normalise_existing_manifest` (labels kept as they are, label
  attribute taken from the file).
* ``start_at`` ``"automated"`` (automated labeling): ``stage`` ``"first-batch"`` consolidates the first labeling
  job alone into ``jobs/<id>/dataset/first-batch/`` (the human labels that train the bootstrap model and calibrate
  θ); the final stage consolidates both labeling jobs together (worker skill is fitted over all their answers; the
  second job is left out when every remaining image was machine-labeled) and appends the accepted machine labels of
  ``jobs/<id>/dataset/machine-labels.manifest``, so every image of the job is in the manifest once.

Gold questions: with ``gold_labels_uri`` (the run's ``manifests/gold-labels.json``, written by "Prepare labeling input"
for a job file with ``gold_labels``), the gold images keep their known labels, anchor worker skill, and
``quality.json`` scores each worker on them (:func:`~truthflow.groundtruth.job_consolidation.consolidate_job`).

Writes ``jobs/<id>/dataset/consolidated.manifest``, ``consolidated.csv`` (both spooled through temporary files, not
memory) and ``quality.json``, and returns ``{"consolidated_manifest_uri", "table_uri", "quality_uri", "n_objects",
"n_consolidated", "n_failed", "label_attribute_name", "task_type"}`` (``s3://`` URIs). Objects without a
label are listed in ``quality.json``, not raised: a partly labeled job still trains. A job with nothing usable raises
``ValueError``. Storage comes in through :class:`JobStore`, so the flow has no AWS calls of its own.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, model_validator

from truthflow.automated_labeling.run_step import AutomatedState
from truthflow.aws.s3 import parse_s3_uri
from truthflow.export_consolidation import consolidate_exports, import_output, record_in_status_file
from truthflow.groundtruth.consolidated_dataset import ConsolidatedDatasetWriter, DatasetQuality, id_order
from truthflow.groundtruth.existing_manifest import normalise_existing_manifest
from truthflow.groundtruth.gold_labels import GoldLabels, read_gold_labels
from truthflow.groundtruth.job_consolidation import (
    WorkerResponseFile,
    consolidate_job,
    latest_worker_responses,
    worker_response_prefix,
)
from truthflow.groundtruth.label_config import TaskType, parse_label_category_config
from truthflow.groundtruth.machine_labeled import add_machine_labels
from truthflow.job_file import JOBS_PREFIX
from truthflow.job_scope import JobScope, OutOfScopeError

MANIFEST_CONTENT_TYPE = "application/jsonlines"
TABLE_CONTENT_TYPE = "text/csv; charset=utf-8"

_EVENT = ConfigDict(extra="ignore", frozen=True)


class LabelingStage(BaseModel):
    """The part of "Prepare labeling input"'s output this step reads."""

    model_config = _EVENT

    labeling_job_name: str
    label_attribute_name: str
    task_type: TaskType | None = None
    label_config_uri: str
    input_manifest_uri: str | None = None
    output_path_uri: str | None = None
    start_at: Literal["label", "consolidate", "automated", "import"] = "label"
    existing_manifest_uri: str | None = None
    automated: AutomatedState | None = None
    annotations_uri: str | None = None
    gold_labels_uri: str | None = None

    @model_validator(mode="after")
    def _inputs_for_start(self) -> LabelingStage:
        if self.start_at == "consolidate" and not self.existing_manifest_uri:
            raise ValueError("start_at 'consolidate' needs existing_manifest_uri (an output manifest)")
        if self.start_at == "automated" and self.automated is None:
            raise ValueError("start_at 'automated' needs the automated-labeling settings")
        if self.start_at == "import" and (not self.annotations_uri or self.task_type is None):
            raise ValueError("start_at 'import' needs annotations_uri (the list of export files) and task_type")
        if self.start_at in ("label", "automated"):
            missing = [name for name in ("input_manifest_uri", "output_path_uri") if not getattr(self, name)]
            if missing:
                raise ValueError(f"start_at {self.start_at!r} needs {', '.join(missing)}")
        for name in (
            "label_config_uri",
            "input_manifest_uri",
            "output_path_uri",
            "existing_manifest_uri",
            "annotations_uri",
            "gold_labels_uri",
        ):
            value = getattr(self, name)
            if value is not None:
                parse_s3_uri(value)
        return self


class ConsolidateJobRequest(BaseModel):
    """The step's event."""

    model_config = _EVENT

    bucket: str
    job_id: str
    labeling: LabelingStage
    stage: Literal["whole-job", "first-batch"] = "whole-job"


class JobStore(Protocol):
    """The storage the step reads and writes (``truthflow.aws.job_store.S3JobStore`` in the Lambda)."""

    def list_keys(self, bucket: str, prefix: str) -> Iterable[str]:
        """Every key under ``prefix``."""
        ...

    def read_files(self, bucket: str, keys: Sequence[str]) -> Iterator[WorkerResponseFile]:
        """The objects of ``keys`` as files, in that order; a failed read is a file with its ``error``."""
        ...

    def iter_lines(self, uri: str) -> Iterable[str]:
        """The lines of a text object, streamed."""
        ...

    def read_text(self, uri: str) -> str:
        """A whole (small) text object."""
        ...

    def upload_text(self, stream: IO[str], uri: str, content_type: str) -> None:
        """Upload a finished text file from its start."""
        ...

    def write_json(self, uri: str, value: Any) -> None: ...

    # A job that brings tool exports (start_at "import", truthflow.export_consolidation) also needs these.
    def read_export(self, uri: str, max_bytes: int) -> bytes:
        """The object's bytes; a ``ValueError`` naming it when it is missing, unreadable or over ``max_bytes``."""
        ...

    def read_image_sizes(self, uris: Sequence[str]) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
        """``({uri: (width, height)}, {uri: why not})`` from each image's header."""
        ...

    def read_json_if_present(self, uri: str) -> Any:
        """The object's JSON, or ``None`` when it does not exist or is not JSON."""
        ...


def consolidate_whole_job(
    request: ConsolidateJobRequest, store: JobStore, *, input_buckets: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], DatasetQuality]:
    """Run the step (see the module docstring); returns the state output and the quality summary."""
    labeling = request.labeling
    scope = JobScope(request.bucket, request.job_id, input_buckets)
    for uri in (labeling.label_config_uri, labeling.input_manifest_uri, labeling.output_path_uri,
                labeling.existing_manifest_uri, labeling.annotations_uri, labeling.gold_labels_uri):  # fmt: skip
        problem = scope.problem(uri) if uri is not None else None
        if problem is not None:
            raise ValueError(problem)
    labels = _read_labels(labeling.label_config_uri, store)
    gold = _read_gold(labeling, labels, store)
    first_batch = request.stage == "first-batch"
    dataset = f"s3://{request.bucket}/{JOBS_PREFIX}{request.job_id}/dataset/" + ("first-batch/" if first_batch else "")
    manifest_uri, table_uri, quality_uri = (
        dataset + "consolidated.manifest",
        dataset + "consolidated.csv",
        dataset + "quality.json",
    )
    with _spooled_text() as manifest, _spooled_text() as table:
        writer = ConsolidatedDatasetWriter(manifest, table)
        if labeling.start_at == "consolidate":
            quality = _normalise_manifest(labeling, labels, scope, writer, store)
        elif labeling.start_at == "import":
            assert labeling.annotations_uri is not None and labeling.task_type is not None  # checked by the model
            quality = consolidate_exports(
                bucket=request.bucket,
                job_id=request.job_id,
                annotations_uri=labeling.annotations_uri,
                labels=labels,
                task_type=labeling.task_type,
                label_attribute_name=labeling.label_attribute_name,
                job_name=labeling.labeling_job_name,
                scope=scope,
                writer=writer,
                store=store,
            )
        elif labeling.start_at == "automated" and not first_batch:
            quality = _consolidate_automated_run(request, labels, scope, writer, store, gold)
        else:
            assert labeling.input_manifest_uri is not None  # checked by the model
            jobs = [(labeling.input_manifest_uri, labeling.labeling_job_name)]
            quality = _consolidate_worker_responses(labeling, jobs, labels, scope, writer, store, gold)
        store.upload_text(manifest, manifest_uri, MANIFEST_CONTENT_TYPE)
        store.upload_text(table, table_uri, TABLE_CONTENT_TYPE)
    store.write_json(quality_uri, quality.to_dict())
    output = {
        "consolidated_manifest_uri": manifest_uri,
        "table_uri": table_uri,
        "quality_uri": quality_uri,
        "n_objects": quality.n_objects,
        "n_consolidated": quality.n_consolidated,
        "n_failed": quality.n_failed,
        "label_attribute_name": quality.label_attribute_name,
        "task_type": quality.task_type,
    }
    if quality.imports is not None:
        found = import_output(quality.imports, quality, quality_uri)
        found["status_file"] = record_in_status_file(
            store, bucket=request.bucket, job_id=request.job_id, labeling_job=labeling.labeling_job_name, output=found
        )
        output["import"] = found
    return output, quality


def _read_labels(label_config_uri: str, store: JobStore) -> list[str]:
    """The job's labels in class-id order, from the label-category file "Prepare labeling input" wrote."""
    try:
        return parse_label_category_config(store.read_text(label_config_uri)).label_names
    except ValueError as error:
        raise ValueError(f"{label_config_uri}: {error}") from error


def _read_gold(labeling: LabelingStage, labels: list[str], store: JobStore) -> GoldLabels | None:
    """The run's gold questions (``manifests/gold-labels.json``, written by "Prepare labeling input"), if any."""
    uri = labeling.gold_labels_uri
    if uri is None:
        return None
    try:
        gold = read_gold_labels(store.read_text(uri), label_set=labels)
    except ValueError as error:
        raise ValueError(f"{uri}: {error}") from error
    if not gold.belongs_to(labeling.labeling_job_name):
        raise ValueError(
            f"{uri} belongs to the labeling job(s) {', '.join(gold.labeling_jobs) or '(none)'}, not to this run's "
            f"{labeling.labeling_job_name}: another run of this job replaced it; start the run again"
        )
    return gold


def _consolidate_worker_responses(
    labeling: LabelingStage,
    jobs: Sequence[tuple[str, str]],
    labels: list[str],
    scope: JobScope,
    writer: ConsolidatedDatasetWriter,
    store: JobStore,
    gold: GoldLabels | None = None,
) -> DatasetQuality:
    """The labeling jobs ``(input manifest URI, job name)`` of a run consolidated at once, so that worker skill is
    fitted over all their answers: their manifests are read as one, and each later job's ``datasetObjectId`` (the
    0-based index of a non-blank line of its own manifest) is shifted by the lines before it."""
    assert labeling.output_path_uri is not None  # checked by the model
    output_path = labeling.output_path_uri
    lines: list[str] = []
    parts: list[tuple[int, str]] = []
    for manifest_uri, job_name in jobs:
        parts.append((len(lines), job_name))
        lines.extend(
            line for line in scope.check_manifest(store.iter_lines(manifest_uri), manifest_uri=manifest_uri)
            if line.strip()
        )  # fmt: skip

    def groups() -> Iterator[tuple[str, list[WorkerResponseFile]]]:
        for offset, job_name in parts:
            bucket, prefix = parse_s3_uri(worker_response_prefix(output_path, job_name))
            chosen = latest_worker_responses(store.list_keys(bucket, prefix))
            object_ids = sorted(chosen, key=id_order)
            read = store.read_files(bucket, [key for object_id in object_ids for key in chosen[object_id]])
            for object_id in object_ids:
                shifted = str(int(object_id) + offset) if object_id.isdigit() else f"{job_name}:{object_id}"
                yield shifted, [next(read) for _ in chosen[object_id]]

    try:
        return consolidate_job(
            lines,
            groups(),
            labels=labels,
            label_attribute_name=labeling.label_attribute_name,
            job_name=labeling.labeling_job_name,
            task_type=labeling.task_type,
            writer=writer,
            gold=gold.labels if gold is not None else None,
            gold_file=(gold.gold_file or labeling.gold_labels_uri) if gold is not None else None,
        )
    except OutOfScopeError:
        raise
    except ValueError as error:
        raise ValueError(f"{jobs[0][0]}: {error}") from error


def _consolidate_automated_run(
    request: ConsolidateJobRequest,
    labels: list[str],
    scope: JobScope,
    writer: ConsolidatedDatasetWriter,
    store: JobStore,
    gold: GoldLabels | None = None,
) -> DatasetQuality:
    """Both labeling jobs consolidated together, then the accepted machine labels (see the module docstring)."""
    labeling = request.labeling
    assert labeling.input_manifest_uri is not None and labeling.automated is not None  # checked by the model
    job_folder = scope.folder
    routing = json.loads(store.read_text(job_folder + "dataset/automated-labeling.json"))
    jobs = [(labeling.input_manifest_uri, labeling.labeling_job_name)]
    if routing.get("for_people"):
        jobs.append((job_folder + "manifests/remaining.manifest", labeling.automated.second_labeling_job_name))
    quality = _consolidate_worker_responses(labeling, jobs, labels, scope, writer, store, gold)
    human = {
        json.loads(line).get("source-ref")
        for manifest_uri, _ in jobs
        for line in store.iter_lines(manifest_uri)
        if line.strip()
    }
    machine_uri = job_folder + "dataset/machine-labels.manifest"
    add_machine_labels(
        scope.check_manifest(store.iter_lines(machine_uri), manifest_uri=machine_uri),
        writer=writer,
        quality=quality,
        labels=labels,
        skip_sources=(source for source in human if isinstance(source, str)),
    )
    return quality


def _normalise_manifest(
    labeling: LabelingStage, labels: list[str], scope: JobScope, writer: ConsolidatedDatasetWriter, store: JobStore
) -> DatasetQuality:
    uri = labeling.existing_manifest_uri
    assert uri is not None  # checked by the model
    try:
        return normalise_existing_manifest(
            scope.check_manifest(store.iter_lines(uri), manifest_uri=uri),
            writer=writer,
            labels=labels or None,
            preferred_label_attribute_name=labeling.label_attribute_name,
        )
    except OutOfScopeError:
        raise
    except ValueError as error:
        raise ValueError(f"{uri}: {error}") from error


@contextmanager
def _spooled_text() -> Iterator[IO[str]]:
    """A temporary text file (UTF-8, ``\\n`` line ends): large outputs go to /tmp, not to memory."""
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as stream:
        yield stream
