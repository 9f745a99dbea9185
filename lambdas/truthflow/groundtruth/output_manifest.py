"""Output-manifest lines of the two built-in task types: build them from consolidated results, parse them back.

Shapes (``reference/groundtruth_contracts.md`` §4, from the AWS page ``sms-data-output`` and real job outputs):

``groundtruth/object-detection``::

    {"source-ref": "s3://...",
     "<attr>": {"image_size": [{"width": 500, "height": 400, "depth": 3}],
                "annotations": [{"class_id": 0, "left": 111, "top": 134, "width": 61, "height": 128}, ...]},
     "<attr>-metadata": {"objects": [{"confidence": 0.8}, ...], "class-map": {"0": "dog"},
                         "type": "groundtruth/object-detection", "human-annotated": "yes",
                         "creation-date": "2018-10-18T22:18:13.527256", "job-name": "labeling-job/<name>"}}

``groundtruth/image-classification``::

    {"source-ref": "s3://...", "<attr>": 0,
     "<attr>-metadata": {"class-name": "football", "confidence": 0.0, "type": "groundtruth/image-classification",
                         "job-name": "labeling-job/<name>", "human-annotated": "yes",
                         "creation-date": "2018-10-18T22:18:13.527256"}}

Conventions followed when building (as Ground Truth writes them): ``class_id`` is the label's index in the
label-category file; box values are integer pixels; ``objects[i]`` is aligned with ``annotations[i]``; ``class-map``
lists only the classes present on the image; ``image_size`` is a one-element list; ``job-name`` is
``labeling-job/<lower-cased job name>``; ``creation-date`` is a naive UTC ISO timestamp with microseconds;
confidences are rounded to two decimals (0.00 with a single worker).

Parsing is lenient where real files differ from the docs: a string label (``"species": "0"``), a missing
``objects`` list, the ``groundtruth/object_detection`` spelling used by the SageMaker Object Detection page, and
unlabeled lines (intermediate manifests, failed objects), which parse to ``None``. Everything else that is malformed
raises :class:`ManifestLineError` naming the line and the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

DETECTION_TYPE = "groundtruth/object-detection"
CLASSIFICATION_TYPE = "groundtruth/image-classification"
_DETECTION_TYPES = frozenset({DETECTION_TYPE, "groundtruth/object_detection"})
_CLASSIFICATION_TYPES = frozenset({CLASSIFICATION_TYPE})
_KNOWN_TYPES = _DETECTION_TYPES | _CLASSIFICATION_TYPES
_METADATA_SUFFIX = "-metadata"
_JOB_NAME_PREFIX = "labeling-job/"


class ManifestLineError(ValueError):
    """A manifest line that does not have the documented shape; the message names the line and the field."""


@dataclass(frozen=True, slots=True)
class LabeledBox:
    """One box on an image, in pixels. ``class_id`` is the id in the *source* job (its label-category order),
    ``None`` when the box did not come from a manifest; training converters assign their own indices by name."""

    label: str
    left: float
    top: float
    width: float
    height: float
    confidence: float | None = None
    class_id: int | None = None


class BoxLike(Protocol):
    """Anything with a label and pixel ``left``/``top``/``width``/``height`` (e.g. :class:`LabeledBox`, or a
    consolidated box); a ``confidence`` attribute is used when present."""

    @property
    def label(self) -> str: ...
    @property
    def left(self) -> float: ...
    @property
    def top(self) -> float: ...
    @property
    def width(self) -> float: ...
    @property
    def height(self) -> float: ...


@dataclass(frozen=True, slots=True)
class DetectionRecord:
    """One labeled image of an object-detection manifest. ``line`` is the parsed manifest line (kept so that
    converters can pass other attributes through), empty for records that did not come from a manifest."""

    source_ref: str
    image_width: int
    image_height: int
    image_depth: int
    boxes: tuple[LabeledBox, ...]
    label_attribute_name: str
    line: Mapping[str, Any]
    line_number: int = 0


@dataclass(frozen=True, slots=True)
class ClassificationRecord:
    """One labeled image of an image-classification manifest."""

    source_ref: str
    label: str
    confidence: float | None
    class_id: int | None
    label_attribute_name: str
    line: Mapping[str, Any]
    line_number: int = 0


ManifestRecord = DetectionRecord | ClassificationRecord


@dataclass
class ManifestReadStats:
    """Counts kept while reading a manifest: non-blank lines, labeled records, unlabeled lines skipped."""

    lines: int = 0
    records: int = 0
    unlabeled: int = 0


# --- building -----------------------------------------------------------------------------------------------------


def format_creation_date(when: datetime | None = None) -> str:
    """``2018-10-18T22:18:13.527256``: naive UTC with microseconds, as Ground Truth writes ``creation-date``.
    (``datetime.isoformat()`` alone would drop the microseconds when they are zero.)"""
    moment = datetime.now(UTC) if when is None else when
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def format_job_name(labeling_job_name: str) -> str:
    """``labeling-job/<lower-cased name>``, the ``job-name`` value of real output manifests."""
    name = labeling_job_name.removeprefix(_JOB_NAME_PREFIX)
    if not name:
        raise ValueError("labeling job name is empty")
    return _JOB_NAME_PREFIX + name.lower()


def _check_label_attribute_name(label_attribute_name: str) -> None:
    if not label_attribute_name or label_attribute_name.endswith(_METADATA_SUFFIX):
        raise ValueError(f"label attribute name {label_attribute_name!r} is empty or ends with '-metadata'")


def _class_ids(class_names: Sequence[str]) -> dict[str, int]:
    ids = {name: class_id for class_id, name in enumerate(class_names)}
    if len(ids) != len(class_names):
        raise ValueError(f"class names repeat: {list(class_names)}")
    return ids


def _confidence(value: float | None) -> float:
    return 0.0 if value is None else round(float(value), 2)


def _common_metadata(
    annotation_type: str, job_name: str, creation_date: datetime | str | None, human_annotated: bool
) -> dict[str, Any]:
    return {
        "type": annotation_type,
        "human-annotated": "yes" if human_annotated else "no",
        "creation-date": creation_date if isinstance(creation_date, str) else format_creation_date(creation_date),
        "job-name": format_job_name(job_name),
    }


def detection_annotation(
    *,
    label_attribute_name: str,
    class_names: Sequence[str],
    boxes: Sequence[BoxLike],
    image_width: int,
    image_height: int,
    image_depth: int = 3,
    job_name: str,
    creation_date: datetime | str | None = None,
    human_annotated: bool = True,
) -> dict[str, Any]:
    """``{<attr>: {image_size, annotations}, <attr>-metadata: {objects, class-map, type, ...}}`` for one image.

    This is both the ACS ``consolidatedAnnotation.content`` and the label part of an output-manifest line
    (:func:`output_manifest_line` adds ``source-ref``). ``class_names`` is the label-category order, which fixes
    ``class_id``; a box label outside it is a ``ValueError``. Box values are rounded to integer pixels.
    """
    _check_label_attribute_name(label_attribute_name)
    if image_width <= 0 or image_height <= 0 or image_depth <= 0:
        raise ValueError(f"image size must be positive, got {image_width}x{image_height}x{image_depth}")
    ids = _class_ids(class_names)
    annotations: list[dict[str, int]] = []
    objects: list[dict[str, float]] = []
    class_map: dict[str, str] = {}
    for box in boxes:
        class_id = ids.get(box.label)
        if class_id is None:
            raise ValueError(f"box label {box.label!r} is not in the class names {list(class_names)}")
        annotations.append(
            {
                "class_id": class_id,
                "left": round(box.left),
                "top": round(box.top),
                "width": round(box.width),
                "height": round(box.height),
            }
        )
        objects.append({"confidence": _confidence(getattr(box, "confidence", None))})
        class_map[str(class_id)] = box.label
    metadata: dict[str, Any] = {
        "objects": objects,
        "class-map": dict(sorted(class_map.items(), key=lambda item: int(item[0]))),
    }
    metadata.update(_common_metadata(DETECTION_TYPE, job_name, creation_date, human_annotated))
    return {
        label_attribute_name: {
            "image_size": [{"width": image_width, "height": image_height, "depth": image_depth}],
            "annotations": annotations,
        },
        label_attribute_name + _METADATA_SUFFIX: metadata,
    }


def classification_annotation(
    *,
    label_attribute_name: str,
    class_names: Sequence[str],
    label: str,
    confidence: float | None,
    job_name: str,
    creation_date: datetime | str | None = None,
    human_annotated: bool = True,
) -> dict[str, Any]:
    """``{<attr>: <class index>, <attr>-metadata: {class-name, confidence, type, ...}}`` for one image."""
    _check_label_attribute_name(label_attribute_name)
    class_id = _class_ids(class_names).get(label)
    if class_id is None:
        raise ValueError(f"label {label!r} is not in the class names {list(class_names)}")
    metadata: dict[str, Any] = {"class-name": label, "confidence": _confidence(confidence)}
    metadata.update(_common_metadata(CLASSIFICATION_TYPE, job_name, creation_date, human_annotated))
    return {label_attribute_name: class_id, label_attribute_name + _METADATA_SUFFIX: metadata}


def output_manifest_line(data_object: Mapping[str, Any], annotation: Mapping[str, Any]) -> dict[str, Any]:
    """The input-manifest line (``source-ref`` and any other attributes, passed through) plus the annotation."""
    return {**data_object, **annotation}


def dump_manifest_line(line: Mapping[str, Any]) -> str:
    """One JSON Lines line (compact, UTF-8 kept, ending in ``\\n``)."""
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"


# --- parsing --------------------------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """``value`` when it is a string, else ``None``: a list or object from a hostile line is unhashable."""
    return value if type(value) is str else None


def find_label_attribute(line: Mapping[str, Any]) -> str | None:
    """The label attribute of a line: the key ``K`` with a ``K-metadata`` object whose ``type`` is a known built-in
    type and a value under ``K``. ``None`` for an unlabeled line; an error when several qualify (chained jobs)."""
    found = []
    for key, value in line.items():
        if type(value) is dict and key.endswith(_METADATA_SUFFIX) and _text(value.get("type")) in _KNOWN_TYPES:
            attribute = key[: -len(_METADATA_SUFFIX)]
            if line.get(attribute) is not None:
                found.append(attribute)
    if len(found) > 1:
        raise ManifestLineError(f"several label attributes {sorted(found)}; pass label_attribute_name to choose one")
    return found[0] if found else None


def parse_output_manifest_line(
    line: str | bytes | Mapping[str, Any],
    *,
    label_attribute_name: str | None = None,
    class_names: Sequence[str] | None = None,
    line_number: int = 0,
) -> ManifestRecord | None:
    """Parse one output-manifest line into a record, or ``None`` when the line carries no label.

    ``label_attribute_name`` picks the label when a line holds several (chained jobs); otherwise it is found from
    the ``-metadata`` ``type``. ``class_names`` (the job's label-category order) names a ``class_id`` missing from
    ``class-map``. Errors are :class:`ManifestLineError` with ``line <n>: <field>: <problem>``.
    """
    where = f"line {line_number}" if line_number else "manifest line"
    if isinstance(line, (str, bytes)):
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError as error:
            raise ManifestLineError(f"{where}: not valid JSON: {error}") from error
    else:
        parsed = line
    if not isinstance(parsed, dict):
        raise ManifestLineError(f"{where}: expected a JSON object, got {_kind(parsed)}")
    try:
        attribute = label_attribute_name if label_attribute_name is not None else find_label_attribute(parsed)
    except ManifestLineError as error:
        raise ManifestLineError(f"{where}: {error}") from None
    if attribute is None or parsed.get(attribute) is None:
        return None
    source_ref = parsed.get("source-ref")
    if not isinstance(source_ref, str) or not source_ref:
        raise ManifestLineError(f"{where}: source-ref: expected a non-empty string, got {source_ref!r}")
    metadata_key = attribute + _METADATA_SUFFIX
    metadata = parsed.get(metadata_key)
    if not isinstance(metadata, dict):
        raise ManifestLineError(f"{where}: {metadata_key}: expected an object, got {_kind(metadata)}")
    annotation_type = metadata.get("type")
    if _text(annotation_type) in _DETECTION_TYPES:
        return _parse_detection(parsed, source_ref, attribute, metadata, class_names, where, line_number)
    if _text(annotation_type) in _CLASSIFICATION_TYPES:
        return _parse_classification(parsed, source_ref, attribute, metadata, class_names, where, line_number)
    raise ManifestLineError(
        f"{where}: {metadata_key}.type: {annotation_type!r} is not {DETECTION_TYPE!r} or {CLASSIFICATION_TYPE!r}"
    )


def iter_output_manifest(
    lines: Iterable[str | bytes],
    *,
    label_attribute_name: str | None = None,
    class_names: Sequence[str] | None = None,
    stats: ManifestReadStats | None = None,
) -> Iterator[ManifestRecord]:
    """Stream records from manifest lines (a file object works: it yields lines), one line in memory at a time.
    Blank lines are ignored; unlabeled lines are skipped and counted in ``stats``."""
    counts = stats if stats is not None else ManifestReadStats()
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        counts.lines += 1
        record = parse_output_manifest_line(
            line, label_attribute_name=label_attribute_name, class_names=class_names, line_number=line_number
        )
        if record is None:
            counts.unlabeled += 1
            continue
        counts.records += 1
        yield record


def _parse_detection(
    line: dict[str, Any],
    source_ref: str,
    attribute: str,
    metadata: dict[str, Any],
    class_names: Sequence[str] | None,
    where: str,
    line_number: int,
) -> DetectionRecord:
    value = line[attribute]
    if not isinstance(value, dict):
        raise ManifestLineError(f"{where}: {attribute}: expected an object, got {_kind(value)}")
    image_size = value.get("image_size")
    if not isinstance(image_size, list) or len(image_size) != 1 or not isinstance(image_size[0], dict):
        raise ManifestLineError(f"{where}: {attribute}.image_size: expected a one-element list of objects")
    size = image_size[0]
    size_where = f"{where}: {attribute}.image_size[0]"
    width = _positive_int(size.get("width"), f"{size_where}.width")
    height = _positive_int(size.get("height"), f"{size_where}.height")
    depth = _positive_int(size.get("depth", 3), f"{size_where}.depth")
    annotations = value.get("annotations")
    if annotations is None:
        annotations = []
    if not isinstance(annotations, list):
        raise ManifestLineError(f"{where}: {attribute}.annotations: expected a list, got {_kind(annotations)}")
    objects = metadata.get("objects")
    if objects is not None and (not isinstance(objects, list) or len(objects) != len(annotations)):
        raise ManifestLineError(
            f"{where}: {attribute}-metadata.objects: expected a list aligned with the {len(annotations)} annotations"
        )
    class_map = metadata.get("class-map") or {}
    if not isinstance(class_map, dict):
        raise ManifestLineError(f"{where}: {attribute}-metadata.class-map: expected an object, got {_kind(class_map)}")
    boxes = []
    for position, annotation in enumerate(annotations):
        entry = objects[position] if objects is not None else None
        box = _well_formed_box(annotation, entry, class_map, class_names)
        if box is None:
            box = _checked_box(annotation, entry, class_map, class_names, f"{where}: {attribute}", position)
        boxes.append(box)
    return DetectionRecord(
        source_ref=source_ref,
        image_width=width,
        image_height=height,
        image_depth=depth,
        boxes=tuple(boxes),
        label_attribute_name=attribute,
        line=line,
        line_number=line_number,
    )


def _is_number(value: Any) -> bool:
    value_type = type(value)
    return value_type is int or (value_type is float and math.isfinite(value))


def _well_formed_box(
    annotation: Any, entry: Any, class_map: Mapping[str, Any], class_names: Sequence[str] | None
) -> LabeledBox | None:
    """The box when every field has its usual type, else ``None`` (then :func:`_checked_box` finds the problem).
    Kept separate so that the common case builds no error-message strings."""
    if type(annotation) is not dict:
        return None
    class_id: Any = annotation.get("class_id")
    left: Any = annotation.get("left")
    top: Any = annotation.get("top")
    width: Any = annotation.get("width")
    height: Any = annotation.get("height")
    if type(class_id) is not int or class_id < 0:
        return None
    if not (_is_number(left) and _is_number(top) and _is_number(width) and _is_number(height)):
        return None
    if width < 0 or height < 0:
        return None
    confidence = None
    if entry is not None:
        if type(entry) is not dict:
            return None
        confidence = entry.get("confidence")
        if confidence is not None and not _is_number(confidence):
            return None
    name = class_map.get(str(class_id))
    if name is None and class_names is not None and class_id < len(class_names):
        name = class_names[class_id]
    if type(name) is not str or not name:
        return None
    return LabeledBox(name, left, top, width, height, confidence, class_id)


def _checked_box(
    annotation: Any,
    entry: Any,
    class_map: Mapping[str, Any],
    class_names: Sequence[str] | None,
    where: str,
    position: int,
) -> LabeledBox:
    """Validate one annotation field by field; raises :class:`ManifestLineError` naming the first bad field."""
    attribute = where.rsplit(": ", 1)[-1]
    box_where = f"{where}.annotations[{position}]"
    if not isinstance(annotation, dict):
        raise ManifestLineError(f"{box_where}: expected an object, got {_kind(annotation)}")
    class_id = _class_id(annotation.get("class_id"), f"{box_where}.class_id")
    confidence = None
    raw_confidence = entry.get("confidence") if isinstance(entry, dict) else None
    if raw_confidence is not None:
        confidence = _number(raw_confidence, f"{where}-metadata.objects[{position}].confidence")
    return LabeledBox(
        label=_class_name(class_id, class_map, class_names, f"{box_where}.class_id", attribute),
        left=_number(annotation.get("left"), f"{box_where}.left"),
        top=_number(annotation.get("top"), f"{box_where}.top"),
        width=_non_negative(annotation.get("width"), f"{box_where}.width"),
        height=_non_negative(annotation.get("height"), f"{box_where}.height"),
        confidence=confidence,
        class_id=class_id,
    )


def _parse_classification(
    line: dict[str, Any],
    source_ref: str,
    attribute: str,
    metadata: dict[str, Any],
    class_names: Sequence[str] | None,
    where: str,
    line_number: int,
) -> ClassificationRecord:
    class_id = _class_id(line[attribute], f"{where}: {attribute}")
    class_name = metadata.get("class-name")
    if class_name is None:
        if class_names is None or class_id >= len(class_names):
            raise ManifestLineError(
                f"{where}: {attribute}-metadata.class-name: missing, and class {class_id} is not in the class names"
            )
        class_name = class_names[class_id]
    if not isinstance(class_name, str) or not class_name:
        raise ManifestLineError(f"{where}: {attribute}-metadata.class-name: expected a non-empty string")
    raw_confidence = metadata.get("confidence")
    confidence = (
        None if raw_confidence is None else _number(raw_confidence, f"{where}: {attribute}-metadata.confidence")
    )
    return ClassificationRecord(
        source_ref=source_ref,
        label=class_name,
        confidence=confidence,
        class_id=class_id,
        label_attribute_name=attribute,
        line=line,
        line_number=line_number,
    )


def _class_name(
    class_id: int, class_map: Mapping[str, Any], class_names: Sequence[str] | None, where: str, attribute: str
) -> str:
    name = class_map.get(str(class_id))
    if name is None and class_names is not None and class_id < len(class_names):
        name = class_names[class_id]
    if not isinstance(name, str) or not name:
        raise ManifestLineError(
            f"{where}: class {class_id} has no name in {attribute}-metadata.class-map {dict(class_map)} "
            "(pass the job's label-category names to resolve it)"
        )
    return name


def _class_id(value: Any, where: str) -> int:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ManifestLineError(f"{where}: expected a class index (non-negative integer), got {value!r}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ManifestLineError(f"{where}: expected a finite number, got {value!r}")
    return value


def _non_negative(value: Any, where: str) -> float:
    number = _number(value, where)
    if number < 0:
        raise ManifestLineError(f"{where}: must not be negative, got {number!r}")
    return number


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ManifestLineError(f"{where}: expected a positive integer, got {value!r}")
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
