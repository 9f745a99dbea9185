"""Read crowd answers from the CSV layouts of the command line (validated, errors name file and line)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from truthflow.consolidation.boxes import Box, ImageAnswers, WorkerAnswer
from truthflow.tables import InputError, parse_number, read_columns, read_rows

LABEL_COLUMNS = ("item", "worker", "label")
BOX_COLUMNS = ("image", "worker", "label", "left", "top", "width", "height")
ASSIGNMENT_COLUMNS = ("image", "worker")


@dataclass(frozen=True)
class LabelAnswers:
    items: list[str]
    workers: list[str]
    labels: list[str]


def read_label_answers(path: Path) -> LabelAnswers:
    """``item,worker,label`` rows; at least one is required."""
    items, workers, labels = read_columns(path, LABEL_COLUMNS)
    answers = LabelAnswers(items, workers, labels)
    if not answers.items:
        raise InputError(f"{path}: no answers after the header")
    return answers


def read_box_answers(
    path: Path, assignments: Path | None = None, *, warn: Callable[[str], None] | None = None
) -> list[ImageAnswers]:
    """Box rows grouped per image and worker, in order of first appearance.

    ``assignments`` (``image,worker``) lists every worker who answered an image, including those who drew no
    box: without it, only workers with at least one box are known to have seen an image, so the quorum cannot
    count empty answers. A row repeating an earlier row exactly (same image, worker, label and coordinates, compared
    as numbers) is counted once: a worker cannot mean the same box twice, and a file concatenated with itself would
    otherwise double every consolidated box. ``warn`` is told how many such rows there were and where the first is.
    """
    per_image: dict[str, dict[str, list[Box]]] = defaultdict(dict)
    first_line: dict[tuple[str, str, Box], int] = {}
    repeated: list[tuple[int, int]] = []
    for line_number, row in read_rows(path, BOX_COLUMNS):
        left, top, width, height = (
            parse_number(path, line_number, column, row[column]) for column in ("left", "top", "width", "height")
        )
        box = Box(label=row["label"], left=left, top=top, width=width, height=height)
        seen_at = first_line.setdefault((row["image"], row["worker"], box), line_number)
        if seen_at != line_number:
            repeated.append((line_number, seen_at))
            continue
        per_image[row["image"]].setdefault(row["worker"], []).append(box)
    if repeated and warn is not None:
        line_number, seen_at = repeated[0]
        warn(
            f"{path}: {len(repeated)} box row(s) repeat an earlier row exactly (same image, worker, label and "
            f"coordinates) and were counted once; the first is line {line_number}, a repeat of line {seen_at}"
        )
    if assignments is not None:
        for _, row in read_rows(assignments, ASSIGNMENT_COLUMNS):
            per_image[row["image"]].setdefault(row["worker"], [])
    if not per_image:
        raise InputError(f"{path}: no answers after the header")
    return [
        ImageAnswers(
            image=image,
            width=None,
            height=None,
            answers=tuple(WorkerAnswer(worker=worker, boxes=tuple(boxes)) for worker, boxes in workers.items()),
        )
        for image, workers in per_image.items()
    ]
