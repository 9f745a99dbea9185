"""State machine step "Consolidate whole job": a job's consolidated dataset, from every worker response of the
finished labeling job or from an output manifest the job file brought along.

Event ``{"bucket", "job_id", "labeling": {...}}`` where ``labeling`` is the output of "Prepare labeling input"
(``labeling_job_name``, ``label_attribute_name``, ``task_type``, ``labels``, ``input_manifest_uri``,
``output_path_uri``, ``start_at``, ``existing_manifest_uri``; other keys are ignored).

* ``start_at`` ``"label"``: lists ``<output_path_uri><job>/annotations/worker-response/`` (all pages), reads the latest
  iteration's files of every object (the storage reads them concurrently, a bounded number ahead, in object order)
  and the input manifest, and runs :func:`truthflow.groundtruth.job_consolidation.consolidate_job`, which reads each
  object's answers as its files arrive. A file that cannot be read is reported in ``quality.json``, not raised.
* ``start_at`` ``"consolidate"``: ``existing_manifest_uri`` is an output manifest labeled elsewhere; it is streamed
  through :func:`truthflow.groundtruth.existing_manifest.normalise_existing_manifest` (labels kept as they are, label
  attribute taken from the file).

Writes ``jobs/<id>/dataset/consolidated.manifest``, ``consolidated.csv`` (both spooled through temporary files, not
memory) and ``quality.json``, and returns ``{"consolidated_manifest_uri", "table_uri", "quality_uri", "n_objects",
"n_consolidated", "n_failed", "label_attribute_name", "task_type", "labels"}`` (``s3://`` URIs). Objects without a
label are listed in ``quality.json``, not raised: a partly labeled job still trains. A job with nothing usable raises
``ValueError``. Storage comes in through :class:`JobStore`, so the flow has no AWS calls of its own.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, model_validator

from truthflow.aws.s3 import parse_s3_uri
from truthflow.groundtruth.consolidated_dataset import ConsolidatedDatasetWriter, DatasetQuality, id_order
from truthflow.groundtruth.existing_manifest import normalise_existing_manifest
from truthflow.groundtruth.job_consolidation import (
    WorkerResponseFile,
    consolidate_job,
    latest_worker_responses,
    worker_response_prefix,
)
from truthflow.groundtruth.label_config import TaskType
from truthflow.job_file import JOBS_PREFIX

MANIFEST_CONTENT_TYPE = "application/jsonlines"
TABLE_CONTENT_TYPE = "text/csv; charset=utf-8"

_EVENT = ConfigDict(extra="ignore", frozen=True)


class LabelingStage(BaseModel):
    """The part of "Prepare labeling input"'s output this step reads."""

    model_config = _EVENT

    labeling_job_name: str
    label_attribute_name: str
    task_type: TaskType | None = None
    labels: list[str] = []
    input_manifest_uri: str | None = None
    output_path_uri: str | None = None
    start_at: Literal["label", "consolidate"] = "label"
    existing_manifest_uri: str | None = None

    @model_validator(mode="after")
    def _inputs_for_start(self) -> LabelingStage:
        if self.start_at == "consolidate" and not self.existing_manifest_uri:
            raise ValueError("start_at 'consolidate' needs existing_manifest_uri (an output manifest)")
        if self.start_at == "label":
            missing = [name for name in ("input_manifest_uri", "output_path_uri", "labels") if not getattr(self, name)]
            if missing:
                raise ValueError(f"start_at 'label' needs {', '.join(missing)}")
        for name in ("input_manifest_uri", "output_path_uri", "existing_manifest_uri"):
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

    def upload_text(self, stream: IO[str], uri: str, content_type: str) -> None:
        """Upload a finished text file from its start."""
        ...

    def write_json(self, uri: str, value: Any) -> None: ...


def consolidate_whole_job(request: ConsolidateJobRequest, store: JobStore) -> tuple[dict[str, Any], DatasetQuality]:
    """Run the step (see the module docstring); returns the state output and the quality summary."""
    labeling = request.labeling
    dataset = f"s3://{request.bucket}/{JOBS_PREFIX}{request.job_id}/dataset/"
    manifest_uri, table_uri, quality_uri = (
        dataset + "consolidated.manifest",
        dataset + "consolidated.csv",
        dataset + "quality.json",
    )
    with _spooled_text() as manifest, _spooled_text() as table:
        writer = ConsolidatedDatasetWriter(manifest, table)
        if labeling.start_at == "consolidate":
            quality = _normalise_manifest(labeling, writer, store)
        else:
            quality = _consolidate_worker_responses(labeling, writer, store)
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
        "labels": quality.labels,
    }
    return output, quality


def _consolidate_worker_responses(
    labeling: LabelingStage, writer: ConsolidatedDatasetWriter, store: JobStore
) -> DatasetQuality:
    assert labeling.output_path_uri is not None and labeling.input_manifest_uri is not None  # checked by the model
    bucket, prefix = parse_s3_uri(worker_response_prefix(labeling.output_path_uri, labeling.labeling_job_name))
    chosen = latest_worker_responses(store.list_keys(bucket, prefix))
    object_ids = sorted(chosen, key=id_order)
    read = store.read_files(bucket, [key for object_id in object_ids for key in chosen[object_id]])

    def groups() -> Iterator[tuple[str, list[WorkerResponseFile]]]:
        for object_id in object_ids:
            yield object_id, [next(read) for _ in chosen[object_id]]

    try:
        return consolidate_job(
            store.iter_lines(labeling.input_manifest_uri),
            groups(),
            labels=labeling.labels,
            label_attribute_name=labeling.label_attribute_name,
            job_name=labeling.labeling_job_name,
            task_type=labeling.task_type,
            writer=writer,
        )
    except ValueError as error:
        raise ValueError(f"{labeling.input_manifest_uri}: {error}") from error


def _normalise_manifest(labeling: LabelingStage, writer: ConsolidatedDatasetWriter, store: JobStore) -> DatasetQuality:
    assert labeling.existing_manifest_uri is not None  # checked by the model
    try:
        return normalise_existing_manifest(
            store.iter_lines(labeling.existing_manifest_uri),
            writer=writer,
            labels=labeling.labels or None,
            preferred_label_attribute_name=labeling.label_attribute_name,
        )
    except ValueError as error:
        raise ValueError(f"{labeling.existing_manifest_uri}: {error}") from error


@contextmanager
def _spooled_text() -> Iterator[IO[str]]:
    """A temporary text file (UTF-8, ``\\n`` line ends): large outputs go to /tmp, not to memory."""
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as stream:
        yield stream
