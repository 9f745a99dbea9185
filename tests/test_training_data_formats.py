"""Each training format on a known box of a known image, computed by hand.

The box: ``left=100, top=50, width=200, height=100`` on a 640 x 480 image, i.e. corners (100, 50)-(300, 150),
centre (200, 100).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from truthflow.groundtruth import LabeledBox
from truthflow.training_data import (
    coco_annotation,
    coco_categories,
    image_file_name,
    lst_classification_line,
    lst_detection_line,
    lst_label_width,
    voc_corners,
    voc_xml,
    yolo_line,
)

BOX = LabeledBox("pen", left=100, top=50, width=200, height=100)
WIDTH, HEIGHT = 640, 480


def test_yolo_line():
    # cx = 200/640 = 0.3125, cy = 100/480 = 0.208333.., w = 200/640 = 0.3125, h = 100/480 = 0.208333..
    assert yolo_line(2, BOX, WIDTH, HEIGHT) == "2 0.312500 0.208333 0.312500 0.208333\n"


def test_yolo_line_of_a_whole_image_box():
    assert yolo_line(0, LabeledBox("pen", 0, 0, 640, 480), WIDTH, HEIGHT) == "0 0.500000 0.500000 1.000000 1.000000\n"


def test_lst_detection_line():
    second = LabeledBox("cap", left=0, top=0, width=64, height=48)
    line = lst_detection_line(7, [(2, BOX), (0, second)], WIDTH, HEIGHT, "pens/img 1.jpg")
    # xmin = 100/640, ymin = 50/480, xmax = 300/640, ymax = 150/480; then 0, 0, 64/640, 48/480.
    assert line == (
        "7\t2\t5\t"
        "2\t0.156250\t0.104167\t0.468750\t0.312500\t"
        "0\t0.000000\t0.000000\t0.100000\t0.100000\t"
        "pens/img 1.jpg\n"
    )
    columns = line.rstrip("\n").split("\t")
    header_width, label_width = int(columns[1]), int(columns[2])
    assert (len(columns) - 2 - header_width) % label_width == 0


def test_lst_classification_line_and_label_width():
    assert lst_classification_line(5, 1, "train_img_dog1.jpg") == "5\t1\ttrain_img_dog1.jpg\n"
    assert lst_label_width(3) == 17
    with pytest.raises(ValueError, match="tab or line break"):
        lst_classification_line(0, 0, "bad\tname.jpg")


def test_coco_annotation_in_pixels():
    assert coco_annotation(11, 3, 1, BOX) == {
        "id": 11,
        "image_id": 3,
        "category_id": 1,
        "bbox": [100, 50, 200, 100],
        "area": 20000,
        "iscrowd": 0,
    }
    assert coco_categories(["pen", "cap"]) == [
        {"id": 1, "name": "pen", "supercategory": "none"},
        {"id": 2, "name": "cap", "supercategory": "none"},
    ]
    json.dumps(coco_annotation(1, 1, 1, LabeledBox("pen", 1.5, 2.5, 3.25, 4.0)))


def test_voc_box_is_one_based_and_inclusive_by_default():
    assert voc_corners(BOX) == (101, 51, 300, 150)
    assert voc_corners(BOX, one_based=False) == (100, 50, 300, 150)


def test_voc_document():
    document = voc_xml("img 1.jpg", WIDTH, HEIGHT, 3, [("pen", BOX), ("<cap & co>", BOX)], folder="images/train")
    root = ET.fromstring(document)
    assert root.tag == "annotation"
    assert root.findtext("filename") == "img 1.jpg"
    assert root.findtext("folder") == "images/train"
    assert [root.findtext(f"size/{key}") for key in ("width", "height", "depth")] == ["640", "480", "3"]
    objects = root.findall("object")
    assert [item.findtext("name") for item in objects] == ["pen", "<cap & co>"]
    box = objects[0].find("bndbox")
    assert box is not None
    assert [box.findtext(key) for key in ("xmin", "ymin", "xmax", "ymax")] == ["101", "51", "300", "150"]
    assert objects[0].findtext("difficult") == "0"


def test_image_file_name():
    assert image_file_name("s3://bucket/jobs/pens/images/cat 1.jpg") == "cat 1.jpg"
    assert image_file_name("s3://bucket/top.png") == "top.png"
    with pytest.raises(ValueError, match="cannot take an image file name"):
        image_file_name("s3://bucket/folder/")
