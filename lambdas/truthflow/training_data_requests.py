"""The events of the three "Build training data" calls (see :mod:`truthflow.training_data_step`): the plan's and the
join's ``{"bucket", "job_id", "job_file", "labeling", "dataset", "purpose"}`` (the join adds ``training_plan``, the
plan's output) and a shard's ``{"bucket", "job_id", "plan_uri", "shard"}``, and where each call's files go."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from truthflow.automated_labeling.run_step import AutomatedState
from truthflow.aws.s3 import parse_s3_uri, s3_uri
from truthflow.job_file import JOBS_PREFIX
from truthflow.run_start import JobFileVersion

_EVENT = ConfigDict(extra="ignore", frozen=True)


class Dataset(BaseModel):
    model_config = _EVENT

    consolidated_manifest_uri: str
    label_attribute_name: str | None = None

    @field_validator("consolidated_manifest_uri")
    @classmethod
    def _is_an_s3_uri(cls, uri: str) -> str:
        parse_s3_uri(uri)
        return uri


class Labeling(BaseModel):
    model_config = _EVENT

    labeling_job_name: str
    label_config_uri: str
    automated: AutomatedState | None = None


class TrainingDataRequest(BaseModel):
    """The plan's and the join's event."""

    model_config = _EVENT

    bucket: str
    job_id: str
    job_file: JobFileVersion
    labeling: Labeling
    dataset: Dataset
    purpose: Literal["final", "bootstrap"] = "final"

    @model_validator(mode="after")
    def _bootstrap_needs_a_plan(self) -> TrainingDataRequest:
        if self.purpose == "bootstrap" and self.labeling.automated is None:
            raise ValueError("purpose 'bootstrap' needs labeling.automated (the automated-labeling plan)")
        return self

    @property
    def bootstrap(self) -> AutomatedState | None:
        return self.labeling.automated if self.purpose == "bootstrap" else None

    @property
    def job_folder(self) -> str:
        return s3_uri(self.bucket, f"{JOBS_PREFIX}{self.job_id}/")

    @property
    def training_prefix(self) -> str:
        return self.job_folder + ("dataset/bootstrap/training/" if self.bootstrap else "dataset/training/")

    @property
    def work_prefix(self) -> str:
        folder = "dataset/bootstrap/training-shards/" if self.bootstrap else "dataset/training-shards/"
        return self.job_folder + folder


class TrainingPlanOutput(BaseModel):
    """What the plan returns to the state machine (and the join reads back)."""

    model_config = _EVENT

    plan_uri: str
    shard_list: dict[str, str]
    shards: int
    images: int


class JoinRequest(TrainingDataRequest):
    training_plan: TrainingPlanOutput


class ShardRequest(BaseModel):
    """One item of the Distributed Map, with the plan's address."""

    model_config = _EVENT

    bucket: str
    job_id: str
    plan_uri: str
    shard: dict[str, Any]
