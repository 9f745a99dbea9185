"""The first pass of a conversion: everything that needs the whole input, decided before any file is written.

:class:`TrainingDataPlanner` is fed every labeled record once, in input order (``add``), and told where each
manifest line begins (``line``). Per kept image it keeps 32 bytes in arrays (split hash, stratum, kept boxes, file
stem hash, renamed-name hash), never the record. :meth:`TrainingDataPlanner.finish` then fixes:

* the task type, the class index (the job's labels, or the sources' classes merged by name) and the label attribute;
* the exclusion counts (boxes clipped and excluded, images below the confidence threshold);
* the split: per-stratum hash cut-offs (:mod:`truthflow.training_data.split`), so every image's part is known;
* the image file names: which images share a stem (``a/cat.jpg``, ``b/Cat.png``) and are renamed, and, for the same
  image listed twice, which repeat each occurrence is (see :class:`ShardNames`);
* the shards: byte ranges of the manifest of about ``shard_lines`` non-blank lines each (a small input is one
  shard), and for each shard how many kept images, ``.lst`` lines and boxes each split holds before it, so that a
  shard converted on its own numbers its ``.lst`` lines and COCO ids exactly as one pass over everything would.

Everything in the plan is JSON (``to_dict``/``from_dict``) so that the shards can run in other processes.
"""

from __future__ import annotations

import base64
import itertools
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from truthflow.groundtruth.output_manifest import DetectionRecord, ManifestRecord
from truthflow.training_data.classes import ClassIndex, merge_class_names, ordered_by_source_id
from truthflow.training_data.exclusion import ExclusionCounts, ExclusionRule, apply_to_detection, keeps_classification
from truthflow.training_data.formats import image_file_name, split_file_name
from truthflow.training_data.split import (
    SPLITS,
    Split,
    SplitConfig,
    SplitPlan,
    detection_stratum,
    split_key_hash,
    stable_hash,
    validation_count,
)

Task = Literal["object-detection", "image-classification"]
Format = Literal["augmented-manifest", "lst", "yolo", "coco", "voc"]
FORMATS_BY_TASK: dict[Task, tuple[Format, ...]] = {
    "object-detection": ("augmented-manifest", "lst", "yolo", "coco", "voc"),
    "image-classification": ("augmented-manifest", "lst"),
}
PLAN_VERSION = 1


def record_task(record: ManifestRecord) -> Task:
    return "object-detection" if isinstance(record, DetectionRecord) else "image-classification"


def kept_record(
    record: ManifestRecord, rule: ExclusionRule, excluded: ExclusionCounts
) -> tuple[ManifestRecord, str] | None:
    """The record as it goes into the training data (boxes clipped, excluded ones removed) and its split stratum, or
    ``None`` when the exclusion rule keeps the whole image out; what is excluded is counted in ``excluded``."""
    if isinstance(record, DetectionRecord):
        kept = apply_to_detection(record, rule, excluded)
        return kept, detection_stratum(box.label.strip() for box in kept.boxes)
    if not keeps_classification(record, rule, excluded):
        return None
    return record, record.label.strip()


def renamed_file_name(source_ref: str, repeat: int = 1) -> str:
    """The file name of an image whose stem is shared: ``<stem>_<8 hex digits of a hash of its source-ref><suffix>``,
    with ``_<repeat>`` added for the second and later occurrences of the same name."""
    stem, suffix = split_file_name(image_file_name(source_ref))
    tag = f"{stable_hash(source_ref) & 0xFFFFFFFF:08x}"
    return f"{stem}_{tag}{suffix}" if repeat == 1 else f"{stem}_{tag}_{repeat}{suffix}"


def _stem_hash(source_ref: str) -> int:
    return stable_hash(split_file_name(image_file_name(source_ref))[0].casefold())


# --- the plan --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitCounts:
    """What one split holds (before a shard, or in all): kept images, ``.lst`` lines (detection images without boxes
    have none), and kept boxes."""

    images: int = 0
    lst_lines: int = 0
    boxes: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"images": self.images, "lst_lines": self.lst_lines, "boxes": self.boxes}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> SplitCounts:
        return cls(int(value["images"]), int(value["lst_lines"]), int(value["boxes"]))


@dataclass(frozen=True)
class ShardPlan:
    """One shard: manifest bytes ``[start, end)`` from line ``first_line`` on, its ``images`` kept images, and what
    each split holds before it."""

    index: int
    start: int
    end: int
    first_line: int
    images: int
    before: dict[Split, SplitCounts]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start": self.start,
            "end": self.end,
            "first_line": self.first_line,
            "images": self.images,
            "before": {part: self.before[part].to_dict() for part in SPLITS},
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> ShardPlan:
        before = value["before"]
        return cls(
            index=int(value["index"]),
            start=int(value["start"]),
            end=int(value["end"]),
            first_line=int(value["first_line"]),
            images=int(value["images"]),
            before={part: SplitCounts.from_dict(before[part]) for part in SPLITS},
        )


@dataclass(frozen=True)
class ShardNames:
    """Which images of a shard are renamed (bit ``i`` of ``renamed`` for its ``i``-th kept image, least significant
    bit first) and the repeat number of those that are not the first with their new name."""

    size: int
    renamed: bytes
    repeats: dict[int, int] = field(default_factory=dict)

    def file_name(self, position: int, source_ref: str) -> str:
        """The file name of the shard's ``position``-th kept image."""
        if not self.renamed[position >> 3] >> (position & 7) & 1:
            return image_file_name(source_ref)
        return renamed_file_name(source_ref, self.repeats.get(position, 1))

    @property
    def n_renamed(self) -> int:
        return int(np.unpackbits(np.frombuffer(self.renamed, dtype=np.uint8), count=self.size, bitorder="little").sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "renamed": base64.b64encode(self.renamed).decode("ascii"),
            "repeats": {str(position): repeat for position, repeat in self.repeats.items()},
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> ShardNames:
        return cls(
            size=int(value["size"]),
            renamed=base64.b64decode(value["renamed"]),
            repeats={int(position): int(repeat) for position, repeat in value["repeats"].items()},
        )


@dataclass
class TrainingDataPlan:
    """Everything a shard needs besides its records, and what the join adds to the shards' counts."""

    task: Task
    class_names: list[str]
    label_attribute_name: str
    formats: list[Format]
    split: SplitPlan
    exclusion: ExclusionRule
    excluded: ExclusionCounts
    unlabeled_lines: int
    totals: dict[Split, SplitCounts]
    without_boxes: dict[Split, int]
    shards: list[ShardPlan]
    keep_images_without_boxes: bool = False
    voc_one_based: bool = True

    @property
    def images(self) -> int:
        return sum(self.totals[part].images for part in SPLITS)

    def manifest_lines(self, part: Split) -> int:
        """Lines of ``<part>.manifest``: its images, less detection images without boxes unless they are kept."""
        dropped = 0 if self.keep_images_without_boxes or self.task != "object-detection" else self.without_boxes[part]
        return self.totals[part].images - dropped

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": PLAN_VERSION,
            "task": self.task,
            "class_names": self.class_names,
            "label_attribute_name": self.label_attribute_name,
            "formats": self.formats,
            # Cut-offs are 64-bit hashes: as text, since JSON readers elsewhere may hold numbers as doubles.
            "split": {
                "seed": self.split.seed,
                "cutoffs": {stratum: str(cutoff) for stratum, cutoff in self.split.cutoffs.items()},
                "stratum_sizes": self.split.stratum_sizes,
            },
            "exclusion": {
                "min_box_width": self.exclusion.min_box_width,
                "min_box_height": self.exclusion.min_box_height,
                "min_confidence": self.exclusion.min_confidence,
            },
            "excluded": self.excluded.to_dict(),
            "unlabeled_lines": self.unlabeled_lines,
            "totals": {part: self.totals[part].to_dict() for part in SPLITS},
            "without_boxes": self.without_boxes,
            "keep_images_without_boxes": self.keep_images_without_boxes,
            "voc_one_based": self.voc_one_based,
            "shards": [shard.to_dict() for shard in self.shards],
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> TrainingDataPlan:
        if value.get("version") != PLAN_VERSION:
            raise ValueError(f"training-data plan version {value.get('version')!r} is not {PLAN_VERSION}")
        split = value["split"]
        excluded = dict(value["excluded"])
        excluded.pop("boxes_excluded", None)
        return cls(
            task=value["task"],
            class_names=list(value["class_names"]),
            label_attribute_name=value["label_attribute_name"],
            formats=list(value["formats"]),
            split=SplitPlan(
                seed=int(split["seed"]),
                cutoffs={stratum: int(cutoff) for stratum, cutoff in split["cutoffs"].items()},
                stratum_sizes={stratum: int(size) for stratum, size in split["stratum_sizes"].items()},
            ),
            exclusion=ExclusionRule(**value["exclusion"]),
            excluded=ExclusionCounts(**excluded),
            unlabeled_lines=int(value["unlabeled_lines"]),
            totals={part: SplitCounts.from_dict(value["totals"][part]) for part in SPLITS},
            without_boxes={part: int(value["without_boxes"][part]) for part in SPLITS},
            keep_images_without_boxes=bool(value["keep_images_without_boxes"]),
            voc_one_based=bool(value["voc_one_based"]),
            shards=[ShardPlan.from_dict(shard) for shard in value["shards"]],
        )


# --- the first pass --------------------------------------------------------------------------------------------------


class TrainingDataPlanner:
    """Feed it every source's records once (``begin_source`` before each source, ``line`` before each non-blank
    manifest line when the input is to be sharded, ``add`` for each record), then call :meth:`finish`.

    ``shard_lines`` is the number of non-blank manifest lines per shard (``None``: one shard)."""

    def __init__(
        self,
        *,
        split: SplitConfig | None = None,
        exclusion: ExclusionRule | None = None,
        shard_lines: int | None = None,
    ) -> None:
        if shard_lines is not None and shard_lines < 1:
            raise ValueError(f"shard_lines must be at least 1, got {shard_lines}")
        self.config = split if split is not None else SplitConfig()
        self.rule = exclusion if exclusion is not None else ExclusionRule()
        self.excluded = ExclusionCounts()
        self._shard_lines = shard_lines
        self._task: Task | None = None
        self._first_attribute: str | None = None
        # Per source: its declared class list and the (name, class_id) pairs its records use, before exclusion (the
        # class list must not depend on the exclusion thresholds).
        self._declared: list[Sequence[str] | None] = []
        self._seen: list[dict[tuple[str, int | None], None]] = []
        # Per kept image, in input order.
        self._split_hashes: array[int] = array("Q")
        self._strata: array[int] = array("I")
        self._boxes: array[int] = array("I")
        self._stem_hashes: array[int] = array("Q")
        self._name_hashes: array[int] = array("Q")
        self._stratum_codes: dict[str, int] = {}
        # Shards: (first byte, first line number, kept images before it); the first starts at the input's start.
        self._shard_starts: list[tuple[int, int, int]] = [(0, 1, 0)]
        self._lines_in_shard = 0

    def begin_source(self, declared_class_names: Sequence[str] | None) -> None:
        self._declared.append(list(declared_class_names) if declared_class_names is not None else None)
        self._seen.append({})

    def line(self, start: int, number: int) -> None:
        """A non-blank manifest line begins at byte ``start`` (line ``number``); a new shard begins here when the
        current one is full."""
        if self._shard_lines is not None and self._lines_in_shard >= self._shard_lines:
            self._shard_starts.append((start, number, len(self._split_hashes)))
            self._lines_in_shard = 0
        self._lines_in_shard += 1

    def add(self, record: ManifestRecord) -> tuple[ManifestRecord, str] | None:
        """Take one record; returns it as kept (with its stratum), or ``None`` when it is excluded."""
        if not self._seen:
            self.begin_source(None)
        task = record_task(record)
        if self._task is None:
            self._task, self._first_attribute = task, record.label_attribute_name
        elif task != self._task:
            raise ValueError(
                f"{record.source_ref} (line {record.line_number}) is {task}, but earlier records are "
                f"{self._task}: convert one task type at a time"
            )
        seen = self._seen[-1]
        if isinstance(record, DetectionRecord):
            for box in record.boxes:
                seen.setdefault((box.label, box.class_id), None)
        else:
            seen.setdefault((record.label, record.class_id), None)
        kept = kept_record(record, self.rule, self.excluded)
        if kept is None:
            return None
        image, stratum = kept
        code = self._stratum_codes.setdefault(stratum, len(self._stratum_codes))
        self._split_hashes.append(split_key_hash(image.source_ref, self.config.seed))
        self._strata.append(code)
        self._boxes.append(len(image.boxes) if isinstance(image, DetectionRecord) else 0)
        self._stem_hashes.append(_stem_hash(image.source_ref))
        self._name_hashes.append(stable_hash(renamed_file_name(image.source_ref).casefold()))
        return kept

    def class_names(self) -> list[str]:
        """The sources' classes (each source's declared list, then any other names its records use, ordered by
        the source's ``class_id``) merged by name in first-seen order across sources."""
        per_source = []
        for declared, seen in zip(self._declared, self._seen, strict=True):
            ordered = ordered_by_source_id(seen)
            per_source.append([*declared, *ordered] if declared is not None else ordered)
        merged = merge_class_names(*per_source)
        if not merged:
            raise ValueError("no class names: no image has a box and no label list was given (pass class_names)")
        return merged

    def finish(
        self,
        *,
        end: int = 0,
        unlabeled_lines: int = 0,
        formats: Sequence[Format] | None = None,
        class_names: Sequence[str] | None = None,
        label_attribute_name: str | None = None,
        keep_images_without_boxes: bool = False,
        voc_one_based: bool = True,
    ) -> tuple[TrainingDataPlan, list[ShardNames]]:
        """The plan and each shard's file names. ``end`` is the input's length in bytes (the last shard's end);
        ``class_names`` fixes the class index (a label outside it is an error), else the sources' classes are
        merged; ``label_attribute_name`` is the augmented manifests' label key (default: the first record's)."""
        if self._task is None or self._first_attribute is None:
            raise ValueError("the sources hold no labeled images")
        task = self._task
        chosen = list(formats) if formats is not None else list(FORMATS_BY_TASK[task])
        unsupported = [name for name in chosen if name not in FORMATS_BY_TASK[task]]
        if unsupported:
            raise ValueError(
                f"formats {unsupported} are not available for {task}; choose from {list(FORMATS_BY_TASK[task])}"
            )
        class_index = ClassIndex(class_names if class_names is not None else self.class_names())
        missing = sorted({name for seen in self._seen for name, _ in seen if name not in class_index})
        if missing:
            raise ValueError(f"labels {missing} are not in the class list {list(class_index)}")

        hashes = np.frombuffer(self._split_hashes, dtype=np.uint64)
        strata = np.frombuffer(self._strata, dtype=np.uint32)
        boxes = np.frombuffer(self._boxes, dtype=np.uint32)
        split, validation = self._split(hashes, strata)
        starts = [kept_before for _, _, kept_before in self._shard_starts]
        image_ends = [*starts[1:], len(hashes)]
        # Each shard's share of each split, one shard's slice at a time (a few bytes per image at most).
        within: dict[Split, list[SplitCounts]] = {part: [] for part in SPLITS}
        without_boxes: dict[Split, int] = dict.fromkeys(SPLITS, 0)
        for start, stop in zip(starts, image_ends, strict=True):
            shard_validation, shard_boxes = validation[start:stop], boxes[start:stop]
            masks: tuple[tuple[Split, Any], ...] = (("train", ~shard_validation), ("validation", shard_validation))
            for part, mask in masks:
                images = int(np.count_nonzero(mask))
                empty = int(np.count_nonzero(mask & (shard_boxes == 0))) if task == "object-detection" else 0
                within[part].append(SplitCounts(images, images - empty, int(shard_boxes[mask].sum(dtype=np.int64))))
                without_boxes[part] += empty
        before: dict[Split, list[SplitCounts]] = {part: _running_totals(within[part]) for part in SPLITS}
        totals = {part: _running_totals([*within[part], SplitCounts()])[-1] for part in SPLITS}
        ends = [start for start, _, _ in self._shard_starts[1:]] + [end]
        shards = [
            ShardPlan(index, start, stop, first_line, image_end - kept_before,
                      {part: before[part][index] for part in SPLITS})
            for index, ((start, first_line, kept_before), stop, image_end) in enumerate(
                zip(self._shard_starts, ends, image_ends, strict=True))
        ]  # fmt: skip
        plan = TrainingDataPlan(
            task=task,
            class_names=list(class_index),
            label_attribute_name=label_attribute_name or self._first_attribute,
            formats=[name for name in chosen],
            split=split,
            exclusion=self.rule,
            excluded=self.excluded,
            unlabeled_lines=unlabeled_lines,
            totals=totals,
            without_boxes=without_boxes,
            shards=shards,
            keep_images_without_boxes=keep_images_without_boxes,
            voc_one_based=voc_one_based,
        )
        return plan, self._names([*starts, len(hashes)])

    def _split(self, hashes: np.ndarray[Any, Any], strata: np.ndarray[Any, Any]) -> tuple[SplitPlan, Any]:
        """Per-stratum cut-offs (the ``k`` smallest hashes of a stratum go to validation) and the validation mask."""
        names = list(self._stratum_codes)
        cutoffs: dict[str, int] = {}
        sizes: dict[str, int] = {}
        order = np.argsort(strata, kind="stable")
        bounds = np.searchsorted(strata[order], np.arange(len(names) + 1))
        has_cutoff = np.zeros(len(names), dtype=bool)
        cutoff_values = np.zeros(len(names), dtype=np.uint64)
        for code, name in enumerate(names):
            values = hashes[order[bounds[code] : bounds[code + 1]]]
            k = validation_count(len(values), self.config.validation_fraction)
            sizes[name] = len(values)
            if k == 0:
                cutoffs[name] = -1
                continue
            cutoff = np.partition(values, k - 1)[k - 1]
            cutoffs[name] = int(cutoff)
            has_cutoff[code], cutoff_values[code] = True, cutoff
        validation = has_cutoff[strata] & (hashes <= cutoff_values[strata])
        return SplitPlan(seed=self.config.seed, cutoffs=cutoffs, stratum_sizes=sizes), validation

    def _names(self, bounds: Sequence[int]) -> list[ShardNames]:
        """Images whose stem (case-folded) another kept image shares are renamed; an image whose new name another
        one took before it (the same ``source-ref`` listed twice) gets the next repeat number."""
        stems = np.frombuffer(self._stem_hashes, dtype=np.uint64)
        ordered = np.sort(stems)
        shared = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
        del ordered
        renamed = np.zeros(len(stems), dtype=bool)
        if len(shared):
            found = np.searchsorted(shared, stems)
            renamed = shared[np.minimum(found, len(shared) - 1)] == stems
            del found
        positions = np.flatnonzero(renamed)
        new_names = np.frombuffer(self._name_hashes, dtype=np.uint64)[positions]
        order = np.argsort(new_names, kind="stable")  # occurrences of one new name stay in input order
        sorted_names = new_names[order]
        group_start = np.searchsorted(sorted_names, sorted_names, side="left")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order)) - group_start
        repeated = np.flatnonzero(rank > 0)  # ascending, as positions are
        repeated_images, repeat_numbers = positions[repeated], rank[repeated] + 1
        names = []
        for start, stop in itertools.pairwise(bounds):
            bits = np.packbits(renamed[start:stop], bitorder="little").tobytes()
            low, high = np.searchsorted(repeated_images, [start, stop])
            shard_repeats = {int(image) - start: int(repeat) for image, repeat in
                             zip(repeated_images[low:high], repeat_numbers[low:high], strict=True)}  # fmt: skip
            names.append(ShardNames(size=stop - start, renamed=bits, repeats=shard_repeats))
        return names


def _running_totals(counts: Sequence[SplitCounts]) -> list[SplitCounts]:
    """What comes before each entry: ``[0, c0, c0 + c1, ...]`` (one per entry)."""
    totals, images, lst_lines, boxes = [], 0, 0, 0
    for count in counts:
        totals.append(SplitCounts(images, lst_lines, boxes))
        images, lst_lines, boxes = images + count.images, lst_lines + count.lst_lines, boxes + count.boxes
    return totals


def merged_class_names(sources: Iterable[tuple[Sequence[str] | None, Iterable[ManifestRecord]]]) -> list[str]:
    """The class list a conversion of these ``(declared class names, records)`` sources would use."""
    planner = TrainingDataPlanner()
    for declared, records in sources:
        planner.begin_source(declared)
        for record in records:
            planner.add(record)
    return planner.class_names()
