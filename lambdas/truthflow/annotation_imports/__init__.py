"""Labels from the tools people use: Label Studio, CVAT, COCO and Ground Truth exports as crowd answers.

Several annotators per item, then consolidation: each export file is read into answers (one per worker and image),
and :func:`read_annotation_exports` turns the answers of any number of files into the inputs of the consolidation
core, with an :class:`ImportReport` of what was skipped, converted, ignored or refused. Pure Python, no AWS; the
CLI (``truthflow consolidate --answers``) and the pipeline's "Consolidate whole job" step call the same function::

    imported = read_annotation_exports(
        [ExportFile("annotations/ls.json", ls_bytes), ExportFile("annotations/job_7.xml", cvat_bytes)],
        task_type="bounding-box", labels=job.labels, image_sizes=sizes_by_file_name,
        known_images=file_names_in_images_folder,
    )
    consolidate_boxes(imported.images, label_set=job.labels)        # or, for classes:
    consolidate_labels(imported.classes.items, imported.classes.workers, imported.classes.labels)

Readers: :mod:`.label_studio` (JSON, with :mod:`.label_studio_rows` for JSON_MIN and CSV), :mod:`.cvat` (CVAT for
images 1.1 XML, parsed safely), :mod:`.coco` (instances JSON), :mod:`.groundtruth` (output manifests). Formats are
told apart by :mod:`.detection`; names and workers follow :mod:`.image_names` and :mod:`.workers`.
"""

from truthflow.annotation_imports.collect import (
    AnswerCollector,
    ClassAnswers,
    ImportedAnswers,
    read_annotation_exports,
    read_export,
)
from truthflow.annotation_imports.detection import decode, detect_format
from truthflow.annotation_imports.image_names import image_file_name, last_segment
from truthflow.annotation_imports.model import (
    EXPORT_FORMATS,
    Answer,
    ExportError,
    ExportFile,
    ExportFormat,
    FileReport,
    ImportProblem,
    ImportReport,
    ReadContext,
)
from truthflow.annotation_imports.workers import worker_id

__all__ = [
    "EXPORT_FORMATS",
    "Answer",
    "AnswerCollector",
    "ClassAnswers",
    "ExportError",
    "ExportFile",
    "ExportFormat",
    "FileReport",
    "ImportProblem",
    "ImportReport",
    "ImportedAnswers",
    "ReadContext",
    "decode",
    "detect_format",
    "image_file_name",
    "last_segment",
    "read_annotation_exports",
    "read_export",
    "worker_id",
]
