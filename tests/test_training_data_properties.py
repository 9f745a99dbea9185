"""Property tests: for random images and boxes, YOLO values stay in [0, 1] and no image is lost."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from truthflow.groundtruth import (
    LabeledBox,
    detection_annotation,
    dump_manifest_line,
    output_manifest_line,
)
from truthflow.training_data import ManifestSource, MemoryDestination, SplitConfig, build_training_data

CLASSES = ["a", "b", "c", "d"]


@st.composite
def images(draw):
    width = draw(st.integers(1, 4000))
    height = draw(st.integers(1, 4000))
    boxes = draw(
        st.lists(
            st.builds(
                LabeledBox,
                label=st.sampled_from(CLASSES),
                left=st.integers(-width, 2 * width),
                top=st.integers(-height, 2 * height),
                width=st.integers(0, 2 * width),
                height=st.integers(0, 2 * height),
                confidence=st.none() | st.floats(0, 1),
            ),
            max_size=6,
        )
    )
    return width, height, boxes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(images(), min_size=1, max_size=12),
    st.floats(0, 0.9),
    st.integers(0, 3),
)
def test_yolo_values_are_normalised_and_every_image_has_one_label_file(drawn, fraction, seed):
    lines = []
    for number, (width, height, boxes) in enumerate(drawn):
        annotation = detection_annotation(
            label_attribute_name="job",
            class_names=CLASSES,
            boxes=boxes,
            image_width=width,
            image_height=height,
            job_name="job",
            creation_date="2024-01-01T00:00:00.000000",
        )
        folder = number % 3  # the same stems in different folders must not overwrite each other
        lines.append(
            dump_manifest_line(output_manifest_line({"source-ref": f"s3://b/{folder}/{number // 3}.jpg"}, annotation))
        )
    destination = MemoryDestination()
    summary = build_training_data(
        ManifestSource(lambda: lines, class_names=CLASSES),
        destination,
        formats=["yolo", "coco"],
        split=SplitConfig(fraction, seed),
    )

    label_files = {path: text for path, text in destination.files.items() if path.startswith("labels/")}
    assert len(label_files) == len(drawn) == sum(summary.images.values())
    written_boxes = 0
    for text in label_files.values():
        assert isinstance(text, str)
        for line in text.splitlines():
            fields = line.split(" ")
            assert len(fields) == 5
            assert 0 <= int(fields[0]) < len(CLASSES)
            values = [float(field) for field in fields[1:]]
            assert all(0.0 <= value <= 1.0 for value in values), line
            assert all(len(field.split(".")[1]) == 6 for field in fields[1:])
            written_boxes += 1
    total_boxes = sum(len(boxes) for _, _, boxes in drawn)
    assert written_boxes + summary.excluded.boxes_excluded == total_boxes
    assert written_boxes == sum(summary.boxes.values())


@settings(max_examples=60, deadline=None)
@given(images())
def test_yolo_centre_and_size_give_back_the_clipped_box(drawn):
    width, height, boxes = drawn
    annotation = detection_annotation(
        label_attribute_name="job",
        class_names=CLASSES,
        boxes=boxes,
        image_width=width,
        image_height=height,
        job_name="job",
    )
    line = dump_manifest_line(output_manifest_line({"source-ref": "s3://b/x.jpg"}, annotation))
    destination = MemoryDestination()
    source = ManifestSource(lambda: [line], class_names=CLASSES)
    build_training_data(source, destination, formats=["yolo"], split=SplitConfig(0.0))
    kept = [box for box in boxes if _clipped(box, width, height) is not None]
    lines = str(destination.files["labels/train/x.txt"]).splitlines()
    assert len(lines) == len(kept)
    for text, box in zip(lines, kept, strict=True):
        left, top, right, bottom = _clipped(box, width, height)  # type: ignore[misc]
        _, cx, cy, w, h = (float(field) for field in text.split())
        tolerance = 1e-6 * 1.01
        assert abs(cx - (left + right) / 2 / width) <= tolerance
        assert abs(cy - (top + bottom) / 2 / height) <= tolerance
        assert abs(w - (right - left) / width) <= tolerance
        assert abs(h - (bottom - top) / height) <= tolerance


def _clipped(box: LabeledBox, width: int, height: int) -> tuple[float, float, float, float] | None:
    left, top = min(max(box.left, 0), width), min(max(box.top, 0), height)
    right, bottom = min(max(box.left + box.width, 0), width), min(max(box.top + box.height, 0), height)
    if right <= left or bottom <= top:
        return None
    return left, top, right, bottom
