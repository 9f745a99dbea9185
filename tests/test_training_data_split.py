"""The train/validation split: stratified exactly, reproducible, independent of line order."""

from __future__ import annotations

import csv
import io
import random

import pytest

from truthflow.groundtruth import (
    LabeledBox,
    classification_annotation,
    detection_annotation,
    dump_manifest_line,
    output_manifest_line,
)
from truthflow.training_data import (
    ManifestSource,
    MemoryDestination,
    SplitConfig,
    SplitPlanner,
    build_training_data,
    detection_stratum,
    validation_count,
)

CLASSES = ["owl", "falcon", "heron"]


def classification_lines(counts: dict[str, int]) -> list[str]:
    lines = []
    for label, count in counts.items():
        for number in range(count):
            annotation = classification_annotation(
                label_attribute_name="birds",
                class_names=CLASSES,
                label=label,
                confidence=0.9,
                job_name="birds",
                creation_date="2024-01-01T00:00:00.000000",
            )
            lines.append(
                dump_manifest_line(output_manifest_line({"source-ref": f"s3://b/{label}/{number}.jpg"}, annotation))
            )
    return lines


def split_of(lines: list[str], config: SplitConfig) -> dict[str, str]:
    destination = MemoryDestination()
    build_training_data(ManifestSource(lambda: lines), destination, split=config, formats=["augmented-manifest"])
    rows = csv.DictReader(io.StringIO(destination.text("images.csv")))
    return {row["source-ref"]: row["split"] for row in rows}


def test_split_is_exactly_stratified():
    lines = classification_lines({"owl": 100, "falcon": 50, "heron": 10})
    assignment = split_of(lines, SplitConfig(validation_fraction=0.2, seed=7))
    validation = [uri.split("/")[3] for uri, part in assignment.items() if part == "validation"]
    assert {label: validation.count(label) for label in CLASSES} == {"owl": 20, "falcon": 10, "heron": 2}


def test_split_does_not_depend_on_line_order_and_follows_the_seed():
    lines = classification_lines({"owl": 40, "falcon": 25, "heron": 9})
    shuffled = lines[:]
    random.Random(3).shuffle(shuffled)
    first = split_of(lines, SplitConfig(seed=11))
    assert split_of(shuffled, SplitConfig(seed=11)) == first
    assert split_of(lines, SplitConfig(seed=11)) == first
    other_seed = split_of(lines, SplitConfig(seed=12))
    assert other_seed != first
    assert sorted(other_seed.values()).count("validation") == sorted(first.values()).count("validation")


def test_summary_counts_per_split_and_class():
    destination = MemoryDestination()
    lines = classification_lines({"owl": 10, "falcon": 5, "heron": 1})
    summary = build_training_data(ManifestSource(lambda: lines), destination, split=SplitConfig(0.2, seed=1))
    assert summary.images == {"train": 13, "validation": 3}
    assert summary.class_counts == {
        "train": {"owl": 8, "falcon": 4, "heron": 1},
        "validation": {"owl": 2, "falcon": 1, "heron": 0},
    }


def test_detection_images_are_stratified_by_their_most_frequent_class():
    lines = []
    for number in range(20):
        boxes = [LabeledBox("owl", 0, 0, 10, 10), LabeledBox("owl", 5, 5, 10, 10), LabeledBox("heron", 1, 1, 5, 5)]
        if number >= 10:
            boxes = [LabeledBox("heron", 0, 0, 10, 10)]
        annotation = detection_annotation(
            label_attribute_name="birds",
            class_names=CLASSES,
            boxes=boxes,
            image_width=100,
            image_height=100,
            job_name="birds",
            creation_date="2024-01-01T00:00:00.000000",
        )
        lines.append(dump_manifest_line(output_manifest_line({"source-ref": f"s3://b/{number}.jpg"}, annotation)))
    assignment = split_of(lines, SplitConfig(validation_fraction=0.3))
    validation = [int(uri.split("/")[-1].split(".")[0]) for uri, part in assignment.items() if part == "validation"]
    assert sum(number < 10 for number in validation) == 3
    assert sum(number >= 10 for number in validation) == 3


def test_detection_stratum():
    assert detection_stratum(["heron", "owl", "heron", "owl"]) == "heron"
    assert detection_stratum(["owl", "owl", "heron"]) == "owl"
    assert detection_stratum([]) == ""


@pytest.mark.parametrize(
    ("n_images", "fraction", "expected"),
    [(1, 0.5, 0), (2, 0.2, 1), (3, 0.99, 2), (10, 0.0, 0), (10, 0.25, 3), (100, 0.2, 20), (7, 0.5, 4)],
)
def test_validation_count(n_images, fraction, expected):
    assert validation_count(n_images, fraction) == expected


def test_the_same_image_twice_lands_in_one_part():
    planner = SplitPlanner(SplitConfig(validation_fraction=0.5))
    for uri in ["s3://b/a.jpg", "s3://b/a.jpg", "s3://b/c.jpg", "s3://b/d.jpg"]:
        planner.add(uri, "owl")
    plan = planner.plan()
    assert plan.assign("s3://b/a.jpg", "owl") == plan.assign("s3://b/a.jpg", "owl")
    with pytest.raises(ValueError, match="not seen when the split was planned"):
        plan.assign("s3://b/a.jpg", "heron")


def test_fraction_must_be_below_one():
    with pytest.raises(ValueError, match="validation_fraction"):
        SplitConfig(validation_fraction=1.0)
