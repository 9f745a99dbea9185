#!/usr/bin/env python3
"""CDK app: the only place that reads context and environment. Builds typed settings, then the two stacks."""

from __future__ import annotations

import json
import os
import re

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from cdk_nag import AwsSolutionsChecks

from stacks.nag_suppressions import suppress_reviewed_findings
from stacks.pipeline import DEFINITION, RunSettings
from stacks.pipeline_stack import PipelineStack
from stacks.storage import StorageStack
from truthflow.algorithms import ALGORITHM_FOR_TASK

WORKTEAM_PLACEHOLDER = "arn:aws:sagemaker:{region}:{account}:workteam/private-crowd/SET-workteam_arn-IN-cdk.json"
DEFAULT_NONCURRENT_VERSION_DAYS = 60
# "Consolidate whole job": 4,096 MB keeps a full 100,000-image box job within a third of the memory (README, "The
# whole-job steps"). Accounts that Lambda still limits to 3,008 MB set consolidation_memory_mb to 3008.
DEFAULT_CONSOLIDATION_MEMORY_MB = 4096
LAMBDA_MEMORY_MB = (128, 10_240)
# S3 bucket names: 3-63 lower-case letters, digits, dots and hyphens.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _fail(setting: str, problem: str) -> None:
    raise ValueError(f"cdk.json context {setting}: {problem}")


def input_buckets(app: cdk.App) -> tuple[str, ...]:
    """Buckets besides the data bucket that job files may name (their objects and images); empty by default."""
    names = app.node.try_get_context("input_buckets") or []
    if isinstance(names, str):
        names = json.loads(names) if names.startswith("[") else [name for name in names.split(",") if name]
    if not isinstance(names, list) or not all(isinstance(name, str) and _BUCKET_NAME.fullmatch(name) for name in names):
        _fail("input_buckets", f"must be a list of S3 bucket names, got {names!r}")
    return tuple(names)


def noncurrent_version_days(app: cdk.App) -> int:
    """Days old object versions are kept. A run reads the job-file version it started with until its last step, so
    the versions must outlive the longest run (the state machine's TimeoutSeconds)."""
    days = int(app.node.try_get_context("noncurrent_version_days") or DEFAULT_NONCURRENT_VERSION_DAYS)
    longest_run_days = -(-int(json.loads(DEFINITION.read_text())["TimeoutSeconds"]) // 86_400)
    if days <= longest_run_days:
        _fail(
            "noncurrent_version_days",
            f"{days} is too short: a run can last {longest_run_days} days and reads the job file version it started "
            "with until its end; use more days",
        )
    return days


def training_instance_type(app: cdk.App) -> str | None:
    """The deployment's default training instance type, checked as a job file's would be."""
    value = app.node.try_get_context("training_instance_type") or None
    if value is not None:
        for algorithm in ALGORITHM_FOR_TASK.values():
            problem = algorithm.training_instance_problem(value)
            if problem is not None:
                _fail("training_instance_type", problem)
    return value


def consolidation_memory_mb(app: cdk.App) -> int:
    """Memory of the "Consolidate whole job" function."""
    value = app.node.try_get_context("consolidation_memory_mb") or DEFAULT_CONSOLIDATION_MEMORY_MB
    low, high = LAMBDA_MEMORY_MB
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        _fail("consolidation_memory_mb", f"must be a whole number of MB from {low} to {high}, got {value!r}")
    return int(value)


def run_settings(app: cdk.App) -> RunSettings:
    context = app.node.try_get_context
    workteam = context("workteam_arn") or WORKTEAM_PLACEHOLDER.format(region="region", account="account")
    return RunSettings(
        workteam_arn=workteam,
        notification_email=context("notification_email") or None,
        poll_seconds=int(context("endpoint_poll_seconds") or 60),
        max_endpoint_polls=int(context("max_endpoint_polls") or 60),
        log_retention=logs.RetentionDays[context("log_retention") or "ONE_MONTH"],
        training_instance_type=training_instance_type(app),
        endpoint_instance_type=context("endpoint_instance_type") or None,
        input_buckets=input_buckets(app),
        consolidation_memory_mb=consolidation_memory_mb(app),
    )


def build_app(app: cdk.App) -> tuple[StorageStack, PipelineStack]:
    settings = run_settings(app)
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    storage = StorageStack(
        app,
        "TruthflowStorage",
        noncurrent_version_days=noncurrent_version_days(app),
        env=env,
        description="truthflow: buckets and worker statistics",
    )
    pipeline = PipelineStack(
        app,
        "TruthflowPipeline",
        storage=storage.storage,
        settings=settings,
        env=env,
        description="truthflow: Ground Truth labeling, consolidation, training and hosting pipeline",
    )
    if "SET-workteam_arn" in settings.workteam_arn:
        cdk.Annotations.of(pipeline).add_warning_v2(
            "truthflow:workteam",
            "workteam_arn is not set in cdk.json context: the stack deploys, but labeling jobs fail until you set it "
            "to your Ground Truth private workteam ARN "
            "(arn:aws:sagemaker:<region>:<account>:workteam/private-crowd/<name>).",
        )
    for stack in (storage, pipeline):
        suppress_reviewed_findings(stack)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return storage, pipeline


if __name__ == "__main__":
    cdk_app = cdk.App()
    build_app(cdk_app)
    cdk_app.synth()
