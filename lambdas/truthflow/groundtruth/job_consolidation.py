"""Consolidate a whole labeling job once it has finished, and write the job's consolidated dataset.

Ground Truth calls the ACS Lambda batch by batch, so worker skill is estimated from one batch at a time. Once the job
is over, every raw worker response is in S3 and the job can be consolidated again *at once*: Dawid-Skene sees each
worker's answers over the whole job, box consolidation sees every image. Two entry points:

* :func:`consolidate_job`: the job's raw worker responses (reference §2.5) and its input manifest. The responses are
  turned into the ACS payload shape (``datasetObjectId``, ``dataObject.s3Uri``,
  ``annotations[].annotationData.content``) and go through the ACS core itself
  (:func:`~truthflow.groundtruth.consolidation_batch.read_batch`, then
  :func:`~truthflow.groundtruth.consolidation_batch.consolidate_batch`) as one batch, so the result has exactly the
  shapes the ACS gives Ground Truth.
* :func:`normalise_existing_manifest`: "bring your own labels". An output manifest made elsewhere (another Ground
  Truth job, another tool writing the same format) has no worker responses; its labels are kept as they are.

Both write the same three things through a :class:`ConsolidatedDatasetWriter` and return a :class:`DatasetQuality`:

``consolidated.manifest``
    Output-manifest lines (reference §4): the input line (``source-ref`` and any other attributes) plus ``<attr>``
    and ``<attr>-metadata``. Like Ground Truth's own output manifest it has a line for every object, failed ones
    included (``<attr>`` null, ``failure-reason`` in the metadata), which readers skip as unlabeled. In the
    bring-your-own case a line that cannot be parsed is left out (and reported): it would stop every later stage.
``consolidated.csv``
    The columns of the AWS Ground Truth + YOLO blog's table,
    ``img_file,category,box_left,box_top,box_height,box_width,img_width,img_height``, pixels, one row per box
    (an image without boxes has no row). For classification one row per image: ``category`` is the label, the other
    columns are empty. ``img_file`` is the last segment of ``source-ref``.
``quality.json``
    :meth:`DatasetQuality.to_dict` (see there for the definitions of agreement and worker accuracy).

Worker responses: ``<output path>/<job>/annotations/worker-response/iteration-<n>/<datasetObjectId>/<time>.json``,
each ``{"answers": [{"workerId", "answerContent", "submissionTime", ...}]}``. ``datasetObjectId`` is the 0-based
index of the object's line in the input manifest (blank lines not counted). When an object has responses in several
iterations, only its latest iteration is used (a later iteration relabels the object); files of one iteration are
merged, and a worker who answered twice counts once, with the latest ``submissionTime``.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import numpy as np

from truthflow.consolidation.box_metrics import iou_matrix, match_boxes
from truthflow.consolidation.majority_vote import FloatArray
from truthflow.groundtruth.consolidation_batch import (
    ObjectAnswers,
    Problem,
    consolidate_batch,
    detect_task_type,
    failed_content,
    read_batch,
)
from truthflow.groundtruth.label_config import TaskType, validate_labels
from truthflow.groundtruth.output_manifest import (
    ClassificationRecord,
    DetectionRecord,
    ManifestLineError,
    ManifestRecord,
    dump_manifest_line,
    find_label_attribute,
    format_creation_date,
    output_manifest_line,
    parse_output_manifest_line,
)
from truthflow.groundtruth.worker_answers import PixelBox
from truthflow.training_data.classes import ordered_by_source_id
from truthflow.training_data.formats import image_file_name

TABLE_COLUMNS = ("img_file", "category", "box_left", "box_top", "box_height", "box_width", "img_width", "img_height")
# A worker's box "matched" a consolidated box at the PASCAL VOC overlap criterion (IoU >= 0.5, same label).
BOX_MATCH_IOU = 0.5
HISTOGRAM_BINS = 10
# quality.json lists every failed object, but only this many unusable answers (their total is always given).
MAX_LISTED_PROBLEMS = 1000

_RESPONSE_KEY = re.compile(r"(?:^|/)worker-response/iteration-(\d+)/([^/]+)/[^/]+\.json$")

Source = Literal["worker-responses", "existing-manifest"]


# --- worker-response files -----------------------------------------------------------------------------------------


def worker_response_prefix(output_path_uri: str, labeling_job_name: str) -> str:
    """``<S3OutputPath>/<job name>/annotations/worker-response/`` (the path may or may not end with ``/``)."""
    return f"{output_path_uri.rstrip('/')}/{labeling_job_name}/annotations/worker-response/"


@dataclass(frozen=True, slots=True)
class WorkerResponseLocation:
    """Where one worker-response file sits: its key, iteration and ``datasetObjectId``."""

    key: str
    iteration: int
    dataset_object_id: str


def parse_worker_response_key(key: str) -> WorkerResponseLocation | None:
    """The location of ``.../worker-response/iteration-<n>/<datasetObjectId>/<file>.json``; ``None`` for any other
    key (e.g. video-frame jobs, which nest deeper)."""
    match = _RESPONSE_KEY.search(key)
    if match is None:
        return None
    return WorkerResponseLocation(key, int(match.group(1)), match.group(2))


def latest_worker_responses(keys: Iterable[str]) -> dict[str, list[str]]:
    """Per ``datasetObjectId``, the keys of its latest iteration (sorted, i.e. by the file's timestamp name).
    Keys that are not worker-response files are ignored."""
    latest: dict[str, tuple[int, list[str]]] = {}
    for key in keys:
        location = parse_worker_response_key(key)
        if location is None:
            continue
        current = latest.get(location.dataset_object_id)
        if current is None or location.iteration > current[0]:
            latest[location.dataset_object_id] = (location.iteration, [key])
        elif location.iteration == current[0]:
            current[1].append(key)
    return {object_id: sorted(found) for object_id, (_, found) in latest.items()}


@dataclass(frozen=True, slots=True)
class WorkerResponseFile:
    """One worker-response file as read: its key and its text (parsed here, so one bad file is reported, not
    fatal)."""

    key: str
    text: str


# --- the consolidated dataset --------------------------------------------------------------------------------------


class ConsolidatedDatasetWriter:
    """Writes ``consolidated.manifest`` and ``consolidated.csv`` line by line to two text streams."""

    def __init__(self, manifest: IO[str], table: IO[str]) -> None:
        self._manifest = manifest
        self._table = csv.writer(table, lineterminator="\n")
        self._table.writerow(TABLE_COLUMNS)

    def add(self, line: Mapping[str, Any], record: ManifestRecord | None) -> None:
        """One manifest line, and the table rows of its record (none for an unlabeled line)."""
        self._manifest.write(dump_manifest_line(line))
        if record is None:
            return
        image = image_file_name(record.source_ref)
        if isinstance(record, ClassificationRecord):
            self._table.writerow([image, record.label, "", "", "", "", "", ""])
            return
        for box in record.boxes:
            self._table.writerow(
                [
                    image,
                    box.label,
                    _number(box.left),
                    _number(box.top),
                    _number(box.height),
                    _number(box.width),
                    record.image_width,
                    record.image_height,
                ]
            )


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


# --- quality summary -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailedObject:
    """An object of the job without a usable label, and why. ``line`` is its 1-based line in the manifest read."""

    dataset_object_id: str | None
    line: int
    source_ref: str | None
    reason: str


@dataclass
class WorkerQuality:
    """One worker over the whole job; see :meth:`DatasetQuality.to_dict` for ``estimated_accuracy``."""

    worker_id: str
    answers: int = 0
    answers_not_used: int = 0
    boxes: int = 0
    matched_boxes: int = 0
    estimated_accuracy: float | None = None


@dataclass
class DatasetQuality:
    """What was consolidated and how well the workers agreed; :meth:`to_dict` is ``quality.json``."""

    source: Source
    task_type: TaskType
    label_attribute_name: str
    labels: list[str]
    n_objects: int = 0
    failed: list[FailedObject] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    agreement_sum: float = 0.0
    agreement_count: int = 0
    n_boxes: int = 0
    workers: dict[str, WorkerQuality] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    n_response_files: int = 0
    unmatched_object_ids: list[str] = field(default_factory=list)
    n_machine_labeled: int = 0

    @property
    def n_failed(self) -> int:
        return len(self.failed)

    @property
    def n_consolidated(self) -> int:
        return self.n_objects - self.n_failed

    @property
    def agreement(self) -> float | None:
        return self.agreement_sum / self.agreement_count if self.agreement_count else None

    def to_dict(self) -> dict[str, Any]:
        """The summary. Definitions:

        * ``agreement``: classification, the mean over consolidated objects of the fraction of the object's workers
          whose answer is the consolidated label; boxes, the mean over consolidated boxes of the fraction of the
          image's workers who drew a box matching it (same label, IoU >= 0.5, one box per worker). ``null`` when
          there are no worker responses (bring-your-own manifest) or nothing to average.
        * ``confidence_histogram``: counts of the consolidated confidences (per object for classification, per box
          for boxes) in 10 equal bins over [0, 1] (the last bin includes 1).
        * ``workers[].estimated_accuracy``: classification, the Dawid-Skene model's expected fraction of the worker's
          answers that are the true class (the trace of its expected confusion counts over its answers); boxes, the
          fraction of the worker's boxes that match a kept consolidated box (``null`` for a worker who drew none).
        """
        bin_edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
        counts, _ = np.histogram(np.clip(self.confidences, 0.0, 1.0), bins=bin_edges)
        summary: dict[str, Any] = {
            "source": self.source,
            "task_type": self.task_type,
            "label_attribute_name": self.label_attribute_name,
            "labels": self.labels,
            "n_objects": self.n_objects,
            "n_consolidated": self.n_consolidated,
            "n_machine_labeled": self.n_machine_labeled,
            "n_failed": self.n_failed,
            "failed": [
                {
                    "dataset_object_id": failed.dataset_object_id,
                    "line": failed.line,
                    "source_ref": failed.source_ref,
                    "reason": failed.reason,
                }
                for failed in self.failed
            ],
            "agreement": None if self.agreement is None else round(self.agreement, 4),
            "agreement_basis": "answers" if self.task_type == "image-classification" else "boxes",
            "confidence_histogram": {
                "basis": "objects" if self.task_type == "image-classification" else "boxes",
                "bin_edges": [round(float(edge), 2) for edge in bin_edges],
                "counts": [int(count) for count in counts],
            },
            "n_response_files": self.n_response_files,
            "n_workers": len(self.workers),
            "n_answers": sum(worker.answers for worker in self.workers.values()),
            "workers": [_worker_dict(self.workers[name], self.task_type) for name in sorted(self.workers)],
            "answers_not_used": {
                "count": len(self.problems),
                "listed": [
                    {"dataset_object_id": p.dataset_object_id, "worker": p.worker, "reason": p.reason}
                    for p in self.problems[:MAX_LISTED_PROBLEMS]
                ],
            },
            "responses_without_object": sorted(self.unmatched_object_ids, key=_id_order),
        }
        if self.task_type == "bounding-box":
            summary["n_boxes"] = self.n_boxes
        return summary


def _worker_dict(worker: WorkerQuality, task_type: TaskType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "worker_id": worker.worker_id,
        "answers": worker.answers,
        "answers_not_used": worker.answers_not_used,
        "estimated_accuracy": None if worker.estimated_accuracy is None else round(worker.estimated_accuracy, 4),
    }
    if task_type == "bounding-box":
        entry["boxes"] = worker.boxes
        entry["matched_boxes"] = worker.matched_boxes
    return entry


def _id_order(object_id: str) -> tuple[int, int | str]:
    return (0, int(object_id)) if object_id.isdigit() else (1, object_id)


# --- consolidating a job from its worker responses -----------------------------------------------------------------


def consolidate_job(
    input_lines: Iterable[str | bytes],
    responses: Mapping[str, Sequence[WorkerResponseFile]],
    *,
    labels: Sequence[str],
    label_attribute_name: str,
    job_name: str,
    task_type: TaskType | None,
    writer: ConsolidatedDatasetWriter,
) -> DatasetQuality:
    """Consolidate every object of a finished job at once and write the dataset (see the module docstring).

    ``input_lines``: the job's input manifest. ``responses``: worker-response files by ``datasetObjectId`` (e.g. from
    :func:`latest_worker_responses`). ``labels``: the label-category order (it fixes ``class_id``). ``task_type``:
    ``None`` to tell it from the answers. Objects without a usable answer are written as failed and listed.
    """
    labels = list(labels)
    data_objects = _read_input_manifest(input_lines)
    payload, problems, unmatched = _consolidation_payload(data_objects, responses)
    kind = task_type if task_type is not None else detect_task_type(payload)
    validate_labels(labels, task_type=kind)
    batch = read_batch(payload, labels=labels, task_type=kind)
    result = consolidate_batch(batch, labels=labels, label_attribute_name=label_attribute_name, job_name=job_name)
    contents = {entry["datasetObjectId"]: entry["consolidatedAnnotation"]["content"] for entry in result.response}
    answers_by_id = {obj.dataset_object_id: obj for obj in batch.objects}

    quality = DatasetQuality(
        source="worker-responses",
        task_type=kind,
        label_attribute_name=label_attribute_name,
        labels=labels,
        n_objects=len(data_objects),
        problems=[*problems, *(p for p in result.problems if p.worker is not None)],
        n_response_files=sum(len(files) for files in responses.values()),
        unmatched_object_ids=unmatched,
    )
    for problem in quality.problems:
        if problem.worker is not None:
            quality.workers.setdefault(problem.worker, WorkerQuality(problem.worker)).answers_not_used += 1
    for obj in batch.objects:
        for worker in obj.labels or obj.boxes:
            quality.workers.setdefault(worker, WorkerQuality(worker)).answers += 1
    file_problems: dict[str, list[str]] = defaultdict(list)
    for problem in problems:
        file_problems[problem.dataset_object_id].append(problem.reason)
    creation_date = format_creation_date()
    for index, data_object in enumerate(data_objects):
        object_id = str(index)
        content = contents.get(object_id)
        if content is None:
            if not isinstance(data_object.get("source-ref"), str):
                reason = "the input manifest line has no source-ref"
            elif object_id not in responses:
                reason = "no worker response"
            else:
                reason = "; ".join(file_problems.get(object_id, ())) or "no usable worker answer"
            content = failed_content(
                label_attribute_name=label_attribute_name,
                task_type=kind,
                job_name=job_name,
                reason=reason,
                creation_date=creation_date,
            )
        line = output_manifest_line(data_object, content)
        record = parse_output_manifest_line(line, label_attribute_name=label_attribute_name, class_names=labels)
        if record is None:
            metadata = content.get(f"{label_attribute_name}-metadata") or {}
            reason = str(metadata.get("failure-reason") or "no label")
            quality.failed.append(
                FailedObject(object_id, index + 1, _text_or_none(data_object.get("source-ref")), reason)
            )
        else:
            _score_object(quality, record, answers_by_id.get(object_id))
        writer.add(line, record)
    _add_worker_accuracy(quality, result.workers, result.worker_counts)
    return quality


def _read_input_manifest(lines: Iterable[str | bytes]) -> list[dict[str, Any]]:
    objects = []
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"input manifest line {line_number}: not valid JSON ({error})") from None
        if not isinstance(parsed, dict):
            raise ValueError(f"input manifest line {line_number}: expected a JSON object")
        objects.append(parsed)
    return objects


def _consolidation_payload(
    data_objects: Sequence[Mapping[str, Any]], responses: Mapping[str, Sequence[WorkerResponseFile]]
) -> tuple[list[dict[str, Any]], list[Problem], list[str]]:
    """The ACS payload list for every object with responses, answers merged per worker (latest submission wins),
    plus the problems met in the files and the ids that are not lines of the input manifest."""
    payload: list[dict[str, Any]] = []
    problems: list[Problem] = []
    unmatched: list[str] = []
    for object_id in sorted(responses, key=_id_order):
        index = int(object_id) if object_id.isdigit() else -1
        if not 0 <= index < len(data_objects):
            unmatched.append(object_id)
            continue
        source_ref = data_objects[index].get("source-ref")
        if not isinstance(source_ref, str):
            continue  # answered, but nothing to attach a label to: failed with that reason
        latest: dict[str, tuple[str, int, Mapping[str, Any]]] = {}
        order = 0
        for response_file in responses[object_id]:
            for answer in _answers_of(response_file, object_id, problems):
                worker = answer["workerId"]
                submitted = answer.get("submissionTime")
                stamp = submitted if isinstance(submitted, str) else ""
                if worker not in latest or (stamp, order) >= latest[worker][:2]:
                    latest[worker] = (stamp, order, answer)
                order += 1
        if not latest:
            continue  # no readable answer: the object fails, its problems give the reason
        payload.append(
            {
                "datasetObjectId": object_id,
                "dataObject": {"s3Uri": source_ref},
                "annotations": [
                    # The ACS payload carries the answer as a JSON string: the same parser then reads both.
                    {"workerId": worker, "annotationData": {"content": json.dumps(answer["answerContent"])}}
                    for worker, (_, _, answer) in latest.items()
                ],
            }
        )
    return payload, problems, unmatched


def _answers_of(response_file: WorkerResponseFile, object_id: str, problems: list[Problem]) -> list[Mapping[str, Any]]:
    """The well-formed answers of one file; what is malformed becomes a :class:`Problem` naming the file."""
    try:
        document = json.loads(response_file.text)
    except json.JSONDecodeError as error:
        problems.append(Problem(object_id, None, f"{response_file.key}: not valid JSON ({error})"))
        return []
    answers = document.get("answers") if isinstance(document, dict) else None
    if not isinstance(answers, list):
        problems.append(Problem(object_id, None, f"{response_file.key}: expected {{'answers': [...]}}"))
        return []
    usable = []
    for position, answer in enumerate(answers):
        worker = answer.get("workerId") if isinstance(answer, dict) else None
        if not isinstance(worker, str) or not worker:
            problems.append(Problem(object_id, None, f"{response_file.key}: answers[{position}] has no workerId"))
        elif not isinstance(answer.get("answerContent"), dict | list):
            problems.append(
                Problem(object_id, worker, f"{response_file.key}: answers[{position}] has no answerContent")
            )
        else:
            usable.append(answer)
    return usable


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _score_object(quality: DatasetQuality, record: ManifestRecord, answers: ObjectAnswers | None) -> None:
    """Add one consolidated object to the confidence histogram, the agreement and the per-worker counts."""
    if isinstance(record, ClassificationRecord):
        quality.confidences.append(0.0 if record.confidence is None else record.confidence)
        if answers is None or not answers.labels:
            return
        agreeing = sum(label == record.label for label in answers.labels.values())
        quality.agreement_sum += agreeing / len(answers.labels)
        quality.agreement_count += 1
        return
    quality.n_boxes += len(record.boxes)
    quality.confidences.extend(0.0 if box.confidence is None else box.confidence for box in record.boxes)
    if answers is None or not answers.boxes:
        return
    matched_by = np.zeros(len(record.boxes), dtype=np.int64)
    for worker, matched in _box_matches(answers.boxes, record).items():
        stats = quality.workers.setdefault(worker, WorkerQuality(worker))
        stats.boxes += len(answers.boxes[worker])
        stats.matched_boxes += len(matched)
        matched_by[matched] += 1
    if record.boxes:
        quality.agreement_sum += float(np.sum(matched_by / len(answers.boxes)))
        quality.agreement_count += len(record.boxes)


def _box_matches(drawn: Mapping[str, Sequence[PixelBox]], record: DetectionRecord) -> dict[str, list[int]]:
    """Per worker, the indices of ``record``'s boxes that the worker's boxes match: same label, IoU >=
    :data:`BOX_MATCH_IOU`, one-to-one (:func:`~truthflow.consolidation.box_metrics.match_boxes`, label by label).
    Worker boxes are clipped to the image first, as consolidation clips them.

    One IoU matrix per image. The assignment is solved only for a worker whose eligible pairs are ambiguous (one box
    eligible for two kept boxes, or the reverse), which is rare; otherwise every eligible pair is a match."""
    workers = list(drawn)
    matches: dict[str, list[int]] = {worker: [] for worker in workers}
    flat = [(code, box) for code, worker in enumerate(workers) for box in drawn[worker]]
    if not flat or not record.boxes:
        return matches
    kept = np.array([_ltwh(box) for box in record.boxes], dtype=np.float64)
    kept_labels = np.array([box.label for box in record.boxes])
    boxes = _clipped([box for _, box in flat], record.image_width, record.image_height)
    labels = np.array([box.label for _, box in flat])
    owner = np.array([code for code, _ in flat])
    eligible = (iou_matrix(boxes, kept) >= BOX_MATCH_IOU) & (labels[:, None] == kept_labels[None, :])
    for code, worker in enumerate(workers):
        rows = np.flatnonzero(owner == code)
        pairs = eligible[rows]
        if (pairs.sum(axis=0) <= 1).all() and (pairs.sum(axis=1) <= 1).all():
            matches[worker] = [int(column) for column in np.flatnonzero(pairs.any(axis=0))]
            continue
        found: list[int] = []
        for label in np.unique(labels[rows]):
            mine, theirs = rows[labels[rows] == label], np.flatnonzero(kept_labels == label)
            _, matched = match_boxes(boxes[mine], kept[theirs], threshold=BOX_MATCH_IOU)
            found.extend(int(theirs[index]) for index in matched)
        matches[worker] = sorted(found)
    return matches


def _ltwh(box: Any) -> tuple[float, float, float, float]:
    return (float(box.left), float(box.top), float(box.width), float(box.height))


def _clipped(boxes: Sequence[PixelBox], width: int, height: int) -> FloatArray:
    array = np.array([_ltwh(box) for box in boxes], dtype=np.float64)
    corners = np.stack([array[:, 0], array[:, 1], array[:, 0] + array[:, 2], array[:, 1] + array[:, 3]], axis=1)
    corners = np.minimum(np.maximum(corners, 0.0), [width, height, width, height])
    clipped: FloatArray = np.stack(
        [corners[:, 0], corners[:, 1], corners[:, 2] - corners[:, 0], corners[:, 3] - corners[:, 1]], axis=1
    )
    return clipped


def _add_worker_accuracy(quality: DatasetQuality, workers: Sequence[str], counts: FloatArray) -> None:
    """Classification: the model's expected share of correct answers per worker, from its (W, K, K) counts."""
    for worker, worker_counts in zip(workers, counts, strict=True):
        answered = float(worker_counts.sum())
        if answered > 0:
            stats = quality.workers.setdefault(worker, WorkerQuality(worker))
            stats.estimated_accuracy = float(np.trace(worker_counts)) / answered
    if quality.task_type == "bounding-box":
        for stats in quality.workers.values():
            stats.estimated_accuracy = stats.matched_boxes / stats.boxes if stats.boxes else None


# --- several labeling jobs and machine labels (automated labeling) -------------------------------------------------


def combine_labeling_jobs(
    jobs: Sequence[tuple[Iterable[str | bytes], Mapping[str, Sequence[WorkerResponseFile]]]],
) -> tuple[list[str | bytes], dict[str, list[WorkerResponseFile]]]:
    """One input manifest and one set of worker responses for several labeling jobs of a run, so that
    :func:`consolidate_job` fits worker skill over all their answers at once. ``datasetObjectId`` counts the
    non-blank lines of a job's manifest from 0, so each later job's ids are shifted by the lines before it; ids that
    are not line numbers keep a job prefix and are reported as unmatched."""
    lines: list[str | bytes] = []
    responses: dict[str, list[WorkerResponseFile]] = {}
    for number, (job_lines, job_responses) in enumerate(jobs):
        offset = len(lines)
        lines.extend(line for line in job_lines if line.strip())
        for object_id, files in job_responses.items():
            key = str(int(object_id) + offset) if object_id.isdigit() else f"job{number + 1}:{object_id}"
            responses[key] = list(files)
    return lines, responses


def add_machine_labels(
    lines: Iterable[str | bytes],
    *,
    writer: ConsolidatedDatasetWriter,
    quality: DatasetQuality,
    labels: Sequence[str],
    skip_sources: Iterable[str] = (),
) -> int:
    """Append machine-labeled manifest lines (``"human-annotated": "no"``) to a consolidated dataset; an image that
    people labeled (``skip_sources``) keeps its human label. A line that is not a labeled output-manifest line of
    ``quality``'s label attribute is a ``ValueError`` naming it (it was written by this run)."""
    skip = set(skip_sources)
    added = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parsed = json.loads(line)
        try:
            record = parse_output_manifest_line(
                parsed, label_attribute_name=quality.label_attribute_name, class_names=list(labels)
            )
        except ManifestLineError as error:
            raise ValueError(f"machine label line {number}: {error}") from None
        if record is None:
            raise ValueError(f"machine label line {number}: no label")
        if record.source_ref in skip:
            continue
        writer.add(parsed, record)
        quality.n_objects += 1
        quality.n_machine_labeled += 1
        added += 1
    return added


# --- bring your own labels -----------------------------------------------------------------------------------------


def normalise_existing_manifest(
    lines: Iterable[str | bytes],
    *,
    writer: ConsolidatedDatasetWriter,
    labels: Sequence[str] | None = None,
    preferred_label_attribute_name: str | None = None,
) -> DatasetQuality:
    """Take an output manifest labeled elsewhere as the consolidated dataset, streaming it line by line.

    Labels are kept as they are (no worker responses exist to consolidate again). The label attribute is the
    file's own (:func:`~truthflow.groundtruth.output_manifest.find_label_attribute` on the first labeled line);
    ``preferred_label_attribute_name`` picks one when lines carry several (chained jobs). Every line must use that
    attribute and the same task type. ``labels`` (the job's label order) names class ids missing from ``class-map``;
    the result's labels are ``labels`` followed by any other class name of the file, ordered by ``class_id`` (only
    the file's names, ordered so, without ``labels``). Unlabeled lines are written and listed
    as failed; lines that do not parse are listed as failed and left out. No labeled line at all is a
    ``ValueError``.
    """
    attribute: str | None = None
    kind: TaskType | None = None
    failed: list[FailedObject] = []
    seen_names: dict[tuple[str, int | None], None] = {}
    confidences: list[float] = []
    n_boxes = 0
    n_objects = 0
    for line_number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        n_objects += 1
        try:
            parsed = json.loads(raw)
            if not isinstance(parsed, dict):
                raise ManifestLineError(f"line {line_number}: expected a JSON object")
            if attribute is None:
                attribute = _label_attribute_of(parsed, preferred_label_attribute_name)
            record = parse_output_manifest_line(
                parsed, label_attribute_name=attribute, class_names=labels, line_number=line_number
            )
        except ValueError as error:  # ManifestLineError and json.JSONDecodeError included
            failed.append(FailedObject(None, line_number, _source_ref_of(raw), _line_error(error, line_number)))
            continue
        if record is not None:
            record_kind: TaskType = "bounding-box" if isinstance(record, DetectionRecord) else "image-classification"
            kind = kind or record_kind
            if record_kind != kind:
                reason = f"line {line_number}: a {record_kind} label, but earlier lines are {kind}"
                failed.append(FailedObject(None, line_number, record.source_ref, reason))
                continue
            if isinstance(record, DetectionRecord):
                n_boxes += len(record.boxes)
                confidences.extend(0.0 if box.confidence is None else box.confidence for box in record.boxes)
                seen_names.update(((box.label, box.class_id), None) for box in record.boxes)
            else:
                confidences.append(0.0 if record.confidence is None else record.confidence)
                seen_names[(record.label, record.class_id)] = None
        else:
            metadata = parsed.get(f"{attribute}-metadata") if attribute is not None else None
            failure = metadata.get("failure-reason") if isinstance(metadata, dict) else None
            failed.append(
                FailedObject(None, line_number, _text_or_none(parsed.get("source-ref")), str(failure or "no label"))
            )
        writer.add(parsed, record)
    if attribute is None or kind is None:
        first = f"; first problem: {failed[0].reason}" if failed else ""
        raise ValueError(f"the manifest holds no labeled line ({n_objects} lines read){first}")
    return DatasetQuality(
        source="existing-manifest",
        task_type=kind,
        label_attribute_name=attribute,
        labels=_merged_labels(labels, ordered_by_source_id(seen_names)),
        n_objects=n_objects,
        failed=failed,
        confidences=confidences,
        n_boxes=n_boxes,
    )


def _merged_labels(declared: Sequence[str] | None, seen: Sequence[str]) -> list[str]:
    labels = list(declared or ())
    return labels + [name for name in seen if name not in labels]


def _label_attribute_of(line: Mapping[str, Any], preferred: str | None) -> str | None:
    try:
        return find_label_attribute(line)
    except ManifestLineError:
        if preferred is not None and line.get(preferred) is not None:
            return preferred
        raise


def _line_error(error: Exception, line_number: int) -> str:
    message = str(error)
    if isinstance(error, json.JSONDecodeError):
        return f"line {line_number}: not valid JSON ({message})"
    return message if message.startswith("line ") else f"line {line_number}: {message}"


def _source_ref_of(raw: str | bytes) -> str | None:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return _text_or_none(parsed.get("source-ref")) if isinstance(parsed, dict) else None
