#!/usr/bin/env python3
"""CDK app: the only place that reads context and environment. Builds typed settings, then the two stacks."""

from __future__ import annotations

import os

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from cdk_nag import AwsSolutionsChecks

from stacks.nag_suppressions import suppress_reviewed_findings
from stacks.pipeline import RunSettings
from stacks.pipeline_stack import PipelineStack
from stacks.storage import StorageStack

WORKTEAM_PLACEHOLDER = "arn:aws:sagemaker:{region}:{account}:workteam/private-crowd/SET-workteam_arn-IN-cdk.json"


def run_settings(app: cdk.App) -> RunSettings:
    context = app.node.try_get_context
    workteam = context("workteam_arn") or WORKTEAM_PLACEHOLDER.format(region="region", account="account")
    return RunSettings(
        workteam_arn=workteam,
        notification_email=context("notification_email") or None,
        poll_seconds=int(context("endpoint_poll_seconds") or 60),
        max_endpoint_polls=int(context("max_endpoint_polls") or 60),
        log_retention=logs.RetentionDays[context("log_retention") or "ONE_MONTH"],
        training_instance_type=context("training_instance_type") or None,
        endpoint_instance_type=context("endpoint_instance_type") or None,
    )


def build_app(app: cdk.App) -> tuple[StorageStack, PipelineStack]:
    settings = run_settings(app)
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    storage = StorageStack(app, "TruthflowStorage", env=env, description="truthflow: buckets and worker statistics")
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
