"""Speed of reading tool exports (issue 10: a 100,000-task export at >= 50,000 tasks/s).

Each export is generated in the exact shape its tool writes (every field Label Studio puts in a JSON export, the
converter's JSON_MIN and CSV rows, CVAT for images 1.1 task XML, CVAT's COCO), 100,000 tasks (images), then read
from bytes into consolidation inputs by :func:`truthflow.annotation_imports.read_annotation_exports` (decoding,
parsing, checking, names, workers, grouping per image). Anchor, measured in the same run on the same bytes: the
standard library parsing the file and doing nothing else (``json.loads``, expat without handlers, ``csv.reader``),
which is what any reader in Python starts from. For the JSON exports, also the parse step of our reader alone
(pydantic-core's ``from_json`` as :mod:`truthflow.annotation_imports.json_parsing` calls it, with the garbage
collector paused as during a read, and the parsed document freed): the floor under the whole read. Best of 2 runs
each.

Run ``.venv/bin/python -m benchmarks.annotation_imports``.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.parsers import expat

REPO = Path(__file__).resolve().parents[1]
LAMBDAS = REPO / "lambdas"
if str(LAMBDAS) not in sys.path:
    sys.path.insert(0, str(LAMBDAS))

from truthflow.annotation_imports import ExportFile, read_annotation_exports  # noqa: E402
from truthflow.annotation_imports.json_parsing import loads_utf8  # noqa: E402
from truthflow.tables import garbage_collection_paused  # noqa: E402

TASKS = 100_000
TARGET = 50_000
RUNS = 2
WIDTH, HEIGHT = 1280, 960
LABELS = ("pen", "pencil", "eraser")
STAMP = "2026-11-20T10:02:11.345678Z"


def _box(rng: random.Random) -> tuple[str, float, float, float, float]:
    width, height = rng.uniform(20, 300), rng.uniform(20, 300)
    return rng.choice(LABELS), rng.uniform(0, WIDTH - width), rng.uniform(0, HEIGHT - height), width, height


def _region(box: tuple[str, float, float, float, float], index: int) -> dict[str, Any]:
    label, left, top, width, height = box
    value = {
        "x": left / WIDTH * 100,
        "y": top / HEIGHT * 100,
        "width": width / WIDTH * 100,
        "height": height / HEIGHT * 100,
        "rotation": 0,
        "rectanglelabels": [label],
    }
    return {
        "original_width": WIDTH,
        "original_height": HEIGHT,
        "image_rotation": 0,
        "value": value,
        "id": f"r{index:09d}",
        "from_name": "label",
        "to_name": "image",
        "type": "rectanglelabels",
        "origin": "manual",
    }


def _choice(label: str, index: int) -> dict[str, Any]:
    return {
        "value": {"choices": [label]},
        "id": f"c{index:09d}",
        "from_name": "class",
        "to_name": "image",
        "type": "choices",
        "origin": "manual",
    }


def _annotation(annotation_id: int, task_id: int, worker: int, result: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": annotation_id,
        "completed_by": worker,
        "result": result,
        "was_cancelled": False,
        "ground_truth": False,
        "created_at": STAMP,
        "updated_at": STAMP,
        "draft_created_at": None,
        "lead_time": 12.5,
        "prediction": {},
        "result_count": 0,
        "unique_id": f"5d0b4c2e-8a1f-4f3b-9c6d-{annotation_id:012d}",
        "import_id": None,
        "last_action": None,
        "task": task_id,
        "project": 3,
        "updated_by": worker,
        "parent_prediction": None,
        "parent_annotation": None,
        "last_created_by": None,
    }


def label_studio_tasks(n_annotators: int, boxes_per_answer: int, seed: int = 0) -> list[dict[str, Any]]:
    """Tasks as Label Studio's JSON export writes them; classification when ``boxes_per_answer`` is 0."""
    rng = random.Random(seed)
    tasks = []
    for task_id in range(1, TASKS + 1):
        upload = f"{rng.getrandbits(32):08x}-img_{task_id:06d}.jpg"
        annotations = []
        for worker in range(1, n_annotators + 1):
            number = (task_id - 1) * n_annotators + worker
            if boxes_per_answer:
                result = [_region(_box(rng), number * 10 + k) for k in range(boxes_per_answer)]
            else:
                result = [_choice(rng.choice(LABELS), number)]
            annotations.append(_annotation(number, task_id, worker, result))
        tasks.append(
            {
                "id": task_id,
                "annotations": annotations,
                "file_upload": upload,
                "drafts": [],
                "predictions": [],
                "data": {"image": f"/data/upload/3/{upload}"},
                "meta": {},
                "created_at": STAMP,
                "updated_at": STAMP,
                "inner_id": task_id,
                "total_annotations": n_annotators,
                "cancelled_annotations": 0,
                "total_predictions": 0,
                "comment_count": 0,
                "unresolved_comment_count": 0,
                "last_comment_updated_at": None,
                "project": 3,
                "updated_by": 1,
                "comment_authors": [],
            }
        )
    return tasks


def json_min_rows(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The converter's JSON_MIN rows (one per annotation); regions carry the image size."""
    rows = []
    for task in tasks:
        for annotation in task["annotations"]:
            regions = [
                {**result["value"], "original_width": WIDTH, "original_height": HEIGHT}
                for result in annotation["result"]
            ]
            row: dict[str, Any] = {**task["data"], "id": task["id"]}
            if regions:
                row["label"] = regions
            row.update(
                annotator=annotation["completed_by"],
                annotation_id=annotation["id"],
                created_at=STAMP,
                updated_at=STAMP,
                lead_time=12.5,
            )
            rows.append(row)
    return rows


def csv_text(rows: list[dict[str, Any]]) -> str:
    """The converter's CSV: sorted columns, QUOTE_NONNUMERIC, lists as compact JSON with escaped slashes."""
    columns = sorted({key for row in rows for key in row})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        cells = {
            key: json.dumps(value, separators=(",", ":")).replace("/", "\\/") if isinstance(value, list) else value
            for key, value in row.items()
        }
        cells["annotator"] = str(row["annotator"])
        writer.writerow(cells)
    return buffer.getvalue()


def cvat_xml(boxes_per_image: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n  <meta>\n    <task>\n'
        f"      <id>12</id>\n      <name>bench</name>\n      <size>{TASKS}</size>\n      <mode>annotation</mode>\n"
        "    </task>\n    <dumped>2026-11-20 17:03:00.000001+00:00</dumped>\n  </meta>\n"
    ]
    for index in range(TASKS):
        parts.append(f'  <image id="{index}" name="img_{index + 1:06d}.jpg" width="{WIDTH}" height="{HEIGHT}">\n')
        for _ in range(boxes_per_image):
            label, left, top, width, height = _box(rng)
            parts.append(
                f'    <box label="{label}" source="manual" occluded="0" xtl="{left:.2f}" ytl="{top:.2f}" '
                f'xbr="{left + width:.2f}" ybr="{top + height:.2f}" z_order="0">\n    </box>\n'
            )
        parts.append("  </image>\n")
    parts.append("</annotations>\n")
    return "".join(parts).encode()


def coco_json(boxes_per_image: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    images, annotations = [], []
    for index in range(1, TASKS + 1):
        images.append(
            {
                "id": index,
                "width": WIDTH,
                "height": HEIGHT,
                "file_name": f"img_{index:06d}.jpg",
                "license": 0,
                "flickr_url": "",
                "coco_url": "",
                "date_captured": 0,
            }
        )
        for _ in range(boxes_per_image):
            label, left, top, width, height = _box(rng)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index,
                    "category_id": LABELS.index(label) + 1,
                    "segmentation": [],
                    "area": round(width * height, 2),
                    "bbox": [round(left, 2), round(top, 2), round(width, 2), round(height, 2)],
                    "iscrowd": 0,
                    "attributes": {"occluded": False, "rotation": 0.0},
                }
            )
    categories = [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(LABELS)]
    document = {"licenses": [], "info": {}, "categories": categories, "images": images, "annotations": annotations}
    return json.dumps(document, separators=(",", ":")).encode()


def _expat_only(data: bytes) -> None:
    parser = expat.ParserCreate()
    parser.Parse(data, True)


def _csv_only(data: bytes) -> None:
    for _ in csv.reader(io.StringIO(data.decode())):
        pass


def _our_parse_step(data: bytes) -> None:
    """Parse as our reader does and free the document, both inside the reader's garbage-collector pause."""
    with garbage_collection_paused():
        parsed, document = loads_utf8(data)
        assert parsed
        del document


def _best(action: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
        gc.collect()
    return best


def cases() -> list[tuple[str, str, Callable[[], bytes], Callable[[bytes], object]]]:
    """(name, task type, bytes maker, anchor parse) per export shape."""
    box_exports: dict[str, bytes] = {}

    def box_export(variant: str) -> bytes:
        """The three Label Studio variants of one box project, made together; the task objects are dropped before
        anything is timed (they hold gigabytes that would slow every allocation)."""
        if not box_exports:
            tasks = label_studio_tasks(3, 2)
            rows = json_min_rows(tasks)
            box_exports.update(
                json=json.dumps(tasks).encode(), min=json.dumps(rows).encode(), csv=csv_text(rows).encode()
            )
            del tasks, rows
        return box_exports.pop(variant)

    return [
        (
            "Label Studio JSON, classes, 1 annotator",
            "image-classification",
            lambda: json.dumps(label_studio_tasks(1, 0)).encode(),
            json.loads,
        ),
        (
            "Label Studio JSON, classes, 3 annotators",
            "image-classification",
            lambda: json.dumps(label_studio_tasks(3, 0)).encode(),
            json.loads,
        ),
        (
            "Label Studio JSON, boxes, 3 annotators x 2",
            "bounding-box",
            lambda: box_export("json"),
            json.loads,
        ),
        (
            "Label Studio JSON_MIN, boxes, 3 annotators x 2",
            "bounding-box",
            lambda: box_export("min"),
            json.loads,
        ),
        (
            "Label Studio CSV, boxes, 3 annotators x 2",
            "bounding-box",
            lambda: box_export("csv"),
            _csv_only,
        ),
        ("CVAT for images XML, 2 boxes per image", "bounding-box", lambda: cvat_xml(2), _expat_only),
        ("COCO, 2 boxes per image", "bounding-box", lambda: coco_json(2), json.loads),
    ]


def run(progress: Callable[[str], None] | None = None) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for name, task_type, make, anchor in cases():
        data = make()
        gc.collect()
        export = ExportFile("bench-export", data)
        ours = _best(lambda export=export, task_type=task_type: read_annotation_exports([export], task_type=task_type))
        parse = _best(lambda data=data, anchor=anchor: anchor(data))
        our_parse = _best(lambda data=data: _our_parse_step(data)) if anchor is json.loads else None
        rows.append(
            {
                "export": name,
                "mb": len(data) / 1e6,
                "ours_seconds": ours,
                "anchor_seconds": parse,
                "our_parse_seconds": our_parse,
                "tasks_per_second": TASKS / ours,
            }
        )
        del data, export
        gc.collect()
        if progress is not None:
            progress(table(rows[-1:], header=False))
    return rows


def table_header() -> str:
    header = (
        f"{f'export ({TASKS:,} tasks)':<46} | {'MB':>6} | {'ours s':>6} | {'tasks/s':>8} | {'stdlib parse s':>14} | "
        f"{'our parse step s':>16} | >= {TARGET:,}"
    )
    return header + "\n" + "-" * len(header)


def table(rows: list[dict[str, object]], *, header: bool = True) -> str:
    lines = [table_header()] if header else []
    for row in rows:
        rate = float(str(row["tasks_per_second"]))
        our_parse = row.get("our_parse_seconds")
        parse_step = "-" if our_parse is None else f"{float(str(our_parse)):.2f}"
        lines.append(
            f"{row['export']!s:<46} | {float(str(row['mb'])):6.1f} | {float(str(row['ours_seconds'])):6.2f} | "
            f"{rate:8,.0f} | {float(str(row['anchor_seconds'])):14.2f} | {parse_step:>16} | "
            f"{'yes' if rate >= TARGET else 'NO'}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table_header(), flush=True)
    run(progress=lambda line: print(line, flush=True))
