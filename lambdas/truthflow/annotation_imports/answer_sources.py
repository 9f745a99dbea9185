"""The command line's ``--answers`` files: truthflow's own CSV layout or any export, several files at once.

``formats`` comes from ``--format``: none (each file's format is detected from its content), one (for every file),
or one per file (in the order of the files). ``csv`` is truthflow's CSV layout (``item,worker,label`` or
``image,worker,label,left,top,width,height``), read by :mod:`truthflow.answer_files` as before; it is also what a
text file without Label Studio's ``annotator`` column is taken for, so its errors name the missing columns. CSV worker
ids are used as written. Everything else goes through :func:`~.collect.read_export`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

from truthflow.annotation_imports.collect import AnswerCollector, ClassAnswers
from truthflow.annotation_imports.detection import csv_header, first_character
from truthflow.annotation_imports.model import EXPORT_FORMATS, Answer, ExportFile, ExportFormat, FileReport
from truthflow.answer_files import read_box_answers, read_label_answers
from truthflow.consolidation.boxes import ImageAnswers
from truthflow.tables import InputError, read_rows

CSV_FORMAT = "csv"
ANSWER_FORMATS: tuple[str, ...] = (CSV_FORMAT, *EXPORT_FORMATS)
ANSWERS_HELP = "or a Label Studio, CVAT, COCO or Ground Truth export; repeat for several files (one per annotator/tool)"
BOX_COLUMNS_HELP = "image,worker,label,left,top,width,height"
FORMAT_HELP = (
    "format of the --answers files: once for all, or once per file in order (default: told from each file's content; "
    "csv is the layout above)"
)
MAX_LISTED_PROBLEMS = 20
_SNIFF_BYTES = 64 * 1024


def read_label_sources(
    paths: Sequence[Path], formats: Sequence[str] | None = None
) -> tuple[ClassAnswers, AnswerCollector]:
    """Classification answers of every file, and the collector holding the import report."""
    collector = AnswerCollector(task_type="image-classification")
    for path, answer_format in _paired(paths, formats):
        if answer_format == CSV_FORMAT:
            collector.add_answers(FileReport(str(path), CSV_FORMAT), partial(_csv_label_answers, path))
        else:
            collector.add_file(ExportFile(str(path), path.read_bytes(), export_format(answer_format)))
    result = collector.result()
    if not result.classes.items:
        raise InputError(f"{_names(paths)}: no usable answers{_first_problem(collector)}")
    return result.classes, collector


def read_box_sources(
    paths: Sequence[Path],
    formats: Sequence[str] | None = None,
    assignments: Path | None = None,
    *,
    warn: Callable[[str], None] | None = None,
) -> tuple[list[ImageAnswers], AnswerCollector]:
    """Box answers of every file grouped per image; ``assignments`` (``image,worker``) adds empty answers for workers
    who saw an image and drew nothing. ``warn`` hears about rows of truthflow's CSV that repeat an earlier row."""
    collector = AnswerCollector(task_type="bounding-box")
    for path, answer_format in _paired(paths, formats):
        if answer_format == CSV_FORMAT:
            collector.add_answers(FileReport(str(path), CSV_FORMAT), partial(_csv_box_answers, path, warn))
        else:
            collector.add_file(ExportFile(str(path), path.read_bytes(), export_format(answer_format)))
    if assignments is not None:
        for _, row in read_rows(assignments, ("image", "worker")):
            collector.ensure_answered(row["image"], row["worker"], str(assignments))
    images = collector.result().images
    if not images:
        raise InputError(f"{_names(paths)}: no usable answers{_first_problem(collector)}")
    return images, collector


def import_warnings(collector: AnswerCollector, repeated: int, unit: str) -> list[str]:
    """Lines for the terminal: a note per export file and per import finding, a warning per refused part (the first
    :data:`MAX_LISTED_PROBLEMS`), and the repeated answers (``repeated`` more found by the caller, e.g. duplicates
    that consolidation dropped)."""
    report = collector.report
    notes = [file.summary_line() for file in report.files if file.format != CSV_FORMAT]
    lines = [f"note: {line}" for line in notes + report.finding_lines(include_repeated=False)]
    lines += [f"warning: {problem}; not used" for problem in report.problems[:MAX_LISTED_PROBLEMS]]
    if report.n_problems > MAX_LISTED_PROBLEMS:
        lines.append(f"warning: ... and {report.n_problems - MAX_LISTED_PROBLEMS} more refused")
    repeated += report.repeated_answers
    if repeated:
        names = ", ".join(file.name for file in report.files)
        kept = f"kept each worker's last answer to an {unit}"
        lines.append(f"warning: {names}: {repeated} repeated ({unit}, worker) answers; {kept}")
    return lines


def _paired(paths: Sequence[Path], formats: Sequence[str] | None) -> Iterator[tuple[Path, str]]:
    given = list(formats or ())
    if len(given) not in (0, 1, len(paths)):
        raise InputError(
            f"--format given {len(given)} times for {len(paths)} --answers files; give it once or per file"
        )
    for index, path in enumerate(paths):
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        chosen = given[index] if len(given) == len(paths) else (given[0] if given else None)
        yield path, chosen if chosen is not None else _sniffed_format(path)


def _sniffed_format(path: Path) -> str:
    """``csv`` for text without Label Studio's ``annotator`` column (the layout of this command), else an export
    format to be detected from the whole content (``''``)."""
    with path.open("rb") as handle:
        prefix = handle.read(_SNIFF_BYTES)
    if first_character(prefix) in (b"<", b"{", b"["):
        return ""
    text = prefix.decode("utf-8-sig", errors="replace")
    return "" if "annotator" in csv_header(text) else CSV_FORMAT


def _csv_label_answers(path: Path) -> Iterator[Answer]:
    answers = read_label_answers(path)
    for item, worker, label in zip(answers.items, answers.workers, answers.labels, strict=True):
        yield Answer(item, item, worker, "row", label=label)


def _csv_box_answers(path: Path, warn: Callable[[str], None] | None) -> Iterator[Answer]:
    for image in read_box_answers(path, warn=warn):
        for answer in image.answers:
            yield Answer(image.image, image.image, answer.worker, "row", boxes=list(answer.boxes))


def _names(paths: Sequence[Path]) -> str:
    return ", ".join(str(path) for path in paths)


def _first_problem(collector: AnswerCollector) -> str:
    problems = collector.report.problems
    return f"; first problem: {problems[0]}" if problems else ""


def export_format(name: str) -> ExportFormat | None:
    """``name`` as an export format, ``None`` for truthflow's CSV or detection."""
    return next((known for known in EXPORT_FORMATS if known == name), None)
