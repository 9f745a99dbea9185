"""Consolidate a whole labeling job once it has finished, from its raw worker responses.

Ground Truth calls the ACS Lambda batch by batch, so worker skill is estimated from one batch at a time. Once the job
is over, every raw worker response is in S3 and the job can be consolidated again *at once*: Dawid-Skene sees each
worker's answers over the whole job, box consolidation sees every image. :func:`consolidate_job` reads the job's raw
worker responses (reference §2.5) with the ACS core's own answer reader
(:func:`~truthflow.groundtruth.consolidation_batch.add_answer`) and consolidates them as one batch
(:func:`~truthflow.groundtruth.consolidation_batch.consolidate_batch`), so the result has exactly the shapes the ACS
gives Ground Truth; it writes the dataset described in :mod:`truthflow.groundtruth.consolidated_dataset`.
(Labels made elsewhere take :func:`truthflow.groundtruth.existing_manifest.normalise_existing_manifest` instead.)

Worker responses: ``<output path>/<job>/annotations/worker-response/iteration-<n>/<datasetObjectId>/<time>.json``,
each ``{"answers": [{"workerId", "answerContent", "submissionTime", ...}]}``. ``datasetObjectId`` is the 0-based
index of the object's line in the input manifest (blank lines not counted). When an object has responses in several
iterations, only its latest iteration is used (a later iteration relabels the object); files of one iteration are
merged, and a worker who answered twice counts once, with the latest ``submissionTime``.

Only what is bad is left out, and reported in ``quality.json``: a file that is not UTF-8, not JSON, too long or
nested too deeply (:mod:`truthflow.groundtruth.bounded_json`), an answer without ``workerId`` or ``answerContent``,
an answer or box that cannot be read. Everything else of the job is consolidated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from truthflow.groundtruth.bounded_json import JsonLimitError, loads_bounded
from truthflow.groundtruth.consolidated_dataset import (
    ConsolidatedDatasetWriter,
    DatasetQuality,
    GoldSummary,
    WorkerQuality,
    add_gold_scores,
    add_worker_accuracy,
    write_object,
)
from truthflow.groundtruth.consolidation_batch import (
    ObjectAnswers,
    ParsedBatch,
    Problem,
    add_answer,
    consolidate_objects,
    failed_content,
    failure_reason,
)
from truthflow.groundtruth.existing_manifest import normalise_existing_manifest
from truthflow.groundtruth.label_config import TaskType, validate_labels
from truthflow.groundtruth.output_manifest import (
    classification_annotation,
)
from truthflow.groundtruth.worker_answers import BOUNDING_BOX_ELEMENT_NAMES, IMAGE_CLASSIFIER_ELEMENT_NAMES

__all__ = [
    "ConsolidatedDatasetWriter",
    "DatasetQuality",
    "WorkerResponseFile",
    "WorkerResponseLocation",
    "consolidate_job",
    "latest_worker_responses",
    "normalise_existing_manifest",
    "parse_worker_response_key",
    "worker_response_prefix",
]

# A worker-response file holds the answers of one object's workers (at most 9, each bounded by MAX_JSON_CHARS).
MAX_RESPONSE_FILE_CHARS = 10_000_000

ResponseGroups = Mapping[str, Sequence["WorkerResponseFile"]] | Iterable[tuple[str, Sequence["WorkerResponseFile"]]]

_RESPONSE_KEY = re.compile(r"(?:^|/)worker-response/iteration-(\d+)/([^/]+)/[^/]+\.json$")


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
    """One worker-response file as read: its key and its content, bytes as stored or text (decoded and parsed here,
    so that one unreadable file is reported, not fatal)."""

    key: str
    text: str | bytes
    error: str | None = None
    """Why the file could not be read (then ``text`` is empty and the file is reported)."""


# --- consolidating a job from its worker responses -----------------------------------------------------------------


def consolidate_job(
    input_lines: Iterable[str | bytes],
    responses: ResponseGroups,
    *,
    labels: Sequence[str],
    label_attribute_name: str,
    job_name: str,
    task_type: TaskType | None,
    writer: ConsolidatedDatasetWriter,
    gold: Mapping[str, str] | None = None,
    gold_file: str | None = None,
) -> DatasetQuality:
    """Consolidate every object of a finished job at once and write the dataset (see the module docstring).

    ``input_lines``: the job's input manifest. ``responses``: worker-response files per ``datasetObjectId``, as a
    mapping or as ``(id, files)`` pairs (e.g. read lazily, one object at a time, from the keys
    :func:`latest_worker_responses` chose): each object's answers are read into compact form as its files arrive.
    ``labels``: the label-category order (it fixes ``class_id``). ``task_type``: ``None`` to tell it from the
    answers. Objects without a usable answer are written as failed and listed. ``gold`` (classification): the job's
    gold questions, image ``source-ref`` -> known label (read from ``gold_file``): their labels are the known ones
    (also without a usable answer), they anchor worker skill, and ``quality.json`` scores each worker on them.
    """
    labels = list(labels)
    data_objects = _read_input_manifest(input_lines)
    groups: Iterable[tuple[str, Sequence[WorkerResponseFile]]] = (
        responses.items() if isinstance(responses, Mapping) else responses
    )
    problems: list[Problem] = []
    unmatched: list[str] = []
    merged = _merged_answers(data_objects, groups, problems, unmatched)
    kind = task_type
    if kind is None:
        pending = list(merged)  # the task type is told by the first answer that names its element
        kind = _task_type_of(pending)
        merged = iter(pending)
    validate_labels(labels, task_type=kind)
    objects: list[ObjectAnswers] = []
    n_response_files = 0
    answered: set[str] = set()
    for object_id, latest, n_files in merged:
        n_response_files += n_files
        answered.add(object_id)
        if latest is None:
            continue
        source_ref = data_objects[int(object_id)].get("source-ref")
        answers = ObjectAnswers(object_id, source_ref=source_ref if isinstance(source_ref, str) else None)
        for worker, content in latest.items():
            add_answer(answers, worker, content, labels=labels, task_type=kind, problems=problems)
        objects.append(answers)
    batch = ParsedBatch(kind, objects, problems)
    gold = dict(gold or {}) if kind == "image-classification" else {}
    result = consolidate_objects(
        batch, labels=labels, label_attribute_name=label_attribute_name, job_name=job_name, gold=gold
    )
    position_of = {str(obj.dataset_object_id): position for position, obj in enumerate(batch.objects)}

    quality = DatasetQuality(
        source="worker-responses",
        task_type=kind,
        label_attribute_name=label_attribute_name,
        labels=labels,
        n_objects=len(data_objects),
        problems=result.problems,
        n_response_files=n_response_files,
        unmatched_object_ids=unmatched,
        notes=[result.note] if result.note else [],
        gold=GoldSummary(gold_file) if gold_file is not None or gold else None,
    )
    for problem in quality.problems:
        if problem.worker is not None:
            quality.workers.setdefault(problem.worker, WorkerQuality(problem.worker)).answers_not_used += 1
    for obj in batch.objects:
        for worker in obj.labels or obj.boxes:
            quality.workers.setdefault(worker, WorkerQuality(worker)).answers += 1
    reasons_of: dict[str, list[str]] = {}
    for problem in problems:
        reasons_of.setdefault(str(problem.dataset_object_id), []).append(problem.reason)
    for index, data_object in enumerate(data_objects):
        object_id = str(index)
        position = position_of.get(object_id)
        source = data_object.get("source-ref")
        known = gold.get(source) if gold and isinstance(source, str) else None
        if quality.gold is not None and known is not None and known in labels:
            quality.gold.n_gold += 1
            quality.gold.n_answered += position is not None and bool(batch.objects[position].labels)
        if position is not None:
            content = result.content(position)  # shaped now, written now: the job's contents are never all held
        elif known is not None and known in labels:
            # A gold question nobody answered usably: its label is still the known one.
            content = classification_annotation(
                label_attribute_name=label_attribute_name,
                class_names=labels,
                label=known,
                confidence=1.0,
                job_name=job_name,
                creation_date=result.creation_date,
            )
        else:
            if not isinstance(data_object.get("source-ref"), str):
                reason = "the input manifest line has no source-ref"
            elif object_id not in answered:
                reason = "no worker response"
            else:
                found = reasons_of.get(object_id)
                reason = failure_reason(found) if found else "no usable worker answer"
            content = failed_content(
                label_attribute_name=label_attribute_name,
                task_type=kind,
                job_name=job_name,
                reason=reason,
                creation_date=result.creation_date,
            )
        write_object(
            writer,
            quality,
            data_object,
            content,
            object_id=object_id,
            line_number=index + 1,
            labels=labels,
            label_attribute_name=label_attribute_name,
            answers=batch.objects[position] if position is not None else None,
        )
    add_worker_accuracy(quality, result.workers, result.worker_counts)
    add_gold_scores(quality, result.gold)
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


MergedAnswers = tuple[str, dict[str, Any] | None, int]
"""``(datasetObjectId, {worker: answerContent} or None when nothing of it can be used, number of files)``."""


def _merged_answers(
    data_objects: Sequence[Mapping[str, Any]],
    groups: Iterable[tuple[str, Sequence[WorkerResponseFile]]],
    problems: list[Problem],
    unmatched: list[str],
) -> Iterator[MergedAnswers]:
    """Per object, its workers' latest answers (by ``submissionTime``, then file order), read file by file; the
    problems met go to ``problems``, ids that are not lines of the input manifest to ``unmatched``."""
    for object_id, files in groups:
        index = int(object_id) if object_id.isdigit() else -1
        if not 0 <= index < len(data_objects):
            unmatched.append(object_id)
            continue
        if not isinstance(data_objects[index].get("source-ref"), str):
            yield object_id, None, len(files)  # answered, but nothing to attach a label to: failed with that reason
            continue
        latest: dict[str, tuple[str, int, Any]] = {}
        order = 0
        for response_file in files:
            for answer in _answers_of(response_file, object_id, problems):
                worker = answer["workerId"]
                submitted = answer.get("submissionTime")
                stamp = submitted if isinstance(submitted, str) else ""
                if worker not in latest or (stamp, order) >= latest[worker][:2]:
                    latest[worker] = (stamp, order, answer["answerContent"])
                order += 1
        yield object_id, {worker: content for worker, (_, _, content) in latest.items()} or None, len(files)


def _answers_of(response_file: WorkerResponseFile, object_id: str, problems: list[Problem]) -> list[Mapping[str, Any]]:
    """The well-formed answers of one file; what is malformed becomes a :class:`Problem` naming the file."""
    key = response_file.key
    text = response_file.text
    if response_file.error is not None:
        problems.append(Problem(object_id, None, f"{key}: cannot be read ({response_file.error})"))
        return []
    try:
        document = loads_bounded(text, what=key, max_chars=MAX_RESPONSE_FILE_CHARS)
    except JsonLimitError as error:
        problems.append(Problem(object_id, None, f"{error} (file left out)", over_limit=True))
        return []
    except UnicodeDecodeError as error:
        problems.append(Problem(object_id, None, f"{key}: not UTF-8 text ({error.reason} at byte {error.start})"))
        return []
    except ValueError as error:
        problems.append(Problem(object_id, None, f"{key}: not valid JSON ({error})"))
        return []
    answers = document.get("answers") if isinstance(document, dict) else None
    if not isinstance(answers, list):
        problems.append(Problem(object_id, None, f"{key}: expected {{'answers': [...]}}"))
        return []
    usable = []
    for position, answer in enumerate(answers):
        worker = answer.get("workerId") if isinstance(answer, dict) else None
        if not isinstance(worker, str) or not worker:
            problems.append(Problem(object_id, None, f"{key}: answers[{position}] has no workerId"))
        elif not isinstance(answer.get("answerContent"), dict | list):
            problems.append(Problem(object_id, worker, f"{key}: answers[{position}] has no answerContent"))
        else:
            usable.append(answer)
    return usable


def _task_type_of(merged: Sequence[MergedAnswers]) -> TaskType:
    """The task type named by the first answer whose top-level key is a known crowd element's name."""
    for _, latest, _ in merged:
        for content in (latest or {}).values():
            answer = content[0] if isinstance(content, list) and len(content) == 1 else content
            if not isinstance(answer, Mapping):
                continue
            if any(name in answer for name in BOUNDING_BOX_ELEMENT_NAMES):
                return "bounding-box"
            if any(name in answer for name in IMAGE_CLASSIFIER_ELEMENT_NAMES):
                return "image-classification"
    return "image-classification"
