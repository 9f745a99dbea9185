"""Label Studio exports: the JSON export (a list of tasks), JSON_MIN and CSV (one row per annotation).

JSON export (Label Studio's "JSON" format, its raw task format): a list of tasks, each
``{"id", "data": {"image": ...}, "annotations": [...], "predictions": [...]}``; a single task object (cloud target
storage writes one per file) is read too, and ``completions`` (the pre-1.0 name of ``annotations``). Each annotation
is one worker's answer: ``completed_by`` (see :mod:`.label_studio_values`), ``was_cancelled`` (skipped tasks, counted
and not used), ``result`` (a list of regions with ``type``, ``from_name``, ``value``). Predictions are model output,
not people: counted and ignored.

Boxes: every ``rectanglelabels`` region of an annotation, whatever its ``from_name``; an annotation without one is
an empty answer (the worker saw the image and boxed nothing). Classification: the ``choices`` regions of the one
field that holds the class (see :func:`~.label_studio_values.resolve_choices`). Other region types are counted as
ignored. A malformed annotation is refused and reported with its task, annotation and field; the task's other
annotations are kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from truthflow.annotation_imports.image_names import image_file_name
from truthflow.annotation_imports.label_studio_rows import read_csv_rows, read_json_min_rows
from truthflow.annotation_imports.label_studio_values import (
    Annotators,
    choice_list,
    image_field,
    rectangle,
    resolve_choices,
)
from truthflow.annotation_imports.model import Answer, AnswerError, ExportError, ReadContext
from truthflow.consolidation.boxes import Box


def read_label_studio_json(name: str, document: Any, context: ReadContext) -> Iterator[Answer]:
    """Answers of a parsed Label Studio JSON or JSON_MIN export (told apart by content)."""
    if type(document) is dict:
        if "data" not in document:
            raise ExportError(f"{name}: a JSON object without 'data'; expected a Label Studio task or a list of them")
        document = [document]
    if type(document) is not list:
        raise ExportError(f"{name}: expected a JSON list of tasks, got {type(document).__name__}")
    first = next((item for item in document if type(item) is dict), None)
    if first is not None and "data" not in first and ("annotator" in first or "annotation_id" in first):
        context.report.format = "label-studio JSON_MIN"
        yield from read_json_min_rows(name, document, context)
        return
    context.report.format = "label-studio JSON"
    yield from _read_tasks(name, document, context)


def read_label_studio_csv(name: str, text: str, context: ReadContext) -> Iterator[Answer]:
    """Answers of a Label Studio CSV (or TSV) export."""
    context.report.format = "label-studio CSV"
    yield from read_csv_rows(name, text, context)


def _read_tasks(name: str, tasks: Sequence[Any], context: ReadContext) -> Iterator[Answer]:
    report = context.report
    boxes_wanted = context.task_type == "bounding-box"
    pending: list[Answer] = []  # classification answers, labelled once the class field is known
    pending_fields: list[dict[str, list[str]]] = []
    # The fields of a one-choice annotation, one (read-only) object per field and choice: an export holds a few
    # hundred thousand answers but only as many different ones as there are labels.
    one_choice_fields: dict[tuple[str, str], dict[str, list[str]]] = {}
    annotator = Annotators(name)
    known_workers = annotator.known
    report.tasks += len(tasks)
    for position, task in enumerate(tasks):
        where = _task_where(task, position)
        try:
            image, reference, annotations = _task_parts(task)
        except AnswerError as refused:
            report.problem(where, refused.field, refused.message)
            continue
        predictions = task.get("predictions")
        if type(predictions) is list:
            report.predictions += len(predictions)
        if not annotations:
            report.without_answer += 1
            continue
        for index, annotation in enumerate(annotations):
            annotation_id = annotation.get("id") if type(annotation) is dict else None
            if type(annotation_id) is int or type(annotation_id) is str:
                annotation_where = f"{where} annotation {annotation_id}"
            else:
                annotation_where = f"{where} annotation #{index + 1}"
            try:
                if type(annotation) is not dict:
                    raise AnswerError(None, "expected an object")
                if annotation.get("was_cancelled") is True or annotation.get("skipped") is True:
                    report.cancelled += 1
                    continue
                completed_by = annotation.get("completed_by")
                # Known ids first: an export names the same few people over and over.
                worker = known_workers.get(completed_by) if type(completed_by) is int else None
                if worker is None:
                    worker = annotator(completed_by, "completed_by")
                results = annotation.get("result")
                if results is None:
                    results = []
                elif type(results) is not list:
                    raise AnswerError("result", f"expected a list, got {type(results).__name__}")
                if boxes_wanted:
                    yield _box_answer(image, reference, worker, annotation_where, results, context)
                else:
                    fields = _one_choice(results, one_choice_fields) or _choice_fields(results, context)
                    pending.append(Answer(image, reference, worker, annotation_where))
                    pending_fields.append(fields)
            except AnswerError as refused:
                report.problem(annotation_where, refused.field, refused.message)
    if pending:
        yield from resolve_choices(pending, pending_fields, context, name)


def _task_where(task: Any, position: int) -> str:
    task_id = task.get("id") if type(task) is dict else None
    return f"task {task_id}" if type(task_id) in (int, str) else f"task #{position + 1} (no id)"


def _task_parts(task: Any) -> tuple[str, str, list[Any]]:
    """The image name, the image reference and the annotations of a task."""
    if type(task) is not dict:
        raise AnswerError(None, f"expected a task object, got {type(task).__name__}")
    annotations = task.get("annotations", task.get("completions"))
    if type(annotations) is not list:
        raise AnswerError("annotations", f"expected a list, got {type(annotations).__name__}")
    data = task.get("data")
    if type(data) is not dict:
        raise AnswerError("data", f"expected an object, got {type(data).__name__}")
    key = "image" if "image" in data else image_field(data, _to_names(annotations))
    reference = data[key]
    if type(reference) is not str:
        raise AnswerError(f"data.{key}", f"expected an image reference, got {type(reference).__name__}")
    try:
        image = image_file_name(reference)
    except ValueError as error:
        raise AnswerError(f"data.{key}", str(error)) from None
    return image, reference, annotations


def _to_names(annotations: Sequence[Any]) -> list[str]:
    """``to_name`` of the first region: the object tag, usually named like the data field it shows."""
    for annotation in annotations:
        results = annotation.get("result") if type(annotation) is dict else None
        if type(results) is list:
            for result in results:
                if type(result) is dict and type(result.get("to_name")) is str:
                    return [result["to_name"]]
    return []


def _box_answer(
    image: str, reference: str, worker: str, where: str, results: list[Any], context: ReadContext
) -> Answer:
    boxes: list[Box] = []
    width = height = None
    ignored = context.report.ignored
    for index, result in enumerate(results):
        kind = result.get("type") if type(result) is dict else None
        if kind != "rectanglelabels":
            ignored[str(kind)] += 1
            continue
        box, width, height = rectangle(result.get("value"), result, image, context, "result", index)
        boxes.append(box)
    if width is None:
        known = context.image_sizes.get(image)
        if known is not None:
            width, height = known
    return Answer(image, reference, worker, where, boxes=boxes, width=width, height=height)


def _one_choice(results: list[Any], known: dict[tuple[str, str], dict[str, list[str]]]) -> dict[str, list[str]] | None:
    """The fields of the common annotation, one ``choices`` result with one choice, in few checks, taken from (or
    added to) ``known``; ``None`` for any other annotation (:func:`_choice_fields` reads those)."""
    if len(results) != 1:
        return None
    result = results[0]
    if type(result) is not dict or result.get("type") != "choices":
        return None
    value = result.get("value")
    choices = value.get("choices") if type(value) is dict else None
    field = result.get("from_name")
    if type(choices) is list and len(choices) == 1 and type(choices[0]) is str and type(field) is str:
        key = (field, choices[0])
        fields = known.get(key)
        if fields is None:
            fields = known[key] = {field: [choices[0]]}
        return fields
    return None


def _choice_fields(results: list[Any], context: ReadContext) -> dict[str, list[str]]:
    """An annotation's choices by field (``from_name``); other results are counted as ignored."""
    fields: dict[str, list[str]] = {}
    for index, result in enumerate(results):
        kind = result.get("type") if type(result) is dict else None
        if kind != "choices":
            context.report.ignored[str(kind)] += 1
            continue
        field = result.get("from_name")
        value = result.get("value")
        # One choice, the common case, without building the field's name for a message.
        choices = value.get("choices") if type(value) is dict else None
        if type(choices) is list and len(choices) == 1 and type(choices[0]) is str:
            fields[field if type(field) is str else ""] = [choices[0]]
        else:
            fields[field if type(field) is str else ""] = choice_list(value, f"result[{index}].value")
    return fields
