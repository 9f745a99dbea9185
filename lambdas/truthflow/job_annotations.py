"""The job file's ``annotations`` section: labels people made in Label Studio, CVAT or another tool, brought as
the tools' export files and consolidated by the run instead of a labeling job.

::

    "annotations": {"format": "label-studio", "files": ["annotations/project-3.json", "annotations/job_7.xml"]}

``format`` is one of :data:`ANNOTATION_FORMATS` (the readers of :mod:`truthflow.annotation_imports`); left out, each
file's format is told from its content. ``files`` are 1 to :data:`MAX_ANNOTATION_FILES` paths relative to the job's
folder ``jobs/<id>/`` (``annotations/export.json``), or ``s3://`` URIs the job may read (:mod:`truthflow.job_scope`).
Several files are several annotators (one file per annotator, job, tool or project); the run skips labeling and
starts at "Consolidate whole job", which matches every image the exports name to ``jobs/<id>/images/`` by file name.

The section and ``existing_annotations`` exclude each other: ``existing_annotations.output_manifest`` brings labels
that are final (taken as they are), ``annotations`` brings several people's answers to consolidate (a Ground Truth
output manifest there counts as one annotator). Automated labeling needs people to label, so it excludes both.

"Prepare labeling input" resolves the files to ``s3://`` URIs and writes them, with the format, to
``jobs/<id>/manifests/annotation-files.json`` (:class:`AnnotationFiles`), so that the list travels once, in a file,
and not in the run's state.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from truthflow.groundtruth.input_manifest import check_s3_uri
from truthflow.job_scope import JOBS_PREFIX, JobScope

AnnotationFormat = Literal["label-studio", "cvat", "coco", "groundtruth"]
ANNOTATION_FORMATS: tuple[AnnotationFormat, ...] = ("label-studio", "cvat", "coco", "groundtruth")
# Each file is one GetObject and one parse in the consolidation step; far more than the files of real projects.
MAX_ANNOTATION_FILES = 1_000
# An S3 key is at most 1,024 bytes; the job's folder (jobs/<40 characters>/) takes up to 46 of them.
MAX_PATH_BYTES = 970
ANNOTATION_FILES_NAME = "annotation-files.json"
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def _annotation_path(value: str, info: ValidationInfo) -> str:
    """A path under the job's folder, or an ``s3://`` URI within the job's scope."""
    if value.startswith(("https://", "http://")):
        raise ValueError("must be a path under the job's folder (such as 'annotations/export.json') or an s3:// URI")
    if value.startswith("s3://"):
        check_s3_uri(value, what="URI")
        scope = info.context.get("scope") if isinstance(info.context, dict) else None
        if isinstance(scope, JobScope):
            problem = scope.problem(value)
            if problem is not None:
                raise ValueError(problem)
        return value
    if not value or len(value.encode("utf-8")) > MAX_PATH_BYTES:
        raise ValueError(f"must be a path of 1 to {MAX_PATH_BYTES} bytes under the job's folder")
    if _CONTROL_CHARACTERS.search(value) or "\\" in value:
        raise ValueError("must not contain control characters or backslashes (use '/' between folders)")
    segments = value.split("/")
    if value.startswith("/") or any(segment in ("", ".", "..") for segment in segments):
        raise ValueError(
            "must be a path relative to the job's folder jobs/<id>/, without empty, '.' or '..' parts "
            "(such as 'annotations/export.json')"
        )
    return value


AnnotationPath = Annotated[str, AfterValidator(_annotation_path)]


class AnnotationImport(BaseModel):
    """The ``annotations`` section; see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    format: AnnotationFormat | None = None
    files: list[AnnotationPath] = Field(min_length=1, max_length=MAX_ANNOTATION_FILES)

    @field_validator("files")
    @classmethod
    def _each_file_once(cls, files: list[str]) -> list[str]:
        seen: set[str] = set()
        for position, path in enumerate(files):
            if path in seen:
                raise ValueError(f"files[{position}] {path[:200]!r} is listed twice (each file is one annotator)")
            seen.add(path)
        return files

    def file_uris(self, bucket: str, job_id: str) -> list[str]:
        """The files as ``s3://`` URIs (a relative path lies under ``s3://<bucket>/jobs/<id>/``)."""
        folder = f"s3://{bucket}/{JOBS_PREFIX}{job_id}/"
        return [path if path.startswith("s3://") else folder + path for path in self.files]


class AnnotationFiles(BaseModel):
    """``manifests/annotation-files.json``: what "Consolidate whole job" reads for a job that brings exports."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: AnnotationFormat | None
    files: list[str] = Field(min_length=1, max_length=MAX_ANNOTATION_FILES)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(), indent=2, ensure_ascii=False)

    @classmethod
    def parse(cls, text: str, *, source: str) -> AnnotationFiles:
        try:
            return cls.model_validate(json.loads(text))
        except ValueError as error:  # json.JSONDecodeError and pydantic's ValidationError
            raise ValueError(f"{source}: not a list of annotation files ({str(error)[:300]})") from None


def annotation_files(section: AnnotationImport, *, bucket: str, job_id: str) -> AnnotationFiles:
    return AnnotationFiles(format=section.format, files=section.file_uris(bucket, job_id))


def exclusive_sources_problem(data: dict[str, Any]) -> str | None:
    """Why an ``annotations`` section cannot go with the job file's other fields (``data``: those validated)."""
    if data.get("existing_annotations") is not None:
        return (
            "give either 'annotations' (several people's answers, consolidated by the run) or "
            "'existing_annotations' (final labels, taken as they are), not both"
        )
    if data.get("automated_labeling") is not None:
        return "a job that brings its annotations labels nothing: remove 'automated_labeling' or 'annotations'"
    return None
