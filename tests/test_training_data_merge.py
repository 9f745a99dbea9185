"""Merging several labeling jobs (manifests and consolidated tables) into one class index, by category name."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from truthflow.groundtruth import (
    DetectionRecord,
    LabeledBox,
    detection_annotation,
    dump_manifest_line,
    output_manifest_line,
    parse_output_manifest_line,
)
from truthflow.training_data import (
    BoxTableSource,
    ClassificationTableSource,
    ClassIndex,
    ManifestSource,
    MemoryDestination,
    SplitConfig,
    build_training_data,
    csv_rows,
    merge_class_names,
    merged_class_names,
)


def job_lines(job: str, class_names: list[str], images: dict[str, list[str]]) -> list[str]:
    """One line per image; each image gets one 10x10 box per label listed."""
    lines = []
    for image, labels in images.items():
        boxes = [LabeledBox(label, 10 * position, 0, 10, 10, confidence=0.9) for position, label in enumerate(labels)]
        annotation = detection_annotation(
            label_attribute_name=job,
            class_names=class_names,
            boxes=boxes,
            image_width=100,
            image_height=50,
            job_name=job,
            creation_date="2024-01-01T00:00:00.000000",
        )
        lines.append(dump_manifest_line(output_manifest_line({"source-ref": f"s3://b/{job}/{image}"}, annotation)))
    return lines


JOB_A = job_lines("job-a", ["cat", "dog"], {"a1.jpg": ["cat", "dog"], "a2.jpg": ["dog"]})
JOB_B = job_lines("job-b", ["dog", "bird", "cat"], {"b1.jpg": ["bird", "cat"], "b2.jpg": ["dog", "dog"]})


def test_merge_class_names_keeps_first_seen_order():
    assert merge_class_names(["cat", "dog"], ["dog", "bird", " cat "]) == ["cat", "dog", "bird"]
    assert ClassIndex(["cat", "dog"]).index_of("dog ") == 1
    with pytest.raises(ValueError, match="'owl' is not in the class list"):
        ClassIndex(["cat"]).index_of("owl")
    with pytest.raises(ValueError, match="appears twice"):
        ClassIndex(["cat", "cat"])


def test_two_jobs_with_overlapping_categories_share_one_index():
    sources = [
        ManifestSource(lambda: JOB_A, class_names=["cat", "dog"]),
        ManifestSource(lambda: JOB_B, class_names=["dog", "bird", "cat"]),
    ]
    assert merged_class_names(sources) == ["cat", "dog", "bird"]
    destination = MemoryDestination()
    summary = build_training_data(
        sources, destination, split=SplitConfig(validation_fraction=0.0), label_attribute_name="animals"
    )
    assert summary.class_names == ["cat", "dog", "bird"]
    assert destination.text("classes.txt") == "cat\ndog\nbird\n"
    # b1: bird (job-b class 1) at x 0-10 and cat (job-b class 2) at x 10-20 -> merged ids 2 and 0.
    assert destination.text("labels/train/b1.txt") == (
        "2 0.050000 0.100000 0.100000 0.200000\n0 0.150000 0.100000 0.100000 0.200000\n"
    )
    assert destination.text("labels/train/b2.txt").split()[0::5] == ["1", "1"]
    lines = [json.loads(line) for line in destination.text("train.manifest").splitlines()]
    assert all("animals" in line and "job-a" not in line and "job-b" not in line for line in lines)
    by_image = {line["source-ref"].rsplit("/", 1)[1]: line for line in lines}
    assert [box["class_id"] for box in by_image["b1.jpg"]["animals"]["annotations"]] == [2, 0]
    assert by_image["b1.jpg"]["animals-metadata"]["class-map"] == {"0": "cat", "2": "bird"}
    record = parse_output_manifest_line(by_image["b1.jpg"])
    assert isinstance(record, DetectionRecord) and [box.label for box in record.boxes] == ["bird", "cat"]
    assert summary.class_counts["train"] == {"cat": 2, "dog": 4, "bird": 1}


def test_classes_are_taken_from_manifests_in_class_id_order_when_no_label_file_is_given():
    # Job B's lines name dog (0), bird (1), cat (2) only through their class-maps.
    assert merged_class_names([ManifestSource(lambda: JOB_B), ManifestSource(lambda: JOB_A)]) == ["dog", "bird", "cat"]


def test_more_than_thirty_categories_across_jobs():
    first = [f"part-{number:02d}" for number in range(20)]
    second = [f"part-{number:02d}" for number in range(15, 35)]
    lines_first = job_lines("first", first, {f"f{number}.jpg": [name] for number, name in enumerate(first)})
    lines_second = job_lines("second", second, {f"s{number}.jpg": [name] for number, name in enumerate(second)})
    destination = MemoryDestination()
    summary = build_training_data(
        [ManifestSource(lambda: lines_first), ManifestSource(lambda: lines_second)],
        destination,
        formats=["yolo", "coco"],
    )
    expected = [f"part-{number:02d}" for number in range(35)]
    assert summary.class_names == expected
    assert destination.text("classes.txt").splitlines() == expected
    assert destination.text("data.yaml").count('"part-') == 35
    coco = json.loads(destination.text("coco/train.json"))
    assert [category["name"] for category in coco["categories"]] == expected
    labels = [text for path, text in destination.files.items() if path.startswith("labels/s")]
    assert labels == []  # YOLO label folders are per split, never per job
    class_ids = {int(str(text).split()[0]) for path, text in destination.files.items() if path.startswith("labels/")}
    assert class_ids == set(range(35))


def test_consolidated_tables_merge_with_manifests(tmp_path):
    table = tmp_path / "boxes.csv"
    table.write_text(
        "image,label,left,top,width,height,confidence\n"
        "s3://b/t/1.jpg,owl,0,0,10,10,0.8\n"
        "s3://b/t/1.jpg,cat,10,0,10,10,0.7\n"
        "s3://b/t/2.jpg,owl,5,5,10,10,\n",
        encoding="utf-8",
    )
    sizes = {"s3://b/t/1.jpg": (100, 50), "s3://b/t/2.jpg": (200, 100)}
    sources = [ManifestSource(lambda: JOB_A), BoxTableSource(lambda: csv_rows(table), image_size=sizes)]
    destination = MemoryDestination()
    summary = build_training_data(sources, destination, split=SplitConfig(0.0), formats=["yolo"])
    assert summary.class_names == ["cat", "dog", "owl"]
    assert destination.text("labels/train/1.txt") == (
        "2 0.050000 0.100000 0.100000 0.200000\n0 0.150000 0.100000 0.100000 0.200000\n"
    )
    assert destination.text("labels/train/2.txt") == "2 0.050000 0.100000 0.050000 0.100000\n"


def test_table_errors_name_the_row():
    rows = [{"image": "s3://b/1.jpg", "label": "owl", "left": "x", "top": "0", "width": "1", "height": "1"}]
    with pytest.raises(ValueError, match="row 2: column 'left': 'x' is not a finite number"):
        list(BoxTableSource(lambda: rows, image_size={"s3://b/1.jpg": (5, 5)})())
    with pytest.raises(ValueError, match=re.escape("no image size for 's3://b/1.jpg'")):
        list(BoxTableSource(lambda: [{**rows[0], "left": "0"}], image_size={})())


def test_classification_table_source():
    text = "item,label,confidence\ns3://b/1.jpg,owl,0.9\ns3://b/2.jpg,heron,0.6\ns3://b/3.jpg,owl,\n"
    source = ClassificationTableSource(lambda: csv.DictReader(io.StringIO(text)), class_names=["heron", "owl"])
    destination = MemoryDestination()
    summary = build_training_data(source, destination, split=SplitConfig(0.0))
    assert summary.task == "image-classification"
    assert destination.text("train.lst") == "0\t1\t1.jpg\n1\t0\t2.jpg\n2\t1\t3.jpg\n"
    first = json.loads(destination.text("train.manifest").splitlines()[0])
    assert first == {
        "source-ref": "s3://b/1.jpg",
        "label": 1,
        "label-metadata": {"class-name": "owl", "type": "groundtruth/image-classification", "confidence": 0.9},
    }
