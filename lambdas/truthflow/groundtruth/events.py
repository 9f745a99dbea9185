"""Typed models of the two Lambda contracts of a Ground Truth labeling job.

Source of every shape: ``reference/groundtruth_contracts.md`` §1 (pre-annotation, "PRE") and §2
(annotation consolidation, "ACS"), which quote the AWS developer guide page
``sms-custom-templates-step3-lambda-requirements`` and real captured events.

Contract points the models encode (the reference's gotcha list):

* ``version`` is ``2018-10-16`` in the docs but ``2018-10-06`` in real events: it is kept, never checked.
* The PRE ``dataObject`` is the whole input-manifest line: ``source-ref`` or ``source`` plus any other keys.
* The ACS is called once per *batch*: ``payload.s3Uri`` points at a JSON list of dataset objects, in which
  the manifest's ``source-ref`` has become ``dataObject.s3Uri`` and ``source`` has become ``dataObject.content``.
* Each worker's ``annotationData.content`` is a JSON *string* (parse it with
  :mod:`truthflow.groundtruth.worker_answers`); the response's ``consolidatedAnnotation.content`` is a JSON
  *object* keyed by ``labelAttributeName``.
* ``outputConfig`` appears in real events but not on the doc page, ``labelCategories`` is often absent or null.
* The documented PRE response key is ``isHumanAnnotationRequired`` (a boolean); AWS samples use
  ``humanAnnotationRequired`` with a string, which only works because the default is ``true``.

Models accept both the wire names (aliases such as ``source-ref``, ``labelingJobArn``) and the Python field names,
serialise with the wire names, and keep unknown keys (``extra="allow"``) so that new fields never break a handler.
Construct them from wire dictionaries with ``Model.model_validate(...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, TypeAdapter, model_validator

_WIRE_MODEL = ConfigDict(
    extra="allow",
    frozen=True,
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
)

_JOB_ARN_MARKER = ":labeling-job/"


def labeling_job_name_from_arn(labeling_job_arn: str) -> str:
    """The job name at the end of ``arn:aws:sagemaker:<region>:<account>:labeling-job/<name>``."""
    marker_at = labeling_job_arn.find(_JOB_ARN_MARKER)
    name = labeling_job_arn[marker_at + len(_JOB_ARN_MARKER) :] if marker_at >= 0 else ""
    if not name:
        raise ValueError(f"labelingJobArn {labeling_job_arn!r} does not end with ':labeling-job/<name>'")
    return name


# --- pre-annotation (PRE) -------------------------------------------------------------------------------------------


class ManifestDataObject(BaseModel):
    """One input-manifest line as Ground Truth hands it to the PRE Lambda: ``source-ref`` or ``source`` plus every
    other attribute of the line (available as :attr:`extra_attributes`)."""

    model_config = _WIRE_MODEL

    source_ref: str | None = Field(default=None, alias="source-ref")
    source: str | None = None

    @model_validator(mode="after")
    def _has_a_source(self) -> ManifestDataObject:
        if self.source_ref is None and self.source is None:
            raise ValueError("dataObject needs a 'source-ref' (S3 URI) or a 'source' (inline text) attribute")
        return self

    @property
    def extra_attributes(self) -> dict[str, Any]:
        """The manifest line's attributes other than ``source-ref`` / ``source``."""
        return dict(self.model_extra or {})

    def as_manifest_line(self) -> dict[str, Any]:
        """The manifest line exactly as received (no ``null`` for the source key that was absent)."""
        return self.model_dump(by_alias=True, exclude_unset=True)


class PreAnnotationRequest(BaseModel):
    """The event Ground Truth sends to the PRE Lambda, one data object per invocation."""

    model_config = _WIRE_MODEL

    version: str
    labeling_job_arn: str = Field(alias="labelingJobArn")
    data_object: ManifestDataObject = Field(alias="dataObject")

    @property
    def labeling_job_name(self) -> str:
        return labeling_job_name_from_arn(self.labeling_job_arn)


class PreAnnotationResponse(BaseModel):
    """What the PRE Lambda returns: ``taskInput`` becomes ``{{ task.input.* }}`` in the worker template;
    ``isHumanAnnotationRequired`` (optional, default true) excludes an object from human labeling when false."""

    model_config = _WIRE_MODEL

    task_input: dict[str, Any] = Field(alias="taskInput")
    is_human_annotation_required: StrictBool = Field(default=True, alias="isHumanAnnotationRequired")

    def to_event(self) -> dict[str, Any]:
        """The JSON-ready response dictionary, with the documented key names."""
        return self.model_dump(by_alias=True)


def build_pre_annotation_response(
    task_input: Mapping[str, Any], *, human_annotation_required: bool = True
) -> dict[str, Any]:
    """``{"taskInput": {...}, "isHumanAnnotationRequired": <bool>}``: the documented response, never the samples'
    ``humanAnnotationRequired`` string."""
    response = PreAnnotationResponse.model_validate(
        {"taskInput": dict(task_input), "isHumanAnnotationRequired": human_annotation_required}
    )
    return response.to_event()


# --- annotation consolidation (ACS) ---------------------------------------------------------------------------------


class ConsolidationPayloadRef(BaseModel):
    model_config = _WIRE_MODEL

    s3_uri: str = Field(alias="s3Uri")


class ConsolidationRequest(BaseModel):
    """The event Ground Truth sends to the ACS Lambda, once per batch of data objects."""

    model_config = _WIRE_MODEL

    version: str
    labeling_job_arn: str = Field(alias="labelingJobArn")
    label_attribute_name: str = Field(alias="labelAttributeName")
    role_arn: str = Field(alias="roleArn")
    payload: ConsolidationPayloadRef
    output_config: str | None = Field(default=None, alias="outputConfig")
    label_categories: list[str] | None = Field(default=None, alias="labelCategories")

    @model_validator(mode="after")
    def _label_attribute_is_usable(self) -> ConsolidationRequest:
        if not self.label_attribute_name or self.label_attribute_name.endswith("-metadata"):
            raise ValueError(
                f"labelAttributeName {self.label_attribute_name!r} must be non-empty and must not end with '-metadata'"
            )
        return self

    @property
    def labeling_job_name(self) -> str:
        return labeling_job_name_from_arn(self.labeling_job_arn)


class PayloadDataObject(BaseModel):
    """The data object inside the payload file: ``s3Uri`` (manifest ``source-ref``) or ``content``
    (manifest ``source``). Other manifest attributes are not in the payload."""

    model_config = _WIRE_MODEL

    s3_uri: str | None = Field(default=None, alias="s3Uri")
    content: str | None = None

    @model_validator(mode="after")
    def _has_data(self) -> PayloadDataObject:
        if self.s3_uri is None and self.content is None:
            raise ValueError("dataObject needs 's3Uri' or 'content'")
        return self


class AnnotationData(BaseModel):
    """One worker's answer: ``content`` (a JSON-encoded *string*) or ``s3Uri`` pointing at it."""

    model_config = _WIRE_MODEL

    content: str | None = None
    s3_uri: str | None = Field(default=None, alias="s3Uri")

    @model_validator(mode="after")
    def _has_data(self) -> AnnotationData:
        if self.content is None and self.s3_uri is None:
            raise ValueError("annotationData needs 'content' (a JSON string) or 's3Uri'")
        return self


class WorkerAnnotation(BaseModel):
    model_config = _WIRE_MODEL

    worker_id: str = Field(alias="workerId")
    annotation_data: AnnotationData = Field(alias="annotationData")


class DatasetObject(BaseModel):
    """One entry of the payload file. ``annotations`` may hold fewer answers than workers per object
    (tasks expire or are declined); objects nobody answered never reach the ACS."""

    model_config = _WIRE_MODEL

    dataset_object_id: str | int = Field(alias="datasetObjectId")
    data_object: PayloadDataObject = Field(alias="dataObject")
    annotations: list[WorkerAnnotation] = Field(default_factory=list)


_PAYLOAD_ADAPTER: TypeAdapter[list[DatasetObject]] = TypeAdapter(list[DatasetObject])


def parse_consolidation_payload(payload: str | bytes | list[Any]) -> list[DatasetObject]:
    """Parse the file at ``payload.s3Uri`` (a JSON list). A malformed entry raises a ``pydantic.ValidationError``
    (a ``ValueError``) whose message names the entry index and field, e.g. ``0.annotations.1.workerId``."""
    if isinstance(payload, str | bytes):
        return _PAYLOAD_ADAPTER.validate_json(payload)
    return _PAYLOAD_ADAPTER.validate_python(payload)


class ConsolidatedAnnotation(BaseModel):
    model_config = _WIRE_MODEL

    content: dict[str, Any]


class ConsolidationResponseEntry(BaseModel):
    """One element of the list the ACS Lambda returns (exactly one per ``datasetObjectId`` of the batch, returned as
    given: Ground Truth sends strings, a number stays a number)."""

    model_config = _WIRE_MODEL

    dataset_object_id: str | int = Field(alias="datasetObjectId")
    consolidated_annotation: ConsolidatedAnnotation = Field(alias="consolidatedAnnotation")


_RESPONSE_ADAPTER: TypeAdapter[list[ConsolidationResponseEntry]] = TypeAdapter(list[ConsolidationResponseEntry])


def parse_consolidation_response(response: str | bytes | list[Any]) -> list[ConsolidationResponseEntry]:
    """Parse an ACS response (ours, or a ``consolidation-response`` file written by Ground Truth)."""
    if isinstance(response, str | bytes):
        return _RESPONSE_ADAPTER.validate_json(response)
    return _RESPONSE_ADAPTER.validate_python(response)


def build_consolidation_response_entry(
    dataset_object_id: str | int, label_attribute_name: str, content: Mapping[str, Any]
) -> dict[str, Any]:
    """``{"datasetObjectId": ..., "consolidatedAnnotation": {"content": {<labelAttributeName>: ..., ...}}}``.

    ``content`` is the *object* keyed by the label attribute name, usually the output of
    :func:`truthflow.groundtruth.output_manifest.detection_annotation` or ``classification_annotation``
    (which also carry ``<labelAttributeName>-metadata``); it is checked to hold the label attribute.
    """
    if label_attribute_name not in content:
        raise ValueError(
            f"consolidated content for dataset object {dataset_object_id!r} has no key {label_attribute_name!r} "
            f"(keys: {sorted(content)}); Ground Truth reads the label from content[labelAttributeName]"
        )
    entry = ConsolidationResponseEntry.model_validate(
        {"datasetObjectId": dataset_object_id, "consolidatedAnnotation": {"content": dict(content)}}
    )
    return entry.model_dump(by_alias=True)
