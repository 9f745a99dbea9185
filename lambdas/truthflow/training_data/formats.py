"""One image (or one box) in each training format: small pure functions, checked by hand in the tests.

Formats and their sources:

* **YOLO** (Ultralytics / darknet): one ``.txt`` per image, named after the image stem, one line per box
  ``<class> <x_center> <y_center> <width> <height>``, all normalised by the image size to ``[0, 1]``; written with six
  decimals. An image without boxes has an empty file (a background image).
* **RecordIO ``.lst`` for im2rec, object detection** (SageMaker notebook ``object_detection_recordio_format``):
  tab-separated ``index``, header width ``2``, label width ``5``, then ``class, xmin, ymin, xmax, ymax`` per object
  (corners as fractions of the image width/height, origin top-left), then the image path relative to the images
  root. Pack with ``im2rec.py --pack-label``; the algorithm's ``label_width`` hyperparameter must be at least
  ``2 + 5 * max boxes per image`` (see the conversion summary).
* **RecordIO ``.lst``, image classification** (SageMaker page ``image-classification``): ``index``, class index,
  relative path, tab-separated; indices unique, classes successive from 0.
* **COCO** detection JSON: ``images`` ``{id, file_name, width, height}``, ``annotations``
  ``{id, image_id, category_id, bbox: [x, y, width, height] (pixels, top-left origin), area, iscrowd: 0}``,
  ``categories`` ``{id, name, supercategory}``. Category ids start at 1 (``id = class index + 1``; many COCO tools
  reserve 0 for the background).
* **Pascal VOC** XML, one file per image: ``size`` (width, height, depth) and one ``object`` per box with ``name``
  and ``bndbox`` ``xmin ymin xmax ymax``. The VOC devkit counts pixels from 1 with inclusive corners, so by default
  ``xmin = left + 1`` and ``xmax = left + width`` (rounded to whole pixels); ``one_based=False`` writes
  ``xmin = left``, ``xmax = left + width`` as some tools expect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from truthflow.groundtruth.output_manifest import LabeledBox

LST_HEADER_WIDTH = 2
LST_OBJECT_WIDTH = 5


def _unit(value: float) -> float:
    # Clipped boxes give values in [0, 1] up to rounding; clamp so that a -1e-17 never prints as "-0.000000".
    return 0.0 if value <= 0.0 else 1.0 if value >= 1.0 else value


def yolo_line(class_index: int, box: LabeledBox, image_width: int, image_height: int) -> str:
    """``"<class> <cx> <cy> <w> <h>\\n"``, normalised to ``[0, 1]`` with six decimals."""
    x_center = _unit((box.left + box.width / 2) / image_width)
    y_center = _unit((box.top + box.height / 2) / image_height)
    width = _unit(box.width / image_width)
    height = _unit(box.height / image_height)
    return f"{class_index} {x_center:.6f} {y_center:.6f} {width:.6f} {height:.6f}\n"


def lst_detection_line(
    index: int, objects: Sequence[tuple[int, LabeledBox]], image_width: int, image_height: int, image_path: str
) -> str:
    """One im2rec detection line for ``objects`` = ``(class index, box)`` pairs."""
    columns = [str(index), str(LST_HEADER_WIDTH), str(LST_OBJECT_WIDTH)]
    for class_index, box in objects:
        columns.append(str(class_index))
        columns.append(f"{_unit(box.left / image_width):.6f}")
        columns.append(f"{_unit(box.top / image_height):.6f}")
        columns.append(f"{_unit((box.left + box.width) / image_width):.6f}")
        columns.append(f"{_unit((box.top + box.height) / image_height):.6f}")
    columns.append(_lst_path(image_path))
    return "\t".join(columns) + "\n"


def lst_label_width(max_objects_per_image: int) -> int:
    """The smallest ``label_width`` hyperparameter that fits an image with this many objects."""
    return LST_HEADER_WIDTH + LST_OBJECT_WIDTH * max_objects_per_image


def lst_classification_line(index: int, class_index: int, image_path: str) -> str:
    """One im2rec classification line: ``index<TAB>class<TAB>path``."""
    return f"{index}\t{class_index}\t{_lst_path(image_path)}\n"


def _lst_path(image_path: str) -> str:
    if any(character in image_path for character in "\t\n\r"):
        raise ValueError(f"image path {image_path!r} contains a tab or line break, which .lst files cannot hold")
    return image_path


def coco_image(image_id: int, file_name: str, image_width: int, image_height: int) -> dict[str, Any]:
    return {"id": image_id, "file_name": file_name, "width": image_width, "height": image_height}


def coco_annotation(annotation_id: int, image_id: int, category_id: int, box: LabeledBox) -> dict[str, Any]:
    """A COCO annotation in pixels: ``bbox = [left, top, width, height]``, ``area = width * height``."""
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": [box.left, box.top, box.width, box.height],
        "area": box.width * box.height,
        "iscrowd": 0,
    }


def coco_categories(class_names: Sequence[str]) -> list[dict[str, Any]]:
    """``[{"id": i + 1, "name": ..., "supercategory": "none"}]`` in class-index order."""
    return [{"id": position + 1, "name": name, "supercategory": "none"} for position, name in enumerate(class_names)]


def voc_corners(box: LabeledBox, *, one_based: bool = True) -> tuple[int, int, int, int]:
    """``(xmin, ymin, xmax, ymax)`` in whole pixels (see the module docstring for the convention)."""
    offset = 1 if one_based else 0
    xmin = round(box.left) + offset
    ymin = round(box.top) + offset
    xmax = max(round(box.left + box.width), xmin)
    ymax = max(round(box.top + box.height), ymin)
    return xmin, ymin, xmax, ymax


def voc_xml(
    file_name: str,
    image_width: int,
    image_height: int,
    image_depth: int,
    objects: Sequence[tuple[str, LabeledBox]],
    *,
    folder: str = "images",
    one_based: bool = True,
) -> str:
    """A Pascal VOC annotation document for one image; ``objects`` are ``(class name, box)`` pairs."""
    parts = [
        "<annotation>\n",
        f"  <folder>{escape(folder)}</folder>\n",
        f"  <filename>{escape(file_name)}</filename>\n",
        "  <size>\n",
        f"    <width>{image_width}</width>\n",
        f"    <height>{image_height}</height>\n",
        f"    <depth>{image_depth}</depth>\n",
        "  </size>\n",
        "  <segmented>0</segmented>\n",
    ]
    for name, box in objects:
        xmin, ymin, xmax, ymax = voc_corners(box, one_based=one_based)
        parts.append(
            "  <object>\n"
            f"    <name>{escape(name)}</name>\n"
            "    <pose>Unspecified</pose>\n"
            "    <truncated>0</truncated>\n"
            "    <difficult>0</difficult>\n"
            "    <bndbox>\n"
            f"      <xmin>{xmin}</xmin>\n"
            f"      <ymin>{ymin}</ymin>\n"
            f"      <xmax>{xmax}</xmax>\n"
            f"      <ymax>{ymax}</ymax>\n"
            "    </bndbox>\n"
            "  </object>\n"
        )
    parts.append("</annotation>\n")
    return "".join(parts)


def image_file_name(source_ref: str) -> str:
    """The last path segment of an S3 URI or path, taken as it is (keys in manifests are not URL-encoded)."""
    key = source_ref.removeprefix("s3://").partition("/")[2] if source_ref.startswith("s3://") else source_ref
    name = key.rpartition("/")[2]
    if not name or name in {".", ".."}:
        raise ValueError(f"cannot take an image file name from {source_ref!r}")
    return name


def split_file_name(name: str) -> tuple[str, str]:
    """``("cat.v2", ".jpg")`` for ``cat.v2.jpg``; a leading dot is part of the stem (``.hidden`` has no suffix)."""
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    return name[:dot], name[dot:]
