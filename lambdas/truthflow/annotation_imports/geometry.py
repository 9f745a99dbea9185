"""Box geometry shared by the readers: rotated boxes to axis-aligned bounds, and number checks.

Image coordinates have y pointing down, so a positive angle turns a box clockwise on screen; a point ``(u, v)``
relative to the pivot goes to ``(u cos a - v sin a, u sin a + v cos a)``. Label Studio rotates a rectangle about its
top-left corner (``x``/``y`` stay the pivot; its converter computes the corners that way); CVAT (``rotation`` of a
``<box>``, and ``attributes.rotation`` in its COCO export) about the box's centre. Consolidation works with
axis-aligned boxes, so a rotated box becomes the smallest axis-aligned box around its four corners.
"""

from __future__ import annotations

import math
from typing import Any

Rect = tuple[float, float, float, float]


def bounds_rotated_about_corner(left: float, top: float, width: float, height: float, degrees: float) -> Rect:
    """``(left, top, width, height)`` of the box turned by ``degrees`` about its top-left corner."""
    radians = math.radians(degrees)
    cosine, sine = math.cos(radians), math.sin(radians)
    xs = (0.0, width * cosine, -height * sine, width * cosine - height * sine)
    ys = (0.0, width * sine, height * cosine, width * sine + height * cosine)
    return left + min(xs), top + min(ys), max(xs) - min(xs), max(ys) - min(ys)


def bounds_rotated_about_center(left: float, top: float, width: float, height: float, degrees: float) -> Rect:
    """``(left, top, width, height)`` of the box turned by ``degrees`` about its centre."""
    radians = math.radians(degrees)
    cosine, sine = abs(math.cos(radians)), abs(math.sin(radians))
    half_width = (width * cosine + height * sine) / 2
    half_height = (width * sine + height * cosine) / 2
    center_x, center_y = left + width / 2, top + height / 2
    return center_x - half_width, center_y - half_height, 2 * half_width, 2 * half_height


def is_rotated(degrees: float) -> bool:
    """A turn that is not a whole number of full turns (``360`` and ``-0.0`` are not rotations)."""
    return degrees % 360.0 != 0.0


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite JSON number (``bool`` is not a number), else ``None``."""
    if type(value) is float:
        return value if math.isfinite(value) else None
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:  # an integer beyond any float
            return None
    return None


def finite_text(text: str | None) -> float | None:
    """A finite number written as text (XML attributes, CSV cells), else ``None``."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
