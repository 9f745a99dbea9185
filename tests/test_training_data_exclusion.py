"""The exclusion rule removes the right boxes and counts each under one reason."""

from __future__ import annotations

import json

import pytest

from truthflow.groundtruth import (
    DetectionRecord,
    LabeledBox,
    classification_annotation,
    detection_annotation,
    dump_manifest_line,
    output_manifest_line,
    parse_output_manifest_line,
)
from truthflow.training_data import (
    ExclusionCounts,
    ExclusionRule,
    ManifestSource,
    MemoryDestination,
    apply_to_detection,
    build_training_data,
    clip_box,
)

RULE = ExclusionRule(min_box_width=8, min_box_height=6, min_confidence=0.5)


def record_with(*boxes: LabeledBox) -> DetectionRecord:
    return DetectionRecord("s3://b/a.jpg", 100, 80, 3, tuple(boxes), "job", {})


def test_each_excluded_box_is_counted_once_under_the_first_reason():
    record = record_with(
        LabeledBox("pen", 10, 10, 20, 20, confidence=0.9),  # kept
        LabeledBox("pen", 120, 10, 20, 20, confidence=0.9),  # right of the image: no area
        LabeledBox("pen", 10, 10, 0, 20, confidence=0.9),  # degenerate: no area
        LabeledBox("pen", 10, 10, 20, 20, confidence=0.2),  # low confidence
        LabeledBox("pen", 10, 10, 4, 3, confidence=0.1),  # low confidence first, although also small
        LabeledBox("pen", 10, 10, 7, 20, confidence=0.9),  # too narrow
        LabeledBox("pen", 10, 10, 20, 5, confidence=0.9),  # too short
        LabeledBox("pen", 90, -10, 30, 40, confidence=None),  # clipped to (90, 0, 10, 30), no confidence: kept
    )
    counts = ExclusionCounts()
    kept = apply_to_detection(record, RULE, counts)
    assert kept.boxes == (
        LabeledBox("pen", 10, 10, 20, 20, confidence=0.9),
        LabeledBox("pen", 90, 0, 10, 30, confidence=None),
    )
    assert counts.to_dict() == {
        "boxes_without_area": 2,
        "boxes_low_confidence": 2,
        "boxes_too_narrow": 1,
        "boxes_too_short": 1,
        "boxes_clipped": 1,
        "images_low_confidence": 0,
        "boxes_excluded": 6,
    }


def test_the_default_rule_only_drops_boxes_without_area():
    record = record_with(LabeledBox("pen", 1, 1, 1, 1, confidence=0.0), LabeledBox("pen", -50, 1, 20, 20))
    counts = ExclusionCounts()
    kept = apply_to_detection(record, ExclusionRule(), counts)
    assert kept.boxes == (LabeledBox("pen", 1, 1, 1, 1, confidence=0.0),)
    assert counts.boxes_excluded == counts.boxes_without_area == 1


def test_clip_box_keeps_the_visible_part():
    assert clip_box(LabeledBox("pen", -10, 70, 30, 30), 100, 80) == LabeledBox("pen", 0, 70, 20, 10)
    inside = LabeledBox("pen", 1, 2, 3, 4)
    assert clip_box(inside, 100, 80) is inside


@pytest.mark.parametrize("rule", [{"min_box_width": -1}, {"min_confidence": 1.5}, {"min_confidence": -0.1}])
def test_rule_thresholds_are_checked(rule):
    with pytest.raises(ValueError):
        ExclusionRule(**rule)


def test_conversion_summary_reports_the_exclusions():
    lines = []
    for number in range(4):
        annotation = detection_annotation(
            label_attribute_name="job",
            class_names=["pen"],
            boxes=[LabeledBox("pen", 10, 10, 30, 30, confidence=0.9), LabeledBox("pen", 10, 10, 3, 30, confidence=0.9)],
            image_width=100,
            image_height=100,
            job_name="job",
            creation_date="2024-01-01T00:00:00.000000",
        )
        lines.append(dump_manifest_line(output_manifest_line({"source-ref": f"s3://b/{number}.jpg"}, annotation)))
    destination = MemoryDestination()
    summary = build_training_data(
        ManifestSource(lambda: lines),
        destination,
        exclusion=ExclusionRule(min_box_width=5),
        formats=["augmented-manifest"],
    )
    assert summary.excluded.boxes_too_narrow == 4
    assert summary.boxes == {"train": 3, "validation": 1}
    assert json.loads(destination.text("summary.json"))["excluded"]["boxes_too_narrow"] == 4
    written = destination.text("train.manifest").splitlines() + destination.text("validation.manifest").splitlines()
    records = [parse_output_manifest_line(line) for line in written]
    assert all(isinstance(record, DetectionRecord) and len(record.boxes) == 1 for record in records)
    metadata = json.loads(written[0])["job-metadata"]
    assert metadata["objects"] == [{"confidence": 0.9}]  # still aligned with the one annotation left


def test_low_confidence_classification_images_are_excluded_and_counted():
    lines = [
        dump_manifest_line(
            output_manifest_line(
                {"source-ref": f"s3://b/{number}.jpg"},
                classification_annotation(
                    label_attribute_name="animal",
                    class_names=["cat", "dog"],
                    label=["cat", "dog"][number % 2],
                    confidence=confidence,
                    job_name="animals",
                    creation_date="2024-01-01T00:00:00.000000",
                ),
            )
        )
        for number, confidence in enumerate([0.9, 0.95, 0.3, 0.99, 0.49])
    ]
    summary = build_training_data(
        ManifestSource(lambda: lines), MemoryDestination(), exclusion=ExclusionRule(min_confidence=0.5)
    )
    assert summary.excluded.images_low_confidence == 2
    assert sum(summary.images.values()) == 3
