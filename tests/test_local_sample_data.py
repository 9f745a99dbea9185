"""Generated sample jobs: deterministic images of pens, pencils and erasers with exact gold boxes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from truthflow.job_file import parse_job_file
from truthflow.local.sample_data import (
    LABELS,
    MAX_OVERLAP,
    GoldBox,
    SampleJob,
    _overlap,
    _render_object,
    make_sample_job,
    synthesize_image,
)

TASK_TYPES = ("bounding-box", "image-classification")


@cache
def sample(task_type: str = "bounding-box", seed: int = 0) -> SampleJob:
    return make_sample_job(task_type=task_type, seed=seed)


def digest(job: SampleJob) -> str:
    hasher = hashlib.sha256()
    for image in job.images:
        hasher.update(image.file_name.encode())
        hasher.update(image.data)
    return hasher.hexdigest()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_the_same_seed_gives_the_same_bytes(task_type):
    first = make_sample_job(task_type=task_type, n_images=12, seed=7)
    second = make_sample_job(task_type=task_type, n_images=12, seed=7)
    assert first == second
    other = make_sample_job(task_type=task_type, n_images=12, seed=8)
    assert [image.data for image in other.images] != [image.data for image in first.images]


def test_the_bytes_do_not_depend_on_the_process():
    """A fresh interpreter with another string-hash seed makes byte-identical images."""
    code = (
        "import hashlib\n"
        "from truthflow.local.sample_data import make_sample_job\n"
        "h = hashlib.sha256()\n"
        "for task_type in ('bounding-box', 'image-classification'):\n"
        "    for image in make_sample_job(task_type=task_type).images:\n"
        "        h.update(image.file_name.encode()); h.update(image.data)\n"
        "print(h.hexdigest())\n"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parents[1] / "lambdas"),
                                                              environment.get("PYTHONPATH")]))  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True)
    expected = hashlib.sha256()
    for task_type in TASK_TYPES:
        for image in sample(task_type).images:
            expected.update(image.file_name.encode())
            expected.update(image.data)
    assert result.stdout.strip() == expected.hexdigest()


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_an_image_does_not_depend_on_the_job_size(task_type):
    assert make_sample_job(task_type=task_type, n_images=5).images == sample(task_type).images[:5]


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_images_decode_at_the_stated_size_and_format(task_type):
    job = sample(task_type)
    assert len(job.images) == 40
    assert len({image.file_name for image in job.images}) == 40
    sizes, formats = set(), set()
    for image in job.images:
        picture = decoded(image.data)
        assert picture.size == (image.width, image.height)
        assert picture.mode == "RGB"
        assert picture.format == {"jpg": "JPEG", "png": "PNG"}[image.file_name.rsplit(".", 1)[1]]
        assert min(image.width, image.height) >= 240 and max(image.width, image.height) <= 640
        sizes.add(picture.size)
        formats.add(picture.format)
    assert len(sizes) >= 4  # varied sizes, landscape and portrait
    assert formats == {"JPEG", "PNG"}


def test_detection_gold_boxes_are_inside_their_image_and_not_degenerate():
    job = sample("bounding-box")
    counts = []
    for image in job.images:
        assert image.label is None
        assert len(image.boxes) <= 5
        counts.append(len(image.boxes))
        for box in image.boxes:
            assert box.label in LABELS
            assert all(isinstance(value, int) for value in (box.left, box.top, box.width, box.height))
            assert box.left >= 0 and box.top >= 0
            assert box.left + box.width <= image.width and box.top + box.height <= image.height
            assert min(box.width, box.height) >= 7
        for position, box in enumerate(image.boxes):
            for other in image.boxes[:position]:
                assert _overlap(box, other) <= MAX_OVERLAP
    assert sum(counts) >= 60  # 2-3 objects on average
    assert {box.label for image in job.images for box in image.boxes} == set(LABELS)


def test_classification_images_show_one_object_of_their_class():
    job = sample("image-classification")
    for image in job.images:
        assert image.label in LABELS
        (box,) = image.boxes
        assert box.label == image.label
        assert box.left >= 0 and box.top >= 0
        assert box.left + box.width <= image.width and box.top + box.height <= image.height
        assert box.width * box.height >= 0.02 * image.width * image.height  # a close-up
    labels = [image.label for image in job.images]
    assert all(labels.count(label) >= 13 for label in LABELS)  # balanced: 40 = 14 + 13 + 13


@pytest.mark.parametrize("label", [*LABELS, "pedestrian", "cup"])
def test_every_object_reaches_all_four_edges_of_its_box(label):
    rng = np.random.default_rng(3)
    for _ in range(150):
        width, height = (int(value) for value in rng.integers(1, 260, size=2))
        sprite = _render_object(label, width, height, rng)
        assert sprite.size == (width, height)
        assert sprite.getchannel("A").getbbox() == (0, 0, width, height), (label, width, height)


@pytest.mark.parametrize("seed", range(6))
def test_a_gold_box_is_exactly_the_pixels_its_object_changes(seed):
    """Same seed with and without the object: the same desk, so the changed pixels are the object's."""
    rng = np.random.default_rng(seed)
    for label in LABELS:
        width, height = 320, 240
        box_width, box_height = (40, 200) if rng.random() < 0.5 else (200, 40)
        if label == "eraser":
            box_width, box_height = 50, 24
        box = GoldBox(label, int(rng.integers(0, width - box_width)), int(rng.integers(0, height - box_height)),
                      box_width, box_height)  # fmt: skip
        with_object = np.asarray(decoded(synthesize_image(width, height, [box], seed=seed, image_format="PNG")))
        desk = np.asarray(decoded(synthesize_image(width, height, [], seed=seed, image_format="PNG")))
        rows, columns = np.nonzero((with_object != desk).any(axis=2))
        assert (columns.min(), rows.min(), columns.max() + 1, rows.max() + 1) == (
            box.left, box.top, box.left + box.width, box.top + box.height
        )  # fmt: skip


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_the_job_file_is_valid(task_type):
    job = sample(task_type)
    parsed = parse_job_file(json.dumps(job.job_file), source=f"jobs/{job.job_id}/job.json")
    assert parsed.task_type == task_type == job.task_type
    assert parsed.labels == list(job.labels) == list(LABELS)
    assert "workers_per_object" not in job.job_file and parsed.workers_per_object == 3  # the job file's default
    assert parsed.quality_gate.metric == ("validation:mAP" if task_type == "bounding-box" else "validation:accuracy")
    assert parsed.start_at == "label"
    assert job.job_id == "pens-v1"


def test_forty_images_are_forty_distinct_images():
    # Their speed is measured in make bench (benchmarks/local_tools.py), not here.
    for task_type in TASK_TYPES:
        job = make_sample_job(task_type=task_type, n_images=40, seed=5)
        assert len(job.images) == 40
        assert len({image.file_name for image in job.images}) == 40
        assert len({image.data for image in job.images}) == 40


def test_synthesize_image_draws_any_label_and_cuts_boxes_at_the_border():
    boxes = [
        GoldBox("pedestrian", 100, 300, 20, 50),
        GoldBox("pedestrian", 1270, 700, 30, 40),  # reaches past the corner
        GoldBox("traffic light", 5, 5, 3, 9),
        GoldBox("pen", 2000, 10, 50, 8),  # wholly outside: skipped
    ]
    data = synthesize_image(1280, 720, boxes, seed=1)
    picture = decoded(data)
    assert (picture.format, picture.size) == ("JPEG", (1280, 720))
    assert data == synthesize_image(1280, 720, boxes, seed=1)
    assert data != synthesize_image(1280, 720, boxes, seed=2)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"n_images": 0}, "n_images"),
        ({"task_type": "polygon"}, "task_type"),
        ({"seed": -1}, "seed"),
        ({"job_id": "pens v1"}, "job id"),
    ],
)
def test_bad_arguments_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        make_sample_job(**arguments)


def test_an_empty_gold_box_is_refused():
    with pytest.raises(ValueError, match="empty"):
        GoldBox("pen", 0, 0, 0, 5)
