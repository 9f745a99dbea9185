"""The report the offline run ends with: label quality against gold, worker skill, and the execution's timeline.

:func:`write_report` writes ``report.html`` and the PNG figures it shows into one folder (images referenced by
relative path, CSS inline, so the folder can be opened or copied as it is); :func:`summarize` returns the numbers
alone, for the CLI's printed summary and for tests. Both take a :class:`ReportInputs`, made of plain JSON types.

What is measured (all against the gold labels, on the *scored* images: those with gold and at least one answer):

- **Classification.** Accuracy of the pipeline's consolidated labels (Dawid-Skene, taken as given), of majority
  vote over the same raw answers (computed here with :func:`consolidate_labels`, ``method="mv"``), and of single
  workers: each worker's accuracy on the gold images they answered, averaged over workers, and the best worker.
  A scored image the pipeline gave no label counts as wrong.
- **Bounding boxes.** Micro-averaged precision, recall and F1 at IoU >= 0.5 and >= 0.7
  (:mod:`truthflow.consolidation.box_metrics`), with *class-aware* matching: a box matches a gold box of its own
  label only. Compared: the pipeline's consolidated boxes; a naive majority computed here (the same clustering and
  at-least-half quorum, but per-edge median coordinates, i.e. no worker skill); and single workers, each scored
  alone on the images they saw, averaged over workers, and the best worker (by F1 at IoU >= 0.5, shown at both).

- **Confusion.** Classification: gold x consolidated, and gold x majority vote. Boxes: gold class x consolidated
  class of boxes matched at IoU >= 0.5 regardless of class, plus a "missed" column (gold boxes no consolidated
  box matched) and a "no object" row (consolidated boxes that match no gold box).
- **Worker skill.** The workforce's true skill (simulated workforce) against the pipeline's estimate; also each
  worker's accuracy measured against gold (for boxes: the share of their gold-matched boxes with the right label).
- **Disagreements.** The images where the pipeline and majority vote differ, each judged against gold
  (:mod:`.disagreements`).
- **Gold questions** given to the pipeline (``ReportInputs.gold_questions``) are left out of every score (the
  pipeline knows their labels); classification adds the pipeline's engine on the same answers without them, and each
  worker's accuracy on them as the pipeline's quality.json gives it.

Matplotlib draws on its Agg canvas directly (no pyplot, no display) and is imported only by :func:`write_report`,
so this package imports without it.

The modules: :mod:`.inputs` (the inputs and their checking), :mod:`.analysis` (the numbers), :mod:`.disagreements`
(where the pipeline and majority vote differ), :mod:`.text` (method names, number formatting,
:func:`format_summary`), :mod:`.figures` (matplotlib figures), :mod:`.samples` (sample image thumbnails) and
:mod:`.page` (the HTML page, :func:`write_report`).
"""

from truthflow.local.report.analysis import (
    IOU_THRESHOLDS,
    MAJORITY,
    MATCH_IOU,
    PIPELINE,
    WORKER_BEST,
    WORKER_MEAN,
    FloatArray,
    _analyse,
    summarize,
)
from truthflow.local.report.inputs import (
    BOUNDING_BOX,
    DEFAULT_EMULATOR_NOTE,
    FAILED_STATUSES,
    IMAGE_CLASSIFICATION,
    SUCCEEDED_STATUSES,
    Answer,
    BoxDict,
    ClassResult,
    Consolidated,
    ReportInputs,
    StateSpan,
    TaskType,
    WorkerSkill,
)
from truthflow.local.report.page import MAX_SAMPLES, write_report
from truthflow.local.report.samples import MAX_PNG_BYTES, THUMBNAIL_SIDE
from truthflow.local.report.text import DASH, format_summary

__all__ = [
    "BOUNDING_BOX",
    "DASH",
    "DEFAULT_EMULATOR_NOTE",
    "FAILED_STATUSES",
    "IMAGE_CLASSIFICATION",
    "IOU_THRESHOLDS",
    "MAJORITY",
    "MATCH_IOU",
    "MAX_PNG_BYTES",
    "MAX_SAMPLES",
    "PIPELINE",
    "SUCCEEDED_STATUSES",
    "THUMBNAIL_SIDE",
    "WORKER_BEST",
    "WORKER_MEAN",
    "Answer",
    "BoxDict",
    "ClassResult",
    "Consolidated",
    "FloatArray",
    "ReportInputs",
    "StateSpan",
    "TaskType",
    "WorkerSkill",
    "_analyse",
    "format_summary",
    "summarize",
    "write_report",
]
