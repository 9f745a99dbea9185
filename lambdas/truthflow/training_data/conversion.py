"""Consolidated labels -> a train/validation split in every training format, reading the input once.

Pass 1 reads every source once: each record is parsed, its boxes clipped and filtered by the exclusion rule (the
exclusions are counted here), and the result is appended to a temporary spool file (``marshal``, length-prefixed).
Per image it keeps in memory only 16 bytes (split hash and file-name hash), plus the class names seen; at the end it
fixes the task type, the class index (merged by name across sources), the per-stratum split cut-offs and which image
file names collide. Pass 2 reads the spool back and hands each image to one writer per format. Memory therefore stays
flat in the number of lines apart from those 16 bytes per image, every output file is streamed to the destination,
and sources are read only once (a Lambda reads each S3 object once).

Besides the format files (see :mod:`truthflow.training_data.writers`) the destination receives:

* ``images.csv`` (``split,source-ref,path``): where the adapter must copy each image (``images/<split>/<name>``);
* ``classes.txt``: the class names, one a line, in class-index order;
* ``summary.json``: the :class:`ConversionSummary`.

Image file names are the S3 key's last segment. When two images share a stem (``a/cat.jpg`` and ``b/cat.png``, or
stems that differ only in case), each of them gets ``<stem>_<8 hex digits of a hash of its source-ref><suffix>``
instead, decided from the whole input so that the result does not depend on line order.
"""

from __future__ import annotations

import csv
import json
import marshal
import tempfile
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import numpy as np

from truthflow.groundtruth.output_manifest import ClassificationRecord, DetectionRecord, LabeledBox, ManifestRecord
from truthflow.training_data.classes import ClassIndex, class_list_text, merge_class_names, ordered_by_source_id
from truthflow.training_data.destinations import Destination
from truthflow.training_data.exclusion import ExclusionCounts, ExclusionRule, apply_to_detection, keeps_classification
from truthflow.training_data.formats import image_file_name, lst_label_width, split_file_name
from truthflow.training_data.sources import RecordSource
from truthflow.training_data.split import (
    SPLITS,
    Split,
    SplitConfig,
    SplitPlan,
    SplitPlanner,
    detection_stratum,
    stable_hash,
)
from truthflow.training_data.writers import (
    AugmentedManifestWriter,
    CocoWriter,
    FormatWriter,
    LstWriter,
    VocWriter,
    YoloWriter,
)

Task = Literal["object-detection", "image-classification"]
Format = Literal["augmented-manifest", "lst", "yolo", "coco", "voc"]
FORMATS_BY_TASK: dict[Task, tuple[Format, ...]] = {
    "object-detection": ("augmented-manifest", "lst", "yolo", "coco", "voc"),
    "image-classification": ("augmented-manifest", "lst"),
}


@dataclass
class ConversionSummary:
    """What a conversion did. ``class_counts[split][name]`` counts boxes (detection) or images (classification)."""

    task: Task
    class_names: list[str]
    label_attribute_name: str
    formats: list[str]
    images: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    boxes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    images_without_boxes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    excluded: ExclusionCounts = field(default_factory=ExclusionCounts)
    skipped_by_format: dict[str, int] = field(default_factory=dict)
    unlabeled_lines: int = 0
    renamed_images: int = 0
    max_boxes_per_image: int = 0

    @property
    def lst_label_width(self) -> int:
        """Minimum ``label_width`` hyperparameter of SageMaker Object Detection for the ``.lst``/RecordIO data."""
        return lst_label_width(self.max_boxes_per_image)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "class_names": self.class_names,
            "num_classes": len(self.class_names),
            "label_attribute_name": self.label_attribute_name,
            "attribute_names": ["source-ref", self.label_attribute_name],
            "formats": self.formats,
            "images": self.images,
            "boxes": self.boxes,
            "images_without_boxes": self.images_without_boxes,
            "class_counts": self.class_counts,
            "excluded": self.excluded.to_dict(),
            "skipped_by_format": self.skipped_by_format,
            "unlabeled_lines": self.unlabeled_lines,
            "renamed_images": self.renamed_images,
            "max_boxes_per_image": self.max_boxes_per_image,
            "lst_label_width": self.lst_label_width,
        }


def build_training_data(
    sources: RecordSource | Sequence[RecordSource],
    destination: Destination,
    *,
    formats: Sequence[Format] | None = None,
    class_names: Sequence[str] | None = None,
    split: SplitConfig | None = None,
    exclusion: ExclusionRule | None = None,
    label_attribute_name: str | None = None,
    keep_images_without_boxes: bool = False,
    voc_one_based: bool = True,
) -> ConversionSummary:
    """Convert one or several jobs' labels into training data (see the module docstring).

    ``formats`` defaults to every format of the task. ``class_names`` fixes the class index (a label outside it is
    an error); without it the sources' classes are merged by name (:func:`merged_class_names`).
    ``label_attribute_name`` is the label key of the augmented manifests (default: the first record's).
    ``keep_images_without_boxes`` keeps box-less images in the augmented manifests (YOLO, COCO and VOC always keep
    them as background images; ``.lst`` never does).
    """
    source_list = _as_list(sources)
    rule = exclusion if exclusion is not None else ExclusionRule()
    excluded = ExclusionCounts()
    with tempfile.TemporaryFile() as spool_file:
        spool = _Spool(spool_file)
        survey = _survey(source_list, rule, split if split is not None else SplitConfig(), excluded, spool)
        task = survey.task
        chosen = list(formats) if formats is not None else list(FORMATS_BY_TASK[task])
        unsupported = [name for name in chosen if name not in FORMATS_BY_TASK[task]]
        if unsupported:
            raise ValueError(
                f"formats {unsupported} are not available for {task}; choose from {list(FORMATS_BY_TASK[task])}"
            )
        class_index = ClassIndex(class_names if class_names is not None else survey.class_names(source_list))
        survey.check_classes(class_index)
        attribute = label_attribute_name or survey.first_attribute
        summary = ConversionSummary(
            task=task,
            class_names=list(class_index),
            label_attribute_name=attribute,
            formats=[str(name) for name in chosen],
            excluded=excluded,
        )
        summary.class_counts = {part: dict.fromkeys(class_index, 0) for part in SPLITS}
        writers = _writers(chosen, destination, class_index, attribute, keep_images_without_boxes, voc_one_based)
        namer = _ImageNamer(survey.stem_hashes)
        try:
            with destination.open_text("images.csv") as image_list:
                rows = csv.writer(image_list, lineterminator="\n")
                rows.writerow(["split", "source-ref", "path"])
                for record, stratum in spool.read():
                    part = survey.plan.assign(record.source_ref, stratum)
                    image_name = namer.name(record.source_ref)
                    rows.writerow([part, record.source_ref, f"images/{part}/{image_name}"])
                    _count(summary, record, part, class_index)
                    for writer in writers:
                        writer.add(record, part, image_name)
        finally:
            for writer in writers:
                writer.close()
    summary.skipped_by_format = {writer.name: writer.skipped for writer in writers}
    summary.unlabeled_lines = survey.unlabeled_lines
    summary.renamed_images = namer.renamed
    with destination.open_text("classes.txt") as stream:
        stream.write(class_list_text(class_index))
    with destination.open_text("summary.json") as stream:
        json.dump(summary.to_dict(), stream, indent=2, ensure_ascii=False)
        stream.write("\n")
    return summary


def merged_class_names(sources: RecordSource | Sequence[RecordSource]) -> list[str]:
    """The class list :func:`build_training_data` would use: each source's classes (its declared label list, then
    any other names seen in its records, ordered by the job's ``class_id``), merged in first-seen order across
    sources. Reads every source once."""
    source_list = _as_list(sources)
    return _survey(source_list, ExclusionRule(), SplitConfig(), ExclusionCounts(), None).class_names(source_list)


# --- internals --------------------------------------------------------------------------------------------------


def _as_list(sources: RecordSource | Sequence[RecordSource]) -> list[RecordSource]:
    source_list: list[RecordSource] = list(sources) if isinstance(sources, Sequence) else [sources]
    if not source_list:
        raise ValueError("no sources to convert")
    return source_list


class _Spool:
    """Filtered records and their strata in a temporary binary file: 4-byte length, then a ``marshal`` blob.
    ``marshal`` is safe here: the file is our own, written and read by the same process."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def write(self, record: ManifestRecord, stratum: str) -> None:
        if isinstance(record, DetectionRecord):
            boxes = tuple(
                (box.label, box.left, box.top, box.width, box.height, box.confidence, box.class_id)
                for box in record.boxes
            )
            item: tuple[Any, ...] = (
                "d",
                stratum,
                record.source_ref,
                record.image_width,
                record.image_height,
                record.image_depth,
                boxes,
                record.label_attribute_name,
                dict(record.line),
                record.line_number,
            )
        else:
            item = (
                "c",
                stratum,
                record.source_ref,
                record.label,
                record.confidence,
                record.class_id,
                record.label_attribute_name,
                dict(record.line),
                record.line_number,
            )
        blob = marshal.dumps(item)
        self._stream.write(len(blob).to_bytes(4, "little"))
        self._stream.write(blob)

    def read(self) -> Iterator[tuple[ManifestRecord, str]]:
        self._stream.flush()
        self._stream.seek(0)
        while size_bytes := self._stream.read(4):
            item = marshal.loads(self._stream.read(int.from_bytes(size_bytes, "little")))
            if item[0] == "d":
                _, stratum, source_ref, width, height, depth, boxes, attribute, line, line_number = item
                record: ManifestRecord = DetectionRecord(
                    source_ref,
                    width,
                    height,
                    depth,
                    tuple(LabeledBox(*box) for box in boxes),
                    attribute,
                    line,
                    line_number,
                )
            else:
                _, stratum, source_ref, label, confidence, class_id, attribute, line, line_number = item
                record = ClassificationRecord(source_ref, label, confidence, class_id, attribute, line, line_number)
            yield record, stratum


@dataclass
class _Survey:
    task: Task
    plan: SplitPlan
    stem_hashes: array[int]
    seen_names: list[list[tuple[str, int | None]]]
    first_attribute: str
    unlabeled_lines: int

    def check_classes(self, class_index: ClassIndex) -> None:
        """Refuse a class list that misses a label of the input, before any file is written."""
        missing = sorted({name for seen in self.seen_names for name, _ in seen if name not in class_index})
        if missing:
            raise ValueError(f"labels {missing} are not in the class list {list(class_index)}")

    def class_names(self, sources: Sequence[RecordSource]) -> list[str]:
        per_source = []
        for source, seen in zip(sources, self.seen_names, strict=True):
            ordered = ordered_by_source_id(seen)
            declared = source.declared_class_names
            per_source.append([*declared, *ordered] if declared is not None else ordered)
        merged = merge_class_names(*per_source)
        if not merged:
            raise ValueError("no class names: no image has a box and no label list was given (pass class_names)")
        return merged


def _record_task(record: ManifestRecord) -> Task:
    return "object-detection" if isinstance(record, DetectionRecord) else "image-classification"


def _survey(
    sources: Sequence[RecordSource],
    rule: ExclusionRule,
    config: SplitConfig,
    excluded: ExclusionCounts,
    spool: _Spool | None,
) -> _Survey:
    planner = SplitPlanner(config)
    stem_hashes: array[int] = array("Q")
    seen_names: list[list[tuple[str, int | None]]] = []
    task: Task | None = None
    first_attribute: str | None = None
    unlabeled_lines = 0
    for source in sources:
        # One entry per distinct (name, source class_id) pair, not per box. Names are collected before the
        # exclusion rule, so the class list does not depend on its thresholds.
        seen: dict[tuple[str, int | None], None] = {}
        for record in source():
            record_task = _record_task(record)
            if task is None:
                task, first_attribute = record_task, record.label_attribute_name
            elif record_task != task:
                raise ValueError(
                    f"{record.source_ref} (line {record.line_number}) is {record_task}, but earlier records are "
                    f"{task}: convert one task type at a time"
                )
            kept: ManifestRecord
            if isinstance(record, DetectionRecord):
                for box in record.boxes:
                    seen.setdefault((box.label, box.class_id), None)
                kept = apply_to_detection(record, rule, excluded)
                stratum = detection_stratum(box.label.strip() for box in kept.boxes)
            else:
                seen.setdefault((record.label, record.class_id), None)
                if not keeps_classification(record, rule, excluded):
                    continue
                kept, stratum = record, record.label.strip()
            planner.add(kept.source_ref, stratum)
            stem_hashes.append(_stem_hash(image_file_name(kept.source_ref)))
            if spool is not None:
                spool.write(kept, stratum)
        seen_names.append(list(seen))
        unlabeled_lines += int(getattr(getattr(source, "stats", None), "unlabeled", 0))
    if task is None or first_attribute is None:
        raise ValueError("the sources hold no labeled images")
    return _Survey(task, planner.plan(), stem_hashes, seen_names, first_attribute, unlabeled_lines)


def _count(summary: ConversionSummary, record: ManifestRecord, part: Split, class_index: ClassIndex) -> None:
    summary.images[part] += 1
    counts = summary.class_counts[part]
    if isinstance(record, ClassificationRecord):
        name = class_index.names[class_index.index_of(record.label)]
        counts[name] += 1
        return
    summary.boxes[part] += len(record.boxes)
    summary.max_boxes_per_image = max(summary.max_boxes_per_image, len(record.boxes))
    if not record.boxes:
        summary.images_without_boxes[part] += 1
    for box in record.boxes:
        counts[class_index.names[class_index.index_of(box.label)]] += 1


def _writers(
    formats: Sequence[Format],
    destination: Destination,
    class_index: ClassIndex,
    attribute: str,
    keep_images_without_boxes: bool,
    voc_one_based: bool,
) -> list[FormatWriter]:
    writers: list[FormatWriter] = []
    for name in dict.fromkeys(formats):
        if name == "augmented-manifest":
            writers.append(
                AugmentedManifestWriter(
                    destination,
                    class_index,
                    label_attribute_name=attribute,
                    keep_images_without_boxes=keep_images_without_boxes,
                )
            )
        elif name == "lst":
            writers.append(LstWriter(destination, class_index))
        elif name == "yolo":
            writers.append(YoloWriter(destination, class_index))
        elif name == "coco":
            writers.append(CocoWriter(destination, class_index))
        else:
            writers.append(VocWriter(destination, one_based=voc_one_based))
    return writers


def _stem_hash(image_name: str) -> int:
    return stable_hash(split_file_name(image_name)[0].casefold())


class _ImageNamer:
    """Unique image file names (see the module docstring); only renamed names are remembered."""

    def __init__(self, stem_hashes: array[int]) -> None:
        values = np.frombuffer(stem_hashes, dtype=np.uint64)
        values.sort()  # in place: the survey's array is not needed any more, and no copy is made
        repeated = values[1:][values[1:] == values[:-1]]
        self._colliding = {int(value) for value in repeated}
        self._given: set[str] = set()
        self.renamed = 0

    def name(self, source_ref: str) -> str:
        base = image_file_name(source_ref)
        if _stem_hash(base) not in self._colliding:
            return base
        stem, suffix = split_file_name(base)
        tag = f"{stable_hash(source_ref) & 0xFFFFFFFF:08x}"
        candidate = f"{stem}_{tag}{suffix}"
        repeat = 2
        while candidate.casefold() in self._given:
            candidate = f"{stem}_{tag}_{repeat}{suffix}"
            repeat += 1
        self._given.add(candidate.casefold())
        self.renamed += 1
        return candidate
