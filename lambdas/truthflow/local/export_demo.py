"""``truthflow demo --dataset <export file or folder>``: a Label Studio, CVAT, COCO or Ground Truth export run through
the whole pipeline offline, as a job that brings its annotations (job.json ``annotations``).

:func:`load_export_dataset` reads the export(s) here with the pipeline's own readers
(:func:`~truthflow.annotation_imports.read_annotation_exports`) to decide what the job is: boxes when any answer
holds a box, else classes; the labels are those the answers use, sorted. The export files are uploaded unchanged
under ``jobs/<id>/annotations/`` and the run reads them itself.

The images an export names are usually not at hand (they live in the tool), so each gets a **stand-in**, as the
crowd-data replay makes them (:func:`~truthflow.local.sample_data.synthesize_image`): a desk photo at the size the
export gives (640 x 480 where it gives none) showing one object per box of the first annotator who drew any (boxes),
or a close-up of one object of the label most annotators gave (classes;
:func:`~truthflow.local.sample_data.close_up_box`), named as the export names the image. An image whose
name is not ``.jpg``/``.jpeg``/``.png`` gets no stand-in (the pipeline reads only those): the run reports it as not
found among the job's images. ``max_items`` keeps the first images in the order the exports name them; the others
get no stand-in either and are reported the same way.

Tool exports carry no gold, so the report shows agreement between annotators instead
(:mod:`truthflow.local.report.agreement`).
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from truthflow.annotation_imports import ExportFile, ImportedAnswers, read_annotation_exports
from truthflow.consolidation.boxes import Box, ImageAnswers
from truthflow.groundtruth.label_config import TaskType
from truthflow.job_annotations import MAX_ANNOTATION_FILES
from truthflow.job_file import MAX_JOB_FILE_LABELS, MAX_JOB_ID_CHARS
from truthflow.local.sample_data import (
    GoldBox,
    ImageFormat,
    SampleImage,
    SampleJob,
    close_up_box,
    synthesize_image,
)
from truthflow.tables import InputError

DEFAULT_SIZE = (640, 480)
CLASS_IMAGE_SIZE = (320, 240)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CROWD_DATA_SET_FILES = ("answers.csv", "assignments.csv")


@dataclass(frozen=True)
class ExportDataset:
    """An export made into a job: ``job`` (stand-in images, no gold), the ``job_file`` to upload, the export
    ``files`` (path under the job's folder, bytes), each image's answers for the report (image -> annotator ->
    label or boxes), and ``notes`` on what was done."""

    name: str
    job: SampleJob
    files: list[tuple[str, bytes]]
    answers: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def is_export(path: Path) -> bool:
    """A file, or a folder that is not a crowd data set (``answers.csv`` / ``assignments.csv``)."""
    return path.is_file() or (path.is_dir() and not any((path / name).is_file() for name in CROWD_DATA_SET_FILES))


def export_files(path: Path) -> list[tuple[str, bytes]]:
    """``(path under annotations/, bytes)`` of an export file, or of every file in a folder (subfolders included,
    hidden files left out), in name order."""
    if path.is_file():
        found = [(path.name, path)]
    else:
        found = [
            (file.relative_to(path).as_posix(), file)
            for file in sorted(path.rglob("*"))
            if file.is_file() and not any(part.startswith(".") for part in file.relative_to(path).parts)
        ]
    if not found:
        raise InputError(f"{path}: no export files in the folder")
    if len(found) > MAX_ANNOTATION_FILES:
        raise InputError(f"{path}: {len(found):,} files; a job takes at most {MAX_ANNOTATION_FILES:,} export files")
    return [(f"annotations/{_safe_path(name)}", file.read_bytes()) for name, file in found]


def load_export_dataset(path: Path, *, max_items: int | None = None, seed: int = 0) -> ExportDataset:
    """Read an export file or folder into a job with stand-in images (see the module docstring)."""
    path = Path(path)
    files = export_files(path)
    # Named as the run names them (their path under the job's folder), so the annotators' ids are the run's.
    exports = [ExportFile(name, data) for name, data in files]
    task_type, imported = _read(path, exports)
    labels = _labels(path, task_type, imported)
    answers = _answers(imported)
    names = list(answers)
    kept = [name for name in names if name.lower().endswith(IMAGE_SUFFIXES)]
    notes = []
    other = len(names) - len(kept)
    if other:
        notes.append(
            f"{other} image(s) the export names are not .jpg/.jpeg/.png: no stand-in, the run reports them as not "
            "found among the job's images"
        )
    if max_items is not None and len(kept) > max_items:
        notes.append(
            f"stand-in images for the first {max_items} of {len(kept)} images (--max-items); the run reports the "
            "others as not found among the job's images"
        )
        kept = kept[:max_items]
    sizes = {image.image: image for image in imported.images}
    images = tuple(_stand_in(name, task_type, sizes.get(name), answers[name], seed) for name in kept)
    job_id = _job_id(path)
    job_file = {
        "task_type": task_type,
        "labels": labels,
        "task_description": f"Labels imported from the export {path.name}."[:255].replace("\n", " "),
        "annotations": {"files": [name for name, _ in files]},
    }
    notes.append(
        "The export's images are not at hand: each image is a generated stand-in at the export's size showing "
        + ("the first annotator's boxes" if task_type == "bounding-box" else "the label most annotators gave")
        + "; tool exports carry no gold, so quality is shown as agreement between annotators."
    )
    job = SampleJob(job_id=job_id, task_type=task_type, labels=tuple(labels), images=images, job_file=job_file)
    shown = {image.file_name: answers[image.file_name] for image in images}
    return ExportDataset(name=path.name, job=job, files=files, answers=shown, notes=notes)


def _read(path: Path, exports: Sequence[ExportFile]) -> tuple[TaskType, ImportedAnswers]:
    """Boxes when any answer holds a box, else classes; a file that is no export stops here (``InputError``)."""
    boxes = read_annotation_exports(exports, task_type="bounding-box")
    if any(answer.boxes for image in boxes.images for answer in image.answers):
        return "bounding-box", boxes
    classes = read_annotation_exports(exports, task_type="image-classification")
    if classes.classes.items:
        return "image-classification", classes
    raise InputError(f"{path}: the export holds no box and no class answer a run could use")


def _labels(path: Path, task_type: TaskType, imported: ImportedAnswers) -> list[str]:
    if task_type == "bounding-box":
        seen = {box.label for image in imported.images for answer in image.answers for box in answer.boxes}
    else:
        seen = set(imported.classes.labels)
    labels = sorted(seen)
    if task_type == "image-classification" and len(labels) < 2:
        raise InputError(f"{path}: every answer is {labels[0]!r}; a classification job needs at least two labels")
    if len(labels) > MAX_JOB_FILE_LABELS[task_type]:
        raise InputError(
            f"{path}: {len(labels)} labels; a {task_type} job takes at most {MAX_JOB_FILE_LABELS[task_type]}"
        )
    return labels


def _answers(imported: ImportedAnswers) -> dict[str, dict[str, Any]]:
    """image -> annotator -> class label or boxes (the report's worker answers), images in the exports' order."""
    answers: dict[str, dict[str, Any]] = {}
    if imported.task_type == "image-classification":
        classes = imported.classes
        for item, worker, label in zip(classes.items, classes.workers, classes.labels, strict=True):
            answers.setdefault(item, {})[worker] = label
        return answers
    for image in imported.images:
        answers[image.image] = {answer.worker: [_box_dict(box) for box in answer.boxes] for answer in image.answers}
    return answers


def _stand_in(
    name: str, task_type: TaskType, found: ImageAnswers | None, given: dict[str, Any], seed: int
) -> SampleImage:
    image_format: ImageFormat = "PNG" if name.lower().endswith(".png") else "JPEG"
    item_seed = (seed << 32) + zlib.crc32(name.encode("utf-8"))
    shown: tuple[GoldBox, ...]
    if task_type == "image-classification":
        width, height = CLASS_IMAGE_SIZE
        label = Counter(given.values()).most_common(1)[0][0]
        shown = (close_up_box(label, width, height, seed=item_seed),)
    else:
        assert found is not None  # every box image the answers name is one of imported.images
        width, height = (round(found.width), round(found.height)) if found.width and found.height else DEFAULT_SIZE
        first = next((answer.boxes for answer in found.answers if answer.boxes), ())
        shown = tuple(box for box in (_gold_box(box, width, height) for box in first) if box is not None)
    data = synthesize_image(width, height, shown, seed=item_seed, image_format=image_format)
    return SampleImage(file_name=name, width=width, height=height, data=data, boxes=shown, label=None)


def _gold_box(box: Box, width: int, height: int) -> GoldBox | None:
    """A box in whole pixels, cut to the image; ``None`` when nothing of it is inside."""
    left, top = max(0, round(box.left)), max(0, round(box.top))
    right, bottom = min(width, round(box.left + box.width)), min(height, round(box.top + box.height))
    if right - left < 1 or bottom - top < 1:
        return None
    return GoldBox(box.label, left, top, right - left, bottom - top)


def _box_dict(box: Box) -> dict[str, Any]:
    return {"label": box.label, "left": box.left, "top": box.top, "width": box.width, "height": box.height}


def _safe_path(name: str) -> str:
    """A path a job file accepts (no backslash or control character, no empty, '.' or '..' part)."""
    parts = [re.sub(r"[\x00-\x1f\x7f\\]", "_", part) for part in name.split("/")]
    return "/".join(part if part not in ("", ".", "..") else "_" for part in parts)


def _job_id(path: Path) -> str:
    stem = path.stem if path.is_file() else path.name
    cleaned = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "export"
    return f"import-{cleaned}"[:MAX_JOB_ID_CHARS].rstrip("-")
