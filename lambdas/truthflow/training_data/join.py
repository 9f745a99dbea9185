"""The last step of a conversion: the shards' parts concatenated into the dataset's files, and the summary.

Every shard's ``<split>.manifest``, ``<split>.lst`` and ``images.csv`` parts are concatenated in shard order (the
image list under its header line); ``coco/<split>.json`` wraps the shards' non-empty image and annotation pieces in
one document; ``data.yaml`` (YOLO), ``classes.txt`` and ``summary.json`` are written from the plan. The result is
the same, byte for byte, as one pass over all images would write, because the plan fixed everything that depends
on other shards (split, names, indices and ids).

Storage comes in through :class:`JoinStorage`: parts are read, and joined files written, as streams of text chunks,
so that a file of any size passes through in bounded memory.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from truthflow.training_data.classes import class_list_text
from truthflow.training_data.conversion_summary import ConversionSummary
from truthflow.training_data.plan import TrainingDataPlan
from truthflow.training_data.shards import IMAGE_LIST, IMAGE_LIST_HEADER, ShardResult
from truthflow.training_data.split import SPLITS
from truthflow.training_data.writers import coco_document, coco_piece, yolo_dataset_file


class JoinStorage(Protocol):
    """Where the shards' parts are, and where the dataset's files go."""

    def read_part(self, shard: int, path: str) -> Iterable[str]:
        """Shard ``shard``'s part ``path`` as text chunks."""
        ...

    def write_file(self, path: str, chunks: Iterable[str]) -> None:
        """The dataset's file ``path``, from text chunks (consumed in order)."""
        ...


def part_paths(plan: TrainingDataPlan) -> list[str]:
    """Every part a shard of this plan writes."""
    paths = [IMAGE_LIST]
    for name in dict.fromkeys(plan.formats):
        if name == "augmented-manifest":
            paths += [f"{part}.manifest" for part in SPLITS]
        elif name == "lst":
            paths += [f"{part}.lst" for part in SPLITS]
        elif name == "coco":
            paths += [coco_piece(part, kind) for part in SPLITS for kind in ("images", "annotations")]
    return paths


def join_training_data(
    plan: TrainingDataPlan, results: Sequence[ShardResult], storage: JoinStorage
) -> ConversionSummary:
    """Write the dataset's files from the parts of the shards whose ``results`` are given (one per shard of the
    plan, in order) and return the summary (also written as ``summary.json``)."""
    indices = [result.index for result in results]
    if indices != [shard.index for shard in plan.shards]:
        raise ValueError(f"the join needs a result of every shard 0-{len(plan.shards) - 1} in order, got {indices}")
    summary = merged_summary(plan, results)
    storage.write_file(IMAGE_LIST, _with_header(_concatenated(storage, results, IMAGE_LIST)))
    for name in dict.fromkeys(plan.formats):
        if name in ("augmented-manifest", "lst"):
            extension = "manifest" if name == "augmented-manifest" else "lst"
            for part in SPLITS:
                storage.write_file(f"{part}.{extension}", _concatenated(storage, results, f"{part}.{extension}"))
        elif name == "coco":
            for part in SPLITS:
                images = [storage.read_part(result.index, coco_piece(part, "images"))
                          for result in results if result.images[part]]  # fmt: skip
                annotations = [storage.read_part(result.index, coco_piece(part, "annotations"))
                               for result in results if result.boxes[part]]  # fmt: skip
                storage.write_file(f"coco/{part}.json", coco_document(plan.class_names, images, annotations))
        elif name == "yolo":
            storage.write_file("data.yaml", [yolo_dataset_file(plan.class_names)])
    storage.write_file("classes.txt", [class_list_text(plan.class_names)])
    storage.write_file("summary.json", [json.dumps(summary.to_dict(), indent=2, ensure_ascii=False), "\n"])
    return summary


def merged_summary(plan: TrainingDataPlan, results: Sequence[ShardResult]) -> ConversionSummary:
    """The plan's findings (task, classes, exclusions, unlabeled lines) with the shards' counts added up."""
    summary = ConversionSummary(
        task=plan.task,
        class_names=list(plan.class_names),
        label_attribute_name=plan.label_attribute_name,
        formats=[str(name) for name in plan.formats],
        excluded=plan.excluded,
        unlabeled_lines=plan.unlabeled_lines,
    )
    summary.class_counts = {part: dict.fromkeys(plan.class_names, 0) for part in SPLITS}
    # In the formats' order, whatever order the shards' results were stored in.
    summary.skipped_by_format = dict.fromkeys(dict.fromkeys(plan.formats), 0)
    for result in results:
        for part in SPLITS:
            summary.images[part] += result.images[part]
            summary.boxes[part] += result.boxes[part]
            summary.images_without_boxes[part] += result.images_without_boxes[part]
            for name, count in result.class_counts[part].items():
                summary.class_counts[part][name] += count
        for name, count in result.skipped_by_format.items():
            summary.skipped_by_format[name] += count
        summary.max_boxes_per_image = max(summary.max_boxes_per_image, result.max_boxes_per_image)
        summary.renamed_images += result.renamed_images
    return summary


def _concatenated(storage: JoinStorage, results: Sequence[ShardResult], path: str) -> Iterator[str]:
    for result in results:
        yield from storage.read_part(result.index, path)


def _with_header(rows: Iterable[str]) -> Iterator[str]:
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(IMAGE_LIST_HEADER)
    yield header.getvalue()
    yield from rows
