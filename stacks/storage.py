"""Stateful resources: the data bucket (jobs/<id>/...), the artifacts bucket, their access-log bucket and the
worker-statistics table. They live in their own stack so the pipeline can be replaced without touching data."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

# Ground Truth's worker UI fetches images from the browser: without a CORS rule labeling tasks fail. The rule is the
# Ground Truth guide's ("CORS permission requirement": GET, no headers, Access-Control-Allow-Origin exposed), with
# its "*" origin narrowed to the SageMaker domain the worker portal is served from
# (https://<id>.labeling.<region>.sagemaker.aws); SageMaker's own CORS rules name the same origin.
GROUND_TRUTH_ORIGIN = "https://*.sagemaker.aws"
GROUND_TRUTH_CORS = s3.CorsRule(
    allowed_methods=[s3.HttpMethods.GET],
    allowed_origins=[GROUND_TRUTH_ORIGIN],
    exposed_headers=["Access-Control-Allow-Origin"],
)


def _private_bucket(scope: Construct, construct_id: str, **kwargs: object) -> s3.Bucket:
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        removal_policy=RemovalPolicy.RETAIN,
        **kwargs,  # type: ignore[arg-type]
    )


class PipelineStorage(Construct):
    """Buckets and table. Data and artifacts are versioned and logged; the data bucket sends events to EventBridge.
    Versions replaced or deleted more than ``noncurrent_version_days`` ago are expired (a run reads the job-file
    version it started with, so app.py keeps that longer than a run can last)."""

    def __init__(self, scope: Construct, construct_id: str, *, noncurrent_version_days: int) -> None:
        super().__init__(scope, construct_id)
        expire_old_versions = s3.LifecycleRule(
            id="ExpireNoncurrentVersions", noncurrent_version_expiration=Duration.days(noncurrent_version_days)
        )
        self.access_logs = _private_bucket(
            self,
            "AccessLogs",
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
        )
        self.data = _private_bucket(
            self,
            "Data",
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="data/",
            cors=[GROUND_TRUTH_CORS],
            lifecycle_rules=[expire_old_versions],
        )
        # EventBridge notifications set on the bucket resource itself: CDK's event_bridge_enabled would add a
        # custom-resource Lambda with a managed policy just to flip this switch.
        cfn_data = self.data.node.default_child
        assert isinstance(cfn_data, s3.CfnBucket)
        cfn_data.add_property_override("NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True)
        self.artifacts = _private_bucket(
            self, "Artifacts", versioned=True, server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifacts/", lifecycle_rules=[expire_old_versions],
        )  # fmt: skip
        self.worker_stats = dynamodb.Table(
            self,
            "WorkerStats",
            partition_key=dynamodb.Attribute(name="job", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="worker", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.RETAIN,
        )


class StorageStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, noncurrent_version_days: int, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.storage = PipelineStorage(self, "Storage", noncurrent_version_days=noncurrent_version_days)
        CfnOutput(self, "DataBucketName", value=self.storage.data.bucket_name, description="Upload jobs/<id>/ here")
        CfnOutput(self, "ArtifactsBucketName", value=self.storage.artifacts.bucket_name)
