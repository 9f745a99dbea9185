"""The run: pipeline Lambdas, the SageMaker training/hosting role, the state machine from ``statemachine/``, run
notifications, and the trigger (S3 "Object Created" for ``jobs/<id>/job.json`` -> EventBridge -> starter Lambda)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.functions import (
    PipelineFunction,
    abort_uploads,
    delete_objects,
    list_prefix,
    read_input_buckets,
    read_object_versions,
    read_objects,
    sagemaker_log_groups,
    write_objects,
)
from stacks.labeling import GroundTruthLabeling, sagemaker_service_principal
from stacks.nag_suppressions import accept_dead_letter_queue
from stacks.notifications import RunNotifications

DEFINITION = Path(__file__).resolve().parents[1] / "statemachine" / "pipeline.asl.json"
# SageMaker resources the definition creates with tags.
TAGGED_RESOURCES = ("labeling-job", "training-job", "transform-job", "model", "endpoint-config", "endpoint")
# Step Functions' managed rules behind the .sync integrations the definition uses or will use (batch transform).
SYNC_JOB_RULES = ("SageMakerTrainingJobsRule", "SageMakerTransformJobsRule", "SageMakerLabelingJobsRule")
# Where "Build training data" keeps its plan, shard list and the shards' parts (truthflow.training_data_step).
TRAINING_SHARDS = ("jobs/*/dataset/training-shards/", "jobs/*/dataset/bootstrap/training-shards/")


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """Deployment-wide settings (from cdk.json context, read in app.py)."""

    workteam_arn: str
    notification_email: str | None
    poll_seconds: int
    max_endpoint_polls: int
    log_retention: logs.RetentionDays
    training_instance_type: str | None = None
    endpoint_instance_type: str | None = None
    input_buckets: tuple[str, ...] = ()
    consolidation_memory_mb: int = 4096


class TrainingPipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data: s3.IBucket,
        artifacts: s3.IBucket,
        labeling: GroundTruthLabeling,
        layer: lambda_.ILayerVersion,
        settings: RunSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.data = data
        # Buckets beyond the data bucket that job files may name: every step that reads job inputs checks against it.
        scope_environment = {"INPUT_BUCKETS": json.dumps(list(settings.input_buckets))}
        input_reads = read_input_buckets(stack, settings.input_buckets)

        def function(construct_id: str, folder: str, description: str, **kwargs: object) -> PipelineFunction:
            return PipelineFunction(
                self, construct_id, folder=folder, description=description, layer=layer,
                log_retention=settings.log_retention, **kwargs,  # type: ignore[arg-type]
            )  # fmt: skip

        self.prepare = function(
            "PrepareLabeling", "prepare_labeling", "Validate job.json, list images, write the labeling input",
            # A job's gold file (job.json gold_labels) is a .csv somewhere in its folder.
            statements=[read_object_versions(data, "jobs/*/job.json"), read_objects(data, "jobs/*.csv"),
                        list_prefix(data, "jobs/*/images/"), write_objects(data, "jobs/*/manifests/*")],
            environment=scope_environment,
        )  # fmt: skip
        # Jobs that bring tool exports: their images are listed (matched by file name) and status.json gains what
        # the import left out.
        # Memory: a 100,000-image box job (Ground Truth's largest) peaks at ~1.15 GB (README, "The whole-job steps"):
        # 4,096 MB by default keeps it within a third. /tmp: consolidated.manifest and .csv are spooled there before
        # upload, about 1.1 GB for a brought manifest of a million box images: 4,096 MB keeps a third free.
        self.consolidate = function(
            "ConsolidateJob", "reconsolidate", "Consolidate a labeling job's worker responses, or a job's tool exports",
            statements=[read_objects(data, "jobs/*"), list_prefix(data, "jobs/*/labeling/"),
                        list_prefix(data, "jobs/*/images/"),
                        write_objects(data, "jobs/*/dataset/*", "jobs/*/status.json"), *input_reads],
            timeout=Duration.minutes(15), memory_size=settings.consolidation_memory_mb,
            ephemeral_storage_mb=4096, environment=scope_environment,
        )  # fmt: skip
        # One function for the three calls of "Build training data" (plan, convert a shard, join): the join lists
        # the shards' results and deletes their parts once joined.
        self.build = function(
            "BuildTrainingData", "build_training_data", "Split and convert the consolidated labels to training data",
            statements=[read_objects(data, "jobs/*"), read_object_versions(data, "jobs/*/job.json"),
                        write_objects(data, "jobs/*/dataset/*"), abort_uploads(data, "jobs/*/dataset/*"),
                        *(list_prefix(data, f"{work}parts/") for work in TRAINING_SHARDS),
                        delete_objects(data, *(f"{work}parts/*" for work in TRAINING_SHARDS)), *input_reads],
            timeout=Duration.minutes(15), memory_size=3008,
            environment={
                "ARTIFACTS_BUCKET": artifacts.bucket_name,
                # Deployment-wide defaults for what a job file leaves out (cdk.json context).
                "DEFAULT_TRAINING_INSTANCE_TYPE": settings.training_instance_type or "",
                "DEFAULT_ENDPOINT_INSTANCE_TYPE": settings.endpoint_instance_type or "",
                **scope_environment,
            },
        )  # fmt: skip
        self.check_quality = function(
            "CheckModelQuality", "check_model_quality", "Compare the final validation metric with the job's threshold"
        )
        self.route_machine_labels = function(
            "RouteMachineLabels", "route_machine_labels",
            "Automated labeling: choose the confidence threshold, keep machine labels above it, route the rest",
            statements=[read_objects(data, "jobs/*"), list_prefix(data, "jobs/*/predictions/"),
                        write_objects(data, "jobs/*/dataset/*", "jobs/*/manifests/*")],
            timeout=Duration.minutes(15), memory_size=3008,
        )  # fmt: skip

        self.sagemaker_role = iam.Role(
            self,
            "SageMakerRole",
            assumed_by=sagemaker_service_principal(stack),
            description="truthflow training jobs and endpoints",
        )
        for statement in (
            read_objects(data, "jobs/*"),
            list_prefix(data, "jobs/"),
            # Batch transform jobs of automated labeling write their predictions beside the job.
            write_objects(data, "jobs/*/predictions/*"),
            read_objects(artifacts, "training/*"),
            write_objects(artifacts, "training/*"),
            list_prefix(artifacts, "training/"),
            sagemaker_log_groups(stack, "TrainingJobs", "TransformJobs", "Endpoints/*"),
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"]}},
            ),
            *input_reads,
        ):
            self.sagemaker_role.add_to_policy(statement)

        self.notifications = RunNotifications(self, "Notifications", email=settings.notification_email)
        self.topic = self.notifications.topic

        functions = {
            "PrepareLabelingFunctionName": self.prepare,
            "ConsolidateJobFunctionName": self.consolidate,
            "BuildTrainingDataFunctionName": self.build,
            "CheckModelQualityFunctionName": self.check_quality,
            "RouteMachineLabelsFunctionName": self.route_machine_labels,
            "PreLabelingFunctionName": labeling.pre_labeling,
            "AnnotationConsolidationFunctionName": labeling.annotation_consolidation,
        }
        self.role = iam.Role(
            self, "StateMachineRole", assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="truthflow pipeline state machine",
        )  # fmt: skip
        for statement in self._state_machine_statements(stack, labeling):
            self.role.add_to_policy(statement)
        self.log_group = logs.LogGroup(
            self, "StateMachineLogs", retention=settings.log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_file(str(DEFINITION)),
            definition_substitutions={
                "Partition": stack.partition,
                "Region": stack.region,
                "Account": stack.account,
                **{key: fn.function.function_name for key, fn in functions.items()},
                "GroundTruthRoleArn": labeling.role.role_arn,
                "SageMakerRoleArn": self.sagemaker_role.role_arn,
                "WorkteamArn": settings.workteam_arn,
                "NotificationTopicArn": self.topic.topic_arn,
            },
            role=self.role,
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        # The Distributed Maps of "Build training data" run one child execution of this state machine per shard.
        # A policy of its own, attached after the state machine exists: it names the state machine's own ARN.
        self.distributed_map_policy = iam.Policy(
            self, "DistributedMapPolicy", statements=self._distributed_map_statements(stack)
        )
        self.role.attach_inline_policy(self.distributed_map_policy)
        # Timeouts, aborts and errors no Catch can see (States.DataLimitExceeded) still reach the topic.
        self.run_ended_rule = self.notifications.notify_on_abnormal_end(self.state_machine)

        self.start_run = function(
            "StartRun", "start_run", "Start a run when a job.json is uploaded",
            statements=[read_object_versions(data, "jobs/*/job.json"), read_objects(data, "jobs/*.csv"),
                        write_objects(data, "jobs/*/status.json"),
                        iam.PolicyStatement(actions=["states:StartExecution"],
                                            resources=[self.state_machine.state_machine_arn])],
            environment={
                "STATE_MACHINE_ARN": self.state_machine.state_machine_arn,
                "POLL_SECONDS": str(settings.poll_seconds),
                "MAX_ENDPOINT_POLLS": str(settings.max_endpoint_polls),
                **scope_environment,
            },
        )  # fmt: skip
        # EventBridge invokes the starter asynchronously: what still fails after Lambda's two retries (S3 or Step
        # Functions unreachable; bad uploads never raise) is kept here, and the alarm tells the topic.
        self.start_run_failures = sqs.Queue(
            self,
            "StartRunFailures",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        accept_dead_letter_queue(self.start_run_failures)
        self.start_run.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.start_run_failures), retry_attempts=2
        )
        self.start_run_alarm = self.notifications.alarm_on_messages(
            self.start_run_failures, what="A job.json upload could not be processed (the starter failed 3 times)"
        )
        self.trigger = events.Rule(
            self,
            "JobFileUploaded",
            description="A jobs/<id>/job.json upload starts a truthflow run",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={"bucket": {"name": [data.bucket_name]}, "object": {"key": [{"wildcard": "jobs/*/job.json"}]}},
            ),
            targets=[targets.LambdaFunction(self.start_run.function, retry_attempts=4)],
        )

    def _distributed_map_statements(self, stack: Stack) -> list[iam.PolicyStatement]:
        """Step Functions' documented policy for running a Distributed Map ("IAM policies for using Distributed Map
        states"): StartExecution on the state machine itself for the child executions, DescribeExecution on its
        executions."""
        name = self.state_machine.state_machine_name
        executions = stack.format_arn(
            service="states", resource="execution", resource_name=f"{name}:*", arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        return [
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.state_machine.state_machine_arn]),
            iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[executions]),
        ]

    def _state_machine_statements(self, stack: Stack, labeling: GroundTruthLabeling) -> list[iam.PolicyStatement]:
        """Exactly the actions the definition's tasks call, on the resources they touch.

        SageMaker: the policies Step Functions documents for its optimized integrations (developer guide, "IAM
        policies for calling SageMaker AI": CreateTrainingJob and CreateTransformJob, each .sync with Create/Describe/
        Stop, ``sagemaker:ListTags`` on ``*``, PassRole to SageMaker and the managed
        ``StepFunctionsGetEventsForSageMaker<...>JobsRule``), and for CreateModel, CreateEndpointConfig, CreateEndpoint
        and UpdateEndpoint the statements CDK's SageMaker tasks generate (the action on its resource types, ListTags).
        Batch transform is granted for the automated-labeling loop that adds it; labeling .sync follows the training
        pattern (Step Functions documents no policy for it). ``AddTags`` because every resource is created with tags
        (and Step Functions tags the jobs it runs .sync); DescribeEndpoint for the AWS SDK tasks that read the
        endpoint.
        """

        def arn(resource: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name="*")

        pipeline_functions = [self.prepare, self.consolidate, self.build, self.check_quality, self.route_machine_labels]
        return [
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[fn.function.function_arn for fn in pipeline_functions]
            ),
            iam.PolicyStatement(
                actions=["sagemaker:CreateLabelingJob", "sagemaker:DescribeLabelingJob", "sagemaker:StopLabelingJob"],
                resources=[arn("labeling-job")],
            ),
            iam.PolicyStatement(
                actions=["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"],
                resources=[arn("training-job")],
            ),
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateTransformJob",
                    "sagemaker:DescribeTransformJob",
                    "sagemaker:StopTransformJob",
                ],
                resources=[arn("transform-job")],
            ),
            iam.PolicyStatement(actions=["sagemaker:CreateModel"], resources=[arn("model")]),
            iam.PolicyStatement(actions=["sagemaker:CreateEndpointConfig"], resources=[arn("endpoint-config")]),
            iam.PolicyStatement(
                actions=["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"],
                resources=[arn("endpoint"), arn("endpoint-config")],
            ),
            iam.PolicyStatement(actions=["sagemaker:DescribeEndpoint"], resources=[arn("endpoint")]),
            iam.PolicyStatement(actions=["sagemaker:ListTags"], resources=["*"]),
            iam.PolicyStatement(
                actions=["sagemaker:AddTags"],
                resources=[arn(kind) for kind in TAGGED_RESOURCES],
            ),
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[labeling.role.role_arn, self.sagemaker_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
            # The .sync integrations watch SageMaker jobs through rules that Step Functions manages.
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    stack.format_arn(
                        service="events", resource="rule", resource_name=f"StepFunctionsGetEventsFor{name}"
                    )
                    for name in SYNC_JOB_RULES
                ],
            ),
            # The Distributed Maps' ItemReader reads the shard list "Plan training data" writes.
            read_objects(self.data, *(f"{work}shards.json" for work in TRAINING_SHARDS)),
            *self.notifications.publish_statements(),
        ]
