"""Sample image thumbnails for the report: consolidated boxes drawn solid, gold boxes dashed (Pillow, imported
inside :func:`_sample_png`)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from truthflow.groundtruth.output_manifest import LabeledBox
from truthflow.training_data.visualize import render_boxes_png

if TYPE_CHECKING:
    from PIL import Image as PILImage

THUMBNAIL_SIDE = 400
MAX_PNG_BYTES = 100_000


def _dashed_rectangle(draw: Any, corners: tuple[float, float, float, float], *, dash: float = 5.0) -> None:
    """Alternating white and black dashes (visible on any background), for gold boxes."""
    x1, y1, x2, y2 = corners
    for (ax, ay), (bx, by) in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        length = math.hypot(bx - ax, by - ay)
        steps = max(1, math.ceil(length / dash))
        for step in range(steps):
            t0, t1 = step / steps, min((step + 1) / steps, 1.0)
            segment = [(ax + (bx - ax) * t0, ay + (by - ay) * t0), (ax + (bx - ax) * t1, ay + (by - ay) * t1)]
            draw.line(segment, fill=(255, 255, 255) if step % 2 == 0 else (0, 0, 0), width=1)


def _png_bytes(image: PILImage.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _sample_png(
    encoded: bytes, gold: Sequence[LabeledBox], result: Sequence[LabeledBox], labels: Sequence[str]
) -> bytes:
    """A thumbnail (longest side at most THUMBNAIL_SIDE) with consolidated boxes solid (2 px, class colour, label
    and confidence) and gold boxes dashed on top (1 px), so a gold box under a consolidated one still shows."""
    from PIL import Image, ImageDraw

    with Image.open(io.BytesIO(encoded)) as opened:
        canvas = opened.convert("RGB")
    scale = min(1.0, THUMBNAIL_SIDE / max(canvas.size))
    if scale < 1.0:
        size = (max(1, round(canvas.width * scale)), max(1, round(canvas.height * scale)))
        canvas = canvas.resize(size, Image.Resampling.LANCZOS)
    scaled = [
        LabeledBox(b.label, b.left * scale, b.top * scale, b.width * scale, b.height * scale, b.confidence)
        for b in result
    ]
    with Image.open(io.BytesIO(render_boxes_png(canvas, scaled, class_names=labels, line_width=2))) as rendered:
        canvas = rendered.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    for box in gold:
        x, y = box.left * scale, box.top * scale
        _dashed_rectangle(draw, (x, y, x + box.width * scale, y + box.height * scale))
    png = _png_bytes(canvas)
    if len(png) > MAX_PNG_BYTES:  # photographs: 128 colours keep a thumbnail readable and small
        png = _png_bytes(canvas.quantize(colors=128))
    return png


def _find_image(key: str, images: Sequence[str]) -> str | None:
    if key in images:
        return key
    for image in images:
        if image.rsplit("/", 1)[-1] == key:
            return image
    return None
