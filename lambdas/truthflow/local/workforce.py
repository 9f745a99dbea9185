"""The Ground Truth workforce of the offline run: simulated workers of known skill, or real crowd answers played back.

Both give each worker's ``answerContent`` in the exact shapes of the built-in templates
(``reference/groundtruth_contracts.md`` §3), which :mod:`truthflow.groundtruth.worker_answers` parses:

* bounding box: ``{"boundingBox": {"boundingBoxes": [{"label", "left", "top", "width", "height"}, ...],
  "inputImageProperties": {"width", "height"}}}``, pixels, an empty list for an image without boxes;
* classification: ``{"crowd-image-classifier": {"label": "<class name>"}}``.

**Simulated workers** (:func:`make_workforce`, :func:`answer`). A worker's skill is a handful of numbers, drawn
uniformly from the range of its kind when the workforce is made:

=========  ===========  ==========  =========  ===============  =================================================
kind       accuracy     box_jitter  miss_rate  false_box_rate   confusion
=========  ===========  ==========  =========  ===============  =================================================
careful    0.93-0.97    0.02-0.04   0.01-0.03  0.00-0.04        none
sloppy     0.70-0.80    0.08-0.15   0.12-0.18  0.10-0.30        none
biased     0.92-0.97    0.02-0.05   0.01-0.04  0.00-0.04        one class A answered as B, 70-90 % of the time
spammer    1/K          0           1          0.5-1.5          none
=========  ===========  ==========  =========  ===============  =================================================

What the numbers do, for every kind alike (so the configured skill is the true skill):

* ``accuracy``: the probability of giving the true class; otherwise one of the other classes, uniformly. For a
  ``biased`` worker this holds except on its confused class A: there it answers B with probability
  ``confusion_rate`` and otherwise follows ``accuracy``. A spammer's accuracy is chance level, 1/K for the K labels
  the workforce was made for, so it answers uniformly at random.
* ``miss_rate``: the probability of not boxing an object at all (a spammer boxes none).
* ``box_jitter``: each edge of a box the worker draws is off by a normal error whose standard deviation is this
  fraction of the object's width (left, right) or height (top, bottom); boxes are then cut to the image and rounded to
  whole pixels, at least one pixel wide and high.
* ``false_box_rate``: the expected number of spurious boxes per image (Poisson): a box of 5-35 % of the image's width
  and height at a random place with a random label. A spammer's boxes are all of this kind ("random boxes or none").

A worker draws its boxes in random order. :func:`true_skill` reports each worker's kind, ``box_jitter``,
``miss_rate`` and accuracy, the latter as :func:`expected_accuracy` (every class equally frequent, so a biased
worker's confusion counts).

**Replayed workers** (:class:`ReplayWorkforce`): the answers recorded in a real crowdsourcing data set, in the layout
of ``../shared/crowd_datasets``, read in place, converted to the shapes above and returned exactly as recorded.
"""

from __future__ import annotations

import colorsys
import functools
import io
import json
import math
import re
import textwrap
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypedDict, get_args

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from truthflow.groundtruth.label_config import TaskType
from truthflow.job_file import MAX_JOB_ID_CHARS, validate_job_id
from truthflow.local.sample_data import LABELS, GoldBox, SampleImage, SampleJob, synthesize_image
from truthflow.tables import InputError, parse_number, read_rows

WorkerKind = Literal["careful", "sloppy", "biased", "spammer"]
WORKER_KINDS: tuple[WorkerKind, ...] = get_args(WorkerKind)

BOX_ELEMENT = "boundingBox"
CLASSIFIER_ELEMENT = "crowd-image-classifier"

SKILL_RANGES: Mapping[WorkerKind, Mapping[str, tuple[float, float]]] = {
    "careful": {"accuracy": (0.93, 0.97), "box_jitter": (0.02, 0.04), "miss_rate": (0.01, 0.03),
                "false_box_rate": (0.0, 0.04)},
    "sloppy": {"accuracy": (0.70, 0.80), "box_jitter": (0.08, 0.15), "miss_rate": (0.12, 0.18),
               "false_box_rate": (0.10, 0.30)},
    "biased": {"accuracy": (0.92, 0.97), "box_jitter": (0.02, 0.05), "miss_rate": (0.01, 0.04),
               "false_box_rate": (0.0, 0.04), "confusion_rate": (0.70, 0.90)},
    "spammer": {"box_jitter": (0.0, 0.0), "miss_rate": (1.0, 1.0), "false_box_rate": (0.5, 1.5)},
}  # fmt: skip
"""The range each skill is drawn from, per kind (a spammer's accuracy is 1/K, not drawn)."""

SPURIOUS_BOX_SIZE = (0.05, 0.35)
"""A spurious box's width and height, as shares of the image's."""


@dataclass(frozen=True)
class SimulatedWorker:
    """A worker of known skill; see the module docstring for what each number does."""

    worker_id: str
    kind: WorkerKind
    accuracy: float
    box_jitter: float
    miss_rate: float
    false_box_rate: float
    confusion: dict[str, str] | None = None
    confusion_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("accuracy", "miss_rate", "confusion_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{self.worker_id}: {name} must be between 0 and 1, got {value}")
        for name in ("box_jitter", "false_box_rate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{self.worker_id}: {name} must be a non-negative number, got {value}")


class WorkerSkill(TypedDict):
    """A simulated worker's true skill, for the report."""

    kind: str
    accuracy: float
    box_jitter: float
    miss_rate: float


class ImageLike(Protocol):
    """What a worker looks at: the image size and the truth (a :class:`SampleImage` is one)."""

    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def boxes(self) -> Sequence[GoldBox]: ...
    @property
    def label(self) -> str | None: ...


# --- simulated workers ------------------------------------------------------------------------------------------------


def make_workforce(
    mix: Mapping[WorkerKind, int],
    *,
    seed: int,
    labels: Sequence[str] = LABELS,
) -> list[SimulatedWorker]:
    """Workers of the given kinds and numbers, e.g. ``{"careful": 3, "sloppy": 2, "biased": 1, "spammer": 1}``,
    with skills drawn from :data:`SKILL_RANGES`; ids ``<kind>-<n>`` (``careful-1``, ...), in the order of ``mix``.

    ``labels`` are the job's labels (by default the sample job's): a spammer's accuracy is chance level for them, and a
    biased worker confuses two of them (class A answered as class B, both chosen at random; no confusion with a
    single label).
    """
    labels = list(labels)
    if not labels:
        raise ValueError("labels must not be empty")
    rng = np.random.default_rng(seed)
    workers: list[SimulatedWorker] = []
    for kind, count in mix.items():
        if kind not in WORKER_KINDS:
            raise ValueError(f"unknown worker kind {kind!r}; known kinds: {', '.join(WORKER_KINDS)}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"the number of {kind} workers must be a non-negative integer, got {count!r}")
        ranges = SKILL_RANGES[kind]
        for number in range(1, count + 1):
            skill = {name: float(rng.uniform(low, high)) for name, (low, high) in ranges.items()}
            confusion: dict[str, str] | None = None
            if kind == "biased" and len(labels) >= 2:
                first, second = rng.choice(len(labels), size=2, replace=False)
                confusion = {labels[int(first)]: labels[int(second)]}
            workers.append(
                SimulatedWorker(
                    worker_id=f"{kind}-{number}",
                    kind=kind,
                    accuracy=1.0 / len(labels) if kind == "spammer" else skill["accuracy"],
                    box_jitter=skill["box_jitter"],
                    miss_rate=skill["miss_rate"],
                    false_box_rate=skill["false_box_rate"],
                    confusion=confusion,
                    confusion_rate=skill.get("confusion_rate", 0.0) if confusion else 0.0,
                )
            )
    if not workers:
        raise ValueError("the workforce needs at least one worker")
    return workers


def answer(
    worker: SimulatedWorker,
    image: ImageLike,
    labels: Sequence[str],
    rng: np.random.Generator,
    task_type: TaskType,
) -> dict[str, Any]:
    """The ``answerContent`` of ``worker`` for ``image`` in a job with ``labels``, random draws from ``rng``."""
    labels = list(labels)
    if not labels:
        raise ValueError("labels must not be empty")
    if task_type == "image-classification":
        if image.label is None:
            raise ValueError("a classification answer needs the image's true label, and this image has none")
        return {CLASSIFIER_ELEMENT: {"label": _answer_label(worker, image.label, labels, rng)}}
    if task_type != "bounding-box":
        raise ValueError(f"task_type must be 'bounding-box' or 'image-classification', got {task_type!r}")
    width, height = image.width, image.height
    boxes: list[dict[str, Any]] = []
    for gold in image.boxes:
        if rng.random() < worker.miss_rate:
            continue
        label = _answer_label(worker, gold.label, labels, rng)
        across, down = worker.box_jitter * gold.width, worker.box_jitter * gold.height
        left, right = (float(rng.normal(edge, across)) for edge in (gold.left, gold.left + gold.width))
        top, bottom = (float(rng.normal(edge, down)) for edge in (gold.top, gold.top + gold.height))
        boxes.append(_pixel_box(label, left, top, right, bottom, width, height))
    for _ in range(int(rng.poisson(worker.false_box_rate))):
        box_width = width * float(rng.uniform(*SPURIOUS_BOX_SIZE))
        box_height = height * float(rng.uniform(*SPURIOUS_BOX_SIZE))
        left = float(rng.uniform(0.0, width - box_width))
        top = float(rng.uniform(0.0, height - box_height))
        label = labels[int(rng.integers(len(labels)))]
        boxes.append(_pixel_box(label, left, top, left + box_width, top + box_height, width, height))
    order = rng.permutation(len(boxes))
    return {
        BOX_ELEMENT: {
            "boundingBoxes": [boxes[int(position)] for position in order],
            "inputImageProperties": {"width": width, "height": height},
        }
    }


def expected_accuracy(worker: SimulatedWorker, labels: Sequence[str] = LABELS) -> float:
    """The share of correct class labels ``worker`` gives when every one of ``labels`` is equally frequent."""
    labels = list(labels)
    if len(labels) <= 1:
        return 1.0
    total = 0.0
    for truth in labels:
        confused = 0.0
        if worker.confusion and worker.confusion.get(truth, truth) != truth and worker.confusion[truth] in labels:
            confused = worker.confusion_rate
        total += (1.0 - confused) * worker.accuracy
    return total / len(labels)


def true_skill(workers: Sequence[SimulatedWorker], labels: Sequence[str] = LABELS) -> dict[str, WorkerSkill]:
    """worker id -> its true skill: ``kind``, ``accuracy`` (:func:`expected_accuracy` for ``labels``),
    ``box_jitter``, ``miss_rate``."""
    return {
        worker.worker_id: {
            "kind": worker.kind,
            "accuracy": expected_accuracy(worker, labels),
            "box_jitter": worker.box_jitter,
            "miss_rate": worker.miss_rate,
        }
        for worker in workers
    }


def _answer_label(worker: SimulatedWorker, truth: str, labels: list[str], rng: np.random.Generator) -> str:
    if truth not in labels:
        raise ValueError(f"true label {truth!r} is not in the job's labels {labels}")
    if worker.confusion and truth in worker.confusion and rng.random() < worker.confusion_rate:
        confused = worker.confusion[truth]
        if confused in labels:
            return confused
    if len(labels) == 1 or rng.random() < worker.accuracy:
        return truth
    others = [label for label in labels if label != truth]
    return others[int(rng.integers(len(others)))]


def _pixel_box(
    label: str, left: float, top: float, right: float, bottom: float, width: int, height: int
) -> dict[str, Any]:
    """A box as the crowd element reports it: whole pixels inside the image, at least one pixel wide and high."""
    x0 = min(max(round(min(left, right)), 0), width - 1)
    y0 = min(max(round(min(top, bottom)), 0), height - 1)
    x1 = min(max(round(max(left, right)), x0 + 1), width)
    y1 = min(max(round(max(top, bottom)), y0 + 1), height)
    return {"label": label, "left": x0, "top": y0, "width": x1 - x0, "height": y1 - y0}


# --- replayed workers -------------------------------------------------------------------------------------------------

PLACEHOLDER_SIZE = (320, 240)
"""Size of the stand-in image of a replayed classification item."""

PEDESTRIAN = "pedestrian"
"""The class of the ``boxes_caltech_pedestrians`` layout."""

_LABEL_COLUMNS = ("item", "worker", "label")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ReplayWorkforce:
    """Real crowd answers played back: a data set folder's items as a job, and each item's recorded answers.

    ``job`` holds the items as :class:`SampleImage` s: their gold (``label`` for classification, ``boxes`` for boxes)
    where the data set has it, ``None`` / no boxes where it does not (``gold_items`` names the items with gold). The
    data sets carry no images, so each item gets a stand-in: for boxes, a desk photo at the recorded size with the
    gold objects drawn (:func:`synthesize_image`; just the desk for an item without gold); for classification, a plain
    tile showing the item id. ``item_ids`` maps each file name back to the data set's item id.
    """

    name: str
    job: SampleJob
    gold_items: frozenset[str]
    item_ids: Mapping[str, str]
    answers_json: Mapping[str, tuple[tuple[str, str], ...]] = field(repr=False)
    """file name -> ((worker id, answerContent as JSON text), ...) in recorded order."""

    @classmethod
    def load(
        cls,
        folder: Path,
        *,
        max_items: int | None = None,
        seed: int = 0,
        job_id: str | None = None,
        deduplicate: bool = False,
    ) -> ReplayWorkforce:
        """Read a data set folder in place.

        Two layouts: a classification set (``answers.csv`` item,worker,label and ``truth.csv`` item,label; integer
        labels become the class names ``class-<n>`` in numeric order, other labels keep their text, sorted) or the
        ``boxes_caltech_pedestrians`` layout (``images.csv``, ``assignments.csv``, ``answers.csv`` with x1,y1,x2,y2,
        ``gold_images.csv``, ``truth.csv``; the one class ``pedestrian``).

        ``max_items`` keeps that many items, gold items first (a random subset of them, by ``seed``, when there are
        more), then items without gold; kept items stay in file order. ``deduplicate`` keeps only a worker's first
        answer to an item (Ground Truth never asks a worker twice; some data sets repeat rows); by default every
        recorded row is an answer. ``job_id`` defaults to ``replay-<folder name>``.

        Every item's stand-in image is made here: loading a whole large set takes a while (about 500 classification
        items or 100 box images a second), so pass ``max_items`` for a quick run.
        """
        folder = Path(folder)
        if max_items is not None and (isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1):
            raise ValueError(f"max_items must be a positive integer or None, got {max_items!r}")
        if job_id is None:
            job_id = _job_id_for(folder.name)
        validate_job_id(job_id)
        if (folder / "assignments.csv").is_file() and (folder / "images.csv").is_file():
            return _load_boxes(folder, max_items, seed, job_id, deduplicate)
        if (folder / "answers.csv").is_file():
            return _load_labels(folder, max_items, seed, job_id, deduplicate)
        raise InputError(
            f"{folder}: not a crowd data set: expected answers.csv (item,worker,label) and truth.csv, or the "
            "boxes layout (images.csv, assignments.csv, answers.csv)"
        )

    @property
    def task_type(self) -> TaskType:
        return self.job.task_type

    @property
    def labels(self) -> tuple[str, ...]:
        return self.job.labels

    @property
    def images(self) -> tuple[SampleImage, ...]:
        return self.job.images

    @property
    def workers(self) -> tuple[str, ...]:
        """Every worker id that answers a kept item, in order of first answer."""
        return tuple(dict.fromkeys(worker for given in self.answers_json.values() for worker, _ in given))

    def answers_for(self, item: SampleImage | str) -> list[tuple[str, dict[str, Any]]]:
        """``[(worker id, answerContent), ...]`` recorded for an item (a :class:`SampleImage`, its file name or the
        data set's item id), in recorded order; fresh objects on every call."""
        key = item.file_name if isinstance(item, SampleImage) else item
        if key not in self.answers_json:
            key = self._file_name_of.get(key, key)
        if key not in self.answers_json:
            raise KeyError(f"{item!r} is not an item of the replayed data set {self.name}")
        return [(worker, json.loads(content)) for worker, content in self.answers_json[key]]

    @functools.cached_property
    def _file_name_of(self) -> dict[str, str]:
        """data set item id -> file name."""
        return {item: file_name for file_name, item in self.item_ids.items()}


def _load_labels(folder: Path, max_items: int | None, seed: int, job_id: str, deduplicate: bool) -> ReplayWorkforce:
    answers_path, truth_path = folder / "answers.csv", folder / "truth.csv"
    rows = [(row["item"], row["worker"], row["label"]) for _, row in read_rows(answers_path, _LABEL_COLUMNS)]
    if not rows:
        raise InputError(f"{answers_path}: no answers")
    truth: dict[str, str] = {}
    if truth_path.is_file():
        truth = {row["item"]: row["label"] for _, row in read_rows(truth_path, ("item", "label"))}
    names = _class_names({label for *_, label in rows} | set(truth.values()))
    items = list(dict.fromkeys(item for item, _, _ in rows))
    gold = {item for item in items if item in truth}
    kept = _choose_items(items, gold, max_items, seed)
    file_names = _file_names(kept, ".png")
    answers: dict[str, list[tuple[str, str]]] = {file_names[item]: [] for item in kept}
    seen: set[tuple[str, str]] = set()
    for item, worker, label in rows:
        if item not in file_names or (deduplicate and (item, worker) in seen):
            continue
        seen.add((item, worker))
        answers[file_names[item]].append((worker, json.dumps({CLASSIFIER_ELEMENT: {"label": names[label]}})))
    images = tuple(
        SampleImage(
            file_name=file_names[item],
            width=PLACEHOLDER_SIZE[0],
            height=PLACEHOLDER_SIZE[1],
            data=_placeholder(folder.name, item),
            boxes=(),
            label=names[truth[item]] if item in truth else None,
        )
        for item in kept
    )
    labels = tuple(names.values())
    job_file = {
        "task_type": "image-classification",
        "labels": list(labels),
        "workers_per_object": _workers_per_object(answers),
        "task_description": f"Replay of the recorded crowd answers of the data set {folder.name}."[:255],
    }
    return ReplayWorkforce(
        name=folder.name,
        job=SampleJob(job_id=job_id, task_type="image-classification", labels=labels, images=images, job_file=job_file),
        gold_items=frozenset(file_names[item] for item in kept if item in gold),
        item_ids={file_name: item for item, file_name in file_names.items()},
        answers_json={file_name: tuple(given) for file_name, given in answers.items()},
    )


def _load_boxes(folder: Path, max_items: int | None, seed: int, job_id: str, deduplicate: bool) -> ReplayWorkforce:
    sizes: dict[str, tuple[int, int]] = {}
    images_path = folder / "images.csv"
    for line, row in read_rows(images_path, ("image", "width", "height")):
        width, height = (parse_number(images_path, line, key, row[key]) for key in ("width", "height"))
        if not (width >= 1 and height >= 1 and width.is_integer() and height.is_integer()):
            raise InputError(f"{images_path} line {line}: width and height must be positive whole numbers")
        sizes[row["image"]] = (int(width), int(height))
    boxes_by_answer = _read_corner_boxes(folder / "answers.csv", ("image", "worker"), sizes)
    assignments_path = folder / "assignments.csv"
    assignments: list[tuple[str, str]] = []
    for line, row in read_rows(assignments_path, ("image", "worker", "n_boxes")):
        pair = (row["image"], row["worker"])
        if pair[0] not in sizes:
            raise InputError(f"{assignments_path} line {line}: image {pair[0]} is not in images.csv")
        drawn = len(boxes_by_answer.get(pair, []))
        if row["n_boxes"] != str(drawn):
            raise InputError(f"{assignments_path} line {line}: n_boxes {row['n_boxes']}, answers.csv has {drawn}")
        assignments.append(pair)
    missing = set(boxes_by_answer) - set(assignments)
    if missing:
        image, worker = sorted(missing)[0]
        raise InputError(f"{folder / 'answers.csv'}: boxes of image {image} by {worker} have no assignments.csv row")
    gold_boxes: dict[str, list[tuple[float, float, float, float]]] = {}
    if (folder / "gold_images.csv").is_file():
        gold_boxes = {row["image"]: [] for _, row in read_rows(folder / "gold_images.csv", ("image",))}
        if (folder / "truth.csv").is_file():
            for (image,), corners in _read_corner_boxes(folder / "truth.csv", ("image",), sizes).items():
                if image not in gold_boxes:
                    raise InputError(f"{folder / 'truth.csv'}: image {image} is not in gold_images.csv")
                gold_boxes[image] = corners
    answered = {image for image, _ in assignments}
    items = [image for image in sizes if image in answered]
    kept = _choose_items(items, set(gold_boxes), max_items, seed)
    file_names = _file_names(kept, ".jpg")
    answers: dict[str, list[tuple[str, str]]] = {file_names[item]: [] for item in kept}
    seen: set[tuple[str, str]] = set()
    for image, worker in assignments:
        if image not in file_names or (deduplicate and (image, worker) in seen):
            continue
        seen.add((image, worker))
        width, height = sizes[image]
        content = {
            BOX_ELEMENT: {
                "boundingBoxes": [
                    {
                        "label": PEDESTRIAN,
                        "left": x1,
                        "top": y1,
                        "width": round(x2 - x1, 2),
                        "height": round(y2 - y1, 2),
                    }
                    for x1, y1, x2, y2 in boxes_by_answer.get((image, worker), [])
                ],
                "inputImageProperties": {"width": width, "height": height},
            }
        }
        answers[file_names[image]].append((worker, json.dumps(content)))
    images = []
    for item in kept:
        width, height = sizes[item]
        boxes = tuple(_gold_box(corners) for corners in gold_boxes.get(item, []))
        images.append(
            SampleImage(
                file_name=file_names[item],
                width=width,
                height=height,
                data=synthesize_image(width, height, boxes, seed=_item_seed(seed, item)),
                boxes=boxes,
                label=None,
            )
        )
    job_file = {
        "task_type": "bounding-box",
        "labels": [PEDESTRIAN],
        "workers_per_object": _workers_per_object(answers),
        "task_title": "Draw boxes around pedestrians",
        "task_description": "Draw a tight box around every pedestrian in the street scene.",
        "instructions": {
            "header": "Draw a box around each pedestrian.",
            "short": "One tight box per pedestrian. Submit without a box if there is none.",
        },
    }
    return ReplayWorkforce(
        name=folder.name,
        job=SampleJob(
            job_id=job_id, task_type="bounding-box", labels=(PEDESTRIAN,), images=tuple(images), job_file=job_file
        ),
        gold_items=frozenset(file_names[item] for item in kept if item in gold_boxes),
        item_ids={file_name: item for item, file_name in file_names.items()},
        answers_json={file_name: tuple(given) for file_name, given in answers.items()},
    )


def _read_corner_boxes(
    path: Path, key_columns: tuple[str, ...], sizes: Mapping[str, tuple[int, int]]
) -> dict[tuple[str, ...], list[tuple[float, float, float, float]]]:
    """key -> [(x1, y1, x2, y2), ...] in file order of the ``box`` column."""
    numbered: dict[tuple[str, ...], list[tuple[int, tuple[float, float, float, float]]]] = {}
    for line, row in read_rows(path, (*key_columns, "box", "x1", "y1", "x2", "y2")):
        if row["image"] not in sizes:
            raise InputError(f"{path} line {line}: image {row['image']} is not in images.csv")
        x1, y1, x2, y2 = (parse_number(path, line, key, row[key]) for key in ("x1", "y1", "x2", "y2"))
        if x2 < x1 or y2 < y1:
            raise InputError(f"{path} line {line}: x2 < x1 or y2 < y1")
        key = tuple(row[column] for column in key_columns)
        numbered.setdefault(key, []).append((int(parse_number(path, line, "box", row["box"])), (x1, y1, x2, y2)))
    return {key: [corners for _, corners in sorted(boxes, key=lambda pair: pair[0])] for key, boxes in numbered.items()}


def _gold_box(corners: tuple[float, float, float, float]) -> GoldBox:
    x1, y1, x2, y2 = corners
    left, top = round(x1), round(y1)
    return GoldBox(PEDESTRIAN, left, top, max(1, round(x2) - left), max(1, round(y2) - top))


def _class_names(codes: set[str]) -> dict[str, str]:
    """label code -> class name, in class-id order: ``class-<n>`` for integer codes, else the code itself."""
    try:
        numbers = {code: int(code) for code in codes}
    except ValueError:
        return {code: code for code in sorted(codes)}
    return {code: f"class-{numbers[code]}" for code in sorted(codes, key=lambda code: numbers[code])}


def _choose_items(items: list[str], gold: set[str], max_items: int | None, seed: int) -> list[str]:
    if max_items is None or max_items >= len(items):
        return items
    rng = np.random.default_rng(seed)
    with_gold = [item for item in items if item in gold]
    without = [item for item in items if item not in gold]
    if len(with_gold) >= max_items:
        kept = {with_gold[int(i)] for i in rng.choice(len(with_gold), size=max_items, replace=False)}
    else:
        extra = rng.choice(len(without), size=max_items - len(with_gold), replace=False)
        kept = set(with_gold) | {without[int(i)] for i in extra}
    return [item for item in items if item in kept]


def _file_names(items: list[str], extension: str) -> dict[str, str]:
    """item id -> a file name safe on every file system and in S3 keys, unique ignoring case."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for item in items:
        stem = _UNSAFE_NAME.sub("_", item).strip("._")[:80] or "item"
        if stem != item or stem.lower() in used:
            stem = f"{stem}-{zlib.crc32(item.encode('utf-8')):08x}"
        while stem.lower() in used:
            stem += "_"
        used.add(stem.lower())
        names[item] = stem + extension
    return names


def _job_id_for(folder_name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9]+", "-", folder_name).strip("-") or "dataset"
    return f"replay-{cleaned}"[:MAX_JOB_ID_CHARS].rstrip("-")


def _workers_per_object(answers: Mapping[str, list[tuple[str, str]]]) -> int:
    """The most common number of answers per item, within Ground Truth's 1-9."""
    counts = Counter(len(given) for given in answers.values() if given)
    usual = counts.most_common(1)[0][0] if counts else 1
    return min(9, max(1, usual))


def _item_seed(seed: int, item: str) -> int:
    return (seed << 32) + zlib.crc32(item.encode("utf-8"))


def _placeholder(dataset: str, item: str) -> bytes:
    """A plain tile in a colour of the item's own, with the data set name and the item id written on it."""
    code = zlib.crc32(item.encode("utf-8"))
    red, green, blue = colorsys.hls_to_rgb((code % 360) / 360, 0.82, 0.45)
    tile = Image.new("RGB", PLACEHOLDER_SIZE, (round(red * 255), round(green * 255), round(blue * 255)))
    lines = [dataset, "item", *textwrap.wrap(item, 28, break_on_hyphens=False)[:7]]
    ImageDraw.Draw(tile).multiline_text((14, 14), "\n".join(lines), fill=(30, 30, 36), font=_font(), spacing=6)
    buffer = io.BytesIO()
    tile.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


@functools.cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=18)
