"""Record sources: streams of labeled images, from output manifests or consolidated tables.

A source is a *callable* that opens a fresh stream of records each time it is called, e.g.
``ManifestSource(lambda: path.open(encoding="utf-8"))`` or, in a Lambda, a function that returns the lines of an S3
object body. A conversion calls it once (:func:`~truthflow.training_data.conversion.merged_class_names` once more);
only one line is held in memory at a time.

Consolidated tables are the CSV files of the ``truthflow`` command line (see ``DESIGN.md``): boxes
``image,label,left,top,width,height,confidence`` (one row per box, rows of one image together) and classification
``item,label,confidence``. ``image``/``item`` is used as the image's source reference. Box tables carry no image size,
so ``image_size`` must supply it, and images without any box do not appear in them.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from truthflow.groundtruth.output_manifest import (
    ClassificationRecord,
    DetectionRecord,
    LabeledBox,
    ManifestReadStats,
    ManifestRecord,
    iter_output_manifest,
)


class RecordSource(Protocol):
    """A re-openable stream of records, with the job's label list when it is known (it fixes the class order)."""

    @property
    def declared_class_names(self) -> Sequence[str] | None: ...

    def __call__(self) -> Iterable[ManifestRecord]: ...


class ManifestSource:
    """Records of an output manifest. ``open_lines()`` returns an iterable of lines (a text or binary file object
    works and is closed after each pass). ``class_names`` is the job's label-category order, when at hand."""

    def __init__(
        self,
        open_lines: Callable[[], Iterable[str | bytes]],
        *,
        label_attribute_name: str | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        self._open_lines = open_lines
        self.label_attribute_name = label_attribute_name
        self.class_names = list(class_names) if class_names is not None else None
        self.stats = ManifestReadStats()

    @property
    def declared_class_names(self) -> Sequence[str] | None:
        return self.class_names

    def __call__(self) -> Iterator[ManifestRecord]:
        self.stats = ManifestReadStats()
        lines = self._open_lines()
        try:
            yield from iter_output_manifest(
                lines, label_attribute_name=self.label_attribute_name, class_names=self.class_names, stats=self.stats
            )
        finally:
            close = getattr(lines, "close", None)
            if callable(close):
                close()

    @classmethod
    def from_path(
        cls, path: Path | str, *, label_attribute_name: str | None = None, class_names: Sequence[str] | None = None
    ) -> ManifestSource:
        """A manifest file on local disk."""
        manifest = Path(path)
        return cls(
            lambda: manifest.open(encoding="utf-8"), label_attribute_name=label_attribute_name, class_names=class_names
        )


def csv_rows(path: Path | str) -> Iterator[dict[str, str]]:
    """Rows of a CSV file with a header line, streamed; the file is closed when the iteration ends."""
    with Path(path).open(newline="", encoding="utf-8") as stream:
        yield from csv.DictReader(stream)


class BoxTableSource:
    """Detection records from a consolidated box table (rows of one image must be adjacent, as the ``truthflow``
    command writes them). ``image_size(image)`` returns ``(width, height)`` in pixels."""

    def __init__(
        self,
        open_rows: Callable[[], Iterable[Mapping[str, str]]],
        *,
        image_size: Callable[[str], tuple[int, int]] | Mapping[str, tuple[int, int]],
        class_names: Sequence[str] | None = None,
        label_attribute_name: str = "label",
        image_depth: int = 3,
    ) -> None:
        self._open_rows = open_rows
        self._image_size = image_size
        self.class_names = list(class_names) if class_names is not None else None
        self.label_attribute_name = label_attribute_name
        self.image_depth = image_depth

    @property
    def declared_class_names(self) -> Sequence[str] | None:
        return self.class_names

    def _size_of(self, image: str) -> tuple[int, int]:
        size = self._image_size.get(image) if isinstance(self._image_size, Mapping) else self._image_size(image)
        if size is None:
            raise ValueError(f"no image size for {image!r}: box tables need the width and height of every image")
        return size

    def __call__(self) -> Iterator[DetectionRecord]:
        current: str | None = None
        boxes: list[LabeledBox] = []
        first_row = 0
        for row_number, row in enumerate(self._open_rows(), start=2):
            image = _required(row, "image", row_number)
            if image != current:
                if current is not None:
                    yield self._record(current, boxes, first_row)
                current, boxes, first_row = image, [], row_number
            boxes.append(
                LabeledBox(
                    label=_required(row, "label", row_number),
                    left=_float(row, "left", row_number),
                    top=_float(row, "top", row_number),
                    width=_float(row, "width", row_number),
                    height=_float(row, "height", row_number),
                    confidence=_optional_float(row, "confidence", row_number),
                )
            )
        if current is not None:
            yield self._record(current, boxes, first_row)

    def _record(self, image: str, boxes: list[LabeledBox], row_number: int) -> DetectionRecord:
        width, height = self._size_of(image)
        return DetectionRecord(
            source_ref=image,
            image_width=width,
            image_height=height,
            image_depth=self.image_depth,
            boxes=tuple(boxes),
            label_attribute_name=self.label_attribute_name,
            line={},
            line_number=row_number,
        )


class ClassificationTableSource:
    """Classification records from a consolidated ``item,label,confidence`` table."""

    def __init__(
        self,
        open_rows: Callable[[], Iterable[Mapping[str, str]]],
        *,
        class_names: Sequence[str] | None = None,
        label_attribute_name: str = "label",
    ) -> None:
        self._open_rows = open_rows
        self.class_names = list(class_names) if class_names is not None else None
        self.label_attribute_name = label_attribute_name

    @property
    def declared_class_names(self) -> Sequence[str] | None:
        return self.class_names

    def __call__(self) -> Iterator[ClassificationRecord]:
        for row_number, row in enumerate(self._open_rows(), start=2):
            yield ClassificationRecord(
                source_ref=_required(row, "item", row_number),
                label=_required(row, "label", row_number),
                confidence=_optional_float(row, "confidence", row_number),
                class_id=None,
                label_attribute_name=self.label_attribute_name,
                line={},
                line_number=row_number,
            )


def _required(row: Mapping[str, str], column: str, row_number: int) -> str:
    value = row.get(column)
    if value is None or not value.strip():
        raise ValueError(f"row {row_number}: column {column!r} is missing or empty")
    return value.strip()


def _float(row: Mapping[str, str], column: str, row_number: int) -> float:
    text = _required(row, column, row_number)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"row {row_number}: column {column!r}: {text!r} is not a finite number")
    return value


def _optional_float(row: Mapping[str, str], column: str, row_number: int) -> float | None:
    value = row.get(column)
    if value is None or not value.strip():
        return None
    return _float(row, column, row_number)
