"""Streaming writers, one per training format, all fed the same (filtered) records by the conversion.

Each writer gets ``add(record, split, image_name)`` once per image and ``close()`` at the end; it holds at most one
image in memory. ``image_name`` is the image's unique file name in the dataset (``images/<split>/<image_name>``);
label files are named after its stem. Layout written to the destination:

=====================================  =============================================================
``<split>.manifest``                   augmented manifest (SageMaker built-in algorithms)
``<split>.lst``                        im2rec list, paths relative to ``images/<split>/``
``labels/<split>/<stem>.txt``          YOLO labels (beside ``images/<split>/`` as Ultralytics expects)
``data.yaml``                          YOLO dataset file (``path``, ``train``, ``val``, ``names``)
``coco/<split>.json``                  COCO detection
``voc/<split>/<stem>.xml``             Pascal VOC
=====================================  =============================================================
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from typing import IO, Any, Protocol, TextIO

from truthflow.groundtruth.output_manifest import (
    CLASSIFICATION_TYPE,
    DETECTION_TYPE,
    ClassificationRecord,
    DetectionRecord,
    ManifestRecord,
    dump_manifest_line,
)
from truthflow.training_data.classes import ClassIndex
from truthflow.training_data.destinations import Destination
from truthflow.training_data.formats import (
    coco_annotation,
    coco_categories,
    coco_image,
    lst_classification_line,
    lst_detection_line,
    split_file_name,
    voc_xml,
    yolo_line,
)
from truthflow.training_data.split import SPLITS, Split

_METADATA_SUFFIX = "-metadata"


class FormatWriter(Protocol):
    """What the conversion drives. ``skipped`` counts images this format left out."""

    name: str
    skipped: int

    def add(self, record: ManifestRecord, split: Split, image_name: str) -> None: ...

    def close(self) -> None: ...


def image_stem(image_name: str) -> str:
    return split_file_name(image_name)[0]


class _SplitStreams:
    """One open text stream per split, opened on first use."""

    def __init__(self, destination: Destination, path_of: Callable[[Split], str]) -> None:
        self._destination = destination
        self._path_of = path_of
        self._stack = ExitStack()
        self._streams: dict[Split, TextIO] = {}

    def __getitem__(self, split: Split) -> TextIO:
        stream = self._streams.get(split)
        if stream is None:
            stream = self._stack.enter_context(self._destination.open_text(self._path_of(split)))
            self._streams[split] = stream
        return stream

    def close(self, *, create_all: bool = True) -> None:
        if create_all:
            for split in SPLITS:
                self[split]
        self._stack.close()


class AugmentedManifestWriter:
    """``<split>.manifest``: the output-manifest lines again, with classes renumbered to the training index,
    excluded boxes removed (``objects`` kept aligned) and the label under ``label_attribute_name`` (use
    ``AttributeNames = ["source-ref", label_attribute_name]``). Other attributes of a line are kept.

    Images without boxes are left out unless ``keep_images_without_boxes`` (whether the built-in Object Detection
    algorithm accepts an empty ``annotations`` list is not documented)."""

    name = "augmented-manifest"

    def __init__(
        self,
        destination: Destination,
        class_index: ClassIndex,
        *,
        label_attribute_name: str,
        keep_images_without_boxes: bool = False,
    ) -> None:
        self._streams = _SplitStreams(destination, lambda split: f"{split}.manifest")
        self._classes = class_index
        self._attribute = label_attribute_name
        self._keep_empty = keep_images_without_boxes
        self.skipped = 0

    def add(self, record: ManifestRecord, split: Split, image_name: str) -> None:
        if isinstance(record, DetectionRecord) and not record.boxes and not self._keep_empty:
            self.skipped += 1
            return
        line = {
            key: value
            for key, value in record.line.items()
            if key not in {record.label_attribute_name, record.label_attribute_name + _METADATA_SUFFIX}
        }
        line["source-ref"] = record.source_ref
        old_metadata = record.line.get(record.label_attribute_name + _METADATA_SUFFIX)
        metadata: dict[str, Any] = dict(old_metadata) if isinstance(old_metadata, dict) else {}
        value: dict[str, Any] | int
        if isinstance(record, DetectionRecord):
            value, metadata_update = self._detection(record)
        else:
            value, metadata_update = self._classification(record)
        metadata.update(metadata_update)
        line[self._attribute] = value
        line[self._attribute + _METADATA_SUFFIX] = metadata
        self._streams[split].write(dump_manifest_line(line))

    def _detection(self, record: DetectionRecord) -> tuple[dict[str, Any], dict[str, Any]]:
        annotations = []
        objects = []
        class_map: dict[int, str] = {}
        for box in record.boxes:
            class_index = self._classes.index_of(box.label)
            annotations.append(
                {"class_id": class_index, "left": box.left, "top": box.top, "width": box.width, "height": box.height}
            )
            objects.append({"confidence": 0.0 if box.confidence is None else box.confidence})
            class_map[class_index] = box.label
        value = {
            "image_size": [{"width": record.image_width, "height": record.image_height, "depth": record.image_depth}],
            "annotations": annotations,
        }
        metadata = {
            "objects": objects,
            "class-map": {str(class_index): class_map[class_index] for class_index in sorted(class_map)},
            "type": DETECTION_TYPE,
        }
        return value, metadata

    def _classification(self, record: ClassificationRecord) -> tuple[int, dict[str, Any]]:
        metadata: dict[str, Any] = {"class-name": record.label, "type": CLASSIFICATION_TYPE}
        if record.confidence is not None:
            metadata["confidence"] = record.confidence
        return self._classes.index_of(record.label), metadata

    def close(self) -> None:
        self._streams.close()


class LstWriter:
    """``<split>.lst`` for im2rec; indices count from 0 within each split. Detection images without boxes are
    left out (an object-less detection record is not usable by im2rec/the algorithm)."""

    name = "lst"

    def __init__(self, destination: Destination, class_index: ClassIndex) -> None:
        self._streams = _SplitStreams(destination, lambda split: f"{split}.lst")
        self._classes = class_index
        self._next_index: dict[Split, int] = dict.fromkeys(SPLITS, 0)
        self.skipped = 0
        self.max_objects = 0

    def add(self, record: ManifestRecord, split: Split, image_name: str) -> None:
        index = self._next_index[split]
        if isinstance(record, DetectionRecord):
            if not record.boxes:
                self.skipped += 1
                return
            objects = [(self._classes.index_of(box.label), box) for box in record.boxes]
            self.max_objects = max(self.max_objects, len(objects))
            text = lst_detection_line(index, objects, record.image_width, record.image_height, image_name)
        else:
            text = lst_classification_line(index, self._classes.index_of(record.label), image_name)
        self._streams[split].write(text)
        self._next_index[split] = index + 1

    def close(self) -> None:
        self._streams.close()


class YoloWriter:
    """``labels/<split>/<stem>.txt`` per image (empty for an image without boxes) and ``data.yaml``."""

    name = "yolo"

    def __init__(self, destination: Destination, class_index: ClassIndex) -> None:
        self._destination = destination
        self._classes = class_index
        self.skipped = 0

    def add(self, record: ManifestRecord, split: Split, image_name: str) -> None:
        if not isinstance(record, DetectionRecord):
            raise TypeError("YOLO labels are written for object-detection records only")
        text = "".join(
            yolo_line(self._classes.index_of(box.label), box, record.image_width, record.image_height)
            for box in record.boxes
        )
        with self._destination.open_text(f"labels/{split}/{image_stem(image_name)}.txt") as stream:
            stream.write(text)

    def close(self) -> None:
        names = ", ".join(f"{position}: {json.dumps(name)}" for position, name in enumerate(self._classes))
        with self._destination.open_text("data.yaml") as stream:
            stream.write(f"path: .\ntrain: images/train\nval: images/validation\nnames: {{{names}}}\n")


class CocoWriter:
    """``coco/<split>.json``. Images and annotations are spooled to temporary files while streaming (COCO keeps
    them in two separate arrays) and assembled into the destination on ``close``."""

    name = "coco"

    def __init__(self, destination: Destination, class_index: ClassIndex) -> None:
        self._destination = destination
        self._classes = class_index
        self._stack = ExitStack()
        self._images: dict[Split, IO[str]] = {}
        self._annotations: dict[Split, IO[str]] = {}
        self._image_ids: dict[Split, int] = dict.fromkeys(SPLITS, 0)
        self._annotation_ids: dict[Split, int] = dict.fromkeys(SPLITS, 0)
        for split in SPLITS:
            self._images[split] = self._stack.enter_context(_spool_file())
            self._annotations[split] = self._stack.enter_context(_spool_file())
        self.skipped = 0

    def add(self, record: ManifestRecord, split: Split, image_name: str) -> None:
        if not isinstance(record, DetectionRecord):
            raise TypeError("COCO detection files are written for object-detection records only")
        image_id = self._image_ids[split] + 1
        self._image_ids[split] = image_id
        images = self._images[split]
        if image_id > 1:
            images.write(",")
        images.write(json.dumps(coco_image(image_id, image_name, record.image_width, record.image_height)))
        annotations = self._annotations[split]
        for box in record.boxes:
            annotation_id = self._annotation_ids[split] + 1
            self._annotation_ids[split] = annotation_id
            if annotation_id > 1:
                annotations.write(",")
            category_id = self._classes.index_of(box.label) + 1
            annotations.write(json.dumps(coco_annotation(annotation_id, image_id, category_id, box)))

    def close(self) -> None:
        categories = json.dumps(coco_categories(list(self._classes)))
        try:
            for split in SPLITS:
                with self._destination.open_text(f"coco/{split}.json") as stream:
                    stream.write('{"info":{"description":"truthflow export"},"licenses":[],"images":[')
                    _copy(self._images[split], stream)
                    stream.write('],"annotations":[')
                    _copy(self._annotations[split], stream)
                    stream.write(f'],"categories":{categories}}}\n')
        finally:
            self._stack.close()


def _spool_file() -> IO[str]:
    # Closed (and deleted) by the writer's ExitStack.
    return tempfile.TemporaryFile("w+", encoding="utf-8")


def _copy(spooled: IO[str], stream: TextIO, chunk_chars: int = 1 << 16) -> None:
    spooled.flush()
    spooled.seek(0)
    while chunk := spooled.read(chunk_chars):
        stream.write(chunk)


class VocWriter:
    """``voc/<split>/<stem>.xml`` per image (see ``formats.voc_xml`` for the pixel convention)."""

    name = "voc"

    def __init__(self, destination: Destination, *, one_based: bool = True) -> None:
        self._destination = destination
        self._one_based = one_based
        self.skipped = 0

    def add(self, record: ManifestRecord, split: Split, image_name: str) -> None:
        if not isinstance(record, DetectionRecord):
            raise TypeError("Pascal VOC files are written for object-detection records only")
        text = voc_xml(
            image_name,
            record.image_width,
            record.image_height,
            record.image_depth,
            [(box.label, box) for box in record.boxes],
            folder=f"images/{split}",
            one_based=self._one_based,
        )
        with self._destination.open_text(f"voc/{split}/{image_stem(image_name)}.xml") as stream:
            stream.write(text)

    def close(self) -> None:
        return None
