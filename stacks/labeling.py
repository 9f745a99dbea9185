"""The Ground Truth side: our pre-labeling and annotation-consolidation Lambdas and the labeling job's role."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.functions import PipelineFunction, list_prefix, read_objects, sagemaker_log_groups


def sagemaker_service_principal(stack: Stack) -> iam.ServicePrincipal:
    """SageMaker as it may assume our roles: on behalf of this account only (``aws:SourceAccount``, the documented
    guard against the cross-service confused deputy). ``aws:SourceArn`` is left out: which resource ARN SageMaker
    presents when it assumes a role for a labeling job, a training job or an endpoint is not documented."""
    return iam.ServicePrincipal(
        "sagemaker.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
    )


class GroundTruthLabeling(Construct):
    """PRE and ACS functions, and the execution role a labeling job runs with.

    The role has what the Ground Truth developer guide lists for a labeling job's execution role ("Create a SageMaker
    execution role for a Ground Truth labeling job": built-in task types plus custom Lambdas), scoped down: read the
    job's images and labeling files, write (and abort multipart uploads of) its output under ``jobs/<id>/labeling/``,
    ListBucket and GetBucketLocation on the data bucket, CloudWatch metrics (worker metrics) only in SageMaker's
    namespaces, logs only in ``/aws/sagemaker/LabelingJobs``, and invoke only these two functions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data: s3.IBucket,
        worker_stats: dynamodb.ITable,
        layer: lambda_.ILayerVersion,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        labeling_jobs = stack.format_arn(service="sagemaker", resource="labeling-job", resource_name="*")

        def describe_labeling_jobs() -> iam.PolicyStatement:
            return iam.PolicyStatement(actions=["sagemaker:DescribeLabelingJob"], resources=[labeling_jobs])

        self.pre_labeling = PipelineFunction(
            self,
            "PreLabelingFunction",
            folder="pre_labeling",
            description="Ground Truth pre-labeling: one data object -> taskInput for our worker template",
            layer=layer,
            log_retention=log_retention,
            timeout=Duration.seconds(30),
            # A plain manifest line takes the job's labels: DescribeLabelingJob, then its label-category file.
            statements=[read_objects(data, "jobs/*/manifests/*", "jobs/*/labeling/*"), describe_labeling_jobs()],
        )
        self.annotation_consolidation = PipelineFunction(
            self,
            "AnnotationConsolidationFunction",
            folder="annotation_consolidation",
            description="Ground Truth annotation consolidation: Dawid-Skene labels, clustered boxes, per batch",
            layer=layer,
            log_retention=log_retention,
            timeout=Duration.minutes(5),
            memory_size=2048,
            environment={"WORKER_STATS_TABLE": worker_stats.table_name},
            statements=[
                read_objects(data, "jobs/*/labeling/*", "jobs/*/manifests/*"),
                # Query loads a worker's counts; a batch adds them in a transaction with a marker (PutItem).
                iam.PolicyStatement(
                    actions=["dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:PutItem"],
                    resources=[worker_stats.table_arn],
                ),
                describe_labeling_jobs(),
            ],
        )
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=sagemaker_service_principal(stack),
            description="truthflow Ground Truth labeling jobs",
        )
        for statement in (
            read_objects(data, "jobs/*/images/*", "jobs/*/manifests/*", "jobs/*/labeling/*"),
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[data.arn_for_objects("jobs/*/labeling/*")],
            ),
            list_prefix(data, "jobs/"),
            iam.PolicyStatement(actions=["s3:GetBucketLocation"], resources=[data.bucket_arn]),
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resource-level permissions; the namespace condition scopes it
                conditions={
                    "StringLike": {"cloudwatch:namespace": ["AWS/SageMaker/*", "AWS/Sagemaker/*", "/aws/sagemaker/*"]}
                },
            ),
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[
                    self.pre_labeling.function.function_arn,
                    self.annotation_consolidation.function.function_arn,
                ],
            ),
            sagemaker_log_groups(stack, "LabelingJobs"),
        ):
            self.role.add_to_policy(statement)
