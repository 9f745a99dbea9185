"""What a labeling job is given: its files (input manifest, label categories, worker template) and, per image, the
``taskInput`` the pre-annotation (PRE) Lambda hands to the worker template.

Pure Python: the ``prepare_labeling`` handler lists the images and writes the files, the ``pre_labeling`` handler
returns the response; everything they decide is here.

Layout of a job folder (``DESIGN.md``)::

    jobs/<id>/job.json                               the job file (truthflow.job_file)
    jobs/<id>/images/...                             .jpg/.jpeg/.png, any depth
    jobs/<id>/manifests/input.manifest               written here
    jobs/<id>/manifests/label-categories.json        written here
    jobs/<id>/manifests/worker-template.liquid.html  written here
    jobs/<id>/labeling/                              Ground Truth's S3OutputPath

The per-job task settings travel to the PRE Lambda inside the manifest: Ground Truth passes every attribute of a
manifest line to it as ``dataObject`` (``reference/groundtruth_contracts.md`` §1.1), so each line carries
``"truthflow-task": {"task_type", "labels", "header"}`` (:data:`TASK_ATTRIBUTE`). One PRE function thus serves every
job; environment variables (``TASK_TYPE``, ``LABELS``, ``HEADER``) are the fallback for manifests made elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator, model_validator

from truthflow.automated_labeling.preparation import prepare_automated_labeling
from truthflow.gold_questions import GoldQuestions, check_gold_images, gold_document_for_run
from truthflow.groundtruth.events import ManifestDataObject, build_pre_annotation_response, labeling_job_name_from_arn
from truthflow.groundtruth.gold_labels import GOLD_LABELS_FILE
from truthflow.groundtruth.input_manifest import (
    MAX_ATTRIBUTE_CHARS,
    MAX_DATA_OBJECTS_PER_JOB,
    attribute_size,
    check_s3_uri,
    input_manifest_line,
)
from truthflow.groundtruth.label_config import (
    TaskType,
    build_label_category_config,
    label_category_config_text,
    validate_labels,
)
from truthflow.groundtruth.templates import (
    build_task_input,
    render_bounding_box_template,
    render_image_classification_template,
)
from truthflow.job_annotations import ANNOTATION_FILES_NAME, annotation_files
from truthflow.job_file import (
    JOB_FILE_NAME,
    JOBS_PREFIX,
    TASK_TYPE_DEFAULTS,
    JobFile,
    StartAt,
    validate_job_id,
)
from truthflow.run_start import JobFileVersion

TASK_ATTRIBUTE = "truthflow-task"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# Ground Truth's documented system minimum for automated data labeling (developer guide, sms-automated-labeling).
LABELING_JOB_NAME_PREFIX = "tf-"
RUN_ID_HASH_HEX_DIGITS = 8
MAX_RUN_ID_CHARS = 80  # a Step Functions execution name is at most 80 characters
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")

MANIFEST_CONTENT_TYPE = "application/x-ndjson"
JSON_CONTENT_TYPE = "application/json"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"


class ImageListingError(ValueError):
    """The job's image folder cannot make a labeling job (no images, or more than one job takes)."""


# --- names and places -------------------------------------------------------------------------------------------------


class PrepareLabelingRequest(BaseModel):
    """The state machine's input to the prepare step: ``{"bucket", "job_id", "run_id", "job_file"}``, where
    ``job_file`` is the version of ``jobs/<id>/job.json`` the run started with (``{"key", "version_id", "etag"}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    bucket: str
    job_id: str
    run_id: str
    job_file: JobFileVersion

    @model_validator(mode="after")
    def _job_file_is_the_jobs(self) -> PrepareLabelingRequest:
        expected = f"{JOBS_PREFIX}{self.job_id}/{JOB_FILE_NAME}"
        if self.job_file.key != expected:
            raise ValueError(f"job_file.key must be {expected!r}, got {self.job_file.key!r}")
        return self

    @field_validator("bucket")
    @classmethod
    def _bucket_is_a_name(cls, bucket: str) -> str:
        if not bucket or "/" in bucket or bucket.startswith("s3:"):
            raise ValueError(f"expected a bucket name, got {bucket!r}")
        return bucket

    @field_validator("job_id")
    @classmethod
    def _job_id_is_valid(cls, job_id: str) -> str:
        return validate_job_id(job_id)

    @field_validator("run_id")
    @classmethod
    def _run_id_is_an_execution_name(cls, run_id: str) -> str:
        if not run_id or len(run_id) > MAX_RUN_ID_CHARS or _CONTROL_CHARACTERS.search(run_id):
            raise ValueError(f"run_id must be 1 to {MAX_RUN_ID_CHARS} printable characters, got {run_id!r}")
        return run_id


@dataclass(frozen=True)
class JobPaths:
    """The S3 keys and URIs of one job's folder."""

    bucket: str
    job_id: str

    @property
    def prefix(self) -> str:
        return f"{JOBS_PREFIX}{self.job_id}/"

    @property
    def job_file_key(self) -> str:
        return self.prefix + JOB_FILE_NAME

    @property
    def images_prefix(self) -> str:
        return self.prefix + "images/"

    @property
    def input_manifest_key(self) -> str:
        return self.prefix + "manifests/input.manifest"

    @property
    def label_config_key(self) -> str:
        return self.prefix + "manifests/label-categories.json"

    @property
    def ui_template_key(self) -> str:
        return self.prefix + "manifests/worker-template.liquid.html"

    @property
    def gold_labels_key(self) -> str:
        """The run's gold questions (:mod:`truthflow.groundtruth.gold_labels`), beside the input manifest."""
        return self.prefix + "manifests/" + GOLD_LABELS_FILE

    @property
    def labeling_prefix(self) -> str:
        return self.prefix + "labeling/"

    @property
    def annotation_files_key(self) -> str:
        return self.prefix + "manifests/" + ANNOTATION_FILES_NAME

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def labeling_job_name(job_id: str, run_id: str) -> str:
    """``tf-<job id>-<8 hex of sha256(run_id)>``, lower case: the same run always gets the same name (a retried
    step does not start a second job), another run of the job gets another. Ground Truth job names are
    case-insensitive, so lower case shows what it compares. At most 3 + 40 + 1 + 8 = 52 characters, within the
    API's ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``; the hex ending never makes it end in ``-metadata`` or ``-ref``."""
    digest = hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:RUN_ID_HASH_HEX_DIGITS]
    return f"{LABELING_JOB_NAME_PREFIX}{validate_job_id(job_id).lower()}-{digest}"


# --- images -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSelection:
    """The image keys of a listing, sorted, and what was left out."""

    keys: list[str]
    skipped_not_images: int = 0
    skipped_empty: int = 0


def is_image_key(key: str) -> bool:
    return key.lower().endswith(IMAGE_EXTENSIONS)


def select_images(objects: Iterable[tuple[str, int]]) -> ImageSelection:
    """Keep the ``(key, size)`` pairs of a listing that are images (``.jpg``, ``.jpeg``, ``.png`` in any case) with
    at least one byte, sorted by key so that the manifest (and hence Ground Truth's dataset object ids) does not
    depend on listing order. Folder markers (``.../``) and other files count as not images."""
    keys: list[str] = []
    not_images = empty = 0
    for key, size in objects:
        if not is_image_key(key):
            not_images += 1
        elif size <= 0:
            empty += 1
        else:
            keys.append(key)
    return ImageSelection(keys=sorted(keys), skipped_not_images=not_images, skipped_empty=empty)


# --- the task settings each manifest line carries ---------------------------------------------------------------------


class LabelingTask(BaseModel):
    """The ``truthflow-task`` manifest attribute: what the worker template needs besides the image."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    task_type: TaskType
    labels: list[str]
    header: str

    @model_validator(mode="before")
    @classmethod
    def _default_header(cls, data: Any) -> Any:
        if isinstance(data, dict) and "header" not in data and isinstance(data.get("task_type"), str):
            defaults = TASK_TYPE_DEFAULTS.get(data["task_type"])
            if defaults is not None:
                return {**data, "header": defaults["instructions"]["header"]}
        return data

    @field_validator("labels")
    @classmethod
    def _labels_are_valid(cls, labels: list[str], info: ValidationInfo) -> list[str]:
        task_type: TaskType = info.data.get("task_type", "bounding-box")
        return validate_labels(labels, task_type=task_type)

    @classmethod
    def for_job(cls, job: JobFile) -> LabelingTask:
        return cls(task_type=job.task_type, labels=list(job.labels), header=job.instructions.header)

    def as_attribute(self) -> dict[str, Any]:
        return {"task_type": self.task_type, "labels": list(self.labels), "header": self.header}


def labeling_task_from_environment(environ: Mapping[str, str]) -> LabelingTask | None:
    """The PRE Lambda's fallback settings from ``TASK_TYPE``, ``LABELS`` (a JSON list) and optional ``HEADER``.
    ``None`` when neither ``TASK_TYPE`` nor ``LABELS`` is set; a ``ValueError`` naming the variable otherwise."""
    task_type, labels_json, header = environ.get("TASK_TYPE"), environ.get("LABELS"), environ.get("HEADER")
    if task_type is None and labels_json is None:
        return None
    if task_type is None or labels_json is None:
        raise ValueError("set TASK_TYPE and LABELS together (or neither, when every manifest line has truthflow-task)")
    try:
        labels = json.loads(labels_json)
    except json.JSONDecodeError as error:
        raise ValueError(f'LABELS must be a JSON list of strings such as ["pen", "pencil"]: {error}') from None
    settings: dict[str, Any] = {"task_type": task_type, "labels": labels}
    if header:
        settings["header"] = header
    try:
        return LabelingTask.model_validate(settings)
    except ValidationError as error:
        raise ValueError(f"TASK_TYPE/LABELS/HEADER: {_summary(error)}") from None


# --- the prepare step -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputFile:
    uri: str
    text: str
    content_type: str


@dataclass(frozen=True)
class LabelingInput:
    """The files to write and the state machine's output of the prepare step."""

    files: list[OutputFile]
    state_output: dict[str, Any]
    images: ImageSelection | None = field(default=None)


def needs_images(job: JobFile) -> bool:
    """Only a run that labels lists images; with ``existing_annotations`` the images are not looked at."""
    return job.start_at == "label"


def prepare_labeling_input(
    job: JobFile,
    *,
    paths: JobPaths,
    run_id: str,
    objects: Iterable[tuple[str, int]] | None,
    gold: GoldQuestions | None = None,
) -> LabelingInput:
    """Plan the labeling job of a run.

    ``objects`` is the listing ``(key, size)`` under ``paths.images_prefix`` (read only when
    :func:`needs_images`). A labeling run writes all three files; a run that starts from existing annotations writes
    only the label-category file (later stages read the label order from it) and returns ``null`` for
    ``n_objects``, ``input_manifest_uri`` and ``ui_template_uri``; a run that brings tool exports (``annotations``)
    also writes their list, ``manifests/annotation-files.json``, whose URI is ``annotations_uri``. ``gold``: the job's
    gold questions (read by :func:`truthflow.gold_questions.load_gold_questions`); each must be one of the listed
    images, and the run's copy is written to ``manifests/gold-labels.json`` (``gold_labels_uri``, else ``null``).

    The state output has exactly the keys the state machine reads: the CreateLabelingJob settings, ``start_at``
    (``label`` | ``consolidate`` | ``build`` | ``import``), ``existing_manifest_uri`` and ``annotations_uri``. The
    labels are not in it: they travel once, in the label-category file at ``label_config_uri``, which the later
    steps read.
    """
    name = labeling_job_name(paths.job_id, run_id)
    start_at: StartAt | Literal["automated"] = job.start_at
    labeling = start_at == "label"
    label_config = build_label_category_config(
        job.labels,
        task_type=job.task_type,
        short_instruction=job.instructions.short,
        full_instruction=job.instructions.full,
    )
    files = [OutputFile(paths.uri(paths.label_config_key), label_category_config_text(label_config), JSON_CONTENT_TYPE)]
    selection: ImageSelection | None = None
    automated: dict[str, Any] | None = None
    gold_uri: str | None = None
    if labeling:
        if objects is None:
            raise ValueError("a labeling run needs the listing of its images")
        selection = select_images(objects)
        _check_image_count(job, paths, selection)
        attributes = {TASK_ATTRIBUTE: LabelingTask.for_job(job).as_attribute()}
        first_batch = [paths.uri(key) for key in selection.keys]
        if job.automated_labeling is not None:
            prepared = prepare_automated_labeling(
                job.automated_labeling,
                task_type=job.task_type,
                workers_per_object=job.workers_per_object,
                image_uris=first_batch,
                images_prefix_uri=paths.uri(paths.images_prefix),
                job_prefix_uri=paths.uri(paths.prefix),
                labeling_job_name=name,
                manifest_attributes=attributes,
                seed=job.split.seed,
            )
            files.extend(
                OutputFile(paths.uri(paths.prefix + key), text, JSON_CONTENT_TYPE) for key, text in prepared.files
            )
            if prepared.state is not None:
                automated = prepared.state
                first_batch = list(prepared.plan.first_batch)
                start_at = "automated"
        files.append(
            OutputFile(
                paths.uri(paths.input_manifest_key),
                "".join(input_manifest_line(uri, attributes) for uri in first_batch),
                MANIFEST_CONTENT_TYPE,
            )
        )
        files.append(OutputFile(paths.uri(paths.ui_template_key), _worker_template(job), HTML_CONTENT_TYPE))
        if gold is not None:
            check_gold_images(gold, image_keys=selection.keys, images_prefix=paths.images_prefix)
            jobs = [name, *([automated["second_labeling_job_name"]] if automated else [])]
            document = gold_document_for_run(gold, bucket=paths.bucket, images_prefix=paths.images_prefix,
                                             labeling_jobs=jobs)  # fmt: skip
            gold_uri = paths.uri(paths.gold_labels_key)
            files.append(OutputFile(gold_uri, json.dumps(document, indent=1) + "\n", JSON_CONTENT_TYPE))
    annotations_uri: str | None = None
    if job.annotations is not None:
        annotations_uri = paths.uri(paths.annotation_files_key)
        listed = annotation_files(job.annotations, bucket=paths.bucket, job_id=paths.job_id)
        files.append(OutputFile(annotations_uri, listed.to_json(), JSON_CONTENT_TYPE))

    state_output: dict[str, Any] = {
        "labeling_job_name": name,
        "label_attribute_name": name,
        "task_type": job.task_type,
        "n_objects": len(selection.keys) if selection is not None else None,
        "input_manifest_uri": paths.uri(paths.input_manifest_key) if labeling else None,
        "label_config_uri": paths.uri(paths.label_config_key),
        "ui_template_uri": paths.uri(paths.ui_template_key) if labeling else None,
        "output_path_uri": paths.uri(paths.labeling_prefix),
        # The first labeling job's; with automated labeling the first batch gets its own count, the rest the job's.
        "workers_per_object": automated["first_batch_workers_per_object"] if automated else job.workers_per_object,
        "task_title": job.task_title,
        "task_description": job.task_description,
        "task_time_limit_seconds": job.task_time_limit_seconds,
        "task_availability_lifetime_seconds": job.task_availability_lifetime_seconds,
        "max_concurrent_task_count": job.max_concurrent_task_count,
        "automated": automated,
        "start_at": start_at,
        "existing_manifest_uri": (
            job.existing_annotations.manifest_uri if job.existing_annotations is not None else None
        ),
        "annotations_uri": annotations_uri,
        "gold_labels_uri": gold_uri,
    }
    return LabelingInput(files=files, state_output=state_output, images=selection)


def labeling_input_problems(job: JobFile) -> list[tuple[str, str]]:
    """``(field, message)`` for every limit that writing this job's labeling files would hit: the label-category
    file's size, Ground Truth's 20,000 characters per manifest attribute (the task settings each line carries) and
    the worker template. The starter calls this at upload, so that such a job file never starts a run."""
    problems: list[tuple[str, str]] = []
    try:
        label_category_config_text(
            build_label_category_config(
                job.labels,
                task_type=job.task_type,
                short_instruction=job.instructions.short,
                full_instruction=job.instructions.full,
            )
        )
    except ValueError as error:
        problems.append(("labels", str(error)))
    if not needs_images(job):
        return problems
    attribute = LabelingTask.for_job(job).as_attribute()
    size = attribute_size(attribute)
    if size > MAX_ATTRIBUTE_CHARS:
        problems.append(
            (
                "labels",
                f"every input-manifest line carries the labels and instructions.header in its {TASK_ATTRIBUTE} "
                f"attribute, which would be {size:,} characters; Ground Truth allows {MAX_ATTRIBUTE_CHARS:,} per "
                "attribute: use fewer or shorter labels",
            )
        )
    else:
        try:
            input_manifest_line("s3://bucket/jobs/job/images/image.jpg", {TASK_ATTRIBUTE: attribute})
        except ValueError as error:
            problems.append(("labels", str(error)))
    try:
        _worker_template(job)
    except ValueError as error:
        problems.append(("labels", str(error)))
    return problems


def _check_image_count(job: JobFile, paths: JobPaths, selection: ImageSelection) -> None:
    found = len(selection.keys)
    where = paths.uri(paths.images_prefix)
    if found == 0:
        raise ImageListingError(
            f"{where}: no images to label (looked for {', '.join(IMAGE_EXTENSIONS)} files of at least one byte; "
            f"skipped {selection.skipped_not_images} other and {selection.skipped_empty} empty objects). "
            "Upload the images before the job file, or set existing_annotations in the job file."
        )
    if found > MAX_DATA_OBJECTS_PER_JOB:
        raise ImageListingError(
            f"{where}: {found:,} images; a labeling job takes at most {MAX_DATA_OBJECTS_PER_JOB:,}: "
            "split them over several jobs"
        )


def _worker_template(job: JobFile) -> str:
    render = render_bounding_box_template if job.task_type == "bounding-box" else render_image_classification_template
    return render(
        labels=job.labels,
        header=job.instructions.header,
        short_instructions=job.instructions.short,
        full_instructions=job.instructions.full,
    )


# --- the PRE Lambda ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreAnnotation:
    """The PRE response; when the object is kept from workers, why; ``note`` says what a sent object lacks."""

    response: dict[str, Any]
    excluded_because: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class JobTaskSettings:
    """What a labeling job itself says about its task: the labels of its label-category file (``class_id`` order)
    and the title shown to workers (``HumanTaskConfig.TaskTitle``), used as the question above the image."""

    labels: tuple[str, ...]
    title: str | None = None


def job_settings_needed(event: object) -> str | None:
    """The labeling job whose settings :func:`pre_annotation` needs for this event, or ``None``: only a usable data
    object without a ``truthflow-task`` attribute (a plain manifest line) needs them, and only when the event names
    its job. The handler fetches them (DescribeLabelingJob, then the label-category file) and passes them in."""
    raw = event.get("dataObject") if isinstance(event, dict) else None
    if not isinstance(raw, dict) or TASK_ATTRIBUTE in raw:
        return None
    arn = event.get("labelingJobArn") if isinstance(event, dict) else None
    try:
        return labeling_job_name_from_arn(arn) if isinstance(arn, str) else None
    except ValueError:
        return None


def job_task_settings(labels: Sequence[Any], title: Any) -> JobTaskSettings:
    """Settings from a labeling job's description, checked: at least one label, each a non-empty string."""
    names = list(labels)
    if not names or not all(isinstance(name, str) and name.strip() for name in names):
        raise ValueError(f"the label-category file needs at least one non-empty label, got {names[:5]!r}")
    return JobTaskSettings(tuple(names), title if isinstance(title, str) and title.strip() else None)


def pre_annotation(
    event: object,
    *,
    default_task: LabelingTask | None,
    job_settings: JobTaskSettings | None = None,
    job_settings_problem: str | None = None,
) -> PreAnnotation:
    """The PRE response for one data object; never raises for a bad one.

    Settings come from the object's ``truthflow-task`` attribute (written by "Prepare labeling input"). A plain line
    (only ``source-ref``: a job made in the console with our Lambdas, or any manifest made elsewhere) takes the
    labels of the job's own label-category file and its task title (``job_settings``, fetched by the handler for
    :func:`job_settings_needed`), else ``default_task`` (the environment); when neither is at hand
    (``job_settings_problem`` says why) the object still goes to workers with ``taskObject`` alone: the worker
    template shows the labels and header it was rendered with. ``taskObject`` is the ``source-ref`` S3 URI, or, for
    a ``source`` (inline text) object, the text itself: our image templates cannot show text, but a custom template
    reading ``task.input.taskObject`` can.

    An unusable object (no ``dataObject``, neither ``source-ref`` nor ``source``, an invalid ``truthflow-task``, a
    ``source-ref`` that is not an ``s3://`` URI) gets ``isHumanAnnotationRequired: false`` and a ``taskInput``
    holding the reason: the documented way to keep one object from workers, where raising would risk failing the
    whole labeling job (reference §1.2-1.3).
    """
    raw = event.get("dataObject") if isinstance(event, dict) else None
    if not isinstance(raw, dict):
        return excluded_object("the event has no dataObject object")
    try:
        data_object = ManifestDataObject.model_validate(raw)
    except ValidationError as error:
        return excluded_object(f"dataObject is unusable: {_summary(error)}")

    if data_object.source_ref is not None:
        try:
            task_object = check_s3_uri(data_object.source_ref)
        except ValueError as error:
            return excluded_object(str(error))
    else:
        task_object = str(data_object.source)

    attribute = data_object.extra_attributes.get(TASK_ATTRIBUTE)
    if attribute is not None:
        try:
            task = LabelingTask.model_validate(attribute)
        except ValidationError as error:
            return excluded_object(f"the {TASK_ATTRIBUTE} attribute is invalid: {_summary(error)}")
        return PreAnnotation(build_pre_annotation_response(build_task_input(task_object, **_shown(task))))
    if job_settings is not None:
        task_input = build_task_input(task_object, labels=job_settings.labels, header=job_settings.title)
        return PreAnnotation(build_pre_annotation_response(task_input))
    if default_task is not None:
        return PreAnnotation(build_pre_annotation_response(build_task_input(task_object, **_shown(default_task))))
    note = (
        f"no {TASK_ATTRIBUTE} attribute, no job settings ({job_settings_problem or 'the event names no job'}) and no "
        "TASK_TYPE/LABELS: sent with taskObject only, the worker template shows its own labels"
    )
    return PreAnnotation(build_pre_annotation_response({"taskObject": task_object}), note=note)


def _shown(task: LabelingTask) -> dict[str, Any]:
    return {"labels": task.labels, "header": task.header}


def excluded_object(reason: str) -> PreAnnotation:
    response = build_pre_annotation_response({"excluded": True, "reason": reason}, human_annotation_required=False)
    return PreAnnotation(response, excluded_because=reason)


def _summary(error: ValidationError) -> str:
    """One line per pydantic error, joined: ``field: message``."""
    parts = []
    for detail in error.errors():
        where = ".".join(str(part) for part in detail["loc"])
        message = detail["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
