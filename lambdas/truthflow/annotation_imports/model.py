"""What the export readers take and give: export files, one worker's answer on one image, and the import report.

Every reader turns one export file into :class:`Answer` objects (one per worker and image) and records in its
:class:`FileReport` what it skipped, converted, ignored or refused, so that nothing read is lost without a trace.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from truthflow.consolidation.boxes import Box
from truthflow.groundtruth.label_config import TaskType
from truthflow.tables import InputError

ExportFormat = Literal["label-studio", "cvat", "coco", "groundtruth"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("label-studio", "cvat", "coco", "groundtruth")

# Problems kept per file in full; beyond this only the count grows (a hostile file could have millions).
MAX_KEPT_PROBLEMS = 1000


class ExportError(InputError):
    """An export that cannot be read at all (not JSON/XML, wrong shape, unsafe XML); names the file."""


class AnswerError(ValueError):
    """One task, annotation or box cannot be used (raised inside a reader, reported, never fatal); ``field`` names
    the bad part."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ExportFile:
    """One export file as bytes. ``name`` identifies the file (a path or an S3 key): it prefixes worker ids that
    are local to one tool instance, so two different files must have different names."""

    name: str
    data: bytes
    format: ExportFormat | None = None


@dataclass(slots=True)
class Answer:
    """One worker's answer on one image, from one file.

    ``image`` is the image's file name (see :mod:`~truthflow.annotation_imports.image_names`), ``reference`` the
    image as the export names it, ``where`` the place in the file for messages (``task 17``, ``image 'a.jpg'``).
    Classification answers carry ``label``; box answers carry ``boxes`` (pixels of an image of ``width`` x
    ``height``, ``None`` when the export does not say) and may be empty: a vote that nothing is there.
    """

    image: str
    reference: str
    worker: str
    where: str
    label: str | None = None
    boxes: list[Box] | None = None
    width: float | None = None
    height: float | None = None


@dataclass(frozen=True)
class ReadContext:
    """What a reader needs besides the file: the task type, the job's labels (``None``: any label), image sizes by
    image name (from the images themselves, for exports that do not carry them), and the report to fill."""

    task_type: TaskType
    labels: frozenset[str] | None
    image_sizes: Mapping[str, tuple[float, float]]
    report: FileReport


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """Something refused: ``where`` (task, annotation, image or line) and ``field`` locate it in ``file``."""

    file: str
    where: str
    field: str | None
    message: str

    def __str__(self) -> str:
        location = f"{self.where}: {self.field}" if self.field else self.where
        return f"{self.file} {location}: {self.message}"


@dataclass
class FileReport:
    """What one file held and what became of it.

    ``tasks``: tasks (Label Studio), images (CVAT, COCO) or lines (Ground Truth) read. ``answers``: answers taken.
    ``cancelled``: skipped Label Studio annotations marked ``was_cancelled``. ``predictions``: model predictions
    ignored (not people). ``rotated``: rotated boxes replaced by their axis-aligned bounds. ``without_answer``:
    places where a worker gave nothing usable for the task type (a classification annotation without a choice, a
    task nobody annotated). ``ignored``: results or shapes of other kinds, by kind (``polygon``, ``choices``...).
    ``problems``: refused tasks/answers/boxes (the first :data:`MAX_KEPT_PROBLEMS`; ``n_problems`` counts all).
    """

    name: str
    format: str
    tasks: int = 0
    answers: int = 0
    workers: set[str] = field(default_factory=set)
    cancelled: int = 0
    predictions: int = 0
    rotated: int = 0
    without_answer: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    problems: list[ImportProblem] = field(default_factory=list)
    n_problems: int = 0

    def problem(self, where: str, field_name: str | None, message: str) -> None:
        self.n_problems += 1
        if len(self.problems) < MAX_KEPT_PROBLEMS:
            self.problems.append(ImportProblem(self.name, where, field_name, message))

    def summary_line(self) -> str:
        """``<file> (<format>): 12 tasks, 3 workers, 30 answers, 2 cancelled annotations skipped, ...``"""
        parts = [f"{self.tasks} {_unit(self.format)}", f"{len(self.workers)} workers", f"{self.answers} answers"]
        if self.cancelled:
            parts.append(f"{self.cancelled} cancelled annotations skipped")
        if self.predictions:
            parts.append(f"{self.predictions} predictions ignored")
        if self.rotated:
            parts.append(f"{self.rotated} rotated boxes replaced by their axis-aligned bounds")
        if self.without_answer:
            parts.append(f"{self.without_answer} without an answer for this task type")
        if self.ignored:
            kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.ignored.items()))
            parts.append(f"ignored {kinds}")
        if self.n_problems:
            parts.append(f"{self.n_problems} refused")
        return f"{self.name} ({self.format}): " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.name,
            "format": self.format,
            "tasks": self.tasks,
            "answers": self.answers,
            "workers": sorted(self.workers),
            "cancelled_annotations": self.cancelled,
            "predictions_ignored": self.predictions,
            "rotated_boxes": self.rotated,
            "without_answer": self.without_answer,
            "ignored": dict(sorted(self.ignored.items())),
            "n_problems": self.n_problems,
            "problems": [str(problem) for problem in self.problems],
        }


@dataclass
class ImportReport:
    """What an import did, over all files.

    ``unknown_labels``: answers (classification) or boxes dropped because their label is not in the job's labels,
    by label. ``repeated_answers``: answers replaced by a later answer of the same worker on the same image (the
    last one counts). ``rescaled_images``: images whose boxes came in different image sizes and were scaled to one.
    ``shared_names``: per file, image names that different references reduce to (``train/1.jpg``, ``val/1.jpg``),
    treated as one image. ``unmatched_images``: image name -> reference, for answers on images that are not among
    the known images; those answers are not in the result.
    """

    files: list[FileReport] = field(default_factory=list)
    unknown_labels: Counter[str] = field(default_factory=Counter)
    repeated_answers: int = 0
    rescaled_images: int = 0
    shared_names: dict[str, list[str]] = field(default_factory=dict)
    unmatched_images: dict[str, str] = field(default_factory=dict)

    @property
    def problems(self) -> list[ImportProblem]:
        return [problem for file in self.files for problem in file.problems]

    @property
    def n_problems(self) -> int:
        return sum(file.n_problems for file in self.files)

    def summary_lines(self) -> list[str]:
        """One line per file and per import-wide finding, for a terminal or a status file."""
        return [file.summary_line() for file in self.files] + self.finding_lines()

    def finding_lines(self, *, include_repeated: bool = True) -> list[str]:
        """The import-wide findings: unknown labels, repeated answers, rescaled, shared and unmatched images."""
        lines = []
        if self.unknown_labels:
            listed = ", ".join(f"{label!r} ({count})" for label, count in self.unknown_labels.most_common(10))
            more = "" if len(self.unknown_labels) <= 10 else f" and {len(self.unknown_labels) - 10} more"
            lines.append(f"labels not in the label list, not used: {listed}{more}")
        if self.repeated_answers and include_repeated:
            lines.append(
                f"{self.repeated_answers} answers repeated a worker's earlier answer on the same image; "
                "the last one counts"
            )
        if self.rescaled_images:
            lines.append(f"{self.rescaled_images} images came in different sizes; their boxes were scaled to one")
        for file, names in self.shared_names.items():
            listed = ", ".join(names[:5]) + ("" if len(names) <= 5 else f" and {len(names) - 5} more")
            lines.append(f"{file}: different image references share a file name and count as one image: {listed}")
        if self.unmatched_images:
            listed = ", ".join(sorted(self.unmatched_images)[:10])
            more = "" if len(self.unmatched_images) <= 10 else f" and {len(self.unmatched_images) - 10} more"
            lines.append(f"{len(self.unmatched_images)} images not found among the images, not used: {listed}{more}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [file.to_dict() for file in self.files],
            "unknown_labels": dict(self.unknown_labels.most_common()),
            "repeated_answers": self.repeated_answers,
            "rescaled_images": self.rescaled_images,
            "shared_names": self.shared_names,
            "unmatched_images": dict(sorted(self.unmatched_images.items())),
        }


def _unit(format_name: str) -> str:
    if format_name.startswith("label-studio"):
        return "tasks"
    if format_name.startswith("groundtruth"):
        return "lines"
    return "images"
