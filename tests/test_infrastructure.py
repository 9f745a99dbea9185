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
    "route_machine_labels.handler.lambda_handler",
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
    "sagemaker:ListTags",  # Step Functions' documented policy for its SageMaker integrations grants it on "*"
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
            "input_buckets": ["shared-annotations"],
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
                        "AllowedOrigins": ["https://*.sagemaker.aws"],
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


def test_whole_job_consolidation_has_the_memory_and_disk_a_full_box_job_needs(synthesized):
    functions = resources(synthesized["pipeline_template"], "AWS::Lambda::Function").values()
    consolidate = next(f for f in functions if f["Properties"]["Handler"].startswith("reconsolidate."))
    assert consolidate["Properties"]["MemorySize"] == 4096
    assert consolidate["Properties"]["EphemeralStorage"] == {"Size": 4096}
    build = next(f for f in functions if f["Properties"]["Handler"].startswith("build_training_data."))
    assert build["Properties"]["MemorySize"] == 3008 and "EphemeralStorage" not in build["Properties"]


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


def role_statements(template: Template, service: str) -> list[dict[str, Any]]:
    """The policy statements of the one role that ``service`` assumes."""
    roles = [
        name
        for name, role in resources(template, "AWS::IAM::Role").items()
        if service in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    ]
    assert len(roles) == 1, roles
    statements = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": roles[0]} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


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


def test_whole_job_consolidation_lists_labeling_output_and_images_and_writes_only_the_dataset_and_status(synthesized):
    statements = function_role_statements(synthesized["pipeline_template"], "ConsolidateJob")
    s3_actions = granted(statements, "s3:")
    assert set(s3_actions) == {"s3:GetObject", "s3:ListBucket", "s3:PutObject"}
    writes = " ".join(s3_actions["s3:PutObject"])
    assert "/jobs/*/dataset/*" in writes and "/jobs/*/status.json" in writes and len(s3_actions["s3:PutObject"]) == 2
    listed = [s["Condition"]["StringLike"]["s3:prefix"] for s in statements if s["Action"] == "s3:ListBucket"]
    # Worker responses under labeling/, and the images tool exports are matched to: nothing else of a job is listed.
    assert sorted(listed) == [["jobs/*/images/", "jobs/*/images/*"], ["jobs/*/labeling/", "jobs/*/labeling/*"]]


def test_consolidation_function_queries_and_adds_worker_statistics_in_transactions(synthesized):
    statements = function_role_statements(synthesized["pipeline_template"], "AnnotationConsolidation")
    table = [s for s in statements if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert len(table) == 1
    assert sorted(as_list(table[0]["Action"])) == ["dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]


def granted(statements: list[dict[str, Any]], prefix: str) -> dict[str, list[str]]:
    """action -> the resources it is granted on (as JSON text), for actions starting with ``prefix``."""
    found: dict[str, list[str]] = {}
    for statement in statements:
        for action in as_list(statement["Action"]):
            if action.startswith(prefix):
                found.setdefault(action, []).extend(json.dumps(r) for r in as_list(statement["Resource"]))
    return found


def test_state_machine_role_has_exactly_the_documented_sagemaker_permissions(synthesized):
    statements = role_statements(synthesized["pipeline_template"], "states.amazonaws.com")
    sagemaker = granted(statements, "sagemaker:")
    jobs = {"LabelingJob": "labeling-job", "TrainingJob": "training-job", "TransformJob": "transform-job"}
    expected = {f"sagemaker:{verb}{kind}" for kind in jobs for verb in ("Create", "Describe", "Stop")}
    expected |= {
        "sagemaker:CreateModel", "sagemaker:CreateEndpointConfig", "sagemaker:CreateEndpoint",
        "sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint", "sagemaker:ListTags", "sagemaker:AddTags",
    }  # fmt: skip
    assert set(sagemaker) == expected
    assert sagemaker["sagemaker:ListTags"] == ['"*"']  # as Step Functions' documented policies grant it
    for kind, resource in jobs.items():
        assert all(f":{resource}/*" in arn for arn in sagemaker[f"sagemaker:Create{kind}"])
    for action, resource_arns in sagemaker.items():
        if action != "sagemaker:ListTags":
            assert all(":sagemaker:" in arn for arn in resource_arns), action
    rules = json.dumps(granted(statements, "events:PutRule")["events:PutRule"])
    for job in ("Training", "Transform", "Labeling"):
        assert f"StepFunctionsGetEventsForSageMaker{job}JobsRule" in rules
    assert set(granted(statements, "events:")) == {"events:PutTargets", "events:PutRule", "events:DescribeRule"}
    [pass_role] = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert len(pass_role["Resource"]) == 2
    # The notification topic is encrypted with its own key: publishing needs the two KMS actions on it.
    assert set(granted(statements, "kms:")) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert "sns:Publish" in granted(statements, "sns:")


def test_distributed_maps_have_the_documented_permissions_on_this_state_machine_only(synthesized):
    template = synthesized["pipeline_template"]
    statements = role_statements(template, "states.amazonaws.com")
    [machine] = resources(template, "AWS::StepFunctions::StateMachine")
    states = granted(statements, "states:")
    assert set(states) == {"states:StartExecution", "states:DescribeExecution"}
    assert states["states:StartExecution"] == [json.dumps({"Ref": machine})]
    [executions] = states["states:DescribeExecution"]
    assert re.search(rf':execution:", {{"Fn::GetAtt": \["{machine}", "Name"\]}}, ":\*"\]\]}}$', executions)
    # The ItemReader reads the shard list the plan writes, and nothing else the role did not read before.
    reads = [arn for arn in granted(statements, "s3:GetObject")["s3:GetObject"]]
    assert len(reads) == 2 and all(arn.endswith('training-shards/shards.json"]]}') for arn in reads)
    assert [name for name in granted(statements, "s3:")] == ["s3:GetObject"]


def test_training_data_function_lists_and_deletes_only_the_shards_parts(synthesized):
    template = synthesized["pipeline_template"]
    [role] = [name for name in resources(template, "AWS::IAM::Role") if name.startswith("PipelineBuildTrainingData")]
    statements = [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    deletes = granted(statements, "s3:DeleteObject")["s3:DeleteObject"]
    assert len(deletes) == 2 and all("training-shards/parts/*" in arn for arn in deletes)
    listed = [s["Condition"]["StringLike"]["s3:prefix"] for s in statements if s["Action"] == "s3:ListBucket"]
    assert sorted(prefix[0] for prefix in listed) == [
        "jobs/*/dataset/bootstrap/training-shards/parts/", "jobs/*/dataset/training-shards/parts/",
    ]  # fmt: skip


def test_starter_reads_job_file_versions_and_starts_executions(synthesized):
    template = synthesized["pipeline_template"]
    [role] = [name for name in resources(template, "AWS::IAM::Role") if name.startswith("PipelineStartRunRole")]
    statements = [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {action for s in statements for action in as_list(s["Action"])}
    assert {"s3:GetObjectVersion", "states:StartExecution", "sqs:SendMessage"} <= actions
    # A job file's gold questions (gold_labels, a .csv in the job folder) are checked at upload.
    reads = [json.dumps(s["Resource"]) for s in statements if "s3:GetObject" in as_list(s["Action"])]
    assert any("/jobs/*.csv" in resource for resource in reads)


def test_sagemaker_roles_trust_sagemaker_on_behalf_of_this_account_only(synthesized):
    template = synthesized["pipeline_template"]
    trusts = [
        role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        for role in resources(template, "AWS::IAM::Role").values()
        if "sagemaker.amazonaws.com" in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    ]
    assert len(trusts) == 2  # the Ground Truth execution role and the training/hosting role
    for [statement] in trusts:
        assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
        assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}} or (
            statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "111122223333"}}
        )


def test_ground_truth_role_has_what_the_execution_role_docs_list_scoped_to_the_job_folders(synthesized):
    template = synthesized["pipeline_template"]
    statements = [
        statement
        for name, role in resources(template, "AWS::IAM::Role").items()
        if "truthflow Ground Truth" in role["Properties"].get("Description", "")
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": name} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    s3_actions = granted(statements, "s3:")
    assert set(s3_actions) == {
        "s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListBucket", "s3:GetBucketLocation"
    }  # fmt: skip
    assert all("jobs/*/labeling/*" in arn for arn in s3_actions["s3:PutObject"] + s3_actions["s3:AbortMultipartUpload"])
    reads = " ".join(s3_actions["s3:GetObject"])
    assert "jobs/*/images/*" in reads and "jobs/*/manifests/*" in reads and '/jobs/*"' not in reads
    assert all("/" not in arn.split(".Arn")[-1] for arn in s3_actions["s3:GetBucketLocation"])
    [metrics] = [s for s in statements if s["Action"] == "cloudwatch:PutMetricData"]
    assert metrics["Condition"]["StringLike"]["cloudwatch:namespace"]


def test_deployment_input_buckets_are_readable_and_passed_to_every_step_that_checks_scope(synthesized):
    template = synthesized["pipeline_template"]
    functions = resources(template, "AWS::Lambda::Function").values()
    scoped = {
        f["Properties"]["Handler"].split(".")[0]
        for f in functions
        if f["Properties"]["Environment"]["Variables"].get("INPUT_BUCKETS") == '["shared-annotations"]'
    }
    assert scoped == {"start_run", "prepare_labeling", "reconsolidate", "build_training_data"}
    assert "s3:::shared-annotations/*" in json.dumps(policy_statements(template))


# --- trigger and state machine -------------------------------------------------------------------------------------


def test_job_file_upload_rule_targets_the_starter(synthesized):
    template = synthesized["pipeline_template"]
    rules = resources(template, "AWS::Events::Rule")
    assert len(rules) == 2
    [rule] = [r["Properties"] for r in rules.values() if r["Properties"]["EventPattern"]["source"] == ["aws.s3"]]
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


# --- notifications and hygiene ---------------------------------------------------------------------------------------


def test_a_run_that_ends_abnormally_is_announced_on_the_encrypted_topic(synthesized):
    template = synthesized["pipeline_template"]
    [rule] = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"]["source"] == ["aws.states"]
    ]
    pattern = rule["EventPattern"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert pattern["detail"]["status"] == ["FAILED", "TIMED_OUT", "ABORTED"]
    [machine] = resources(template, "AWS::StepFunctions::StateMachine")
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": machine}]
    [target] = rule["Targets"]
    [topic] = resources(template, "AWS::SNS::Topic")
    assert target["Arn"] == {"Ref": topic}
    transformer = target["InputTransformer"]
    assert set(transformer["InputPathsMap"].values()) >= {"$.detail.name", "$.detail.status", "$.detail.executionArn"}
    assert "truthflow run <detail-name> ended <detail-status>" in json.dumps(transformer["InputTemplate"])
    # EventBridge may publish (topic policy), and may use the topic's customer-managed key (key policy).
    topic_policies = json.dumps([p["Properties"] for p in resources(template, "AWS::SNS::TopicPolicy").values()])
    assert "events.amazonaws.com" in topic_policies and "cloudwatch.amazonaws.com" in topic_policies
    [key_name] = resources(template, "AWS::KMS::Key")
    key = resources(template, "AWS::KMS::Key")[key_name]["Properties"]
    assert key["EnableKeyRotation"] is True
    assert resources(template, "AWS::SNS::Topic")[topic]["Properties"]["KmsMasterKeyId"] == {
        "Fn::GetAtt": [key_name, "Arn"]
    }
    for service in ("events.amazonaws.com", "cloudwatch.amazonaws.com"):
        [grant] = [s for s in key["KeyPolicy"]["Statement"] if s["Principal"] == {"Service": service}]
        assert {"kms:Decrypt", "kms:GenerateDataKey"} <= {a.rstrip("*") for a in as_list(grant["Action"])}


def test_starter_failures_go_to_an_encrypted_queue_with_an_alarm_on_the_topic(synthesized):
    template = synthesized["pipeline_template"]
    [queue] = resources(template, "AWS::SQS::Queue")
    assert resources(template, "AWS::SQS::Queue")[queue]["Properties"]["SqsManagedSseEnabled"] is True
    [config] = resources(template, "AWS::Lambda::EventInvokeConfig").values()
    assert config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [queue, "Arn"]}
    assert config["Properties"]["MaximumRetryAttempts"] == 2
    assert "StartRun" in json.dumps(config["Properties"]["FunctionName"])
    queue_policies = json.dumps([p["Properties"] for p in resources(template, "AWS::SQS::QueuePolicy").values()])
    assert '"aws:SecureTransport": "false"' in queue_policies
    [alarm] = resources(template, "AWS::CloudWatch::Alarm").values()
    props = alarm["Properties"]
    assert props["MetricName"] == "ApproximateNumberOfMessagesVisible" and props["Threshold"] == 1
    assert props["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    [topic] = resources(template, "AWS::SNS::Topic")
    assert props["AlarmActions"] == [{"Ref": topic}]


def test_versioned_buckets_expire_noncurrent_versions_after_the_configured_days(synthesized):
    buckets = resources(synthesized["storage_template"], "AWS::S3::Bucket").values()
    versioned = [b["Properties"] for b in buckets if "VersioningConfiguration" in b["Properties"]]
    assert len(versioned) == 2
    for bucket in versioned:
        [rule] = bucket["LifecycleConfiguration"]["Rules"]
        assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 60} and rule["Status"] == "Enabled"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"noncurrent_version_days": 30}, "noncurrent_version_days: 30 is too short: a run can last 40 days"),
        ({"training_instance_type": "ml.p4d.24xlarge"}, "training_instance_type: the built-in object-detection"),
        ({"input_buckets": ["Not_A_Bucket"]}, "input_buckets: must be a list of S3 bucket names"),
        ({"consolidation_memory_mb": 20_000}, "consolidation_memory_mb: must be a whole number of MB from 128 to"),
    ],
)
def test_settings_that_would_break_a_run_stop_the_synth(tmp_path, context, message):
    app = cdk.App(outdir=str(tmp_path), context={"aws:cdk:bundling-stacks": [], **context})
    with pytest.raises(ValueError, match=f"cdk.json context {message}"):
        truthflow_app.build_app(app)
