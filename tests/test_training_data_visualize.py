"""Box previews: a PNG of the image's own size with the boxes drawn in their class colour."""

from __future__ import annotations

import io

from PIL import Image

from truthflow.groundtruth import DetectionRecord, LabeledBox
from truthflow.training_data import render_boxes_png, render_record_png
from truthflow.training_data.visualize import class_colour

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_png_of_the_right_size_with_the_box_outlined():
    image = Image.new("RGB", (320, 240), (0, 0, 0))
    boxes = [LabeledBox("pen", 40, 60, 100, 80, confidence=0.87), LabeledBox("cap", 0, 0, 30, 20)]
    png = render_boxes_png(image, boxes, class_names=["pen", "cap"], line_width=2)
    assert png.startswith(PNG_SIGNATURE)
    rendered = Image.open(io.BytesIO(png))
    assert rendered.format == "PNG"
    assert rendered.size == (320, 240)
    pen_colour = class_colour("pen", ["pen", "cap"])
    assert rendered.getpixel((40, 100)) == pen_colour  # left edge of the pen box
    assert rendered.getpixel((139, 100)) == pen_colour  # right edge
    assert rendered.getpixel((90, 100)) == (0, 0, 0)  # inside stays untouched
    assert class_colour("cap", ["pen", "cap"]) != pen_colour


def test_encoded_image_and_file_inputs(tmp_path):
    buffer = io.BytesIO()
    Image.new("L", (50, 30), 128).save(buffer, format="JPEG")
    from_bytes = Image.open(io.BytesIO(render_boxes_png(buffer.getvalue(), [LabeledBox("x", 5, 5, 10, 10)])))
    assert from_bytes.size == (50, 30)
    path = tmp_path / "image.png"
    Image.new("RGB", (64, 48)).save(path)
    record = DetectionRecord("s3://b/image.png", 64, 48, 3, (LabeledBox("x", 60, 40, 20, 20),), "job", {})
    from_file = Image.open(io.BytesIO(render_record_png(record, path)))
    assert from_file.size == (64, 48)


def test_colours_are_stable_without_a_class_list():
    assert class_colour("heron") == class_colour("heron")
