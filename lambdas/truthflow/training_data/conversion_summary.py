"""What a conversion did: :class:`ConversionSummary`, written as ``summary.json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from truthflow.training_data.exclusion import ExclusionCounts
from truthflow.training_data.formats import lst_label_width
from truthflow.training_data.plan import Task
from truthflow.training_data.split import SPLITS


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
