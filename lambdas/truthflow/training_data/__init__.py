"""Training data from consolidated labels: split, exclusion rule, class merging and the training formats.

Everything streams (iterables of lines in, a :class:`Destination` out) so that the Lambda adapters can read from and
write to S3; no AWS calls here. The entry point is :func:`build_training_data`; the pipeline runs its three steps
(:func:`TrainingDataPlanner` over the whole manifest, :func:`convert_shard` per shard, :func:`join_training_data`)
in separate Lambda calls.
"""

from truthflow.training_data.classes import ClassIndex, class_list_text, merge_class_names
from truthflow.training_data.conversion import build_training_data, merged_class_names
from truthflow.training_data.conversion_summary import ConversionSummary
from truthflow.training_data.destinations import Destination, DirectoryDestination, MemoryDestination
from truthflow.training_data.exclusion import ExclusionCounts, ExclusionRule, apply_to_detection, clip_box
from truthflow.training_data.formats import (
    coco_annotation,
    coco_categories,
    image_file_name,
    lst_classification_line,
    lst_detection_line,
    lst_label_width,
    voc_corners,
    voc_xml,
    yolo_line,
)
from truthflow.training_data.join import JoinStorage, join_training_data, merged_summary, part_paths
from truthflow.training_data.manifest_lines import ManifestLine, manifest_lines
from truthflow.training_data.plan import (
    FORMATS_BY_TASK,
    ShardNames,
    ShardPlan,
    SplitCounts,
    TrainingDataPlan,
    TrainingDataPlanner,
    kept_record,
)
from truthflow.training_data.shards import ShardResult, convert_shard
from truthflow.training_data.sources import (
    BoxTableSource,
    ClassificationTableSource,
    ManifestSource,
    RecordSource,
    csv_rows,
)
from truthflow.training_data.split import SplitConfig, SplitPlan, SplitPlanner, detection_stratum, validation_count
from truthflow.training_data.visualize import render_boxes_png, render_record_png

__all__ = [
    "FORMATS_BY_TASK",
    "BoxTableSource",
    "ClassIndex",
    "ClassificationTableSource",
    "ConversionSummary",
    "Destination",
    "DirectoryDestination",
    "ExclusionCounts",
    "ExclusionRule",
    "JoinStorage",
    "ManifestLine",
    "ManifestSource",
    "MemoryDestination",
    "RecordSource",
    "ShardNames",
    "ShardPlan",
    "ShardResult",
    "SplitConfig",
    "SplitCounts",
    "SplitPlan",
    "SplitPlanner",
    "TrainingDataPlan",
    "TrainingDataPlanner",
    "apply_to_detection",
    "build_training_data",
    "class_list_text",
    "clip_box",
    "coco_annotation",
    "coco_categories",
    "convert_shard",
    "csv_rows",
    "detection_stratum",
    "image_file_name",
    "join_training_data",
    "kept_record",
    "lst_classification_line",
    "lst_detection_line",
    "lst_label_width",
    "manifest_lines",
    "merge_class_names",
    "merged_class_names",
    "merged_summary",
    "part_paths",
    "render_boxes_png",
    "render_record_png",
    "validation_count",
    "voc_corners",
    "voc_xml",
    "yolo_line",
]
