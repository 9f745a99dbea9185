"""Training data from consolidated labels: split, exclusion rule, class merging and the training formats.

Everything streams (iterables of lines in, a :class:`Destination` out) so that the Lambda adapters can read from and
write to S3; no AWS calls here. The entry point is :func:`build_training_data`.
"""

from truthflow.training_data.classes import ClassIndex, class_list_text, merge_class_names
from truthflow.training_data.conversion import (
    FORMATS_BY_TASK,
    ConversionSummary,
    build_training_data,
    merged_class_names,
)
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
    "ManifestSource",
    "MemoryDestination",
    "RecordSource",
    "SplitConfig",
    "SplitPlan",
    "SplitPlanner",
    "apply_to_detection",
    "build_training_data",
    "class_list_text",
    "clip_box",
    "coco_annotation",
    "coco_categories",
    "csv_rows",
    "detection_stratum",
    "image_file_name",
    "lst_classification_line",
    "lst_detection_line",
    "lst_label_width",
    "merge_class_names",
    "merged_class_names",
    "render_boxes_png",
    "render_record_png",
    "validation_count",
    "voc_corners",
    "voc_xml",
    "yolo_line",
]
