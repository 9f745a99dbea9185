"""cdk-nag AwsSolutions findings we reviewed and accept, each limited to the exact wildcard it is about.

Everything else cdk-nag checks (encryption, TLS, access logs, PITR, logging and tracing of the state machine,
runtime versions) is fixed in the constructs rather than suppressed. The remaining findings are IAM5 (wildcards in
resources): no wildcard *action* exists anywhere; these are resource patterns whose names are only known at run time.
"""

from __future__ import annotations

from aws_cdk import Stack
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
        "and files its step reads or writes (job.json, manifests/, labeling/, dataset/, predictions/, status.json), "
        "one bucket.",
        [
            _regex(
                f"Resource::{_BUCKET}\\/jobs\\/\\*"
                r"(\/(job\.json|status\.json|manifests\/\*|labeling\/\*|dataset\/\*|predictions\/\*))?"
            )
        ],
    ),
    (
        "Training output of any run: SageMaker writes <training job name>/output/model.tar.gz under training/, and "
        "training job names are made per run.",
        [_regex(f"Resource::{_BUCKET}\\/training\\/\\*")],
    ),
    (
        "SageMaker labeling, training and transform jobs, models, endpoint configs and endpoints are named per run "
        "at run time "
        "(from the job id and the execution); the ARN still fixes partition, region, account and resource type.",
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
        "Actions without resource-level permissions, so IAM requires Resource '*': X-Ray PutTraceSegments and "
        "PutTelemetryRecords (active tracing of every function and the state machine), the CloudWatch Logs delivery "
        "APIs Step Functions uses for execution logging, and cloudwatch:PutMetricData for SageMaker (limited by a "
        "namespace condition).",
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
