"""Draw an image's boxes and labels and return a PNG, to eyeball consolidated labels.

Pillow is imported when a function is called, not at module import: it is a development dependency of the project
and need not be in the Lambda layer unless a handler renders previews.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from truthflow.groundtruth.output_manifest import BoxLike, DetectionRecord
from truthflow.training_data.split import stable_hash

if TYPE_CHECKING:
    from PIL import Image

# Colour-blind-friendly palette (Okabe-Ito), then a few more distinct colours.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0),
    (86, 180, 233),
    (0, 158, 115),
    (240, 228, 66),
    (0, 114, 178),
    (213, 94, 0),
    (204, 121, 167),
    (255, 255, 255),
    (120, 94, 240),
    (100, 143, 255),
    (254, 97, 0),
    (220, 38, 127),
)


def class_colour(label: str, class_names: Sequence[str] | None = None) -> tuple[int, int, int]:
    """A fixed colour per class: by class index when ``class_names`` holds the label, else by a stable hash."""
    if class_names is not None and label in class_names:
        position = list(class_names).index(label)
    else:
        position = stable_hash(label)
    return PALETTE[position % len(PALETTE)]


def render_boxes_png(
    image: Image.Image | bytes | Path | str,
    boxes: Sequence[BoxLike],
    *,
    class_names: Sequence[str] | None = None,
    line_width: int | None = None,
) -> bytes:
    """The image (a PIL image, encoded bytes or a file path) with each box outlined and labeled, as PNG bytes of the
    image's own size. Box coordinates are pixels of that image."""
    from PIL import Image, ImageDraw, ImageFont

    if isinstance(image, Image.Image):
        canvas = image.convert("RGB")
    elif isinstance(image, bytes):
        with Image.open(io.BytesIO(image)) as opened:
            canvas = opened.convert("RGB")
    else:
        with Image.open(image) as opened:
            canvas = opened.convert("RGB")
    width = line_width if line_width is not None else max(1, round(min(canvas.size) / 200))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for box in boxes:
        colour = class_colour(box.label, class_names)
        corners = (box.left, box.top, box.left + box.width, box.top + box.height)
        draw.rectangle(corners, outline=colour, width=width)
        text = box.label
        confidence = getattr(box, "confidence", None)
        if confidence is not None:
            text = f"{text} {confidence:.2f}"
        text_box = draw.textbbox((box.left, box.top), text, font=font)
        text_height = text_box[3] - text_box[1]
        origin_y = box.top - text_height - 2 if box.top - text_height - 2 >= 0 else box.top
        text_box = draw.textbbox((box.left, origin_y), text, font=font)
        draw.rectangle(text_box, fill=colour)
        draw.text((box.left, origin_y), text, fill=(0, 0, 0), font=font)
    output = io.BytesIO()
    canvas.save(output, format="PNG")
    return output.getvalue()


def render_record_png(
    record: DetectionRecord, image: Image.Image | bytes | Path | str, *, class_names: Sequence[str] | None = None
) -> bytes:
    """:func:`render_boxes_png` for a manifest record; the image must have the record's size."""
    return render_boxes_png(image, record.boxes, class_names=class_names)
