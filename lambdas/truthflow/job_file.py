"""The job file: ``jobs/<id>/job.json``, the one file a user writes to start a run.

Only ``task_type`` and ``labels`` are required; everything else has a default. A minimal file::

    {"task_type": "bounding-box", "labels": ["pen", "pencil"]}

Fields (limits marked [API] are CreateLabelingJob's / CreateTrainingJob's, from the botocore SageMaker model
``sagemaker/2017-07-24/service-2.json`` = the API reference; [DG] from the Ground Truth developer guide):

``task_type`` (required)
    ``"bounding-box"`` or ``"image-classification"`` (single label).
``labels`` (required)
    The label list, in the order that fixes class ids. At least 1 for bounding boxes and 2 for classification,
    unique, at most 256 characters each, at most 50 for bounding boxes [API ``LabelCategoryConfigS3Uri``, DG
    ``input-data-limits``]; see :func:`truthflow.groundtruth.label_config.validate_labels`. Ground Truth's own
    minimums are kept: a one-class detector is a legitimate job. Ours: at most 500 for classification (the API has
    no maximum; the worker picks one of them, and every consolidation step keeps labels x labels counts per
    worker), and no tab, line break or other control character (the training data writes one label a line).
``workers_per_object`` = 3
    People who label each image, 1-9 [API ``NumberOfHumanWorkersPerDataObject``]. Ground Truth writes confidence
    0.00 for every one-worker label, so ``exclusion.min_confidence > 0`` with one worker excludes everything.
``task_title``, ``task_description``
    What workers see in their task list: 1-128 and 1-255 characters [API ``TaskTitle``, ``TaskDescription``], in
    the API's character patterns: the title only tab, line breaks and characters U+0020-U+D7FF and U+E000-U+FFFD
    (no emoji or other characters beyond U+FFFF), the description one line (``.+``). Defaults depend on the task
    type.
``instructions``: ``header``, ``short``, ``full``
    The question above the image and the short / full instructions of the worker template (plain text; a blank
    line starts a paragraph). Defaults depend on the task type. Limits (ours): 500, 2,000 and 20,000 characters.
``task_time_limit_seconds`` = 300
    Time a worker has for one image, 30-28,800 (8 h, the maximum for image tasks) [API ``TaskTimeLimitInSeconds``].
``task_availability_lifetime_seconds`` = 864,000 (10 days)
    How long an image stays available to the private workforce, 60-2,592,000 [API
    ``TaskAvailabilityLifetimeInSeconds``: minimum 60; "for a private or vendor workforce the default is 30 days
    (2,592,000 seconds) ... for most users the maximum is also 30 days"]. 10 days is the value of AWS's own Step
    Functions labeling example; labeling jobs expire after 30 days anyway [DG ``sms-monitor-cloud-watch``].
``max_concurrent_task_count`` = 1000
    Images out with workers at the same time, 1-1,000 [API ``MaxConcurrentTaskCount``: 1-5,000, default 1,000;
    more than 1,000 only after AWS Support raises the account's limit, so a larger value fails the labeling job].
``automated_labeling`` (optional): ``true``, ``false`` or a section (``true`` = the section with its defaults)
    People label a random first share of the images, a model (a bootstrap model trained on it, or ``model``)
    labels the rest where its confidence is at least θ, and people label only what is left
    (:mod:`truthflow.automated_labeling`).
    ``target`` = 0.95 (classification: accuracy) or 0.6 (boxes: mean IoU per image, missed and extra boxes count 0):
    the quality of accepted machine labels against the human labels, 0-1; ``initial_fraction`` = 0.1 (0-1, the first
    batch is also at least 100 images and large enough to calibrate the target); ``calibration_fraction`` = 0.5
    (share of the first batch held out to choose θ); ``confidence_level`` = 0.95 (0.5-0.999, of θ's guarantee);
    ``model`` = null (the name of an existing SageMaker model of this task type and label list, e.g. one a previous
    run deployed, instead of a bootstrap model); ``instance_type`` = ``"ml.m5.xlarge"`` (the batch transform job;
    both built-in algorithms predict on CPU); ``price_per_task`` = 0.08 (what one worker labeling one image costs, in
    USD, for the report's "cost saved"; Ground Truth's per-object fee by default); ``first_batch_workers_per_object``
    = the larger of 5 and ``workers_per_object`` (1-9): the first batch trains the bootstrap model and is the
    yardstick θ's guarantee is measured against, so its labels get more people than the rest.
``split``: ``validation_fraction`` = 0.2 (strictly between 0 and 1), ``seed`` = 0 (>= 0)
    The train/validation split (:mod:`truthflow.training_data.split`). The quality gate needs a validation set,
    hence a fraction above 0.
``exclusion``: ``min_box_width`` = 1, ``min_box_height`` = 1 (pixels, >= 0), ``min_confidence`` = 0.0 (0-1)
    Labels kept out of the training data (:mod:`truthflow.training_data.exclusion`).
``training``: ``instance_type`` = ``"ml.p3.2xlarge"``, ``instance_count`` = 1, ``max_runtime_seconds`` = 86,400,
``hyperparameters`` = {}
    The training job. Both built-in algorithms (object detection, image classification) train on the GPU families
    :mod:`truthflow.algorithms` lists (P2, P3, G4dn, G5), so the instance type must be one; image classification
    trains on one instance (no distributed training in Pipe mode). ``max_runtime_seconds`` is 1-2,419,200 (28 days)
    [API ``StoppingCondition.MaxRuntimeInSeconds``: default 1 day, maximum 28 days]. ``hyperparameters`` maps names
    to strings or numbers, merged over the algorithm's defaults by the training step; at most 100, names up to 256
    and values up to 2,500 characters [API ``HyperParameters``], and 32,000 characters in all (ours: they travel in
    the run's state, which Step Functions limits to 256 KB).
``quality_gate``: ``metric``, ``threshold``
    The model is deployed only if its final ``metric`` is at least ``threshold`` (0-1, higher is better).
    Defaults: ``validation:mAP`` >= 0.5 for bounding boxes (the built-in detector's metric; 0.5 is a usable
    detector on a small data set) and ``validation:accuracy`` >= 0.7 for classification (well above chance for
    any label count >= 2, reachable by fine-tuning a pretrained network on a few hundred images).
``endpoint``: ``instance_type`` = ``"ml.m5.xlarge"``, ``initial_instance_count`` = 1 (>= 1)
    The hosting endpoint (CPU inference is supported by both built-in algorithms).
``existing_annotations`` (optional): exactly one of
    ``output_manifest``: the ``s3://`` URI of a Ground Truth output manifest: labeling is skipped and the run starts
    at whole-job consolidation; or ``consolidated_manifest``: the ``s3://`` URI of a consolidated manifest: the run
    starts at building the training data. Either must lie under the job's own folder ``jobs/<id>/`` or in a bucket
    the deployment allows (:mod:`truthflow.job_scope`); so must every image its lines name.
``annotations`` (optional): ``{"format", "files"}``
    Label Studio, CVAT, COCO or Ground Truth exports (several people's answers) under ``jobs/<id>/``: labeling is
    skipped and "Consolidate whole job" consolidates them (:mod:`truthflow.job_annotations`). Excludes
    ``existing_annotations`` and ``automated_labeling``.

``gold_labels`` (optional)
    Gold questions: the path, inside the job's folder, of a CSV file with columns ``image,label`` (e.g.
    ``"gold.csv"`` for ``jobs/<id>/gold.csv``) listing images of ``images/`` whose label is known. They are labeled
    like every other image; their known labels fix those images' labels and anchor worker skill in consolidation,
    and workers are scored on them (:mod:`truthflow.gold_questions`). Image classification only (box gold, boxes a
    worker must match, is not supported yet); not with ``existing_annotations`` (nothing is consolidated from worker
    answers) nor, for now, with ``automated_labeling`` (a gold image could be labeled by the model instead of people).
    A relative path of at most 512 characters ending in ``.csv`` (lower case), not in a folder the run writes
    (``manifests/``, ``labeling/``, ``dataset/``, ``predictions/``).

Job ids (the ``<id>`` of ``jobs/<id>/``) follow :mod:`truthflow.job_ids`: lower-case letters, digits and hyphens.

Unknown fields are errors (a typo must not silently become a default). :func:`parse_job_file` raises
:class:`JobFileError` listing every problem, one per line, each naming the file and the field::

    jobs/pens-v1/job.json: workers_per_object: must be between 1 and 9 (got 12)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from truthflow.algorithms import algorithm_for, transform_instance_problem
from truthflow.groundtruth.bounded_json import value_encodes_as_utf8
from truthflow.groundtruth.input_manifest import check_s3_uri
from truthflow.groundtruth.label_config import TaskType, validate_labels
from truthflow.job_annotations import AnnotationImport, exclusive_sources_problem
from truthflow.job_file_errors import JobFileError, describe, json_kind
from truthflow.job_ids import (
    JOB_FILE_NAME,
    JOBS_PREFIX,
    MAX_JOB_ID_CHARS,
    job_file_key,
    job_id_from_key,
    validate_job_id,
)
from truthflow.job_scope import JobScope

# Importable from here as before: the error type and the job id rules live in their own modules.
__all__ = [
    "JOBS_PREFIX",
    "JOB_FILE_NAME",
    "MAX_JOB_ID_CHARS",
    "TASK_TYPE_DEFAULTS",
    "JobFile",
    "JobFileError",
    "StartAt",
    "job_file_key",
    "job_id_from_key",
    "parse_job_file",
    "validate_job_id",
]

_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9-]+\.[a-z0-9]+")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# API TaskTitle pattern [\t\n\r -\uD7FF\uE000-\uFFFD]*: a character outside it is refused by CreateLabelingJob.
_NOT_IN_TASK_TITLE = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd]")
# API TaskDescription pattern .+ : "." matches anything but a line terminator (Java's, which the API uses).
_LINE_TERMINATORS = re.compile("[\n\r\u0085\u2028\u2029]")
# Labels are written one a line (classes.txt) and tab-separated (.lst): no control or line-breaking character.
_NOT_IN_LABEL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")
MAX_CONCURRENT_TASKS = 1_000
# Ours, not the API's: labels x labels confusion counts per worker must stay small (see the module docstring).
MAX_JOB_FILE_LABELS: Mapping[str, int] = {"bounding-box": 50, "image-classification": 500}
MAX_HYPERPARAMETER_CHARS = 32_000


# --- field types ------------------------------------------------------------------------------------------------------


def _between(low: float, high: float) -> AfterValidator:
    def check(value: float) -> float:
        if not low <= value <= high:
            raise ValueError(f"must be between {low:,} and {high:,}")
        return value

    return AfterValidator(check)


def _strictly_between(low: float, high: float) -> AfterValidator:
    def check(value: float) -> float:
        if not low < value < high:
            raise ValueError(f"must be greater than {low} and less than {high}")
        return value

    return AfterValidator(check)


def _at_least(low: int) -> AfterValidator:
    def check(value: int) -> int:
        if value < low:
            raise ValueError(f"must be at least {low}")
        return value

    return AfterValidator(check)


def _text(max_chars: int, *, single_line: bool = False, refused: re.Pattern[str] | None = None) -> AfterValidator:
    """Non-blank text of at most ``max_chars`` without control characters; ``single_line`` refuses every line
    terminator, ``refused`` any further character (named in the message)."""

    def check(value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if len(value) > max_chars:
            raise ValueError(f"must be at most {max_chars:,} characters (got {len(value):,})")
        if _CONTROL_CHARACTERS.search(value) or (single_line and _LINE_TERMINATORS.search(value)):
            raise ValueError("must not contain control characters" + (" or line breaks" if single_line else ""))
        found = refused.search(value) if refused is not None else None
        if found is not None:
            raise ValueError(
                f"contains {found.group()!r} (U+{ord(found.group()):04X}), which the SageMaker API does not accept "
                "here (no emoji or other characters beyond U+FFFF)"
            )
        return value

    return AfterValidator(check)


def _s3_uri(value: str, info: ValidationInfo) -> str:
    if value.startswith(("https://", "http://")):
        raise ValueError("must be an s3:// URI (s3://<bucket>/<key>), not an https URL")
    check_s3_uri(value, what="URI")
    scope = _context(info).get("scope")
    if isinstance(scope, JobScope):
        problem = scope.problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value


def _context(info: ValidationInfo) -> Mapping[str, Any]:
    """What :func:`parse_job_file` knows besides the fields: the task type as written, and the job's scope."""
    return info.context if isinstance(info.context, Mapping) else {}


def _instance_type(value: str) -> str:
    if not _INSTANCE_TYPE.fullmatch(value):
        raise ValueError("must be a SageMaker instance type such as 'ml.m5.xlarge'")
    return value


def _transform_instance_type(value: str) -> str:
    problem = transform_instance_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _training_instance_type(value: str, info: ValidationInfo) -> str:
    _instance_type(value)
    task_type = _context(info).get("task_type")
    if task_type in ("bounding-box", "image-classification"):
        problem = algorithm_for(task_type).training_instance_problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value


def _training_instance_count(value: int, info: ValidationInfo) -> int:
    if value < 1:
        raise ValueError("must be at least 1")
    task_type = _context(info).get("task_type")
    if task_type in ("bounding-box", "image-classification"):
        problem = algorithm_for(task_type).instance_count_problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value


def _hyperparameter_value(value: object) -> str | int | float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a string or a number")
    if len(str(value)) > 2_500:
        raise ValueError("must be at most 2,500 characters")
    return value


def _hyperparameters(values: dict[str, str | int | float]) -> dict[str, str | int | float]:
    if len(values) > 100:
        raise ValueError(f"at most 100 hyperparameters (got {len(values)})")
    for name in values:
        if not name or len(name) > 256:
            raise ValueError(f"hyperparameter name {name[:40]!r} must be 1 to 256 characters")
    total = sum(len(name) + len(str(value)) for name, value in values.items())
    if total > MAX_HYPERPARAMETER_CHARS:
        raise ValueError(
            f"hyperparameters take {total:,} characters of names and values; at most {MAX_HYPERPARAMETER_CHARS:,} "
            "(they travel in the run's state, which Step Functions limits to 256 KB)"
        )
    return values


# Folders of jobs/<id>/ the run writes: a gold file there would be overwritten, or read back as the run's own output.
RUN_FOLDERS = ("manifests/", "labeling/", "dataset/", "predictions/")
MAX_GOLD_LABELS_PATH_CHARS = 512


def _gold_labels_path(value: str) -> str:
    """A file in the job's folder, named relative to it (see the module docstring)."""
    if value.startswith(("s3://", "https://", "http://")):
        raise ValueError("must be the gold file's path inside the job's folder, such as 'gold.csv', not a URI")
    if not value or len(value) > MAX_GOLD_LABELS_PATH_CHARS:
        raise ValueError(f"must be 1 to {MAX_GOLD_LABELS_PATH_CHARS} characters")
    if _NOT_IN_LABEL.search(value) or value.startswith("/") or "\\" in value:
        raise ValueError("must be a relative path with '/' between folders, without control characters")
    if any(part in ("", ".", "..") for part in value.split("/")):
        raise ValueError("must be a path inside the job's folder: no empty, '.' or '..' parts")
    if not value.endswith(".csv"):
        # Lower case: the pipeline's roles may read jobs/*.csv (IAM patterns are case-sensitive).
        raise ValueError("must name a .csv file, ending in '.csv' (columns image,label)")
    if value.startswith(RUN_FOLDERS):
        raise ValueError(f"must not lie in a folder the run writes ({', '.join(RUN_FOLDERS)})")
    return value


WorkersPerObject = Annotated[int, _between(1, 9)]
TaskTimeLimitSeconds = Annotated[int, _between(30, 28_800)]
TaskAvailabilityLifetimeSeconds = Annotated[int, _between(60, 2_592_000)]
MaxConcurrentTaskCount = Annotated[int, _between(1, MAX_CONCURRENT_TASKS)]
UnitInterval = Annotated[float, _between(0.0, 1.0)]
S3Uri = Annotated[str, AfterValidator(_s3_uri)]
InstanceType = Annotated[str, AfterValidator(_instance_type)]
TrainingInstanceType = Annotated[str, AfterValidator(_training_instance_type)]
TrainingInstanceCount = Annotated[int, AfterValidator(_training_instance_count)]
HyperparameterValue = Annotated[str | int | float, PlainValidator(_hyperparameter_value)]


# --- the model --------------------------------------------------------------------------------------------------------

_SECTION = ConfigDict(extra="forbid", frozen=True, strict=True)


class WorkerInstructions(BaseModel):
    """What workers read: ``header`` above the image, ``short`` beside it, ``full`` behind "More instructions"."""

    model_config = _SECTION

    # The empty defaults are replaced with the task type's text before validation (see JobFile).
    header: Annotated[str, _text(500, single_line=True)] = ""
    short: Annotated[str, _text(2_000)] = ""
    full: Annotated[str, _text(20_000)] = ""


class SplitSettings(BaseModel):
    model_config = _SECTION

    validation_fraction: Annotated[float, _strictly_between(0.0, 1.0)] = 0.2
    seed: Annotated[int, _at_least(0)] = 0


class ExclusionSettings(BaseModel):
    model_config = _SECTION

    min_box_width: Annotated[float, _at_least(0)] = 1.0
    min_box_height: Annotated[float, _at_least(0)] = 1.0
    min_confidence: UnitInterval = 0.0


class TrainingSettings(BaseModel):
    model_config = _SECTION

    instance_type: TrainingInstanceType = "ml.p3.2xlarge"
    instance_count: TrainingInstanceCount = 1
    max_runtime_seconds: Annotated[int, _between(1, 2_419_200)] = 86_400
    hyperparameters: Annotated[dict[str, HyperparameterValue], AfterValidator(_hyperparameters)] = Field(
        default_factory=dict
    )


class QualityGate(BaseModel):
    model_config = _SECTION

    # The empty default is replaced with the task type's metric before validation (see JobFile).
    metric: Annotated[str, _text(255, single_line=True)] = ""
    threshold: UnitInterval = 0.5


class EndpointSettings(BaseModel):
    model_config = _SECTION

    instance_type: InstanceType = "ml.m5.xlarge"
    initial_instance_count: Annotated[int, _at_least(1)] = 1


StartAt = Literal["label", "consolidate", "build", "import"]


class ExistingAnnotations(BaseModel):
    """Annotations made before (or elsewhere): exactly one of the two manifests."""

    model_config = _SECTION

    output_manifest: S3Uri | None = None
    consolidated_manifest: S3Uri | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ExistingAnnotations:
        if (self.output_manifest is None) == (self.consolidated_manifest is None):
            raise ValueError(
                "give exactly one of 'output_manifest' (a Ground Truth output manifest: the run starts at "
                "consolidation) and 'consolidated_manifest' (the run starts at building training data)"
            )
        return self

    @property
    def start_at(self) -> StartAt:
        return "consolidate" if self.output_manifest is not None else "build"

    @property
    def manifest_uri(self) -> str:
        uri = self.output_manifest if self.output_manifest is not None else self.consolidated_manifest
        assert uri is not None  # guaranteed by _exactly_one
        return uri


_BOX_INSTRUCTIONS = {
    "task_title": "Draw boxes around objects",
    "task_description": "Draw a tight box around every object of the listed classes and choose its class.",
    "instructions": {
        "header": "Draw a box around each object and choose its label.",
        "short": "Draw one tight box around each object of the listed classes. Leave the image empty if there is none.",
        "full": (
            "Draw a box around every object whose class is in the list, and choose that class.\n\n"
            "Make each box tight: its edges touch the outermost visible pixels of the object.\n\n"
            "Draw one box per object, also when objects overlap or are partly hidden: box the visible part.\n\n"
            "If the image shows no such object, submit it without drawing a box."
        ),
    },
    "quality_gate": {"metric": "validation:mAP", "threshold": 0.5},
}
_CLASSIFICATION_INSTRUCTIONS = {
    "task_title": "Classify images",
    "task_description": "Choose the one label that best describes each image.",
    "instructions": {
        "header": "Which label best describes this image?",
        "short": "Choose the one label that best describes the whole image.",
        "full": (
            "Look at the whole image and choose the one label that describes it best.\n\n"
            "If several labels seem to apply, choose the one for the most prominent subject."
        ),
    },
    "quality_gate": {"metric": "validation:accuracy", "threshold": 0.7},
}
TASK_TYPE_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "bounding-box": _BOX_INSTRUCTIONS,
    "image-classification": _CLASSIFICATION_INSTRUCTIONS,
}


# SageMaker model names [API CreateModel.ModelName]: 1-63 letters, digits and single or repeated inner hyphens.
_MODEL_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
DEFAULT_TARGETS: Mapping[str, float] = {"image-classification": 0.95, "bounding-box": 0.6}
# People per first-batch image by default: with 5 answers Dawid-Skene tells a biased or spamming worker from the
# crowd on a first batch of ~100 images, with 3 it often cannot (the demo's crowd: 86-90 % vs 100 % correct labels).
FIRST_BATCH_WORKERS = 5


def _model_name(value: str) -> str:
    if not _MODEL_NAME.fullmatch(value):
        raise ValueError("must be a SageMaker model name: 1-63 letters, digits and inner hyphens")
    return value


def _target(value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise ValueError("must be greater than 0 and at most 1")
    return value


class AutomatedLabelingSettings(BaseModel):
    """The ``automated_labeling`` section; see the module docstring."""

    model_config = _SECTION

    # The 0 default is replaced with the task type's target before validation (see JobFile).
    target: Annotated[float, AfterValidator(_target)] = 0.0
    initial_fraction: Annotated[float, _strictly_between(0.0, 1.0)] = 0.1
    calibration_fraction: Annotated[float, _strictly_between(0.0, 1.0)] = 0.5
    confidence_level: Annotated[float, _between(0.5, 0.999)] = 0.95
    model: Annotated[str, AfterValidator(_model_name)] | None = None
    instance_type: Annotated[str, AfterValidator(_transform_instance_type)] = "ml.m5.xlarge"
    price_per_task: Annotated[float, _between(0.0, 1_000.0)] = 0.08
    first_batch_workers_per_object: WorkersPerObject | None = None

    @property
    def delta(self) -> float:
        return 1.0 - self.confidence_level

    def first_batch_workers(self, workers_per_object: int) -> int:
        """People per first-batch image: as set, else the larger of 5 and the job's ``workers_per_object``."""
        given = self.first_batch_workers_per_object
        return given if given is not None else max(FIRST_BATCH_WORKERS, workers_per_object)


class JobFile(BaseModel):
    """A validated ``job.json``; see the module docstring for every field, its default and its limits."""

    model_config = _SECTION

    task_type: TaskType
    labels: list[str]
    workers_per_object: WorkersPerObject = 3
    task_title: Annotated[str, _text(128, refused=_NOT_IN_TASK_TITLE)] = ""
    task_description: Annotated[str, _text(255, single_line=True)] = ""
    instructions: WorkerInstructions = Field(default_factory=WorkerInstructions)
    task_time_limit_seconds: TaskTimeLimitSeconds = 300
    task_availability_lifetime_seconds: TaskAvailabilityLifetimeSeconds = 864_000
    max_concurrent_task_count: MaxConcurrentTaskCount = 1_000
    automated_labeling: AutomatedLabelingSettings | None = None
    split: SplitSettings = Field(default_factory=SplitSettings)
    exclusion: ExclusionSettings = Field(default_factory=ExclusionSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    quality_gate: QualityGate = Field(default_factory=QualityGate)
    endpoint: EndpointSettings = Field(default_factory=EndpointSettings)
    existing_annotations: ExistingAnnotations | None = None
    gold_labels: Annotated[str, AfterValidator(_gold_labels_path)] | None = None
    # Last, so that its check sees the sections it excludes.
    annotations: AnnotationImport | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_task_type_defaults(cls, data: Any) -> Any:
        """Texts and the quality gate have task-type defaults; a section the file gives only in part keeps the
        defaults of the keys it leaves out."""
        if not isinstance(data, dict) or not isinstance(data.get("task_type"), str):
            return data
        defaults = TASK_TYPE_DEFAULTS.get(data["task_type"])
        if defaults is None:
            return data
        filled = dict(data)
        automated = filled.get("automated_labeling")
        if automated is True or (isinstance(automated, dict) and "target" not in automated):
            filled["automated_labeling"] = {**(automated if isinstance(automated, dict) else {}),
                                            "target": DEFAULT_TARGETS[data["task_type"]]}  # fmt: skip
        elif automated is False:
            filled["automated_labeling"] = None
        for name, default in defaults.items():
            if isinstance(default, dict):
                given = filled.get(name, {})
                if isinstance(given, dict):
                    filled[name] = {**default, **given}
            else:
                filled.setdefault(name, default)
        return filled

    @field_validator("automated_labeling", mode="before")
    @classmethod
    def _automated_labeling_is_a_switch_or_a_section(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict | AutomatedLabelingSettings):
            raise ValueError('must be true, false or a section such as {"target": 0.95, "initial_fraction": 0.1}')
        return value

    @field_validator("labels")
    @classmethod
    def _labels_fit_the_task_type(cls, labels: list[str], info: ValidationInfo) -> list[str]:
        # Without a valid task_type (reported on its own) the least demanding rules still catch duplicates.
        task_type: TaskType = info.data.get("task_type", "bounding-box")
        names = validate_labels(labels, task_type=task_type)
        maximum = MAX_JOB_FILE_LABELS[task_type]
        if len(names) > maximum:
            raise ValueError(f"{task_type} job files take at most {maximum} labels, got {len(names):,}")
        for position, name in enumerate(names, start=1):
            found = _NOT_IN_LABEL.search(name)
            if found is not None:
                raise ValueError(
                    f"label {position} {name[:60]!r} contains {found.group()!r}: labels may not hold tabs, line "
                    "breaks or other control characters (the training data lists one label a line)"
                )
        return names

    @field_validator("gold_labels")
    @classmethod
    def _gold_questions_fit_the_run(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if info.data.get("task_type") == "bounding-box":
            raise ValueError(
                "gold questions are supported for image-classification jobs only: for boxes, scoring a worker "
                "against known boxes (and fixing an image's boxes) is not implemented yet"
            )
        if info.data.get("existing_annotations") is not None:
            raise ValueError(
                "gold questions need a labeling run: with existing_annotations nothing is consolidated from worker "
                "answers"
            )
        if info.data.get("automated_labeling") is not None:
            raise ValueError(
                "gold questions cannot be combined with automated_labeling yet: the model could label a gold image "
                "instead of people, and gold images would bias the random first batch that calibrates θ"
            )
        return value

    @field_validator("annotations")
    @classmethod
    def _annotations_are_the_only_source(
        cls, annotations: AnnotationImport | None, info: ValidationInfo
    ) -> AnnotationImport | None:
        problem = exclusive_sources_problem(info.data) if annotations is not None else None
        if problem is not None:
            raise ValueError(problem)
        if annotations is not None and info.data.get("gold_labels") is not None:
            raise ValueError(
                "cannot be combined with gold_labels: gold questions are mixed into a labeling job, and a job that "
                "brings tool exports has none (give the gold images' labels in the exports instead)"
            )
        return annotations

    @property
    def start_at(self) -> StartAt:
        """Where the run starts: ``label`` (images), ``consolidate`` or ``build`` (existing annotations), ``import``
        (tool exports to consolidate)."""
        if self.annotations is not None:
            return "import"
        return "label" if self.existing_annotations is None else self.existing_annotations.start_at


# --- parsing ----------------------------------------------------------------------------------------------------------


def parse_job_file(text: str | bytes, *, source: str, scope: JobScope | None = None) -> JobFile:
    """Parse and validate a job file. ``source`` names it in every error line (e.g. ``jobs/pens-v1/job.json``);
    with ``scope``, every S3 address in the file must lie within it (:mod:`truthflow.job_scope`).

    Raises :class:`JobFileError` for text that is not UTF-8 or not JSON, a JSON value that is not an object, and
    every field problem at once.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise JobFileError(source, [("", f"is not UTF-8 text ({error.reason} at byte {error.start})")]) from None
    try:
        data = json.loads(text.removeprefix("\ufeff"))  # editors on Windows may start the file with a BOM
    except json.JSONDecodeError as error:
        raise JobFileError(
            source, [("", f"is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})")]
        ) from None
    except RecursionError:
        raise JobFileError(source, [("", "is nested too deeply to read")]) from None
    if not isinstance(data, dict):
        raise JobFileError(source, [("", f"must be a JSON object {{...}}, not {json_kind(data)}")])
    if not value_encodes_as_utf8(data):  # JSON may escape half of a surrogate pair (\ud800): no output holds it
        raise JobFileError(
            source, [("", "holds a lone surrogate escape (\\ud800-\\udfff without its pair): not valid Unicode")]
        )
    context = {"task_type": data.get("task_type"), "scope": scope}
    try:
        return JobFile.model_validate(data, context=context)
    except ValidationError as error:
        raise JobFileError(source, [describe(detail, JobFile) for detail in error.errors()]) from None
