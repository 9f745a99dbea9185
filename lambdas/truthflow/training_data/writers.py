"""Streaming writers, one per training format, all fed the same (filtered) records by the conversion.

Each writer gets ``add(record, split, image_name)`` once per image and ``close()`` at the end; it holds at most one
image in memory. ``image_name`` is the image's unique file name in the dataset (``images/<split>/<image_name>``);
label files are named after its stem. The writers convert one shard of the images (a whole small job is one shard):
per-image files go straight to their place in the dataset, files that hold every image are written as this shard's
*part*, which :mod:`truthflow.training_data.join` concatenates with the other shards' parts:

==============================  ================================================  ================================
in the dataset                  what a shard writes                               format
==============================  ================================================  ================================
``<split>.manifest``            part ``<split>.manifest``                         augmented manifest (built-ins)
``<split>.lst``                 part ``<split>.lst``                              im2rec list (paths relative to
                                                                                  ``images/<split>/``)
``labels/<split>/<stem>.txt``   the file                                          YOLO labels
``data.yaml``                   nothing (the join writes it)                      YOLO dataset file
``coco/<split>.json``           parts ``coco/<split>.images``, ``.annotations``   COCO detection
``voc/<split>/<stem>.xml``      the file                                          Pascal VOC
==============================  ================================================  ================================

Numbers that run over the whole dataset (``.lst`` indices, COCO image and annotation ids) start where the shards
before this one ended (``first_*`` arguments, from the plan).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from typing import Any, Protocol, TextIO

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
    """``<split>.lst`` for im2rec; indices count from 0 within each split (from ``first_index``, the lines of earlier
    shards). Detection images without boxes are left out (an object-less detection record is not usable by
    im2rec/the algorithm)."""

    name = "lst"

    def __init__(
        self, destination: Destination, class_index: ClassIndex, *, first_index: Mapping[Split, int] | None = None
    ) -> None:
        self._streams = _SplitStreams(destination, lambda split: f"{split}.lst")
        self._classes = class_index
        self._next_index: dict[Split, int] = {split: (first_index or {}).get(split, 0) for split in SPLITS}
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
    """``labels/<split>/<stem>.txt`` per image (empty for an image without boxes); ``data.yaml`` is
    :func:`yolo_dataset_file`, written once by the join."""

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
        return None


def yolo_dataset_file(class_names: Sequence[str]) -> str:
    """``data.yaml``: the dataset root, the image folders and the class names by index."""
    names = ", ".join(f"{position}: {json.dumps(name)}" for position, name in enumerate(class_names))
    return f"path: .\ntrain: images/train\nval: images/validation\nnames: {{{names}}}\n"


class CocoWriter:
    """COCO detection in pieces: ``coco/<split>.images`` and ``coco/<split>.annotations`` hold this shard's image and
    annotation objects, comma-separated, with ids counted on from ``first_image_id`` / ``first_annotation_id`` (the
    objects of earlier shards; ids start at 1). :func:`coco_document` wraps every shard's pieces into
    ``coco/<split>.json``."""

    name = "coco"

    def __init__(
        self,
        destination: Destination,
        class_index: ClassIndex,
        *,
        first_image_id: Mapping[Split, int] | None = None,
        first_annotation_id: Mapping[Split, int] | None = None,
    ) -> None:
        self._classes = class_index
        self._images = _SplitStreams(destination, lambda split: coco_piece(split, "images"))
        self._annotations = _SplitStreams(destination, lambda split: coco_piece(split, "annotations"))
        self._image_ids = {split: (first_image_id or {}).get(split, 0) for split in SPLITS}
        self._annotation_ids = {split: (first_annotation_id or {}).get(split, 0) for split in SPLITS}
        self._written: dict[Split, list[int]] = {split: [0, 0] for split in SPLITS}
        self.skipped = 0

    def add(self, record: ManifestRecord, split: Split, image_name: str) -> None:
        if not isinstance(record, DetectionRecord):
            raise TypeError("COCO detection files are written for object-detection records only")
        image_id = self._image_ids[split] + 1
        self._image_ids[split] = image_id
        written = self._written[split]
        images = self._images[split]
        if written[0]:
            images.write(",")
        images.write(json.dumps(coco_image(image_id, image_name, record.image_width, record.image_height)))
        written[0] += 1
        if not record.boxes:
            return
        annotations = self._annotations[split]
        for box in record.boxes:
            annotation_id = self._annotation_ids[split] + 1
            self._annotation_ids[split] = annotation_id
            if written[1]:
                annotations.write(",")
            category_id = self._classes.index_of(box.label) + 1
            annotations.write(json.dumps(coco_annotation(annotation_id, image_id, category_id, box)))
            written[1] += 1

    def close(self) -> None:
        try:
            self._images.close()
        finally:
            self._annotations.close()


def coco_piece(split: Split, kind: str) -> str:
    """The path of a shard's COCO piece: ``kind`` is ``"images"`` or ``"annotations"``."""
    return f"coco/{split}.{kind}"


def coco_document(
    class_names: Sequence[str], images: Iterable[Iterable[str]], annotations: Iterable[Iterable[str]]
) -> Iterator[str]:
    """``coco/<split>.json`` as text chunks around the shards' non-empty pieces (each an iterable of text chunks,
    given in shard order; they are read in that order, one at a time)."""
    categories = json.dumps(coco_categories(list(class_names)))
    yield '{"info":{"description":"truthflow export"},"licenses":[],"images":['
    yield from _comma_separated(images)
    yield '],"annotations":['
    yield from _comma_separated(annotations)
    yield f'],"categories":{categories}}}\n'


def _comma_separated(pieces: Iterable[Iterable[str]]) -> Iterator[str]:
    for number, piece in enumerate(pieces):
        if number:
            yield ","
        yield from piece


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
