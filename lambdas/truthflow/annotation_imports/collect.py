"""From export files to the inputs of consolidation, with a report of everything that was not used as is.

Rules across files (issue 10):

* Items are images named by file name (:mod:`.image_names`), so one photo in several files and tools is one item.
* Workers are file-local ids unless they are e-mail addresses (:mod:`.workers`); several files are several workers.
* A worker's later answer on the same image replaces the earlier one (the last answer counts, counted).
* With ``labels``, an answer (classification) or a box with a label outside them is dropped and counted by label;
  a box answer keeps its other boxes (a worker who boxed only unknown classes answered "none of the job's labels").
* Box sizes: an image's size is the caller's (read from the image itself), else the first size an export gives.
  Boxes from a file that saw the image at another size are scaled to it (counted).
* With ``known_images``, answers on other images are left out and listed (the pipeline's images/ folder).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from truthflow.annotation_imports.coco import read_coco
from truthflow.annotation_imports.cvat import read_cvat
from truthflow.annotation_imports.detection import decode, detect_format
from truthflow.annotation_imports.groundtruth import read_groundtruth
from truthflow.annotation_imports.label_studio import read_label_studio_csv, read_label_studio_json
from truthflow.annotation_imports.model import (
    Answer,
    ExportError,
    ExportFile,
    FileReport,
    ImportReport,
    ReadContext,
)
from truthflow.consolidation.boxes import Box, ImageAnswers, WorkerAnswer
from truthflow.groundtruth.bounded_json import encodes_as_utf8
from truthflow.groundtruth.label_config import TaskType
from truthflow.tables import garbage_collection_paused

# Two image sizes closer than this (relative) are the same size (exports round differently).
_SIZE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ClassAnswers:
    """Classification answers as the consolidation core takes them: parallel lists, one entry per answer."""

    items: list[str] = field(default_factory=list)
    workers: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImportedAnswers:
    """What :func:`read_annotation_exports` returns. Classification fills ``classes`` (for
    :func:`~truthflow.consolidation.labels.consolidate_labels`); boxes fill ``images`` (for
    :func:`~truthflow.consolidation.boxes.consolidate_boxes`: every worker who answered an image, empty answers
    included, in order of first appearance). ``report`` says what was skipped, converted, ignored or refused."""

    task_type: TaskType
    classes: ClassAnswers
    images: list[ImageAnswers]
    report: ImportReport


def read_annotation_exports(
    files: Sequence[ExportFile],
    *,
    task_type: TaskType,
    labels: Sequence[str] | None = None,
    image_sizes: Mapping[str, tuple[float, float]] | None = None,
    known_images: Collection[str] | None = None,
) -> ImportedAnswers:
    """Read Label Studio, CVAT, COCO and Ground Truth exports (each file's ``format``, or detected from its content)
    into consolidation inputs. ``image_sizes`` and ``known_images`` are keyed by image file name.

    A file that cannot be read at all raises :class:`~.model.ExportError` naming it; a bad task, annotation or box
    is refused, reported with file, place and field, and the rest is read.
    """
    collector = AnswerCollector(task_type=task_type, labels=labels, image_sizes=image_sizes, known_images=known_images)
    # One pause for the whole import: a pause per step let the collector pass over every answer read so far
    # between the steps (0.1 s per 300,000 answers).
    with garbage_collection_paused():
        for file in files:
            collector.add_file(file)
        return collector.result()


def read_export(file: ExportFile, context: ReadContext) -> Iterator[Answer]:
    """The answers of one export file, dispatched on its format (given or detected)."""
    decoded = decode(file.name, file.data)
    found = file.format or detect_format(file.name, decoded)
    context.report.format = found
    if found == "cvat":
        if decoded.shape != "xml":
            raise ExportError(f"{file.name}: expected CVAT XML, the file is {decoded.shape}")
        yield from read_cvat(file, context)
    elif found == "coco":
        if not decoded.parsed:
            raise ExportError(f"{file.name}: expected COCO JSON, the file is {decoded.shape}")
        yield from read_coco(file.name, decoded.document, context)
    elif found == "label-studio":
        if decoded.parsed:
            yield from read_label_studio_json(file.name, decoded.document, context)
        elif decoded.shape == "text":
            yield from read_label_studio_csv(file.name, decoded.text, context)
        else:
            raise ExportError(f"{file.name}: expected a Label Studio JSON, JSON_MIN or CSV export, the file is XML")
    elif found == "groundtruth":
        if decoded.shape == "xml":
            raise ExportError(f"{file.name}: expected a Ground Truth output manifest (JSON Lines), the file is XML")
        yield from read_groundtruth(file.name, decoded.text, context)
    else:
        raise ExportError(
            f"{file.name}: not an export truthflow reads (Label Studio JSON/JSON_MIN/CSV, CVAT for images XML, COCO, "
            "Ground Truth output manifest)"
        )


class AnswerCollector:
    """Collects answers file by file and builds the consolidation inputs (see the module docstring)."""

    def __init__(
        self,
        *,
        task_type: TaskType,
        labels: Sequence[str] | None = None,
        image_sizes: Mapping[str, tuple[float, float]] | None = None,
        known_images: Collection[str] | None = None,
    ) -> None:
        self.task_type: TaskType = task_type
        self.labels = frozenset(labels) if labels is not None else None
        self.image_sizes = dict(image_sizes or {})
        self.known_images = frozenset(known_images) if known_images is not None else None
        self.report = ImportReport()
        self._answers: dict[tuple[str, str], Answer] = {}
        self._image_order: dict[str, None] = {}

    def add_file(self, file: ExportFile) -> FileReport:
        """Read one export file (its ``format``, or detected); :class:`~.model.ExportError` leaves the collector as
        it was."""
        file_report = FileReport(file.name, file.format or "")
        context = ReadContext(self.task_type, self.labels, self.image_sizes, file_report)
        with garbage_collection_paused():
            # Read the whole file first: a file that turns out unreadable adds nothing (the caller may go on).
            answers = list(read_export(file, context))
            return self.add_answers(file_report, lambda: answers)

    def add_answers(self, file_report: FileReport, answers: Callable[[], Iterable[Answer]]) -> FileReport:
        """Take answers read by some reader into ``file_report`` (the CLI's own CSV files come this way)."""
        self.report.files.append(file_report)
        first_reference: dict[str, str] = {}
        shared: list[str] = []
        known, unmatched, collected = self.known_images, self.report.unmatched_images, self._answers
        workers, image_order = file_report.workers, self._image_order
        taken = 0
        try:
            for answer in answers():
                unwritable = _not_unicode(answer)
                if unwritable is not None:
                    where = answer.where.encode("utf-8", "backslashreplace").decode("utf-8")
                    file_report.problem(
                        where, unwritable, "is not valid Unicode (a lone surrogate escape such as \\ud800)"
                    )
                    continue
                image = answer.image
                reference = first_reference.setdefault(image, answer.reference)
                if reference != answer.reference and image not in shared:
                    shared.append(image)
                if known is not None and image not in known:
                    unmatched.setdefault(image, answer.reference)
                    continue
                taken += 1
                workers.add(answer.worker)
                if image not in image_order:
                    image_order[image] = None
                key = (image, answer.worker)
                if key in collected:
                    self.report.repeated_answers += 1
                    del collected[key]  # the later answer counts, and takes the later place
                collected[key] = answer
        finally:
            file_report.answers += taken
        if shared:
            self.report.shared_names[file_report.name] = shared
        return file_report

    def ensure_answered(self, image: str, worker: str, source: str) -> None:
        """An empty box answer of ``worker`` on ``image`` unless the worker answered it already (``source`` names
        where the pair comes from, e.g. an assignments file)."""
        if (image, worker) not in self._answers:
            self._answers[(image, worker)] = Answer(image, image, worker, source, boxes=[])
            self._image_order.setdefault(image)

    def result(self) -> ImportedAnswers:
        with garbage_collection_paused():
            if self.task_type == "image-classification":
                return ImportedAnswers(self.task_type, self._class_answers(), [], self.report)
            return ImportedAnswers(self.task_type, ClassAnswers(), self._image_answers(), self.report)

    def _class_answers(self) -> ClassAnswers:
        classes = ClassAnswers()
        labels, unknown = self.labels, self.report.unknown_labels
        for (image, worker), answer in self._answers.items():
            label = answer.label
            if label is None:
                continue
            if labels is not None and label not in labels:
                unknown[label] += 1
                continue
            classes.items.append(image)
            classes.workers.append(worker)
            classes.labels.append(label)
        return classes

    def _image_answers(self) -> list[ImageAnswers]:
        per_image: dict[str, list[Answer]] = {image: [] for image in self._image_order}
        for (image, _), answer in self._answers.items():
            per_image[image].append(answer)
        return [self._image(image, answers) for image, answers in per_image.items()]

    def _image(self, image: str, answers: list[Answer]) -> ImageAnswers:
        size = self.image_sizes.get(image)
        if size is None:
            for answer in answers:
                if answer.width is not None and answer.height is not None:
                    size = (answer.width, answer.height)
                    break
        rescaled = False
        worker_answers = []
        for answer in answers:
            boxes = answer.boxes or []
            if self.labels is not None:
                boxes = self._known_label_boxes(boxes)
            if size is not None and answer.width is not None and answer.height is not None:
                drawn_on = (answer.width, answer.height)
                if drawn_on != size and not _same_size(drawn_on, size):
                    boxes = _scaled(boxes, size[0] / drawn_on[0], size[1] / drawn_on[1])
                    rescaled = True
            worker_answers.append(WorkerAnswer(answer.worker, tuple(boxes)))
        self.report.rescaled_images += rescaled
        width, height = size if size is not None else (None, None)
        return ImageAnswers(image=image, width=width, height=height, answers=tuple(worker_answers))

    def _known_label_boxes(self, boxes: list[Box]) -> list[Box]:
        labels = self.labels
        if labels is None:
            return boxes
        kept = [box for box in boxes if box.label in labels]
        if len(kept) != len(boxes):
            self.report.unknown_labels.update(box.label for box in boxes if box.label not in labels)
        return kept


def _not_unicode(answer: Answer) -> str | None:
    """The first field of ``answer`` that UTF-8 cannot encode (JSON may escape lone surrogates; every output is
    UTF-8), or ``None``. ASCII text, nearly all of it, is passed by one C-level test per field."""
    if not answer.image.isascii() and not encodes_as_utf8(answer.image):
        return "image"
    if not answer.worker.isascii() and not encodes_as_utf8(answer.worker):
        return "worker"
    label = answer.label
    if label is not None and not label.isascii() and not encodes_as_utf8(label):
        return "label"
    if answer.boxes:
        for box in answer.boxes:
            if not box.label.isascii() and not encodes_as_utf8(box.label):
                return "label"
    return None


def _same_size(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a == b or all(math.isclose(x, y, rel_tol=_SIZE_TOLERANCE) for x, y in zip(a, b, strict=True))


def _scaled(boxes: list[Box], x_scale: float, y_scale: float) -> list[Box]:
    return [
        Box(box.label, box.left * x_scale, box.top * y_scale, box.width * x_scale, box.height * y_scale)
        for box in boxes
    ]
