"""cdk-nag AwsSolutions findings we reviewed and accept, each limited to the exact wildcard it is about.

Everything else cdk-nag checks (encryption, TLS, access logs, PITR, logging and tracing of the state machine,
runtime versions) is fixed in the constructs rather than suppressed. The remaining findings are IAM5 (wildcards in
resources): no wildcard *action* exists anywhere; these are resource patterns whose names are only known at run time.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo

# A bucket ARN appears as <Logical.Arn> in its own stack and as an imported export in the other one.
_BUCKET = (
    r"(<Storage(Data|Artifacts)[0-9A-F]{8}\.Arn>"
    r"|TruthflowStorage:ExportsOutputFnGetAttStorage(Data|Artifacts)[0-9A-F]{8}Arn[0-9A-F]{8})"
)


# Partition, region and account are tokens in an environment-agnostic synth and literals when the CLI sets them.
_REGION = r"(<AWS::Region>|[a-z]{2}(-[a-z]+)+-\d)"
_ACCOUNT = r"(<AWS::AccountId>|\d{12})"


def _regex(pattern: str) -> RegexAppliesTo:
    return RegexAppliesTo(regex=f"/^{pattern}$/")


REVIEWED_WILDCARDS = [
    (
        "Objects of any job folder: jobs/<id>/ is created by users at run time. Each role gets only the sub-folders "
        "and files its step reads or writes (job.json, images/, manifests/, labeling/, dataset/, predictions/, "
        "status.json, the .csv gold file a job file may name anywhere in its folder; the training data's shard list "
        "and shard parts), one bucket; every step checks at run time that a job reads only its own folder.",
        [
            _regex(
                f"Resource::{_BUCKET}\\/jobs\\/\\*"
                r"(\/(job\.json|status\.json|images\/\*|manifests\/\*|labeling\/\*|dataset\/\*|predictions\/\*"
                r"|dataset\/(bootstrap\/)?training-shards\/(parts\/\*|shards\.json))|\.csv)?"
            )
        ],
    ),
    (
        "Objects of the buckets the deployment lists in cdk.json (input_buckets) for job files to name: the steps "
        "that read job inputs and the training role read them; every step checks each address a job brings.",
        [_regex(r"Resource::arn:<AWS::Partition>:s3:::[a-z0-9][a-z0-9.-]+[a-z0-9]\/\*")],
    ),
    (
        "The Distributed Maps of 'Build training data' run child executions of this state machine, named at run "
        "time; Step Functions' documented policy grants DescribeExecution on the state machine's executions (the ARN "
        "fixes partition, region, account and the state machine's own name).",
        [
            _regex(
                f"Resource::arn:<AWS::Partition>:states:{_REGION}:{_ACCOUNT}:execution:<PipelineStateMachine[0-9A-F]{{8}}\\.Name>:\\*"
            )
        ],
    ),
    (
        "Training output of any run: SageMaker writes <training job name>/output/model.tar.gz under training/, and "
        "training job names are made per run.",
        [_regex(f"Resource::{_BUCKET}\\/training\\/\\*")],
    ),
    (
        "SageMaker labeling, training and transform jobs, models, endpoint configs and endpoints are named per run at "
        "run time (from the job id and the execution); the ARN still fixes partition, region, account and resource "
        "type.",
        [
            _regex(
                f"Resource::arn:<AWS::Partition>:sagemaker:{_REGION}:{_ACCOUNT}:"
                r"(labeling-job|training-job|transform-job|model|endpoint-config|endpoint)\/\*"
            )
        ],
    ),
    (
        "SageMaker writes job and endpoint logs into its fixed log groups with one stream per job or instance, named "
        "at run time.",
        [
            _regex(
                f"Resource::arn:<AWS::Partition>:logs:{_REGION}:{_ACCOUNT}:log-group:"
                r"\/aws\/sagemaker\/(LabelingJobs|TrainingJobs|TransformJobs|Endpoints\/\*):\*"
            )
        ],
    ),
    (
        "Resource '*' where IAM or the documented policy requires it: X-Ray PutTraceSegments and PutTelemetryRecords "
        "(active tracing of every function and the state machine), the CloudWatch Logs delivery APIs Step Functions "
        "uses for execution logging, cloudwatch:PutMetricData for SageMaker and Ground Truth (limited by a namespace "
        "condition), and sagemaker:ListTags, which Step Functions' documented policy for its SageMaker integrations "
        "grants on '*'.",
        ["Resource::*"],
    ),
]


def suppress_reviewed_findings(stack: Stack) -> None:
    NagSuppressions.add_stack_suppressions(
        stack,
        [
            NagPackSuppression(id="AwsSolutions-IAM5", reason=reason, applies_to=applies)
            for reason, applies in REVIEWED_WILDCARDS
        ],
    )


def accept_dead_letter_queue(queue: sqs.IQueue) -> None:
    """SQS3 asks every queue to have a dead-letter queue unless it is one; cdk-nag recognises only the redrive
    policies of other queues, not a Lambda function's on-failure destination, which this queue is."""
    NagSuppressions.add_resource_suppressions(
        queue,
        [
            NagPackSuppression(
                id="AwsSolutions-SQS3",
                reason="This queue is the dead-letter destination itself: the starter Lambda's on-failure destination "
                "for asynchronous invocations, watched by a CloudWatch alarm that notifies the run topic.",
            )
        ],
    )
