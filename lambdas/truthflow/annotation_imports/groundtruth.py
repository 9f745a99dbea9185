"""Ground Truth output manifests as one worker's answers: one file is one labeler (or one labeling job).

Each line is parsed by :func:`~truthflow.groundtruth.output_manifest.parse_output_manifest_line` (object detection
or image classification, the job's own label attribute); the item is the file name of ``source-ref``. An unlabeled
line (a failed object) gives no answer and is counted; a malformed line is refused and reported with its number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from truthflow.annotation_imports.image_names import image_file_name
from truthflow.annotation_imports.model import Answer, ReadContext
from truthflow.consolidation.boxes import Box
from truthflow.groundtruth.output_manifest import DetectionRecord, ManifestLineError, parse_output_manifest_line

_LINE_PREFIX = re.compile(r"^line \d+: ")


def read_groundtruth(name: str, text: str, context: ReadContext) -> Iterator[Answer]:
    """Answers of an output manifest (JSON Lines); the worker is the file."""
    report = context.report
    report.format = "groundtruth manifest"
    boxes_wanted = context.task_type == "bounding-box"
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        report.tasks += 1
        where = f"line {line_number}"
        try:
            record = parse_output_manifest_line(line, line_number=line_number)
            image = image_file_name(record.source_ref) if record is not None else ""
        except (ManifestLineError, ValueError) as error:
            report.problem(where, None, _LINE_PREFIX.sub("", str(error)))
            continue
        if record is None:
            report.without_answer += 1
            continue
        if isinstance(record, DetectionRecord) != boxes_wanted:
            report.ignored["object-detection label" if boxes_wanted is False else "classification label"] += 1
            continue
        if isinstance(record, DetectionRecord):
            boxes = [Box(box.label, box.left, box.top, box.width, box.height) for box in record.boxes]
            answer = Answer(image, record.source_ref, name, where, boxes=boxes)
            answer.width, answer.height = float(record.image_width), float(record.image_height)
            yield answer
        else:
            yield Answer(image, record.source_ref, name, where, label=record.label)
