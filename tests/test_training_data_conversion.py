"""The whole conversion: every file in place, names unique, errors clear, memory flat, speed as required."""

from __future__ import annotations

import csv
import gc
import io
import json
import random
import re
import tracemalloc
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from truthflow.groundtruth import (
    LabeledBox,
    classification_annotation,
    detection_annotation,
    dump_manifest_line,
    output_manifest_line,
)
from truthflow.training_data import (
    DirectoryDestination,
    ManifestSource,
    MemoryDestination,
    SplitConfig,
    build_training_data,
)

CLASSES = ["pen", "pencil", "eraser"]


def detection_line(source_ref: str, boxes: list[LabeledBox], size: tuple[int, int] = (640, 480)) -> str:
    annotation = detection_annotation(
        label_attribute_name="pens-v1",
        class_names=CLASSES,
        boxes=boxes,
        image_width=size[0],
        image_height=size[1],
        job_name="pens-v1",
        creation_date="2024-01-01T00:00:00.000000",
    )
    return dump_manifest_line(output_manifest_line({"source-ref": source_ref}, annotation))


def random_manifest(n_lines: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for number in range(n_lines):
        boxes = []
        for _ in range(rng.randint(0, 4)):
            width, height = rng.randint(1, 200), rng.randint(1, 200)
            left, top = rng.randint(0, 640 - width), rng.randint(0, 480 - height)
            boxes.append(LabeledBox(rng.choice(CLASSES), left, top, width, height, confidence=rng.random()))
        lines.append(detection_line(f"s3://bucket/images/{number}.jpg", boxes))
    return lines


def test_every_format_is_written_for_a_small_job():
    lines = [
        detection_line("s3://b/img/a.jpg", [LabeledBox("pen", 100, 50, 200, 100, confidence=0.9)]),
        detection_line("s3://b/img/b.jpg", [LabeledBox("eraser", 0, 0, 64, 48), LabeledBox("pen", 10, 10, 20, 20)]),
        detection_line("s3://b/img/c.jpg", []),
        '{"source-ref": "s3://b/img/unlabeled.jpg"}\n',
    ]
    destination = MemoryDestination()
    source = ManifestSource(lambda: lines, class_names=CLASSES)
    summary = build_training_data(source, destination, split=SplitConfig(0.0))
    files = destination.files
    assert set(files) == {
        "images.csv",
        "classes.txt",
        "summary.json",
        "train.manifest",
        "validation.manifest",
        "train.lst",
        "validation.lst",
        "labels/train/a.txt",
        "labels/train/b.txt",
        "labels/train/c.txt",
        "data.yaml",
        "coco/train.json",
        "coco/validation.json",
        "voc/train/a.xml",
        "voc/train/b.xml",
        "voc/train/c.xml",
    }
    assert destination.text("labels/train/a.txt") == "0 0.312500 0.208333 0.312500 0.208333\n"
    assert destination.text("labels/train/c.txt") == ""
    assert destination.text("train.lst").splitlines()[0] == (
        "0\t2\t5\t0\t0.156250\t0.104167\t0.468750\t0.312500\ta.jpg"
    )
    assert len(destination.text("train.lst").splitlines()) == 2  # the image without boxes is left out
    assert destination.text("data.yaml") == (
        'path: .\ntrain: images/train\nval: images/validation\nnames: {0: "pen", 1: "pencil", 2: "eraser"}\n'
    )
    coco = json.loads(destination.text("coco/train.json"))
    assert [image["file_name"] for image in coco["images"]] == ["a.jpg", "b.jpg", "c.jpg"]
    assert coco["annotations"][0] == {
        "id": 1,
        "image_id": 1,
        "category_id": 1,
        "bbox": [100, 50, 200, 100],
        "area": 20000,
        "iscrowd": 0,
    }
    assert [annotation["category_id"] for annotation in coco["annotations"]] == [1, 3, 1]
    assert json.loads(destination.text("coco/validation.json"))["images"] == []
    voc = ET.fromstring(destination.text("voc/train/b.xml"))
    assert [item.findtext("name") for item in voc.findall("object")] == ["eraser", "pen"]
    rows = list(csv.DictReader(io.StringIO(destination.text("images.csv"))))
    assert rows[0] == {"split": "train", "source-ref": "s3://b/img/a.jpg", "path": "images/train/a.jpg"}
    assert summary.unlabeled_lines == 1
    assert summary.images_without_boxes == {"train": 1, "validation": 0}
    assert summary.skipped_by_format == {"augmented-manifest": 1, "lst": 1, "yolo": 0, "coco": 0, "voc": 0}
    assert summary.max_boxes_per_image == 2 and summary.lst_label_width == 12
    assert json.loads(destination.text("summary.json"))["attribute_names"] == ["source-ref", "pens-v1"]


def test_images_without_boxes_can_be_kept_in_the_augmented_manifest():
    lines = [detection_line("s3://b/a.jpg", []), detection_line("s3://b/b.jpg", [LabeledBox("pen", 1, 1, 5, 5)])]
    destination = MemoryDestination()
    build_training_data(
        ManifestSource(lambda: lines),
        destination,
        split=SplitConfig(0.0),
        formats=["augmented-manifest"],
        keep_images_without_boxes=True,
    )
    manifest = [json.loads(line) for line in destination.text("train.manifest").splitlines()]
    assert manifest[0]["pens-v1"]["annotations"] == [] and manifest[0]["pens-v1-metadata"]["objects"] == []


def test_images_with_the_same_stem_get_distinct_names_whatever_the_line_order():
    lines = [
        detection_line("s3://b/day1/cat.jpg", [LabeledBox("pen", 0, 0, 10, 10)]),
        detection_line("s3://b/day2/cat.png", [LabeledBox("pencil", 0, 0, 10, 10)]),
        detection_line("s3://b/day2/dog.jpg", [LabeledBox("pen", 0, 0, 10, 10)]),
        detection_line("s3://b/day3/Cat.jpg", [LabeledBox("eraser", 0, 0, 10, 10)]),
    ]

    def names(ordered: list[str]) -> dict[str, str]:
        destination = MemoryDestination()
        summary = build_training_data(ManifestSource(lambda: ordered), destination, split=SplitConfig(0.0))
        assert summary.renamed_images == 3
        assert len([path for path in destination.files if path.startswith("labels/train/")]) == 4
        return {row["source-ref"]: row["path"] for row in csv.DictReader(io.StringIO(destination.text("images.csv")))}

    first = names(lines)
    assert first["s3://b/day2/dog.jpg"] == "images/train/dog.jpg"
    assert len(set(first.values())) == 4
    assert all(path.startswith("images/train/cat_") or "dog" in path or "Cat_" in path for path in first.values())
    assert names(lines[::-1]) == first


def test_the_same_image_twice_gives_two_outputs():
    line = detection_line("s3://b/a.jpg", [LabeledBox("pen", 0, 0, 10, 10)])
    destination = MemoryDestination()
    build_training_data(ManifestSource(lambda: [line, line]), destination, formats=["yolo"], split=SplitConfig(0.0))
    assert len([path for path in destination.files if path.startswith("labels/")]) == 2


def test_classification_job_converts_to_its_formats_only():
    lines = [
        dump_manifest_line(
            output_manifest_line(
                {"source-ref": f"s3://b/{number}.jpg"},
                classification_annotation(
                    label_attribute_name="animal",
                    class_names=["cat", "dog"],
                    label=["cat", "dog"][number % 2],
                    confidence=0.9,
                    job_name="animals",
                    creation_date="2024-01-01T00:00:00.000000",
                ),
            )
        )
        for number in range(6)
    ]
    destination = MemoryDestination()
    summary = build_training_data(ManifestSource(lambda: lines), destination, split=SplitConfig(0.0))
    assert summary.formats == ["augmented-manifest", "lst"]
    assert destination.text("train.lst").splitlines()[:2] == ["0\t0\t0.jpg", "1\t1\t1.jpg"]
    first = json.loads(destination.text("train.manifest").splitlines()[0])
    assert first["animal"] == 0 and first["animal-metadata"]["class-name"] == "cat"
    with pytest.raises(ValueError, match=r"formats \['yolo'\] are not available for image-classification"):
        build_training_data(ManifestSource(lambda: lines), MemoryDestination(), formats=["yolo"])


def test_mixing_task_types_is_refused():
    detection = detection_line("s3://b/a.jpg", [])
    classification = dump_manifest_line(
        output_manifest_line(
            {"source-ref": "s3://b/b.jpg"},
            classification_annotation(
                label_attribute_name="animal", class_names=["cat", "dog"], label="cat", confidence=1, job_name="j"
            ),
        )
    )
    with pytest.raises(ValueError, match="convert one task type at a time"):
        build_training_data(ManifestSource(lambda: [detection, classification]), MemoryDestination())


def test_a_given_class_list_fixes_the_index_and_refuses_others():
    lines = [detection_line("s3://b/a.jpg", [LabeledBox("pencil", 0, 0, 10, 10)])]
    destination = MemoryDestination()
    build_training_data(
        ManifestSource(lambda: lines),
        destination,
        class_names=["eraser", "pencil"],
        formats=["yolo"],
        split=SplitConfig(0.0),
    )
    assert destination.text("labels/train/a.txt").startswith("1 ")
    destination = MemoryDestination()
    with pytest.raises(ValueError, match=re.escape("labels ['pencil'] are not in the class list ['pen']")):
        build_training_data(ManifestSource(lambda: lines), destination, class_names=["pen"])
    assert destination.files == {}  # refused before anything was written


def test_no_labeled_lines_or_no_classes_is_an_error():
    with pytest.raises(ValueError, match="no labeled images"):
        build_training_data(ManifestSource(lambda: ['{"source-ref": "s3://b/a.jpg"}']), MemoryDestination())
    with pytest.raises(ValueError, match="pass class_names"):
        build_training_data(ManifestSource(lambda: [detection_line("s3://b/a.jpg", [])]), MemoryDestination())


def test_directory_destination_writes_files_and_refuses_escapes(tmp_path: Path):
    manifest = tmp_path / "output.manifest"
    manifest.write_text("".join(random_manifest(30)), encoding="utf-8")
    out = tmp_path / "dataset"
    summary = build_training_data(ManifestSource.from_path(manifest), DirectoryDestination(out))
    assert sum(summary.images.values()) == 30
    assert len(list((out / "labels").rglob("*.txt"))) == 30
    assert len(list((out / "voc").rglob("*.xml"))) == 30
    manifest_lines = (out / "train.manifest").read_text(encoding="utf-8").count("\n")
    assert manifest_lines == summary.images["train"] - summary.images_without_boxes["train"]
    for bad in ["../x.txt", "/etc/x", "a//b", "a/./b", ""]:
        with pytest.raises(ValueError, match="relative path"):
            DirectoryDestination(out).write_bytes(bad, b"")


def test_memory_stays_flat_as_the_manifest_grows(tmp_path: Path):
    def peak_bytes(n_lines: int) -> int:
        manifest = tmp_path / f"{n_lines}.manifest"
        manifest.write_text("".join(random_manifest(n_lines, seed=n_lines)), encoding="utf-8")
        gc.collect()
        tracemalloc.start()
        build_training_data(
            ManifestSource.from_path(manifest),
            DirectoryDestination(tmp_path / f"out{n_lines}"),
            formats=["augmented-manifest", "lst", "coco"],
        )
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    small, large = peak_bytes(2_000), peak_bytes(8_000)
    # 6,000 more lines may cost the 16 bytes per image the survey keeps and buffers filling up (measured: about
    # 0.3 MB), not the lines themselves (a record each would be several MB).
    assert large - small < 1_000_000, (small, large)


def test_a_twenty_thousand_line_manifest_streams_into_lst_files(tmp_path: Path):
    # Its speed (lines/s) is measured in make bench (benchmarks/groundtruth_handlers.py), not here.
    manifest = tmp_path / "big.manifest"
    manifest.write_text("".join(random_manifest(20_000, seed=5)), encoding="utf-8")
    out = tmp_path / "out"
    summary = build_training_data(ManifestSource.from_path(manifest), DirectoryDestination(out), formats=["lst"])
    assert sum(summary.images.values()) == 20_000
    lst_lines = sum((out / f"{split}.lst").read_text(encoding="utf-8").count("\n") for split in ("train", "validation"))
    assert lst_lines == 20_000 - sum(summary.images_without_boxes.values())
