"""The second pass, one shard at a time: a shard's kept images converted into every format.

A shard gets the plan (:mod:`truthflow.training_data.plan`), its own :class:`~truthflow.training_data.plan.ShardPlan`
and :class:`~truthflow.training_data.plan.ShardNames`, and its kept records in input order (each with its stratum, as
:func:`~truthflow.training_data.plan.kept_record` gives them). Per-image files (YOLO, VOC) go to ``files``, the
dataset itself; this shard's part of every file that holds all images goes to ``parts`` (see
:mod:`truthflow.training_data.writers`): ``<split>.manifest``, ``<split>.lst``, the COCO pieces and ``images.csv``
(``split,source-ref,path`` rows: where each image belongs, ``images/<split>/<name>``). The counts it returns are this
shard's share of the :class:`~truthflow.training_data.conversion.ConversionSummary`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from truthflow.groundtruth.output_manifest import ClassificationRecord, ManifestRecord
from truthflow.training_data.classes import ClassIndex
from truthflow.training_data.destinations import Destination
from truthflow.training_data.plan import Format, ShardNames, ShardPlan, TrainingDataPlan
from truthflow.training_data.split import SPLITS, Split
from truthflow.training_data.writers import (
    AugmentedManifestWriter,
    CocoWriter,
    FormatWriter,
    LstWriter,
    VocWriter,
    YoloWriter,
)

IMAGE_LIST = "images.csv"
IMAGE_LIST_HEADER = ("split", "source-ref", "path")


@dataclass
class ShardResult:
    """What one shard wrote. ``class_counts[split][name]`` counts boxes (detection) or images (classification)."""

    index: int
    images: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    boxes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    images_without_boxes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped_by_format: dict[str, int] = field(default_factory=dict)
    max_boxes_per_image: int = 0
    renamed_images: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "images": self.images,
            "boxes": self.boxes,
            "images_without_boxes": self.images_without_boxes,
            "class_counts": self.class_counts,
            "skipped_by_format": self.skipped_by_format,
            "max_boxes_per_image": self.max_boxes_per_image,
            "renamed_images": self.renamed_images,
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> ShardResult:
        return cls(
            index=int(value["index"]),
            images={part: int(value["images"][part]) for part in SPLITS},
            boxes={part: int(value["boxes"][part]) for part in SPLITS},
            images_without_boxes={part: int(value["images_without_boxes"][part]) for part in SPLITS},
            class_counts={part: {name: int(n) for name, n in value["class_counts"][part].items()} for part in SPLITS},
            skipped_by_format={name: int(n) for name, n in value["skipped_by_format"].items()},
            max_boxes_per_image=int(value["max_boxes_per_image"]),
            renamed_images=int(value["renamed_images"]),
        )


def convert_shard(
    plan: TrainingDataPlan,
    shard: ShardPlan,
    names: ShardNames,
    records: Iterable[tuple[ManifestRecord, str]],
    *,
    files: Destination,
    parts: Destination,
) -> ShardResult:
    """Convert the shard's kept records (see the module docstring). A shard whose input does not hold the images
    the plan counted raises ``ValueError`` (the input changed after it was planned)."""
    class_index = ClassIndex(plan.class_names)
    result = ShardResult(index=shard.index, class_counts={part: dict.fromkeys(class_index, 0) for part in SPLITS})
    writers = _writers(plan, shard, class_index, files=files, parts=parts)
    converted = 0
    try:
        with parts.open_text(IMAGE_LIST) as image_list:
            rows = csv.writer(image_list, lineterminator="\n")
            for position, (record, stratum) in enumerate(records):
                if position >= shard.images:
                    raise ValueError(f"shard {shard.index} holds more than the {shard.images} images planned")
                part = plan.split.assign(record.source_ref, stratum)
                image_name = names.file_name(position, record.source_ref)
                rows.writerow([part, record.source_ref, f"images/{part}/{image_name}"])
                _count(result, record, part, class_index)
                for writer in writers:
                    writer.add(record, part, image_name)
                converted = position + 1
    finally:
        for writer in writers:
            writer.close()
    if converted != shard.images:
        raise ValueError(
            f"shard {shard.index} holds {converted} images where the plan counted {shard.images}: "
            "the input changed after it was planned"
        )
    result.skipped_by_format = {writer.name: writer.skipped for writer in writers}
    result.renamed_images = names.n_renamed
    return result


def _count(result: ShardResult, record: ManifestRecord, part: Split, class_index: ClassIndex) -> None:
    result.images[part] += 1
    counts = result.class_counts[part]
    if isinstance(record, ClassificationRecord):
        counts[class_index.names[class_index.index_of(record.label)]] += 1
        return
    result.boxes[part] += len(record.boxes)
    result.max_boxes_per_image = max(result.max_boxes_per_image, len(record.boxes))
    if not record.boxes:
        result.images_without_boxes[part] += 1
    for box in record.boxes:
        counts[class_index.names[class_index.index_of(box.label)]] += 1


def _writers(
    plan: TrainingDataPlan, shard: ShardPlan, class_index: ClassIndex, *, files: Destination, parts: Destination
) -> list[FormatWriter]:
    before = shard.before
    writers: list[FormatWriter] = []
    formats: Sequence[Format] = list(dict.fromkeys(plan.formats))
    for name in formats:
        if name == "augmented-manifest":
            writers.append(
                AugmentedManifestWriter(
                    parts,
                    class_index,
                    label_attribute_name=plan.label_attribute_name,
                    keep_images_without_boxes=plan.keep_images_without_boxes,
                )
            )
        elif name == "lst":
            writers.append(LstWriter(parts, class_index, first_index={part: before[part].lst_lines for part in SPLITS}))
        elif name == "yolo":
            writers.append(YoloWriter(files, class_index))
        elif name == "coco":
            writers.append(
                CocoWriter(
                    parts,
                    class_index,
                    first_image_id={part: before[part].images for part in SPLITS},
                    first_annotation_id={part: before[part].boxes for part in SPLITS},
                )
            )
        else:
            writers.append(VocWriter(files, one_based=plan.voc_one_based))
    return writers
