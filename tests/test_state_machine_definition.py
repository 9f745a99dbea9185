"""The ASL file on its own: a readable, complete graph that statelint accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from statelint.linter import Linter

DEFINITION_PATH = Path(__file__).resolve().parents[1] / "statemachine" / "pipeline.asl.json"
DEFINITION = json.loads(DEFINITION_PATH.read_text())
STATES = DEFINITION["States"]
PLACEHOLDERS = set(re.findall(r"\$\{([A-Za-z]+)\}", DEFINITION_PATH.read_text()))


def targets(state: dict) -> list[str]:
    found = [state[key] for key in ("Next", "Default") if key in state]
    found += [rule["Next"] for rule in state.get("Choices", [])]
    found += [catcher["Next"] for catcher in state.get("Catch", [])]
    return found


# statelint 3.1.0 (the latest) predates ReaderConfig.InputType, which Step Functions requires for an S3 file
# ItemReader ("JSON" for the shard list; CDK's S3JsonItemReader renders the same). Only that field is forgiven.
STATELINT_UNKNOWN_FIELD = re.compile(
    r'Field "InputType" not allowed in State Machine\.States\.[^.]+\.ItemReader\.ReaderConfig'
)


def test_statelint_finds_no_problem():
    problems = Linter.validate(DEFINITION_PATH.read_text())
    assert [problem for problem in problems if not STATELINT_UNKNOWN_FIELD.fullmatch(problem)] == []
    readers = [state["ItemReader"] for state in STATES.values() if "ItemReader" in state]
    assert len(problems) == len(readers) and all(reader["ReaderConfig"] == {"InputType": "JSON"} for reader in readers)


def test_every_transition_goes_to_an_existing_state():
    assert DEFINITION["StartAt"] in STATES
    for name, state in STATES.items():
        for target in targets(state):
            assert target in STATES, f"{name} -> {target}"


def test_every_state_is_reachable_from_the_start():
    seen, frontier = set(), [DEFINITION["StartAt"]]
    while frontier:
        name = frontier.pop()
        if name not in seen:
            seen.add(name)
            frontier.extend(targets(STATES[name]))
    assert seen == set(STATES)


def test_every_task_retries_and_every_failure_is_caught_into_a_named_fail_state():
    for name, state in STATES.items():
        if state["Type"] == "Task":
            assert state.get("Retry"), name
            assert state.get("Catch"), name
            for catcher in state["Catch"]:
                # A catch leads, through at most a notification, to a Fail state or to a recovery state.
                follow = STATES[catcher["Next"]]
                if follow["Type"] == "Task" and "sns:publish" in follow["Resource"]:
                    assert STATES[follow["Next"]]["Type"] in ("Fail", "Succeed"), name


def test_fail_states_say_what_failed_and_why():
    fails = {name: state for name, state in STATES.items() if state["Type"] == "Fail"}
    assert len(fails) >= 8
    for name, state in fails.items():
        assert ("Cause" in state or "CausePath" in state) and ("Error" in state or "ErrorPath" in state), name


def test_choices_read_as_questions_and_names_are_plain_words():
    for name, state in STATES.items():
        assert re.fullmatch(r"[A-Z][a-z]+( [a-zA-Z]+)*\??", name), name
        if state["Type"] == "Choice":
            assert name.endswith("?"), name


def test_no_s3_path_handed_to_sagemaker_is_an_https_url():
    text = DEFINITION_PATH.read_text()
    assert "https://" not in text
    assert "s3.amazonaws" not in text


def test_placeholders_are_the_ones_the_stack_substitutes():
    assert {
        "Partition", "Region", "Account", "PrepareLabelingFunctionName", "ConsolidateJobFunctionName",
        "BuildTrainingDataFunctionName", "CheckModelQualityFunctionName", "RouteMachineLabelsFunctionName",
        "PreLabelingFunctionName",
        "AnnotationConsolidationFunctionName", "GroundTruthRoleArn", "SageMakerRoleArn", "WorkteamArn",
        "NotificationTopicArn",
    } == PLACEHOLDERS  # fmt: skip


@pytest.mark.parametrize("state", ["Wait for endpoint"])
def test_waits_are_driven_by_the_run_settings(state):
    assert STATES[state]["SecondsPath"] == "$.settings.poll_seconds"


def test_overall_timeout_allows_a_human_labeling_job():
    # Task availability may be up to 30 days; training and deployment come after.
    assert DEFINITION["TimeoutSeconds"] >= 30 * 86_400


def test_every_sagemaker_task_retries_throttling_service_errors_and_resource_limits():
    sagemaker_tasks = [name for name, state in STATES.items() if ":sagemaker:" in state.get("Resource", "")]
    assert len(sagemaker_tasks) >= 8
    for name in sagemaker_tasks:
        retried = {error for retrier in STATES[name]["Retry"] for error in retrier["ErrorEquals"]}
        assert {
            "SageMaker.ThrottlingException",
            "SageMaker.AmazonSageMakerException",
            "SageMaker.ResourceLimitExceededException",
        } <= retried, name
        assert all(
            retrier.get("MaxDelaySeconds") and retrier.get("JitterStrategy") for retrier in STATES[name]["Retry"]
        )


def test_only_a_missing_endpoint_leads_to_create_endpoint():
    sources = [name for name, state in STATES.items() if "Create endpoint" in targets(state)]
    assert sources == ["Endpoint missing?"]
    [rule] = STATES["Endpoint missing?"]["Choices"]
    assert rule == {
        "Variable": "$.error.Cause",
        "StringMatches": "*Could not find endpoint*",
        "Next": "Create endpoint",
    }


def test_a_job_that_brings_tool_exports_skips_labeling_and_is_told_what_was_imported():
    [to_import] = [rule for rule in STATES["Labeling needed?"]["Choices"] if rule.get("StringEquals") == "import"]
    assert to_import == {"Variable": "$.labeling.start_at", "StringEquals": "import", "Next": "Consolidate whole job"}
    assert STATES["Consolidate whole job"]["Next"] == "Labels imported?"
    [notify] = STATES["Labels imported?"]["Choices"]
    assert notify["Next"] == "Notify import result" and STATES["Labels imported?"]["Default"] == "Plan training data"
    message = STATES["Notify import result"]["Parameters"]["Message.$"]
    assert "$.dataset.import.message" in message
    # A notification that cannot be sent does not stop the run: the summary is also in quality.json and status.json.
    assert STATES["Notify import result"]["Next"] == "Plan training data"
    assert [catcher["Next"] for catcher in STATES["Notify import result"]["Catch"]] == ["Plan training data"]


def nested_states(state: dict) -> dict[str, dict]:
    processor = state.get("ItemProcessor") or state.get("Iterator") or {}
    return processor.get("States", {})


@pytest.mark.parametrize(
    ("plan", "shards", "join", "result", "next_state"),
    [
        ("Plan training data", "Build training data", "Join training data", "$.training_data", "Train model"),
        ("Plan bootstrap training data", "Build bootstrap training data", "Join bootstrap training data",
         "$.bootstrap_data", "Train bootstrap model"),
    ],
)  # fmt: skip
def test_training_data_is_planned_converted_by_a_distributed_map_over_the_shard_list_and_joined(
    plan, shards, join, result, next_state
):
    assert STATES[plan]["Parameters"]["step"] == "plan" and STATES[plan]["Next"] == shards
    plan_path = STATES[plan]["ResultPath"]
    shard_map = STATES[shards]
    assert shard_map["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert shard_map["ItemReader"]["Parameters"] == {
        "Bucket.$": f"{plan_path}.shard_list.bucket", "Key.$": f"{plan_path}.shard_list.key"
    }  # fmt: skip
    assert shard_map["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert (
        shard_map["ItemSelector"]["step"] == "convert" and shard_map["ItemSelector"]["shard.$"] == "$$.Map.Item.Value"
    )
    # A failed shard must not hide the others' errors: the join names every shard without a result.
    assert shard_map["ToleratedFailurePercentage"] == 100 and shard_map["ResultPath"] is None
    [convert] = nested_states(shard_map).values()
    assert convert["Resource"] == STATES[plan]["Resource"] and convert.get("Retry") and convert["End"] is True
    assert STATES[join]["Parameters"]["step"] == "join" and STATES[join]["Parameters"]["training_plan.$"] == plan_path
    assert STATES[join]["ResultPath"] == result and STATES[join]["Next"] == next_state
    for state in (STATES[plan], shard_map, STATES[join]):
        assert state["Catch"][0]["Next"] == "Notify training data failed"


def test_nested_state_names_are_plain_words_and_unique():
    nested = [name for state in STATES.values() for name in nested_states(state)]
    assert len(nested) == len(set(nested)) and not set(nested) & set(STATES)
    for name in nested:
        assert re.fullmatch(r"[A-Z][a-z]+( [a-zA-Z]+)*", name), name
