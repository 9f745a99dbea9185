"""Label Studio's JSON_MIN and CSV exports: one row per (non-cancelled) annotation.

A row holds the task's data fields (``image``...), the task ``id``, one field per control tag (named by its
``from_name``) and ``annotator``, ``annotation_id``, ``created_at``, ``updated_at``, ``lead_time`` (``agreement``
and ``history`` in some versions). A rectangle field is a list of regions ``{x, y, width, height, rotation,
rectanglelabels, original_width, original_height}``; a choices field is the choice itself, or ``{"choices": [..]}``
for several. CSV writes lists and objects as JSON strings (columns sorted by name, ``QUOTE_NONNUMERIC``; slashes may be
escaped); TSV is the same with tabs. Label Studio leaves cancelled annotations out of both, and recent versions write a
row without ``annotator`` for a task nobody annotated (counted, no answer). A row without a rectangle field is an
empty answer of a box task.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from truthflow.annotation_imports.detection import csv_delimiter
from truthflow.annotation_imports.image_names import image_file_name
from truthflow.annotation_imports.label_studio_values import (
    Annotators,
    choice_list,
    image_field,
    loads_cell,
    rectangle,
    resolve_choices,
)
from truthflow.annotation_imports.model import Answer, AnswerError, ExportError, ReadContext
from truthflow.consolidation.boxes import Box

META_FIELDS = frozenset(
    {
        "id",
        "annotator",
        "annotation_id",
        "created_at",
        "updated_at",
        "lead_time",
        "agreement",
        "history",
        "was_cancelled",
        "drafts",
        "predictions",
    }
)
# Region keys that name a region's kind in JSON_MIN/CSV (the ``type`` is dropped there).
_REGION_KINDS = ("rectanglelabels", "polygonlabels", "keypointlabels", "brushlabels", "ellipselabels", "labels")
_MAYBE_JSON = frozenset({"[", "{", " ", "\t", "\n", "\r"})
# A CSV cell can hold every region of an annotation as JSON; the csv module's default limit is 128 KiB.
_CSV_FIELD_LIMIT = 64 * 1024 * 1024


def read_json_min_rows(name: str, rows: list[Any], context: ReadContext) -> Iterator[Answer]:
    numbered = ((f"row {index + 1}", row) for index, row in enumerate(rows))
    yield from _read_rows(name, numbered, context)


def read_csv_rows(name: str, text: str, context: ReadContext) -> Iterator[Answer]:
    """Rows of a CSV (or TSV) export; cells holding JSON arrays or objects are parsed."""
    delimiter = csv_delimiter(text)
    previous_limit = csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        header = [cell.strip() for cell in next(reader, [])]
        if "annotator" not in header:
            raise ExportError(f"{name} line 1: no 'annotator' column; not a Label Studio CSV export")
        rows = list(_csv_rows(name, reader, header))
    except csv.Error as error:
        raise ExportError(f"{name} line {reader.line_num}: not readable CSV ({error})") from None
    finally:
        csv.field_size_limit(previous_limit)
    yield from _read_rows(name, rows, context)


def _csv_rows(name: str, reader: Iterable[list[str]], header: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    width = len(header)
    for line_number, cells in enumerate(reader, start=2):
        if not (cells and cells[0].strip()) and not any(cell.strip() for cell in cells):
            continue  # a blank line (the first cell, an id, settles it for nearly every row)
        if len(cells) != width:
            yield f"line {line_number}", {"__error__": f"{len(cells)} values, the header has {width}"}
            continue
        # Only cells that open like JSON are parsed (most cells are ids, dates and names).
        yield (
            f"line {line_number}",
            {
                key: loads_cell(cell) if cell[:1] in _MAYBE_JSON else cell
                for key, cell in zip(header, cells, strict=True)
            },
        )


def _read_rows(name: str, rows: Iterable[tuple[str, Any]], context: ReadContext) -> Iterator[Answer]:
    report = context.report
    boxes_wanted = context.task_type == "bounding-box"
    pending: list[Answer] = []  # classification answers, labelled once the class field is known
    pending_fields: list[dict[str, list[str]]] = []
    annotator = Annotators(name)
    tasks: set[str] = set()
    image_names: dict[str, str] = {}  # image reference -> name; a task's rows repeat its reference
    for position, row in rows:
        where = _row_where(position, row)
        task_id = row.get("id") if type(row) is dict else None
        tasks.add(str(task_id) if task_id not in (None, "") else position)
        try:
            if type(row) is not dict:
                raise AnswerError(None, f"expected an object, got {type(row).__name__}")
            if "__error__" in row:
                raise AnswerError(None, row["__error__"])
            if row.get("annotator") in (None, ""):
                report.without_answer += 1  # a task nobody annotated
                continue
            worker = annotator(row["annotator"], "annotator")
            image, reference, fields = _row_parts(row, image_names)
            if boxes_wanted:
                yield _box_answer(image, reference, worker, where, fields, context)
            else:
                choices = _choice_fields(fields, context)
                pending.append(Answer(image, reference, worker, where))
                pending_fields.append(choices)
        except AnswerError as refused:
            report.problem(where, refused.field, refused.message)
    report.tasks += len(tasks)
    if pending:
        yield from resolve_choices(pending, pending_fields, context, name)


def _row_where(position: str, row: Any) -> str:
    if type(row) is not dict:
        return position
    task_id, annotation_id = row.get("id"), row.get("annotation_id")
    if task_id not in (None, "") and annotation_id not in (None, ""):  # the usual row, in one step
        return f"{position} task {task_id} annotation {annotation_id}"
    parts = [position]
    if task_id not in (None, ""):
        parts.append(f"task {task_id}")
    if annotation_id not in (None, ""):
        parts.append(f"annotation {annotation_id}")
    return " ".join(parts)


def _row_parts(row: Mapping[str, Any], image_names: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    """The image name (remembered in ``image_names`` by reference), its reference, and the row's other non-meta
    fields."""
    fields = {key: value for key, value in row.items() if key not in META_FIELDS}
    key = "image" if "image" in fields else image_field(fields)
    reference = fields.pop(key)
    if type(reference) is not str:
        raise AnswerError(key, f"expected an image reference, got {type(reference).__name__}")
    image = image_names.get(reference)
    if image is None:
        try:
            image = image_names[reference] = image_file_name(reference)
        except ValueError as error:
            raise AnswerError(key, str(error)) from None
    return image, reference, fields


def _region_kind(region: Any) -> str:
    if type(region) is dict:
        for kind in _REGION_KINDS:
            if kind in region:
                return kind
        if "choices" in region:
            return "choices"
    return "unknown"


def _box_answer(
    image: str, reference: str, worker: str, where: str, fields: Mapping[str, Any], context: ReadContext
) -> Answer:
    boxes: list[Box] = []
    width = height = None
    ignored = context.report.ignored
    for key, value in fields.items():
        if type(value) is dict and "choices" in value:
            ignored["choices"] += 1
        if type(value) is not list:
            continue
        for index, region in enumerate(value):
            kind = "rectanglelabels" if type(region) is dict and "rectanglelabels" in region else _region_kind(region)
            if kind != "rectanglelabels":
                ignored[kind] += 1
                continue
            box, width, height = rectangle(region, region, image, context, key, index)
            boxes.append(box)
    if width is None:
        known = context.image_sizes.get(image)
        if known is not None:
            width, height = known
    return Answer(image, reference, worker, where, boxes=boxes, width=width, height=height)


def _choice_fields(fields: Mapping[str, Any], context: ReadContext) -> dict[str, list[str]]:
    """A row's choices by field; regions of other kinds are counted as ignored."""
    choices: dict[str, list[str]] = {}
    ignored = context.report.ignored
    for key, value in fields.items():
        if type(value) is list:
            for region in value:
                ignored[_region_kind(region)] += 1
        elif type(value) is str and value:
            choices[key] = [value]
        elif type(value) is dict and "choices" in value:
            choices[key] = choice_list(value, key)
    return choices
