"""Consolidated labels -> a train/validation split in every training format, reading the input once.

The conversion is planned, converted and joined (:mod:`~truthflow.training_data.plan`,
:mod:`~truthflow.training_data.shards`, :mod:`~truthflow.training_data.join`); the pipeline runs the three steps in
separate Lambda calls over shards of the manifest, :func:`build_training_data` runs them in this process over one
shard. Pass 1 reads every source once: each record is parsed, its boxes clipped and filtered by the exclusion rule
(the exclusions are counted here), and the result is appended to a temporary spool file (``marshal``,
length-prefixed), while the planner keeps 32 bytes per image. Pass 2 reads the spool back and hands each image to one
writer per format; the join assembles the files. Memory therefore stays flat in the number of lines apart from those
32 bytes per image, every output file is streamed, and sources are read only once.

Besides the format files (see :mod:`truthflow.training_data.writers`) the destination receives:

* ``images.csv`` (``split,source-ref,path``): where the adapter must copy each image (``images/<split>/<name>``);
* ``classes.txt``: the class names, one a line, in class-index order;
* ``summary.json``: the :class:`ConversionSummary`.

Image file names are the S3 key's last segment. When two images share a stem (``a/cat.jpg`` and ``b/cat.png``, or
stems that differ only in case), each of them gets ``<stem>_<8 hex digits of a hash of its source-ref><suffix>``
instead, decided from the whole input so that the result does not depend on line order; the same image listed again
gets ``_2``, ``_3``, ... after that.
"""

from __future__ import annotations

import marshal
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from truthflow.groundtruth.output_manifest import ClassificationRecord, DetectionRecord, LabeledBox, ManifestRecord
from truthflow.training_data.conversion_summary import ConversionSummary
from truthflow.training_data.destinations import Destination, DirectoryDestination
from truthflow.training_data.exclusion import ExclusionRule
from truthflow.training_data.join import join_training_data
from truthflow.training_data.plan import FORMATS_BY_TASK, Format, Task, TrainingDataPlanner
from truthflow.training_data.plan import merged_class_names as _merged_class_names
from truthflow.training_data.shards import convert_shard
from truthflow.training_data.sources import RecordSource
from truthflow.training_data.split import SplitConfig

__all__ = ["FORMATS_BY_TASK", "ConversionSummary", "Format", "Task", "build_training_data", "merged_class_names"]
_CHUNK_CHARACTERS = 1 << 16


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
    planner = TrainingDataPlanner(split=split, exclusion=exclusion)
    with tempfile.TemporaryDirectory(prefix="truthflow-training-") as work, tempfile.TemporaryFile() as spool_file:
        spool = _Spool(spool_file)
        unlabeled = 0
        for source in source_list:
            planner.begin_source(source.declared_class_names)
            for record in source():
                kept = planner.add(record)
                if kept is not None:
                    spool.write(*kept)
            unlabeled += int(getattr(getattr(source, "stats", None), "unlabeled", 0))
        plan, names = planner.finish(
            unlabeled_lines=unlabeled,
            formats=formats,
            class_names=class_names,
            label_attribute_name=label_attribute_name,
            keep_images_without_boxes=keep_images_without_boxes,
            voc_one_based=voc_one_based,
        )
        parts = Path(work)
        [shard] = plan.shards
        result = convert_shard(
            plan, shard, names[0], spool.read(), files=destination, parts=DirectoryDestination(parts)
        )
        return join_training_data(plan, [result], _LocalJoin(parts, destination))


def merged_class_names(sources: RecordSource | Sequence[RecordSource]) -> list[str]:
    """The class list :func:`build_training_data` would use: each source's classes (its declared label list, then
    any other names seen in its records, ordered by the job's ``class_id``), merged in first-seen order across
    sources. Reads every source once."""
    return _merged_class_names((source.declared_class_names, source()) for source in _as_list(sources))


# --- internals --------------------------------------------------------------------------------------------------


def _as_list(sources: RecordSource | Sequence[RecordSource]) -> list[RecordSource]:
    source_list: list[RecordSource] = list(sources) if isinstance(sources, Sequence) else [sources]
    if not source_list:
        raise ValueError("no sources to convert")
    return source_list


class _LocalJoin:
    """The join's storage in this process: parts in a local folder, files to the destination."""

    def __init__(self, parts: Path, destination: Destination) -> None:
        self._parts = parts
        self._destination = destination

    def read_part(self, shard: int, path: str) -> Iterator[str]:
        with (self._parts / path).open(encoding="utf-8", newline="") as stream:
            while chunk := stream.read(_CHUNK_CHARACTERS):
                yield chunk

    def write_file(self, path: str, chunks: Iterable[str]) -> None:
        with self._destination.open_text(path) as stream:
            for chunk in chunks:
                stream.write(chunk)


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
