"""The exclusion rule: which labels stay out of the training data, and a count of everything it kept out.

Boxes are first clipped to the image (a box drawn past the edge keeps its visible part). A box is then excluded for
the first reason that applies, in this order, and counted under that reason only:

1. ``without_area``: nothing of it is inside the image, or it is degenerate (zero width or height after clipping);
2. ``low_confidence``: its confidence is below ``min_confidence``;
3. ``too_narrow``: its clipped width is below ``min_box_width`` pixels;
4. ``too_short``: its clipped height is below ``min_box_height`` pixels.

For classification the whole image is excluded when its confidence is below ``min_confidence``.

A missing confidence (a manifest without ``objects``) never fails the confidence test. Note that Ground Truth writes
confidence 0.00 whenever one worker labeled an object, so ``min_confidence > 0`` excludes every single-worker label.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from truthflow.groundtruth.output_manifest import ClassificationRecord, DetectionRecord, LabeledBox


@dataclass(frozen=True)
class ExclusionRule:
    """Thresholds; the defaults exclude only boxes that lie entirely outside the image."""

    min_box_width: float = 0.0
    min_box_height: float = 0.0
    min_confidence: float | None = None

    def __post_init__(self) -> None:
        if self.min_box_width < 0 or self.min_box_height < 0:
            raise ValueError("minimum box width and height must not be negative")
        if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be within [0, 1], got {self.min_confidence}")


@dataclass
class ExclusionCounts:
    """What the rule excluded, by reason (boxes) and images (classification)."""

    boxes_without_area: int = 0
    boxes_low_confidence: int = 0
    boxes_too_narrow: int = 0
    boxes_too_short: int = 0
    boxes_clipped: int = 0
    images_low_confidence: int = 0

    @property
    def boxes_excluded(self) -> int:
        return self.boxes_without_area + self.boxes_low_confidence + self.boxes_too_narrow + self.boxes_too_short

    def to_dict(self) -> dict[str, int]:
        counts = {field.name: int(getattr(self, field.name)) for field in fields(self)}
        counts["boxes_excluded"] = self.boxes_excluded
        return counts


def clip_box(box: LabeledBox, image_width: int, image_height: int) -> LabeledBox:
    """The part of ``box`` inside the image (possibly with zero width or height)."""
    left = min(max(box.left, 0), image_width)
    top = min(max(box.top, 0), image_height)
    right = min(max(box.left + box.width, 0), image_width)
    bottom = min(max(box.top + box.height, 0), image_height)
    if (left, top, right - left, bottom - top) == (box.left, box.top, box.width, box.height):
        return box
    return replace(box, left=left, top=top, width=right - left, height=bottom - top)


def apply_to_detection(
    record: DetectionRecord, rule: ExclusionRule, counts: ExclusionCounts | None = None
) -> DetectionRecord:
    """``record`` with its boxes clipped and the excluded ones removed; reasons are added to ``counts``."""
    kept: list[LabeledBox] = []
    changed = False
    for box in record.boxes:
        clipped = clip_box(box, record.image_width, record.image_height)
        reason = _exclusion_reason(clipped, rule)
        if reason is not None:
            changed = True
            if counts is not None:
                setattr(counts, reason, getattr(counts, reason) + 1)
            continue
        if clipped is not box:
            changed = True
            if counts is not None:
                counts.boxes_clipped += 1
        kept.append(clipped)
    return replace(record, boxes=tuple(kept)) if changed else record


def keeps_classification(
    record: ClassificationRecord, rule: ExclusionRule, counts: ExclusionCounts | None = None
) -> bool:
    """Whether a classification record stays; an excluded one is counted in ``counts``."""
    if rule.min_confidence is None or record.confidence is None or record.confidence >= rule.min_confidence:
        return True
    if counts is not None:
        counts.images_low_confidence += 1
    return False


def _exclusion_reason(box: LabeledBox, rule: ExclusionRule) -> str | None:
    if box.width <= 0 or box.height <= 0:
        return "boxes_without_area"
    if rule.min_confidence is not None and box.confidence is not None and box.confidence < rule.min_confidence:
        return "boxes_low_confidence"
    if box.width < rule.min_box_width:
        return "boxes_too_narrow"
    if box.height < rule.min_box_height:
        return "boxes_too_short"
    return None
