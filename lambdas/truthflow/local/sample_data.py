"""Sample labeling jobs made by code: desk photos of pens, pencils and erasers with exact gold boxes.

Like the pens-and-pencils folder of the AWS YOLO blog post, but drawn with Pillow instead of downloaded, so the offline
run (``make demo``) and the end-to-end tests need no data files and know the truth of every image exactly.

* **Images.** 320x240 to 640x480, landscape and portrait, about one in five PNG and the rest JPEG. The background is a
  desk (oak, walnut, birch with a wood grain; white or grey laminate, slate, a green cutting mat, blue-grey), lit by a
  soft gradient, with mild sensor noise.
* **Objects,** axis-aligned (lying left-right or up-down, either end first):

  - ``pen``: a thin dark body (black, blue, red, green, grey) with a metal tip, often a grip, a cap and a metal clip
    that stands out beyond the body;
  - ``pencil``: a yellow body in three bands (the faces of a hexagon) with a sharpened wooden tip and graphite point,
    a flat painted end or a metal ferrule with a pink eraser, often a printed mark;
  - ``eraser``: a small pink or white block with rounded corners, white ones often in a coloured paper sleeve.

* **Detection variant** (``bounding-box``): 0-5 objects per image (mostly 2-3), pens and pencils a third to three fifths
  of the image long, erasers small; objects may overlap a little (at most 15 % of the smaller box), a later one lying
  on top of an earlier one.
* **Classification variant** (``image-classification``): one large object per image; its class is the gold label
  (the classes are balanced in every run of three images).
* **Gold boxes** are exact: a box is the extent of the drawn object, every edge touching the object's outermost pixels,
  in Ground Truth's convention (pixels; ``left``/``top`` the top-left corner, so the object covers columns ``left`` to
  ``left + width - 1``). An object partly hidden under a later one keeps its whole box.

Everything is deterministic for a seed: the same seed gives byte-identical images (with the same Pillow and image
codec libraries), and image ``i`` of a job does not depend on how many images the job has. 40 images take about
0.2 s.

:func:`synthesize_image` draws given boxes on a desk the same way; the replay of real crowd data sets
(:mod:`truthflow.local.workforce`) uses it for images that the data set does not ship. Labels other than the three
sample classes are drawn as an upright figure (``pedestrian``, ``person``) or as a coloured block.
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
from PIL import Image, ImageDraw

from truthflow.groundtruth.label_config import TaskType
from truthflow.job_file import validate_job_id

LABELS: tuple[str, ...] = ("pen", "pencil", "eraser")
"""The sample job's classes, in class-id order."""

IMAGE_SIZES: tuple[tuple[int, int], ...] = (
    (320, 240),
    (400, 300),
    (480, 360),
    (512, 384),
    (560, 420),
    (640, 480),
    (480, 320),
    (600, 400),
    (240, 320),
    (360, 480),
)
"""(width, height) of the sample images: photos and phone shots, landscape and portrait."""

PNG_SHARE = 0.2
OBJECTS_PER_IMAGE_P = (0.06, 0.18, 0.24, 0.22, 0.16, 0.14)
"""P(0 objects), ..., P(5 objects) in a detection image."""

MAX_OVERLAP = 0.15
"""Largest intersection of two objects in a detection image, as a share of the smaller box's area."""

MARGIN = 4
"""Pixels kept free at the image border (objects are never cut off)."""

ImageFormat = Literal["JPEG", "PNG"]
RGB = tuple[int, int, int]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class GoldBox:
    """One object's true box, in pixels, as Ground Truth writes boxes."""

    label: str
    left: int
    top: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if not self.label:
            raise ValueError("a gold box needs a label")
        if self.width < 1 or self.height < 1:
            raise ValueError(f"gold box {self} is empty: width and height must be at least 1 pixel")


@dataclass(frozen=True, slots=True)
class SampleImage:
    """An encoded image (``data``, PNG or JPEG as the file name says) and its truth: ``boxes`` (every object) and,
    for classification, ``label`` (``None`` in a detection job, or where the truth is unknown)."""

    file_name: str
    width: int
    height: int
    data: bytes
    boxes: tuple[GoldBox, ...]
    label: str | None


@dataclass(frozen=True, slots=True)
class SampleJob:
    """A job folder's content: ``job_file`` is the ``job.json`` object (valid for
    :func:`truthflow.job_file.parse_job_file`), ``images`` go to ``jobs/<job_id>/images/``."""

    job_id: str
    task_type: TaskType
    labels: tuple[str, ...]
    images: tuple[SampleImage, ...]
    job_file: dict[str, Any]


# --- jobs -------------------------------------------------------------------------------------------------------------


def make_sample_job(
    *,
    task_type: TaskType = "bounding-box",
    n_images: int = 40,
    seed: int = 0,
    job_id: str = "pens-v1",
) -> SampleJob:
    """A sample job of ``n_images`` generated desk photos (see the module docstring), deterministic for ``seed``."""
    if task_type not in ("bounding-box", "image-classification"):
        raise ValueError(f"task_type must be 'bounding-box' or 'image-classification', got {task_type!r}")
    if isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 1:
        raise ValueError(f"n_images must be a positive integer, got {n_images!r}")
    _check_seed(seed)
    validate_job_id(job_id)
    make = _detection_image if task_type == "bounding-box" else _classification_image
    images = tuple(make(index, seed) for index in range(n_images))
    return SampleJob(
        job_id=job_id,
        task_type=task_type,
        labels=LABELS,
        images=images,
        job_file=_job_file(task_type, seed),
    )


def synthesize_image(
    width: int,
    height: int,
    boxes: Sequence[GoldBox],
    *,
    seed: int,
    image_format: ImageFormat = "JPEG",
) -> bytes:
    """An encoded ``width`` x ``height`` desk photo showing one object per box, each filling its box exactly (boxes
    reaching past the image are cut at its border; later boxes are drawn over earlier ones)."""
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    _check_seed(seed)
    rng = np.random.default_rng(seed)
    return _encode(_draw_scene(width, height, boxes, rng), image_format)


def close_up_box(label: str, width: int, height: int, *, seed: int) -> GoldBox:
    """Where a close-up of one ``label`` object (as in the classification sample) lies in a ``width`` x ``height``
    photo: the sample's proportions for its labels, else a box over the middle 60 % of the photo."""
    _check_seed(seed)
    if label not in _SHAPES:
        box_width, box_height = round(width * 0.6), round(height * 0.6)
        return GoldBox(label, (width - box_width) // 2, (height - box_height) // 2, box_width, box_height)
    rng = np.random.default_rng([seed, 3])
    box_width, box_height = _object_size(label, width, height, rng, close_up=True)
    left, top = _position(box_width, box_height, width, height, rng)
    return GoldBox(label, left, top, box_width, box_height)


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _job_file(task_type: TaskType, seed: int) -> dict[str, Any]:
    if task_type == "bounding-box":
        return {
            "task_type": "bounding-box",
            "labels": list(LABELS),
            "task_title": "Draw boxes around pens, pencils and erasers",
            "task_description": "Draw a tight box around every pen, pencil and eraser and choose its label.",
            "instructions": {
                "header": "Draw a box around each pen, pencil and eraser.",
                "short": "One tight box per object, cap, clip and sharpened tip included. Submit without a box if "
                "there is none.",
                "full": "Draw a box around every pen, pencil and eraser on the desk, and choose its label.\n\n"
                "Make each box tight: its edges touch the outermost pixels of the object, including a pen's clip "
                "and a pencil's tip.\n\nDraw one box per object, also when objects overlap.\n\n"
                "If the photo shows none of them, submit it without drawing a box.",
            },
            "split": {"validation_fraction": 0.2, "seed": seed},
            "exclusion": {"min_box_width": 4, "min_box_height": 4, "min_confidence": 0.0},
            "quality_gate": {"metric": "validation:mAP", "threshold": 0.5},
        }
    return {
        "task_type": "image-classification",
        "labels": list(LABELS),
        "task_title": "Pen, pencil or eraser?",
        "task_description": "Choose what the photo shows: a pen, a pencil or an eraser.",
        "instructions": {
            "header": "What does the photo show?",
            "short": "Each photo shows one pen, pencil or eraser on a desk. Choose which.",
            "full": "Each photo shows one object on a desk: a pen, a pencil or an eraser. Choose the one it shows.\n\n"
            "A pen has a cap and a clip; a pencil is yellow with a sharpened wooden tip; an eraser is a small "
            "pink or white block.",
        },
        "split": {"validation_fraction": 0.2, "seed": seed},
        "quality_gate": {"metric": "validation:accuracy", "threshold": 0.7},
    }


def _detection_image(index: int, seed: int) -> SampleImage:
    rng = np.random.default_rng([seed, index, 0])
    width, height = _pick(rng, IMAGE_SIZES)
    image_format: ImageFormat = "PNG" if rng.random() < PNG_SHARE else "JPEG"
    count = int(rng.choice(len(OBJECTS_PER_IMAGE_P), p=OBJECTS_PER_IMAGE_P))
    boxes: list[GoldBox] = []
    for _ in range(count):
        label = _pick(rng, LABELS)
        box_width, box_height = _object_size(label, width, height, rng, close_up=False)
        for _attempt in range(40):
            left, top = _position(box_width, box_height, width, height, rng)
            candidate = GoldBox(label, left, top, box_width, box_height)
            if all(_overlap(candidate, other) <= MAX_OVERLAP for other in boxes):
                boxes.append(candidate)
                break
    scene = _draw_scene(width, height, boxes, rng)
    return SampleImage(
        file_name=f"desk-{index + 1:03d}.{'png' if image_format == 'PNG' else 'jpg'}",
        width=width,
        height=height,
        data=_encode(scene, image_format),
        boxes=tuple(boxes),
        label=None,
    )


def _classification_image(index: int, seed: int) -> SampleImage:
    # Classes balanced in each run of len(LABELS) images, in an order shuffled per run.
    run = np.random.default_rng([seed, index // len(LABELS), 2]).permutation(len(LABELS))
    label = LABELS[int(run[index % len(LABELS)])]
    rng = np.random.default_rng([seed, index, 1])
    width, height = _pick(rng, IMAGE_SIZES)
    image_format: ImageFormat = "PNG" if rng.random() < PNG_SHARE else "JPEG"
    box_width, box_height = _object_size(label, width, height, rng, close_up=True)
    left, top = _position(box_width, box_height, width, height, rng)
    box = GoldBox(label, left, top, box_width, box_height)
    scene = _draw_scene(width, height, [box], rng)
    return SampleImage(
        file_name=f"object-{index + 1:03d}.{'png' if image_format == 'PNG' else 'jpg'}",
        width=width,
        height=height,
        data=_encode(scene, image_format),
        boxes=(box,),
        label=label,
    )


# --- layout -----------------------------------------------------------------------------------------------------------

# label -> (length as a share of the image side it lies along (of the shorter side for erasers) in a scene,
#           the same in a close-up, thickness as a share of length)
_SHAPES: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "pen": ((0.34, 0.62), (0.62, 0.9), (0.075, 0.11)),
    "pencil": ((0.30, 0.58), (0.6, 0.9), (0.06, 0.085)),
    "eraser": ((0.11, 0.2), (0.35, 0.6), (0.38, 0.67)),
}


def _object_size(label: str, width: int, height: int, rng: np.random.Generator, *, close_up: bool) -> tuple[int, int]:
    """(box width, box height) of a new object lying left-right or up-down."""
    scene, near, thickness_share = _SHAPES[label]
    horizontal = bool(rng.random() < 0.6)
    along = min(width, height) if label == "eraser" else (width if horizontal else height)
    low, high = near if close_up else scene
    room = (width if horizontal else height) - 2 * MARGIN
    length = min(room, max(16, round(along * _uniform(rng, low, high))))
    thickness = max(7, round(length * _uniform(rng, *thickness_share)))
    thickness = min(thickness, (height if horizontal else width) - 2 * MARGIN)
    return (length, thickness) if horizontal else (thickness, length)


def _position(box_width: int, box_height: int, width: int, height: int, rng: np.random.Generator) -> tuple[int, int]:
    left = int(rng.integers(MARGIN, width - box_width - MARGIN + 1))
    top = int(rng.integers(MARGIN, height - box_height - MARGIN + 1))
    return left, top


def _overlap(a: GoldBox, b: GoldBox) -> float:
    """Intersection area over the smaller box's area."""
    across = min(a.left + a.width, b.left + b.width) - max(a.left, b.left)
    down = min(a.top + a.height, b.top + b.height) - max(a.top, b.top)
    if across <= 0 or down <= 0:
        return 0.0
    return across * down / min(a.width * a.height, b.width * b.height)


# --- drawing ----------------------------------------------------------------------------------------------------------

# Desk colours; True where the surface is wood and gets a grain.
_DESKS: tuple[tuple[RGB, bool], ...] = (
    ((196, 160, 112), True),  # oak
    ((120, 84, 56), True),  # walnut
    ((222, 200, 164), True),  # birch
    ((232, 231, 225), False),  # white laminate
    ((170, 170, 163), False),  # grey laminate
    ((74, 78, 86), False),  # slate
    ((60, 106, 86), False),  # green cutting mat
    ((126, 144, 162), False),  # blue-grey
)
_PEN_BODIES: tuple[RGB, ...] = ((22, 22, 26), (24, 40, 104), (120, 22, 30), (20, 70, 44), (58, 58, 64))
_PENCIL_YELLOW: RGB = (242, 194, 36)
_WOOD: RGB = (226, 188, 136)
_GRAPHITE: RGB = (54, 54, 60)
_METAL: RGB = (192, 192, 198)
_PINK: RGB = (244, 164, 178)
_WHITE: RGB = (242, 242, 236)
_SLEEVES: tuple[RGB, ...] = ((30, 84, 170), (26, 26, 30), (30, 120, 70), (196, 40, 40))
_SKIN: tuple[RGB, ...] = ((236, 200, 170), (200, 150, 110), (140, 96, 66), (92, 62, 44))
_CLOTHES: tuple[RGB, ...] = ((40, 44, 60), (90, 30, 30), (30, 70, 100), (60, 60, 60), (150, 120, 80), (200, 200, 205))
_PERSON_LABELS = frozenset({"pedestrian", "person", "people", "human"})


def _draw_scene(width: int, height: int, boxes: Sequence[GoldBox], rng: np.random.Generator) -> Image.Image:
    scene = _desk(width, height, rng)
    for box in boxes:
        left, top = max(0, box.left), max(0, box.top)
        right, bottom = min(width, box.left + box.width), min(height, box.top + box.height)
        if right <= left or bottom <= top:
            continue
        sprite = _render_object(box.label, box.width, box.height, rng)
        if (left, top, right, bottom) != (box.left, box.top, box.left + box.width, box.top + box.height):
            sprite = sprite.crop((left - box.left, top - box.top, right - box.left, bottom - box.top))
        scene.paste(sprite, (left, top), sprite)
    return scene


_NOISE_TILE = 256
_LIGHT_STEPS = 160.0  # a light level of 1.0 is step 160 of 255


def _desk(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A desk surface: a colour under a soft light gradient, a grain on wood, and sensor noise."""
    colour, wood = _pick(rng, _DESKS)
    base = _vary(rng, colour, 10)
    ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    angle = _uniform(rng, 0.0, 2 * math.pi)
    slope = _uniform(rng, 0.06, 0.22)
    light = xs * np.float32(slope * math.cos(angle)) + (ys * np.float32(slope * math.sin(angle)) + np.float32(1.0))
    if wood:
        # Grain: two waves of different period across the boards, bent along them, a few per cent deep;
        # sin(a + b) = sin a cos b + cos a sin b keeps the work to outer products of one-dimensional waves.
        across, along = (ys, xs) if rng.random() < 0.5 else (xs, ys)
        for depth in (_uniform(rng, 0.015, 0.035), _uniform(rng, 0.01, 0.025)):
            wave = across * np.float32(2 * math.pi / _uniform(rng, 0.015, 0.08))
            bend = np.float32(_uniform(rng, 0.5, 3.0)) * np.sin(
                along * np.float32(2 * math.pi / _uniform(rng, 0.3, 1.5)) + np.float32(_uniform(rng, 0, 2 * math.pi))
            )
            light += np.float32(depth) * np.sin(wave) * np.cos(bend)
            light += np.float32(depth) * np.cos(wave) * np.sin(bend)
    # Sensor noise: a tile of normal noise repeated over the image (a repeat of 256 pixels does not show).
    tile = rng.standard_normal((_NOISE_TILE, _NOISE_TILE), dtype=np.float32)
    tile *= np.float32(_uniform(rng, 1.5, 4.5) / 160.0)
    reps = (-(-height // _NOISE_TILE), -(-width // _NOISE_TILE))
    light += np.tile(tile, reps)[:height, :width]
    light *= np.float32(_LIGHT_STEPS)
    np.clip(light, 0, 255, out=light)
    levels = Image.fromarray(light.astype(np.uint8))
    channels = [levels.point([min(255, round(value * step / _LIGHT_STEPS)) for step in range(256)]) for value in base]
    return Image.merge("RGB", channels)


def _render_object(label: str, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """An RGBA sprite of exactly ``width`` x ``height`` whose opaque pixels reach all four edges (a tight box)."""
    kind = label.strip().lower()
    if kind in ("pen", "pencil", "eraser"):
        horizontal = width >= height
        length, thickness = (width, height) if horizontal else (height, width)
        draw = {"pen": _pen, "pencil": _pencil, "eraser": _eraser}[kind]
        minimum = {"pen": (16, 5), "pencil": (16, 4), "eraser": (3, 3)}[kind]
        if length < minimum[0] or thickness < minimum[1]:
            colour = {"pen": _PEN_BODIES[0], "pencil": _PENCIL_YELLOW, "eraser": _PINK}[kind]
            return _block(length if horizontal else thickness, thickness if horizontal else length, colour)
        sprite = draw(length, thickness, rng)
        if rng.random() < 0.5:
            sprite = sprite.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if rng.random() < 0.5:
            sprite = sprite.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        return sprite if horizontal else sprite.transpose(Image.Transpose.ROTATE_90)
    if kind in _PERSON_LABELS:
        return _person(width, height, rng)
    return _labelled_block(label, width, height)


def _pen(length: int, thickness: int, rng: np.random.Generator) -> Image.Image:
    """Lying left-right, tip at the left; the clip on the cap is the top edge."""
    sprite = Image.new("RGBA", (length, thickness))
    draw = ImageDraw.Draw(sprite)
    clip_height = max(1, round(thickness * _uniform(rng, 0.2, 0.3)))
    top, bottom = clip_height, thickness - 1
    body_height = bottom - top + 1
    middle = (top + bottom) / 2
    body = _vary(rng, _pick(rng, _PEN_BODIES), 8)
    metal = _vary(rng, _METAL, 12)
    tip = max(3, round(length * _uniform(rng, 0.05, 0.09)))
    cap_start = round(length * _uniform(rng, 0.58, 0.68))
    draw.rectangle((tip, top, cap_start, bottom), fill=body)
    if rng.random() < 0.5:
        grip_colour = _shade(body, 28) if rng.random() < 0.5 else (64, 64, 68)
        draw.rectangle((tip, top, tip + round(length * _uniform(rng, 0.12, 0.2)), bottom), fill=grip_colour)
    cap = body if rng.random() < 0.6 else _shade(body, 30)
    draw.rounded_rectangle((cap_start, top, length - 1, bottom), radius=max(0, body_height // 3), fill=cap)
    shine = top + body_height // 4
    draw.line((tip + 1, shine, length - 3, shine), fill=_shade(body, 60), width=max(1, body_height // 6))
    cap_length = length - cap_start
    draw.rectangle((cap_start + round(cap_length * 0.12), 0, length - 1 - round(cap_length * 0.2), top), fill=metal)
    narrow = body_height * 0.2
    draw.polygon([(0, middle), (tip, top + narrow), (tip, bottom - narrow)], fill=metal)
    draw.line((0, round(middle), max(1, tip // 4), round(middle)), fill=_GRAPHITE)  # the ball point
    return sprite


def _pencil(length: int, thickness: int, rng: np.random.Generator) -> Image.Image:
    """Lying left-right, sharpened tip at the left."""
    sprite = Image.new("RGBA", (length, thickness))
    draw = ImageDraw.Draw(sprite)
    paint = _vary(rng, _PENCIL_YELLOW, 14)
    bands = (_shade(paint, 26), paint, _shade(paint, -44))
    edges = (0, round(thickness / 3), round(2 * thickness / 3), thickness)
    middle = (thickness - 1) / 2
    tip = max(3, round(length * _uniform(rng, 0.10, 0.15)))
    end = length - 1
    rubber = ferrule = 0
    if rng.random() < 0.45 and length >= 40:
        rubber = max(2, round(length * _uniform(rng, 0.035, 0.05)))
        ferrule = max(2, round(length * _uniform(rng, 0.05, 0.07)))
    body_end = end - rubber - ferrule
    for colour, y0, y1 in zip(bands, edges, edges[1:], strict=False):
        if y1 > y0:
            draw.rectangle((tip, y0, body_end, y1 - 1), fill=colour)
    for y in edges[1:3]:
        if 0 < y < thickness - 1:
            draw.line((tip, y, body_end, y), fill=_shade(paint, -22))
    draw.polygon([(0, middle), (tip, 0), (tip, thickness - 1)], fill=_vary(rng, _WOOD, 8))
    scallop = max(1, tip // 4)
    for colour, y0, y1 in zip(bands, edges, edges[1:], strict=False):
        if y1 - y0 >= 2:
            draw.polygon([(tip, y0), (tip - scallop, (y0 + y1 - 1) / 2), (tip, y1 - 1)], fill=colour)
    lead = max(1, round(tip * _uniform(rng, 0.28, 0.4)))
    spread = middle * lead / tip
    draw.polygon([(0, middle), (lead, middle - spread), (lead, middle + spread)], fill=_GRAPHITE)
    draw.line((0, round(middle), max(1, lead // 2), round(middle)), fill=_GRAPHITE)
    if rng.random() < 0.6 and length > 60 and edges[2] - edges[1] >= 3:
        x = tip + round((body_end - tip) * _uniform(rng, 0.3, 0.45))
        ink = (20, 60, 30) if rng.random() < 0.5 else (20, 20, 20)
        for _ in range(int(rng.integers(4, 8))):
            glyph = int(rng.integers(2, 5))
            draw.rectangle((x, edges[1] + 1, x + glyph - 1, edges[2] - 2), fill=ink)
            x += glyph + 2
    if ferrule:
        metal = _vary(rng, _METAL, 12)
        draw.rectangle((body_end + 1, 0, body_end + ferrule, thickness - 1), fill=metal)
        for x in range(body_end + 2, body_end + ferrule, 3):
            draw.line((x, 0, x, thickness - 1), fill=_shade(metal, -40))
        radius = max(0, min(rubber, thickness) // 3)
        draw.rounded_rectangle(
            (body_end + ferrule + 1, 0, end, thickness - 1), radius=radius, fill=_vary(rng, _PINK, 8)
        )
    else:
        draw.line((end, 0, end, thickness - 1), fill=_shade(paint, -60))
    return sprite


def _eraser(length: int, thickness: int, rng: np.random.Generator) -> Image.Image:
    sprite = Image.new("RGBA", (length, thickness))
    draw = ImageDraw.Draw(sprite)
    white = bool(rng.random() < 0.5)
    colour = _vary(rng, _WHITE if white else _PINK, 8)
    radius = max(1, min(length, thickness) // 6)
    draw.rounded_rectangle((0, 0, length - 1, thickness - 1), radius=radius, fill=colour, outline=_shade(colour, -34))
    if white and rng.random() < 0.75 and length >= 16:
        start = round(length * _uniform(rng, 0.22, 0.34))
        stop = round(length * _uniform(rng, 0.7, 0.8))
        draw.rectangle((start, 0, stop, thickness - 1), fill=_vary(rng, _pick(rng, _SLEEVES), 10))
        if thickness >= 8:
            draw.rectangle((start, round(thickness * 0.42), stop, round(thickness * 0.58)), fill=(236, 236, 236))
    elif thickness >= 6 and length > 2 * radius + 3:
        draw.line((radius + 1, 1, length - radius - 2, 1), fill=_shade(colour, 12))
    return sprite


def _person(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """An upright figure: head on top, arms at the sides as wide as the box, legs to the bottom."""
    if width < 5 or height < 8:
        return _block(width, height, _pick(rng, _CLOTHES))
    sprite = Image.new("RGBA", (width, height))
    draw = ImageDraw.Draw(sprite)
    head = max(2, round(height * 0.16))
    hips = round(height * 0.58)
    draw.ellipse((round(width * 0.3), 0, round(width * 0.7), head), fill=_pick(rng, _SKIN))
    draw.rounded_rectangle(
        (0, head, width - 1, hips), radius=max(0, width // 6), fill=_vary(rng, _pick(rng, _CLOTHES), 10)
    )
    legs = _vary(rng, _pick(rng, _CLOTHES), 10)
    draw.rectangle((round(width * 0.12), hips, round(width * 0.46), height - 1), fill=legs)
    draw.rectangle((round(width * 0.54), hips, round(width * 0.88), height - 1), fill=legs)
    return sprite


def _labelled_block(label: str, width: int, height: int) -> Image.Image:
    """Any other class: a block in a colour of its own (the same for every object of the class)."""
    code = zlib.crc32(label.encode("utf-8"))
    colour: RGB = (60 + code % 160, 60 + (code >> 8) % 160, 60 + (code >> 16) % 160)
    sprite = _block(width, height, colour)
    if width >= 6 and height >= 6:
        ImageDraw.Draw(sprite).rectangle((2, 2, width - 3, height - 3), fill=_shade(colour, 40))
    return sprite


def _block(width: int, height: int, colour: RGB) -> Image.Image:
    return Image.new("RGBA", (width, height), (*colour, 255))


# --- helpers ----------------------------------------------------------------------------------------------------------


def _encode(image: Image.Image, image_format: ImageFormat) -> bytes:
    buffer = io.BytesIO()
    if image_format == "PNG":
        image.save(buffer, format="PNG", compress_level=1)
    else:
        image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _pick(rng: np.random.Generator, options: Sequence[_T]) -> _T:
    return options[int(rng.integers(len(options)))]


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _shade(colour: RGB, amount: int) -> RGB:
    red, green, blue = (min(255, max(0, channel + amount)) for channel in colour)
    return red, green, blue


def _vary(rng: np.random.Generator, colour: RGB, spread: int) -> RGB:
    red, green, blue = (min(255, max(0, channel + int(rng.integers(-spread, spread + 1)))) for channel in colour)
    return red, green, blue
