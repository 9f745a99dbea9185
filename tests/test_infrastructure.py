"""The synthesized CloudFormation: resources, least-privilege IAM, trigger, state machine wiring, cdk-nag, cfn-lint."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from aws_cdk.assertions import Annotations, Match, Template

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import app as truthflow_app  # noqa: E402

HANDLERS = {
    "pre_labeling.handler.lambda_handler",
    "annotation_consolidation.handler.lambda_handler",
    "prepare_labeling.handler.lambda_handler",
    "reconsolidate.handler.lambda_handler",
    "build_training_data.handler.lambda_handler",
    "check_model_quality.handler.lambda_handler",
    "start_run.handler.lambda_handler",
}
# Actions that IAM allows only on Resource "*" (no resource-level permissions).
RESOURCE_STAR_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "cloudwatch:PutMetricData",
}


@pytest.fixture(scope="module", params=["environment-agnostic", "account-and-region"])
def synthesized(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Synth twice: as tests and CI do (no account), and as the CLI does with a configured account and region,
    where ARNs carry literal values instead of tokens (cdk-nag suppressions must match both)."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    environment = {"CDK_DEFAULT_ACCOUNT": "111122223333", "CDK_DEFAULT_REGION": "eu-west-1"}
    saved = {name: os.environ.pop(name, None) for name in environment}
    if request.param == "account-and-region":
        os.environ.update(environment)
    app = cdk.App(
        outdir=str(outdir),
        context={
            "aws:cdk:bundling-stacks": [],
            "workteam_arn": "arn:aws:sagemaker:us-east-1:111122223333:workteam/private-crowd/team",
            "training_instance_type": "ml.g5.2xlarge",
        },
    )
    storage, pipeline = truthflow_app.build_app(app)
    app.synth()
    for name, value in saved.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value
    return {
        "outdir": outdir,
        "storage": storage,
        "pipeline": pipeline,
        "storage_template": Template.from_stack(storage),
        "pipeline_template": Template.from_stack(pipeline),
    }


def resources(template: Template, kind: str) -> dict[str, Any]:
    return template.find_resources(kind)


def policy_statements(template: Template) -> list[dict[str, Any]]:
    statements = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- storage -------------------------------------------------------------------------------------------------------


def test_buckets_are_private_encrypted_tls_only_and_logged(synthesized):
    template = synthesized["storage_template"]
    buckets = resources(template, "AWS::S3::Bucket")
    assert len(buckets) == 3
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert (
            props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
                "SSEAlgorithm"
            ]
            == "AES256"
        )
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
        }  # fmt: skip
    logged = [b for b in buckets.values() if "LoggingConfiguration" in b["Properties"]]
    assert len(logged) == 2 and all(b["Properties"]["VersioningConfiguration"]["Status"] == "Enabled" for b in logged)
    for policy in resources(template, "AWS::S3::BucketPolicy").values():
        denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_data_bucket_has_ground_truth_cors_and_sends_events_to_eventbridge(synthesized):
    template = synthesized["storage_template"]
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "CorsConfiguration": {
                "CorsRules": [
                    {
                        "AllowedMethods": ["GET"],
                        "AllowedOrigins": ["*"],
                        "ExposedHeaders": ["Access-Control-Allow-Origin"],
                    }
                ]
            },
            "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
        },
    )


def test_worker_stats_table_is_on_demand_recoverable_and_encrypted(synthesized):
    synthesized["storage_template"].has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "KeySchema": [{"AttributeName": "job", "KeyType": "HASH"}, {"AttributeName": "worker", "KeyType": "RANGE"}],
        },
    )


# --- functions -----------------------------------------------------------------------------------------------------


def test_every_handler_is_deployed_traced_with_the_layer_and_powertools_settings(synthesized):
    functions = resources(synthesized["pipeline_template"], "AWS::Lambda::Function")
    assert {f["Properties"]["Handler"] for f in functions.values()} == HANDLERS
    for function in functions.values():
        props = function["Properties"]
        assert props["Runtime"] == "python3.14"
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert len(props["Layers"]) == 1
        variables = props["Environment"]["Variables"]
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "truthflow"
        assert variables["POWERTOOLS_SERVICE_NAME"] == props["Handler"].split(".")[0]
    for group in resources(synthesized["pipeline_template"], "AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == 30


def test_deployment_defaults_from_context_reach_the_training_data_step(synthesized):
    functions = resources(synthesized["pipeline_template"], "AWS::Lambda::Function").values()
    build = next(f for f in functions if f["Properties"]["Handler"].startswith("build_training_data."))
    assert build["Properties"]["Environment"]["Variables"]["DEFAULT_TRAINING_INSTANCE_TYPE"] == "ml.g5.2xlarge"


def test_layer_requirements_match_the_project_pins():
    pyproject = (REPO / "pyproject.toml").read_text()
    for line in (REPO / "stacks" / "layer" / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            assert f'"{line}"' in pyproject, line


# --- IAM -----------------------------------------------------------------------------------------------------------


def test_no_wildcard_actions_and_resource_star_only_where_iam_requires_it(synthesized):
    for template in (synthesized["storage_template"], synthesized["pipeline_template"]):
        for statement in policy_statements(template):
            actions = as_list(statement["Action"])
            assert all("*" not in action for action in actions), actions
            if "*" in as_list(statement["Resource"]):
                assert set(actions) <= RESOURCE_STAR_ACTIONS, actions


def test_ground_truth_role_invokes_only_our_pre_and_acs_functions(synthesized):
    template = synthesized["pipeline_template"]
    invoke = [s for s in policy_statements(template) if s["Action"] == "lambda:InvokeFunction"]
    gt = [s for s in invoke if any("PreLabeling" in json.dumps(r) for r in as_list(s["Resource"]))]
    assert len(gt) == 1
    assert sorted(json.dumps(r) for r in gt[0]["Resource"]) == sorted(
        json.dumps({"Fn::GetAtt": [name, "Arn"]})
        for name in template.find_resources("AWS::Lambda::Function")
        if "PreLabeling" in name or "AnnotationConsolidation" in name
    )


def function_role_statements(template: Template, function_name_part: str) -> list[dict[str, Any]]:
    """The policy statements attached to the execution role of the one function whose logical id contains
    ``function_name_part``."""
    [function] = [f for name, f in resources(template, "AWS::Lambda::Function").items() if function_name_part in name]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def test_pre_labeling_function_reads_the_jobs_label_categories(synthesized):
    statements = function_role_statements(synthesized["pipeline_template"], "PreLabeling")
    by_action = {action: s for s in statements for action in as_list(s["Action"])}
    assert ":labeling-job/*" in json.dumps(by_action["sagemaker:DescribeLabelingJob"]["Resource"])
    readable = json.dumps(by_action["s3:GetObject"]["Resource"])
    assert "/jobs/*/manifests/*" in readable and "/jobs/*/labeling/*" in readable


def test_consolidation_function_queries_and_adds_worker_statistics_in_transactions(synthesized):
    statements = function_role_statements(synthesized["pipeline_template"], "AnnotationConsolidation")
    table = [s for s in statements if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert len(table) == 1
    assert sorted(as_list(table[0]["Action"])) == ["dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]


def test_state_machine_role_has_what_sync_tasks_need(synthesized):
    statements = policy_statements(synthesized["pipeline_template"])
    actions = {action for s in statements for action in as_list(s["Action"])}
    for needed in (
        "sagemaker:CreateLabelingJob", "sagemaker:DescribeLabelingJob", "sagemaker:StopLabelingJob",
        "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
        "sagemaker:CreateModel", "sagemaker:CreateEndpointConfig", "sagemaker:CreateEndpoint",
        "sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint", "sagemaker:AddTags",
        "events:PutTargets", "events:PutRule", "events:DescribeRule", "sns:Publish", "states:StartExecution",
    ):  # fmt: skip
        assert needed in actions, needed
    pass_role = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert len(pass_role) == 1
    assert pass_role[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert len(pass_role[0]["Resource"]) == 2
    rules = next(s for s in statements if "events:PutRule" in as_list(s["Action"]))
    assert "StepFunctionsGetEventsForSageMakerLabelingJobsRule" in json.dumps(rules["Resource"])


# --- trigger and state machine -------------------------------------------------------------------------------------


def test_job_file_upload_rule_targets_the_starter(synthesized):
    template = synthesized["pipeline_template"]
    rules = resources(template, "AWS::Events::Rule")
    assert len(rules) == 1
    rule = next(iter(rules.values()))["Properties"]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"] == {"key": [{"wildcard": "jobs/*/job.json"}]}
    assert "StartRun" in json.dumps(rule["Targets"][0]["Arn"])


def test_definition_substitutions_cover_every_placeholder(synthesized):
    template = synthesized["pipeline_template"]
    machine = next(iter(resources(template, "AWS::StepFunctions::StateMachine").values()))["Properties"]
    placeholders = set(re.findall(r"\$\{([A-Za-z]+)\}", (REPO / "statemachine" / "pipeline.asl.json").read_text()))
    assert set(machine["DefinitionSubstitutions"]) == placeholders
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["DefinitionSubstitutions"]["WorkteamArn"].endswith("workteam/private-crowd/team")


def test_missing_workteam_still_synthesizes_with_a_clear_warning(tmp_path):
    app = cdk.App(outdir=str(tmp_path), context={"aws:cdk:bundling-stacks": []})
    _, pipeline = truthflow_app.build_app(app)
    app.synth()
    warnings = Annotations.from_stack(pipeline).find_warning("*", Match.string_like_regexp("workteam_arn is not set"))
    assert len(warnings) == 1


# --- checks --------------------------------------------------------------------------------------------------------


def test_cdk_nag_has_no_unsuppressed_findings(synthesized):
    for stack in (synthesized["storage"], synthesized["pipeline"]):
        annotations = Annotations.from_stack(stack)
        assert annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*")) == []
        assert annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*")) == []


def test_every_nag_suppression_has_a_specific_reason():
    from stacks.nag_suppressions import REVIEWED_WILDCARDS

    for reason, applies_to in REVIEWED_WILDCARDS:
        assert len(reason) > 80 and applies_to


def test_cfn_lint_finds_no_errors(synthesized):
    templates = sorted(str(path) for path in Path(synthesized["outdir"]).glob("*.template.json"))
    assert len(templates) == 2
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--ignore-checks", "W3005", "W3045", "--", *templates],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
