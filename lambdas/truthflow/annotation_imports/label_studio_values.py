"""Pieces shared by the Label Studio readers: who annotated, which data field is the image, rectangles, choices.

Facts from Label Studio's export documentation and its converter (label-studio-sdk ``converter``):

* ``completed_by`` is the user's integer id in UI exports and ``{"id": .., "email": ..}`` in API/SDK ones; JSON_MIN
  writes it as ``annotator`` (the id as a number, or the e-mail), CSV as text.
* A ``rectanglelabels`` value holds ``x``, ``y``, ``width``, ``height`` in percent of the image and ``rotation`` in
  degrees about the top-left corner; the image size in pixels is ``original_width``/``original_height``, beside
  ``value`` in the JSON export and inside the region in JSON_MIN and CSV.
* A ``choices`` value is ``{"choices": [..]}``; JSON_MIN and CSV write a single choice as the bare string and several
  as ``{"choices": [..]}`` (in CSV a JSON string, whose slashes may be escaped as ``\\/``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import chain
from math import isfinite
from typing import Any

from truthflow.annotation_imports.geometry import bounds_rotated_about_corner, finite, is_rotated
from truthflow.annotation_imports.image_names import last_segment
from truthflow.annotation_imports.json_parsing import loads
from truthflow.annotation_imports.model import Answer, AnswerError, ExportError, ReadContext
from truthflow.annotation_imports.workers import worker_id
from truthflow.consolidation.boxes import Box

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".jfif", ".avif"})


def annotator(file_name: str, value: Any, field: str) -> str:
    """The worker id of ``completed_by`` / ``annotator``; :class:`AnswerError` when there is none."""
    if type(value) is dict:
        email = value.get("email")
        if type(email) is str and email.strip():
            return worker_id(file_name, email)
        value = value.get("id")
        field = f"{field}.id"
    if type(value) is int or (type(value) is str and value.strip()):
        return worker_id(file_name, str(value))
    raise AnswerError(field, f"no annotator (got {value!r})")


class Annotators:
    """:func:`annotator` for one file, remembered per id (an export names the same few people over and over)."""

    def __init__(self, file_name: str) -> None:
        self.file_name = file_name
        self.known: dict[int | str, str] = {}  # worker by id; readers may look ids up here first

    def __call__(self, value: Any, field: str) -> str:
        if type(value) is int or type(value) is str:
            worker = self.known.get(value)
            if worker is None:
                worker = self.known[value] = annotator(self.file_name, value, field)
            return worker
        return annotator(self.file_name, value, field)


def image_field(data: Mapping[str, Any], hints: Sequence[str] = ()) -> str:
    """The key of ``data`` that holds the image: ``image`` when present, else a hinted key (a result's
    ``to_name``), else the only text value that names an image file, else the only text value."""
    if "image" in data:
        return "image"
    for hint in hints:
        if hint in data:
            return hint
    texts = [key for key, value in data.items() if type(value) is str and value.strip()]
    images = [key for key in texts if _names_image_file(data[key])]
    if len(images) == 1:
        return images[0]
    if len(texts) == 1:
        return texts[0]
    listed = ", ".join(sorted(map(str, data))) or "none"
    raise AnswerError("data", f"cannot tell which field holds the image (fields: {listed})")


def _names_image_file(text: str) -> bool:
    try:
        name = last_segment(text)
    except ValueError:
        return False
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in IMAGE_SUFFIXES


def rectangle(
    value: Any,
    size_holder: Mapping[str, Any],
    image: str,
    context: ReadContext,
    field: str,
    index: int,
) -> tuple[Box, float, float]:
    """A ``rectanglelabels`` value in pixels, with the image size used. ``size_holder`` carries
    ``original_width``/``original_height`` (the result in JSON, the region itself in JSON_MIN/CSV); when it does
    not, the size comes from ``context.image_sizes``. A rotated rectangle becomes its axis-aligned bounds
    (counted in the report). ``field[index]`` is the region's place, for messages (written only when needed)."""
    # The common case in a few type checks (exports hold hundreds of thousands of boxes; JSON numbers are parsed as
    # int or float, never bool); anything unusual takes the checked path, which names the bad field.
    if type(value) is dict and not size_holder.get("image_rotation") and not value.get("rotation"):
        x: Any = value.get("x")
        y: Any = value.get("y")
        w: Any = value.get("width")
        h: Any = value.get("height")
        labels = value.get("rectanglelabels")
        image_width: Any = size_holder.get("original_width")
        image_height: Any = size_holder.get("original_height")
        if (
            (type(x) is float or type(x) is int)
            and (type(y) is float or type(y) is int)
            and (type(w) is float or type(w) is int)
            and (type(h) is float or type(h) is int)
            and (type(image_width) is int or type(image_width) is float)
            and (type(image_height) is int or type(image_height) is float)
            and type(labels) is list
            and len(labels) == 1
            and type(label := labels[0]) is str
            and label
            and image_width > 0
            and image_height > 0
            and isfinite(x + y + w + h + image_width + image_height)
        ):
            x_scale, y_scale = image_width / 100.0, image_height / 100.0
            left, top, width, height = x * x_scale, y * y_scale, w * x_scale, h * y_scale
            if isfinite(left + top + width + height):
                return Box(label, left, top, width, height), float(image_width), float(image_height)
    return _checked_rectangle(value, size_holder, image, context, f"{field}[{index}]")


def _checked_rectangle(
    value: Any,
    size_holder: Mapping[str, Any],
    image: str,
    context: ReadContext,
    where: str,
) -> tuple[Box, float, float]:
    if type(value) is not dict:
        raise AnswerError(f"{where}.value", "expected an object")
    x, y = finite(value.get("x")), finite(value.get("y"))
    w, h = finite(value.get("width")), finite(value.get("height"))
    for name, number in (("x", x), ("y", y), ("width", w), ("height", h)):
        if number is None:
            raise AnswerError(f"{where}.value.{name}", f"not a finite number: {value.get(name)!r}")
    assert x is not None and y is not None and w is not None and h is not None
    label = single_label(value.get("rectanglelabels"), f"{where}.value.rectanglelabels")
    turned = size_holder.get("image_rotation", 0)
    if turned not in (0, None):
        raise AnswerError(f"{where}.image_rotation", f"boxes drawn on an image turned by {turned!r} are not read")
    image_width, image_height = image_size(size_holder, image, context, where)
    left, top = x * image_width / 100.0, y * image_height / 100.0
    width, height = w * image_width / 100.0, h * image_height / 100.0
    rotation = value.get("rotation", 0)
    if rotation not in (0, None):
        degrees = finite(rotation)
        if degrees is None:
            raise AnswerError(f"{where}.value.rotation", f"not a finite number: {rotation!r}")
        if is_rotated(degrees):
            left, top, width, height = bounds_rotated_about_corner(left, top, width, height, degrees)
            context.report.rotated += 1
    if not isfinite(left + top + width + height):
        raise AnswerError(f"{where}.value", "in pixels the box is not finite (a value or the image size is too large)")
    return Box(label=label, left=left, top=top, width=width, height=height), image_width, image_height


def image_size(holder: Mapping[str, Any], image: str, context: ReadContext, where: str) -> tuple[float, float]:
    raw_width, raw_height = holder.get("original_width"), holder.get("original_height")
    if raw_width is None and raw_height is None:
        known = context.image_sizes.get(image)
        if known is None:
            raise AnswerError(
                f"{where}.original_width", "missing, and the image size is unknown (percent boxes need it)"
            )
        return known
    width, height = finite(raw_width), finite(raw_height)
    if width is None or width <= 0:
        raise AnswerError(f"{where}.original_width", f"not a positive number: {raw_width!r}")
    if height is None or height <= 0:
        raise AnswerError(f"{where}.original_height", f"not a positive number: {raw_height!r}")
    return width, height


def single_label(labels: Any, field: str) -> str:
    if type(labels) is not list or not labels:
        raise AnswerError(field, f"expected a list with one label, got {labels!r}")
    if len(labels) > 1:
        raise AnswerError(field, f"several labels {labels!r} on one box; a box has one label")
    label = labels[0]
    if type(label) is not str or not label:
        raise AnswerError(field, f"expected a label name, got {label!r}")
    return label


def choice_list(value: Any, field: str) -> list[str]:
    """The choices of a ``choices`` value: ``{"choices": [...]}`` or, in JSON_MIN/CSV, a bare string."""
    if type(value) is str:
        return [value]
    choices = value.get("choices") if type(value) is dict else None
    if type(choices) is not list or not all(type(choice) is str for choice in choices):
        raise AnswerError(field, f"expected {{'choices': [names]}}, got {value!r}")
    return list(choices)


def loads_cell(text: str) -> Any:
    """A CSV cell: a JSON value when it reads as a JSON array or object, else the text itself."""
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            return loads(stripped)
        except (ValueError, RecursionError):
            return text
    return text


def resolve_choices(
    pending: Sequence[Answer], fields_of: Sequence[dict[str, list[str]]], context: ReadContext, file_name: str
) -> Iterator[Answer]:
    """Classification answers, each with its choices by field name (``fields_of``, parallel to ``pending``): pick
    the field that holds the class (the only one, or the only one with values among the job's labels) and give
    each pending answer its label. Several candidate fields is an :class:`ExportError`. The dicts of ``fields_of``
    are only read (readers may give several answers the same one)."""
    fields = dict.fromkeys(chain.from_iterable(fields_of))  # field names in order of first appearance
    chosen = _class_field(fields_of, fields, context, file_name)
    report = context.report
    for answer, item_fields in zip(pending, fields_of, strict=True):
        if len(item_fields) > 1 or (item_fields and chosen not in item_fields):
            for other in item_fields:
                if other != chosen:
                    report.ignored[f"choices in field '{other}'"] += 1
        choices = item_fields.get(chosen) if chosen is not None else None
        if not choices:
            report.without_answer += 1
            continue
        if len(choices) > 1:
            report.problem(answer.where, chosen, f"several choices {choices!r}; a classification answer has one label")
            continue
        answer.label = choices[0]
        yield answer


def _class_field(
    fields_of: Sequence[dict[str, list[str]]], fields: dict[str, None], context: ReadContext, file_name: str
) -> str | None:
    if len(fields) <= 1:
        return next(iter(fields), None)
    candidates = list(fields)
    if context.labels is not None:
        labels = context.labels
        candidates = [name for name in fields if any(set(item.get(name, ())) & labels for item in fields_of)]
    if len(candidates) == 1:
        return candidates[0]
    listed = ", ".join(sorted(candidates or fields))
    raise ExportError(f"{file_name}: several fields hold choices ({listed}); cannot tell which one is the class label")
