"""Worker answer contents of the two crowd elements we use, parsed into plain values.

Shapes (``reference/groundtruth_contracts.md`` §3 and the element reference pages
``sms-ui-template-crowd-bounding-box`` / ``sms-ui-template-crowd-image-classifier``):

* ``crowd-bounding-box``: ``{"<name>": {"boundingBoxes": [{"label", "left", "top", "width", "height"}, ...],
  "inputImageProperties": {"width", "height"}}}``, pixels, ``left``/``top`` = top-left corner. An empty answer has
  no (or an empty, or a null) ``boundingBoxes``.
* ``crowd-image-classifier``: ``{"<name>": {"label": "<category>", "workerComment": "..."}}``; the label is the
  category *string*, not an index; ``workerComment`` is only present when the worker left one.

The top-level key is the element's ``name`` attribute, which differs between templates: the built-in API templates use
``boundingBox`` and ``crowd-image-classifier``, the element reference and the AWS recipe use ``annotatedResult`` for
boxes and ``category`` for classification. Pass ``element_name`` to insist on one; without it the known names are
tried, then the single top-level key. The element reference also shows the answer wrapped in a one-element list,
which is unwrapped.

``content`` may be the payload's JSON *string* (``annotationData.content``) or an already-parsed mapping
(``answerContent`` in the ``worker-response`` files).

Only what is bad is left out: a malformed box is dropped with its reason (``problems``) and the worker's other boxes
are kept; a malformed ``inputImageProperties`` is ignored likewise. An answer as a whole is refused
(:class:`WorkerContentError`) when it cannot be read at all, and (:class:`AnswerLimitError`) when it exceeds the
bounds that keep a consolidation's memory fixed whatever a worker sends: :data:`MAX_BOXES_PER_ANSWER` boxes, and the
length and nesting depth of :mod:`truthflow.groundtruth.bounded_json`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from truthflow.consolidation.boxes import Box
from truthflow.groundtruth.bounded_json import JsonLimitError, loads_bounded

# Box consolidation holds (boxes on an image)^2 numbers: 9 workers (Ground Truth's maximum per object) x 500 boxes
# peak at about 600 MB in the engine, a third of the consolidation Lambda. Real answers stay far below (the Caltech
# crowd data set: at most 7 boxes per answer).
MAX_BOXES_PER_ANSWER = 500

BOUNDING_BOX_ELEMENT_NAMES = ("boundingBox", "annotatedResult")
IMAGE_CLASSIFIER_ELEMENT_NAMES = ("crowd-image-classifier", "category")


class WorkerContentError(ValueError):
    """A worker answer that does not have the documented shape; the message names the field."""


class AnswerLimitError(WorkerContentError):
    """A worker answer refused for its size (too many boxes, too long, nested too deeply)."""


PixelBox = Box
"""One box drawn by a worker, in pixels of the original image (``label``, ``left``, ``top``, ``width``, ``height``):
the box consolidation engine's own type, so a batch's boxes go to the engine without being copied."""


@dataclass(frozen=True, slots=True)
class BoundingBoxAnswer:
    """A worker's ``crowd-bounding-box`` answer. Image size is ``None`` when ``inputImageProperties`` is absent or
    unusable. ``problems`` names each part left out (a malformed box, unusable image properties) and why."""

    boxes: tuple[PixelBox, ...]
    image_width: int | None
    image_height: int | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClassificationAnswer:
    """A worker's ``crowd-image-classifier`` answer."""

    label: str
    worker_comment: str | None = None


def parse_bounding_box_content(
    content: str | bytes | Mapping[str, Any] | Sequence[Any],
    *,
    element_name: str | None = None,
    labels: Sequence[str] | None = None,
) -> BoundingBoxAnswer:
    """Parse a ``crowd-bounding-box`` answer. With ``labels``, every box label must be one of them (compared after
    removing whitespace, and returned in the label set's spelling); a box that is not is left out, as is any
    malformed box, each with a reason in ``problems``."""
    name, answer = _element_answer(content, element_name, BOUNDING_BOX_ELEMENT_NAMES)
    raw_boxes = answer.get("boundingBoxes")
    if raw_boxes is None:
        raw_boxes = []
    if not isinstance(raw_boxes, list):
        raise WorkerContentError(f"{name}.boundingBoxes: expected a list, got {_kind(raw_boxes)}")
    if len(raw_boxes) > MAX_BOXES_PER_ANSWER:
        raise AnswerLimitError(
            f"{name}.boundingBoxes: {len(raw_boxes):,} boxes; at most {MAX_BOXES_PER_ANSWER} per answer are read"
        )
    label_lookup = _label_lookup(labels)
    boxes: list[PixelBox] = []
    problems: list[str] = []
    for position, raw_box in enumerate(raw_boxes):
        try:
            boxes.append(_parse_box(raw_box, f"{name}.boundingBoxes[{position}]", label_lookup))
        except WorkerContentError as error:
            problems.append(f"{error} (box left out)")
    image_width: int | None = None
    image_height: int | None = None
    properties = answer.get("inputImageProperties")
    if properties is not None:
        where = f"{name}.inputImageProperties"
        try:
            if not isinstance(properties, Mapping):
                raise WorkerContentError(f"{where}: expected an object, got {_kind(properties)}")
            image_width = _positive_int(properties, "width", where)
            image_height = _positive_int(properties, "height", where)
        except WorkerContentError as error:
            image_width = image_height = None
            problems.append(f"{error} (image size ignored)")
    return BoundingBoxAnswer(
        boxes=tuple(boxes), image_width=image_width, image_height=image_height, problems=tuple(problems)
    )


def parse_image_classification_content(
    content: str | bytes | Mapping[str, Any] | Sequence[Any],
    *,
    element_name: str | None = None,
    labels: Sequence[str] | None = None,
) -> ClassificationAnswer:
    """Parse a single-label ``crowd-image-classifier`` answer. With ``labels``, the label must be one of them
    (compared after removing whitespace, as the AWS consolidation sample does, and returned in the label set's
    spelling)."""
    name, answer = _element_answer(content, element_name, IMAGE_CLASSIFIER_ELEMENT_NAMES)
    label = _label(answer, f"{name}.label", _label_lookup(labels))
    comment = answer.get("workerComment")
    if comment is not None and not isinstance(comment, str):
        raise WorkerContentError(f"{name}.workerComment: expected a string, got {_kind(comment)}")
    return ClassificationAnswer(label=label, worker_comment=comment)


# --- helpers ----------------------------------------------------------------------------------------------------------


def _element_answer(
    content: str | bytes | Mapping[str, Any] | Sequence[Any],
    element_name: str | None,
    known_names: Sequence[str],
) -> tuple[str, Mapping[str, Any]]:
    parsed: Any = content
    if isinstance(content, str | bytes):
        try:
            parsed = loads_bounded(content, what="annotationData.content")
        except JsonLimitError as error:
            raise AnswerLimitError(str(error)) from None
        except ValueError as error:  # json.JSONDecodeError, and bytes that are not UTF-8
            raise WorkerContentError(f"annotationData.content is not valid JSON: {error}") from None
    if isinstance(parsed, list) and len(parsed) == 1:
        parsed = parsed[0]
    if not isinstance(parsed, Mapping):
        raise WorkerContentError(f"annotationData.content: expected a JSON object, got {_kind(parsed)}")
    if element_name is not None:
        name = element_name
        if name not in parsed:
            keys = _shown_names(sorted(parsed))
            raise WorkerContentError(
                f"annotationData.content has no {name!r} key (the element's name attribute); keys: {keys}"
            )
    else:
        present = [candidate for candidate in known_names if candidate in parsed]
        if present:
            name = present[0]
        elif len(parsed) == 1:
            name = next(iter(parsed))
        else:
            raise WorkerContentError(
                f"annotationData.content: cannot tell which key is the answer (expected one of {list(known_names)} "
                f"or a single key); keys: {_shown_names(sorted(parsed))}"
            )
    answer = parsed[name]
    if not isinstance(answer, Mapping):
        raise WorkerContentError(f"{name}: expected an object, got {_kind(answer)}")
    return name, answer


def _parse_box(raw: Any, where: str, label_lookup: dict[str, str] | None) -> PixelBox:
    if not isinstance(raw, Mapping):
        raise WorkerContentError(f"{where}: expected an object, got {_kind(raw)}")
    return PixelBox(
        label=_label(raw, f"{where}.label", label_lookup),
        left=_finite_number(raw, "left", where),
        top=_finite_number(raw, "top", where),
        width=_non_negative_number(raw, "width", where),
        height=_non_negative_number(raw, "height", where),
    )


def _label_lookup(labels: Sequence[str] | None) -> dict[str, str] | None:
    if labels is None:
        return None
    return {_squeeze(label): label for label in labels}


def _squeeze(label: str) -> str:
    return "".join(label.split())


def _label(container: Mapping[str, Any], where: str, label_lookup: dict[str, str] | None) -> str:
    key = where.rsplit(".", 1)[-1]
    if key not in container:
        raise WorkerContentError(f"{where}: missing")
    value = container[key]
    if not isinstance(value, str) or not value.strip():
        raise WorkerContentError(f"{where}: expected a non-empty string, got {_shown(value)}")
    if label_lookup is None:
        return value
    canonical = label_lookup.get(_squeeze(value))
    if canonical is None:
        raise WorkerContentError(
            f"{where}: {_shown(value)} is not in the label set {_shown_names(list(label_lookup.values()))}"
        )
    return canonical


def _finite_number(container: Mapping[str, Any], key: str, where: str) -> float:
    if key not in container:
        raise WorkerContentError(f"{where}.{key}: missing")
    value = container[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise WorkerContentError(f"{where}.{key}: expected a finite number, got {_shown(value)}")
    return value


def _non_negative_number(container: Mapping[str, Any], key: str, where: str) -> float:
    value = _finite_number(container, key, where)
    if value < 0:
        raise WorkerContentError(f"{where}.{key}: must not be negative, got {_shown(value)}")
    return value


def _positive_int(container: Mapping[str, Any], key: str, where: str) -> int:
    value = container.get(key)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise WorkerContentError(f"{where}.{key}: expected a positive integer, got {_shown(value)}")
    return value


def _shown(value: Any, limit: int = 80) -> str:
    """A worker-supplied value in a message: its repr, cut to ``limit`` characters; a container by its kind only."""
    if isinstance(value, list | dict):
        return f"a {_kind(value)}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown_names(names: Sequence[str], limit: int = 10) -> str:
    """Names (labels, keys) in a message: the first ``limit``, each cut, and how many more there are."""
    shown = "[" + ", ".join(_shown(name, 40) for name in names[:limit]) + "]"
    return shown + (f" and {len(names) - limit:,} more" if len(names) > limit else "")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
