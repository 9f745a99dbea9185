"""State machine step "Consolidate whole job" for a job that brings tool exports (job.json ``annotations``).

The exports (Label Studio, CVAT, COCO, Ground Truth; :mod:`truthflow.annotation_imports`) hold several people's
answers; this flow turns them into the same consolidated dataset and ``quality.json`` as a labeling job's worker
responses (:mod:`truthflow.groundtruth.consolidated_dataset`), through the same engine call
(:func:`~truthflow.groundtruth.consolidation_batch.consolidate_objects`: Dawid-Skene for classes, box clustering,
worker skill fitted over every annotator of every file at once).

1. The export list ``manifests/annotation-files.json`` (written by "Prepare labeling input"); every file must lie
   within the job's scope (:mod:`truthflow.job_scope`).
2. The job's images: every ``.jpg``/``.jpeg``/``.png`` under ``jobs/<id>/images/`` (all pages), named by file name as
   the readers name the exports' images (:func:`~truthflow.annotation_imports.image_file_name`: Label Studio's
   ``/data/upload/3/a1b2c3d4-desk.jpg``, ``s3://``, ``http(s)://`` and bare names all become ``desk.jpg``). A name
   that several images of the folder share is ambiguous: those images are listed, not guessed between.
3. Box jobs: each image's size from its header (one ranged GET each, concurrently;
   :func:`truthflow.image_headers.image_size`): the size percent boxes without ``original_width`` need, and the size
   the model trains on, so boxes an export drew on the image at another size are scaled to it (counted).
4. The exports, one file at a time (at most :data:`MAX_EXPORT_BYTES` each, parsed in memory). A file that cannot
   be read at all (missing, not the format, too large) stops the step with an error naming it; a bad task,
   annotation or box is refused and listed, and the rest is read.
5. Consolidation, and one manifest line per image of the folder, in key order: images nobody's answer could be used
   for (not named by the exports, ambiguous, answers refused) are written as failed, with the reason.

Nothing is dropped without a trace: ``quality.json`` gains ``import`` (:func:`import_summary`: per file what was
read, skipped, converted and refused; images the exports name that are not in the folder; ambiguous and unreadable
images; labels not in the job's label list; refused tasks), the step's output a short form of it with the sentence
the run's notification sends (:func:`import_output`), and ``jobs/<id>/status.json`` the same short form
(:func:`record_in_status_file`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from truthflow.annotation_imports import AnswerCollector, ExportFile, ImportedAnswers, image_file_name
from truthflow.aws.s3 import s3_uri
from truthflow.groundtruth.consolidated_dataset import (
    ConsolidatedDatasetWriter,
    DatasetQuality,
    WorkerQuality,
    add_worker_accuracy,
    write_object,
)
from truthflow.groundtruth.consolidation_batch import (
    ObjectAnswers,
    ParsedBatch,
    Problem,
    consolidate_objects,
    failed_content,
)
from truthflow.groundtruth.label_config import TaskType
from truthflow.job_annotations import AnnotationFiles
from truthflow.job_scope import JOBS_PREFIX, JobScope
from truthflow.labeling_input import is_image_key, labeling_job_name

# An export is parsed in memory, which takes about 5 times its size (measured on Label Studio JSON); 256 MiB keeps
# the parse well inside the step's 3,008 MB next to the consolidation itself.
MAX_EXPORT_BYTES = 256 << 20
# quality.json lists at most this many entries of each kind (their totals are always given).
MAX_LISTED = 1_000
# The step's output, status.json and the notification show this many examples of each kind.
MAX_SHOWN = 10
MAX_SHOWN_CHARS = 300
STATUS_FILE_NAME = "status.json"


class ExportStore(Protocol):
    """The storage this flow uses (``truthflow.aws.job_store.S3JobStore`` in the Lambda)."""

    def list_keys(self, bucket: str, prefix: str) -> Iterable[str]: ...

    def read_text(self, uri: str) -> str: ...

    def read_export(self, uri: str, max_bytes: int) -> bytes:
        """The object's bytes; a ``ValueError`` naming it when it is missing, unreadable or over ``max_bytes``."""
        ...

    def read_image_sizes(self, uris: Sequence[str]) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
        """``({uri: (width, height)}, {uri: why not})`` from each image's header."""
        ...

    def read_json_if_present(self, uri: str) -> Any:
        """The object's JSON, or ``None`` when it does not exist or is not JSON."""
        ...

    def write_json(self, uri: str, value: Any) -> None: ...


@dataclass(frozen=True)
class ImageFolder:
    """The job's images: ``keys`` sorted (one manifest line each), ``by_name`` the unambiguous file names, the
    names several images share (``ambiguous``: name -> keys), and how many other files the folder holds."""

    keys: list[str]
    by_name: dict[str, str]
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    other_files: int = 0

    def name_of(self, key: str) -> str:
        return image_file_name(key.rsplit("/", 1)[-1])


def image_folder(keys: Iterable[str]) -> ImageFolder:
    """The image keys of a listing (``.jpg``/``.jpeg``/``.png``, any case, any depth), named as exports name them."""
    listed = [key for key in keys if not key.endswith("/")]  # a folder marker is not a file
    images = sorted(key for key in listed if is_image_key(key))
    named: dict[str, list[str]] = {}
    for key in images:
        named.setdefault(image_file_name(key.rsplit("/", 1)[-1]), []).append(key)
    by_name = {name: found[0] for name, found in named.items() if len(found) == 1}
    ambiguous = {name: found for name, found in named.items() if len(found) > 1}
    return ImageFolder(images, by_name, ambiguous, len(listed) - len(images))


def consolidate_exports(
    *,
    bucket: str,
    job_id: str,
    annotations_uri: str,
    labels: Sequence[str],
    task_type: TaskType,
    label_attribute_name: str,
    job_name: str,
    scope: JobScope,
    writer: ConsolidatedDatasetWriter,
    store: ExportStore,
) -> DatasetQuality:
    """Read, match, consolidate and write (see the module docstring); ``quality.imports`` says what was left out.
    Raises ``ValueError`` naming the file for an export list or export that cannot be read at all, or a job
    without images."""
    listed = AnnotationFiles.parse(store.read_text(annotations_uri), source=annotations_uri)
    for uri in listed.files:
        problem = scope.problem(uri)
        if problem is not None:
            raise ValueError(f"{annotations_uri}: {problem}")
    images_prefix = f"{JOBS_PREFIX}{job_id}/images/"
    folder = image_folder(store.list_keys(bucket, images_prefix))
    if not folder.keys:
        raise ValueError(
            f"{s3_uri(bucket, images_prefix)}: no images (.jpg, .jpeg, .png): upload the images the exports name "
            "there before job.json"
        )
    sizes: dict[str, tuple[int, int]] = {}
    unreadable: dict[str, str] = {}
    if task_type == "bounding-box":
        uri_of = {name: s3_uri(bucket, key) for name, key in folder.by_name.items()}
        found, problems = store.read_image_sizes(list(uri_of.values()))
        sizes = {name: found[uri] for name, uri in uri_of.items() if uri in found}
        unreadable = {name: problems[uri] for name, uri in uri_of.items() if uri in problems}
    collector = AnswerCollector(task_type=task_type, labels=labels, image_sizes=sizes, known_images=folder.by_name)
    for uri in listed.files:
        name = uri.removeprefix(scope.folder) if uri.startswith(scope.folder) else uri
        collector.add_file(ExportFile(name, store.read_export(uri, MAX_EXPORT_BYTES), listed.format))
    imported = collector.result()
    if not _answered(imported):
        raise ValueError(_nothing_matched(imported, folder, s3_uri(bucket, images_prefix)))
    quality = _consolidate(
        imported,
        folder,
        writer,
        bucket=bucket,
        labels=list(labels),
        label_attribute_name=label_attribute_name,
        job_name=job_name,
    )
    quality.imports = import_summary(imported, folder, listed, unreadable)
    return quality


def _objects(imported: ImportedAnswers, folder: ImageFolder) -> tuple[list[ObjectAnswers], list[Problem]]:
    """The answered images as the engine's objects, in folder order; ``datasetObjectId`` is the image's position in
    the folder (its manifest line, 0-based)."""
    line_of = {key: index for index, key in enumerate(folder.keys)}
    position = {name: line_of[key] for name, key in folder.by_name.items()}
    objects: dict[str, ObjectAnswers] = {}
    problems: list[Problem] = []
    if imported.task_type == "image-classification":
        classes = imported.classes
        for item, worker, label in zip(classes.items, classes.workers, classes.labels, strict=True):
            answers = objects.setdefault(item, ObjectAnswers(str(position[item])))
            answers.labels[worker] = label
    else:
        for image in imported.images:
            answers = objects.setdefault(image.image, ObjectAnswers(str(position[image.image])))
            if image.width is None or image.height is None:
                reason = "the image's size is unknown: the exports give none and its header could not be read"
                problems.append(Problem(answers.dataset_object_id, None, reason))
                continue
            size = (round(image.width), round(image.height))
            for answer in image.answers:
                answers.boxes[answer.worker] = answer.boxes
                answers.sizes[answer.worker] = size
    ordered = sorted(objects.values(), key=lambda answers: int(str(answers.dataset_object_id)))
    return ordered, problems


def _consolidate(
    imported: ImportedAnswers,
    folder: ImageFolder,
    writer: ConsolidatedDatasetWriter,
    *,
    bucket: str,
    labels: list[str],
    label_attribute_name: str,
    job_name: str,
) -> DatasetQuality:
    """The engine over every answered image, then one manifest line per image of the folder."""
    objects, problems = _objects(imported, folder)
    batch = ParsedBatch(imported.task_type, objects, problems)
    result = consolidate_objects(batch, labels=labels, label_attribute_name=label_attribute_name, job_name=job_name)
    position_of = {str(obj.dataset_object_id): position for position, obj in enumerate(batch.objects)}
    quality = DatasetQuality(
        source="annotation-exports",
        task_type=imported.task_type,
        label_attribute_name=label_attribute_name,
        labels=labels,
        n_objects=len(folder.keys),
        problems=result.problems,
        notes=[result.note] if result.note else [],
    )
    for problem in quality.problems:
        if problem.worker is not None:
            quality.workers.setdefault(problem.worker, WorkerQuality(problem.worker)).answers_not_used += 1
    for obj in batch.objects:
        for worker in obj.labels or obj.boxes:
            quality.workers.setdefault(worker, WorkerQuality(worker)).answers += 1
    for index, key in enumerate(folder.keys):
        object_id = str(index)
        data_object = {"source-ref": s3_uri(bucket, key)}
        position = position_of.get(object_id)
        if position is not None:
            content = result.content(position)
        else:
            content = failed_content(
                label_attribute_name=label_attribute_name,
                task_type=imported.task_type,
                job_name=job_name,
                reason=_unanswered_reason(folder, key),
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
    return quality


def _unanswered_reason(folder: ImageFolder, key: str) -> str:
    name = folder.name_of(key)
    shared = folder.ambiguous.get(name)
    if shared is not None:
        return (
            f"{len(shared)} images in the images folder have the file name {name!r}: the exports name images by "
            "file name and cannot tell them apart (rename them)"
        )
    return "no usable answer in the exports (not named by them, or every answer on it was refused: see import)"


def _answered(imported: ImportedAnswers) -> set[str]:
    """The images of the folder some export answered (answers on other images are not in ``imported``)."""
    if imported.task_type == "image-classification":
        return set(imported.classes.items)
    return {image.image for image in imported.images}


def _nothing_matched(imported: ImportedAnswers, folder: ImageFolder, images_uri: str) -> str:
    """Why a job whose exports answer none of its images cannot go on, with examples from both sides."""
    report = imported.report
    named = sorted(report.unmatched_images)
    if not named:
        read = "; ".join(file.summary_line() for file in report.files)
        first = f"; first refused: {report.problems[0]}" if report.problems else ""
        return f"the exports hold no usable answer for this task type and label list ({read}){first}"
    in_folder = sorted(folder.by_name)[:3] + sorted(folder.ambiguous)[:3]
    return (
        f"none of the {len(named)} images the exports name is in {images_uri} (it holds {len(folder.keys)} images). "
        f"The exports name, e.g., {', '.join(repr(name) for name in named[:3])}; the folder has, e.g., "
        f"{', '.join(repr(name) for name in in_folder[:3])}. Images are matched by file name: upload the exported "
        "images under images/ with their names"
    )


# --- what the user is told -----------------------------------------------------------------------------------------


def import_summary(
    imported: ImportedAnswers, folder: ImageFolder, listed: AnnotationFiles, unreadable: Mapping[str, str]
) -> dict[str, Any]:
    """``quality.json``'s ``import``: per file (``files``, as :meth:`~truthflow.annotation_imports.FileReport.
    to_dict` without its problems), the images of the folder and how many the exports answered, ``unmatched_images``
    (name -> the export's reference: named by an export, not in the folder, their answers not used; with
    ``unmatched_case_differs``), ``ambiguous_images``, ``other_files_in_folder`` (not .jpg/.jpeg/.png: not images of
    the job), ``unreadable_images`` (box jobs: no size from the header), ``unknown_labels`` (label -> answers or
    boxes left out), ``repeated_answers``, ``rescaled_images``, ``shared_names`` and the refused tasks, annotations
    and boxes (``problems``, the first :data:`MAX_LISTED`, and ``n_problems``)."""
    report = imported.report
    files = []
    for file in report.files:
        entry = file.to_dict()
        entry.pop("problems")
        files.append(entry)
    answered = _answered(imported)
    unmatched = dict(sorted(report.unmatched_images.items()))
    lower = {name.lower(): name for name in folder.by_name}
    case_differs = {name: lower[name.lower()] for name in unmatched if name.lower() in lower}
    return {
        "format": listed.format,
        "files": files,
        "annotators": len({worker for file in report.files for worker in file.workers}),
        "images_in_folder": len(folder.keys),
        "other_files_in_folder": folder.other_files,
        "images_answered": len(answered),
        "n_unmatched_images": len(unmatched),
        "unmatched_images": dict(list(unmatched.items())[:MAX_LISTED]),
        # Names are compared exactly (S3 keys are case-sensitive); these differ from an image of the folder in case.
        "unmatched_case_differs": dict(list(case_differs.items())[:MAX_LISTED]),
        "ambiguous_images": {name: keys for name, keys in list(folder.ambiguous.items())[:MAX_LISTED]},
        "unreadable_images": dict(list(sorted(unreadable.items()))[:MAX_LISTED]),
        "unknown_labels": dict(report.unknown_labels.most_common()),
        "repeated_answers": report.repeated_answers,
        "rescaled_images": report.rescaled_images,
        "shared_names": report.shared_names,
        "n_problems": report.n_problems,
        "problems": [str(problem) for problem in report.problems[:MAX_LISTED]],
    }


def import_output(summary: Mapping[str, Any], quality: DatasetQuality, quality_uri: str) -> dict[str, Any]:
    """The step's output ``import`` (also written to ``status.json``): counts, a few examples, and ``message``, the
    sentence the run's notification sends. Small whatever the export: it travels in the run's state."""
    unmatched = list(summary["unmatched_images"])
    unknown = Counter(summary["unknown_labels"])
    problems = [_cut(problem) for problem in summary["problems"][:MAX_SHOWN]]
    files = summary["files"]
    ignored: Counter[str] = Counter()
    for file in files:
        ignored.update(file["ignored"])
    output = {
        "files": len(summary["files"]),
        "annotators": summary["annotators"],
        "images": summary["images_in_folder"],
        "images_answered": summary["images_answered"],
        "consolidated": quality.n_consolidated,
        "failed": quality.n_failed,
        "unmatched_images": summary["n_unmatched_images"],
        "unmatched_examples": [_cut(name) for name in unmatched[:MAX_SHOWN]],
        "unmatched_case_differs": {
            _cut(name): _cut(found) for name, found in list(summary["unmatched_case_differs"].items())[:MAX_SHOWN]
        },
        "ambiguous_images": len(summary["ambiguous_images"]),
        "unreadable_images": len(summary["unreadable_images"]),
        "unknown_labels": {_cut(label): count for label, count in unknown.most_common(MAX_SHOWN)},
        "problems": summary["n_problems"],
        "problem_examples": problems,
        "skipped": {
            "cancelled_annotations": sum(file["cancelled_annotations"] for file in files),
            "predictions": sum(file["predictions_ignored"] for file in files),
            "without_answer": sum(file["without_answer"] for file in files),
            "other_kinds": {_cut(kind): count for kind, count in ignored.most_common(MAX_SHOWN)},
        },
        "converted": {
            "rotated_boxes": sum(file["rotated_boxes"] for file in files),
            "rescaled_images": summary["rescaled_images"],
            "repeated_answers": summary["repeated_answers"],
        },
        "quality_uri": quality_uri,
    }
    output["message"] = import_message(output)
    return output


def import_message(output: Mapping[str, Any]) -> str:
    """One paragraph: what was imported and consolidated, and everything left out, with examples."""
    parts = [
        f"imported {output['files']} export file(s): {output['annotators']} annotator(s) answered "
        f"{output['images_answered']} of the {output['images']} images; {output['consolidated']} consolidated, "
        f"{output['failed']} without a label."
    ]
    left_out = []
    if output["unmatched_images"]:
        examples = ", ".join(output["unmatched_examples"])
        left_out.append(f"{output['unmatched_images']} image(s) the exports name are not in images/ ({examples})")
        if output["unmatched_case_differs"]:
            pairs = ", ".join(f"{name!r} / {found!r}" for name, found in output["unmatched_case_differs"].items())
            left_out.append(f"names compared exactly differ only in case from images of the folder: {pairs}")
    if output["ambiguous_images"]:
        left_out.append(f"{output['ambiguous_images']} file name(s) shared by several images")
    if output["unreadable_images"]:
        left_out.append(f"{output['unreadable_images']} image(s) whose size could not be read")
    if output["unknown_labels"]:
        labels = ", ".join(f"{label!r} ({count})" for label, count in output["unknown_labels"].items())
        left_out.append(f"labels not in the job's label list: {labels}")
    if output["problems"]:
        left_out.append(f"{output['problems']} refused task(s) or answer(s), first: {output['problem_examples'][0]}")
    if left_out:
        parts.append("Not used: " + "; ".join(left_out) + ".")
    else:
        parts.append("Nothing was refused or left unmatched.")
    skipped, converted = output["skipped"], output["converted"]
    passed_over = [
        f"{count} {what}"
        for count, what in (
            (skipped["cancelled_annotations"], "cancelled annotation(s)"),
            (skipped["predictions"], "prediction(s) (model output, not people)"),
            (skipped["without_answer"], "task(s) or answer(s) without a label of this task type"),
        )
        if count
    ]
    if skipped["other_kinds"]:
        kinds = ", ".join(f"{count} {kind}" for kind, count in skipped["other_kinds"].items())
        passed_over.append(f"results of other kinds ({kinds})")
    if passed_over:
        parts.append("Skipped as the formats mark them: " + "; ".join(passed_over) + ".")
    changed = [
        f"{count} {what}"
        for count, what in (
            (converted["rotated_boxes"], "rotated box(es) to their axis-aligned bounds"),
            (converted["rescaled_images"], "image(s) whose boxes were scaled to the image's size"),
            (converted["repeated_answers"], "repeated answer(s) of an annotator replaced by the last one"),
        )
        if count
    ]
    if changed:
        parts.append("Converted: " + "; ".join(changed) + ".")
    parts.append(f"Details: {output['quality_uri']}")
    return " ".join(parts)


def record_in_status_file(
    store: ExportStore, *, bucket: str, job_id: str, labeling_job: str, output: Mapping[str, Any]
) -> str:
    """Add ``import`` (the step's short form) to ``jobs/<id>/status.json``, which the starter wrote when the run
    started; returns what was done. The file is left alone when it names another run (a later upload of job.json
    started one: its status is that run's). A missing or unreadable file is written anew."""
    uri = s3_uri(bucket, f"{JOBS_PREFIX}{job_id}/{STATUS_FILE_NAME}")
    status = store.read_json_if_present(uri)
    if not isinstance(status, dict):
        status = {"status": "started", "job_file": f"{JOBS_PREFIX}{job_id}/job.json"}
    execution = status.get("execution_arn")
    if isinstance(execution, str) and execution:
        run_id = execution.rsplit(":", 1)[-1]
        if labeling_job_name(job_id, run_id) != labeling_job:
            return f"{uri} not updated: it belongs to another run ({_cut(execution)})"
    status["import"] = {**output, "time": datetime.now(UTC).isoformat(timespec="seconds")}
    store.write_json(uri, status)
    return f"{uri} updated"


def _cut(text: str) -> str:
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."
