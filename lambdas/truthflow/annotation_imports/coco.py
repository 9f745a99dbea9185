"""COCO object-detection ("instances") JSON: one file per annotator.

Layout (COCO data format): ``{"images": [{"id", "file_name", "width", "height"}], "annotations": [{"id",
"image_id", "category_id", "bbox": [x, y, width, height], "iscrowd", "area", "segmentation"}], "categories": [{"id",
"name"}]}``, ``bbox`` in pixels from the top-left corner. CVAT's COCO export adds a non-standard ``attributes``
object per annotation, with ``rotation`` in degrees about the box's centre for rotated boxes (the box becomes its
axis-aligned bounds, counted). Label Studio's COCO export names files ``images/<8 hex>-name`` and, when asked to,
adds the ``annotator`` of each annotation.

Who answered: the file, one worker who saw every listed image (an image without annotations is an empty answer).
When annotations carry ``annotator``, each annotator is a worker (e-mail global, id local to the file) who answered
the images they boxed; an image nobody boxed then has no known worker (counted, no answer). Crowd regions
(``iscrowd`` 1) mark a group of objects, not one: counted as ignored. COCO has no image-level classes, so a
classification task cannot read it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from truthflow.annotation_imports.geometry import bounds_rotated_about_center, finite, is_rotated
from truthflow.annotation_imports.image_names import image_file_name
from truthflow.annotation_imports.model import Answer, AnswerError, ExportError, ReadContext
from truthflow.annotation_imports.workers import worker_id
from truthflow.consolidation.boxes import Box

# What an image_id or category_id may be to be looked up (ids are ints in COCO; strings and floats still compare).
_ID_TYPES = (int, str, float)


def read_coco(file_name: str, document: Any, context: ReadContext) -> Iterator[Answer]:
    """Answers of one parsed COCO instances file (see the module docstring)."""
    if context.task_type != "bounding-box":
        raise ExportError(f"{file_name}: COCO instances hold boxes, not image classes; use it for a box task")
    if type(document) is not dict:
        raise ExportError(f"{file_name}: expected a COCO object with images, annotations and categories")
    sections = {}
    for key in ("images", "annotations", "categories"):
        value = document.get(key, [] if key != "images" else None)
        if type(value) is not list:
            raise ExportError(f"{file_name}: {key}: expected a list, got {type(value).__name__}")
        sections[key] = value
    report = context.report
    categories = _categories(sections["categories"], context)
    images = _images(sections["images"], context)
    report.tasks += len(images)
    named_annotators = any(type(item) is dict and "annotator" in item for item in sections["annotations"])
    # image id -> worker -> boxes; refused (image id, worker) pairs are dropped whole.
    drawn: dict[Any, dict[str, list[Box]]] = defaultdict(dict)
    refused: set[tuple[Any, str]] = set()
    for index, item in enumerate(sections["annotations"]):
        where = _annotation_where(item, index)
        worker = file_name
        raw_image_id = item.get("image_id") if type(item) is dict else None
        image_id = raw_image_id if type(raw_image_id) in _ID_TYPES else None  # a list or object is no id
        try:
            if type(item) is not dict:
                raise AnswerError(None, f"expected an object, got {type(item).__name__}")
            if named_annotators:
                worker = _annotator(file_name, item)
            if image_id not in images:
                raise AnswerError("image_id", f"no image with id {raw_image_id!r}")
            if item.get("iscrowd") in (1, True):
                report.ignored["iscrowd"] += 1
                drawn[image_id].setdefault(worker, [])
                continue
            box = _box(item, categories, context)
            drawn[image_id].setdefault(worker, []).append(box)
        except AnswerError as problem:
            report.problem(where, problem.field, problem.message)
            if image_id in images:
                refused.add((image_id, worker))
    for image_id, (image, reference, width, height) in images.items():
        answers = drawn.get(image_id, {})
        if not named_annotators:
            answers.setdefault(file_name, [])
        elif not answers:
            report.without_answer += 1
        for worker, boxes in answers.items():
            if (image_id, worker) in refused:
                continue
            answer = Answer(image, reference, worker, f"image {reference!r}", boxes=boxes)
            answer.width, answer.height = width, height
            yield answer


def _annotation_where(item: Any, index: int) -> str:
    annotation_id = item.get("id") if type(item) is dict else None
    return f"annotation {annotation_id}" if type(annotation_id) in (int, str) else f"annotations[{index}]"


def _annotator(file_name: str, item: dict[str, Any]) -> str:
    value = item.get("annotator")
    if type(value) is int or (type(value) is str and value.strip()):
        return worker_id(file_name, str(value))
    raise AnswerError("annotator", f"no annotator (got {value!r}) while other annotations name theirs")


def _categories(entries: list[Any], context: ReadContext) -> dict[Any, str]:
    categories: dict[Any, str] = {}
    for index, entry in enumerate(entries):
        category_id = entry.get("id") if type(entry) is dict else None
        name = entry.get("name") if type(entry) is dict else None
        if type(category_id) not in (int, str) or type(name) is not str or not name:
            context.report.problem(f"categories[{index}]", None, "expected {'id': .., 'name': ..}")
            continue
        categories[category_id] = name
    return categories


def _images(entries: list[Any], context: ReadContext) -> dict[Any, tuple[str, str, float | None, float | None]]:
    """image id -> (item name, file_name, width, height); bad or repeated entries are reported and left out."""
    images: dict[Any, tuple[str, str, float | None, float | None]] = {}
    report = context.report
    for index, entry in enumerate(entries):
        where = f"images[{index}]"
        image_id = entry.get("id") if type(entry) is dict else None
        reference = entry.get("file_name") if type(entry) is dict else None
        if type(image_id) not in (int, str):
            report.problem(where, "id", f"expected an id, got {image_id!r}")
            continue
        if image_id in images:
            report.problem(where, "id", f"id {image_id!r} is used by an earlier image")
            continue
        if type(reference) is not str:
            report.problem(where, "file_name", f"expected a file name, got {reference!r}")
            continue
        try:
            name = image_file_name(reference)
        except ValueError as error:
            report.problem(where, "file_name", str(error))
            continue
        assert type(entry) is dict
        width, height = finite(entry.get("width")), finite(entry.get("height"))
        usable = width is not None and height is not None and width > 0 and height > 0
        images[image_id] = (name, reference, width if usable else None, height if usable else None)
    return images


def _box(item: dict[str, Any], categories: dict[Any, str], context: ReadContext) -> Box:
    category_id = item.get("category_id")
    category = categories.get(category_id) if type(category_id) in _ID_TYPES else None
    if category is None:
        raise AnswerError("category_id", f"no category with id {item.get('category_id')!r}")
    bbox = item.get("bbox")
    numbers = [finite(value) for value in bbox] if type(bbox) is list else []
    if len(numbers) != 4 or any(number is None for number in numbers):
        raise AnswerError("bbox", f"expected [x, y, width, height] in pixels, got {bbox!r}")
    left, top, width, height = (float(number or 0.0) for number in numbers)
    attributes = item.get("attributes")
    rotation = attributes.get("rotation") if type(attributes) is dict else None
    if rotation is not None:
        degrees = finite(rotation)
        if degrees is None:
            raise AnswerError("attributes.rotation", f"not a finite number: {rotation!r}")
        if is_rotated(degrees):
            left, top, width, height = bounds_rotated_about_center(left, top, width, height, degrees)
            context.report.rotated += 1
    return Box(label=category, left=left, top=top, width=width, height=height)
