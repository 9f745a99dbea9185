"""One Lambda function of ours: its own role with exactly the permissions it is given, its own log group, tracing,
Powertools configured through environment variables, the shared code asset and dependency layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.packaging import ARCHITECTURE, RUNTIME, function_code

METRICS_NAMESPACE = "truthflow"


class PipelineFunction(Construct):
    """``lambdas/<folder>/handler.py:lambda_handler`` as a function."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        folder: str,
        description: str,
        layer: lambda_.ILayerVersion,
        log_retention: logs.RetentionDays,
        statements: Sequence[iam.PolicyStatement] = (),
        environment: Mapping[str, str] | None = None,
        timeout: Duration | None = None,
        memory_size: int = 512,
        ephemeral_storage_mb: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=f"truthflow {folder}"
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[self.log_group.log_group_arn]
            )
        )
        for statement in statements:
            self.role.add_to_policy(statement)
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=function_code(),
            handler=f"{folder}.handler.lambda_handler",
            layers=[layer],
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=timeout or Duration.minutes(1),
            memory_size=memory_size,
            ephemeral_storage_size=Size.mebibytes(ephemeral_storage_mb) if ephemeral_storage_mb else None,
            environment={
                "POWERTOOLS_SERVICE_NAME": folder,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **(environment or {}),
            },
        )


def read_objects(bucket: s3.IBucket, *patterns: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        actions=["s3:GetObject"], resources=[bucket.arn_for_objects(pattern) for pattern in patterns]
    )


def read_object_versions(bucket: s3.IBucket, *patterns: str) -> iam.PolicyStatement:
    """GetObject, and GetObjectVersion for reads by version id (a run reads the job file version it started with)."""
    return iam.PolicyStatement(
        actions=["s3:GetObject", "s3:GetObjectVersion"],
        resources=[bucket.arn_for_objects(pattern) for pattern in patterns],
    )


def read_input_buckets(stack: Stack, names: Sequence[str]) -> list[iam.PolicyStatement]:
    """Read access to the buckets the deployment lets job files name (``input_buckets`` in cdk.json)."""
    if not names:
        return []
    return [
        iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[stack.format_arn(service="s3", region="", account="", resource=name, resource_name="*")
                       for name in names],
        )
    ]  # fmt: skip


def write_objects(bucket: s3.IBucket, *patterns: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        actions=["s3:PutObject"], resources=[bucket.arn_for_objects(pattern) for pattern in patterns]
    )


def delete_objects(bucket: s3.IBucket, *patterns: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        actions=["s3:DeleteObject"], resources=[bucket.arn_for_objects(pattern) for pattern in patterns]
    )


def abort_uploads(bucket: s3.IBucket, *patterns: str) -> iam.PolicyStatement:
    """AbortMultipartUpload: a streamed upload that fails is aborted rather than left as stored parts."""
    return iam.PolicyStatement(
        actions=["s3:AbortMultipartUpload"], resources=[bucket.arn_for_objects(pattern) for pattern in patterns]
    )


def list_prefix(bucket: s3.IBucket, prefix: str) -> iam.PolicyStatement:
    """ListBucket limited to keys under ``prefix`` (``*`` in it matches any characters, ``/`` included)."""
    return iam.PolicyStatement(
        actions=["s3:ListBucket"],
        resources=[bucket.bucket_arn],
        conditions={"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
    )


def sagemaker_log_groups(stack: Stack, *groups: str) -> iam.PolicyStatement:
    """What a role assumed by SageMaker needs to write its jobs' logs into ``/aws/sagemaker/<group>``."""
    return iam.PolicyStatement(
        actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
        resources=[
            stack.format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"/aws/sagemaker/{group}:*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for group in groups
        ],
    )
