"""The real state machine with training data built in several shards: the Distributed Map reads the plan's shard
list from S3, runs one child execution per shard, and the join writes what one pass over the manifest writes; a
failed shard ends the run in "Training data failed", naming the shard and its error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_end_to_end import JOB_ID, LABELS, N_IMAGES, embedded, job_file, run  # noqa: F401 - embedded is a fixture

from truthflow import training_data_step
from truthflow.training_data import ManifestSource, MemoryDestination, SplitConfig, build_training_data

TRAINING = f"jobs/{JOB_ID}/dataset/training/"


def dataset(aws: Any) -> dict[str, str]:
    return {key.removeprefix(TRAINING): aws.read_text(key) for key in aws.keys(TRAINING)}


def one_pass(aws: Any) -> dict[str, str | bytes]:
    manifest = aws.read_text(f"jobs/{JOB_ID}/dataset/consolidated.manifest").splitlines()
    destination = MemoryDestination()
    build_training_data(ManifestSource(lambda: manifest, class_names=LABELS), destination, class_names=LABELS,
                        split=SplitConfig(0.2, 0))  # fmt: skip
    return destination.files


def test_a_run_builds_its_training_data_in_shards_and_trains_on_the_joined_files(embedded, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SHARD_LINES", "3")
    with embedded() as aws:
        result = run(aws, job_file())

        assert result["description"]["status"] == "SUCCEEDED", result["description"].get("cause")
        history = aws.history(result["arn"])
        assert [event["type"] for event in history].count("MapRunSucceeded") == 1
        shards = json.loads(aws.read_text(f"jobs/{JOB_ID}/dataset/training-shards/shards.json"))
        assert len(shards) == 4  # 10 images, 3 lines a shard
        assert dataset(aws) == one_pass(aws)
        training = next(e for e in history if e.get("stateExitedEventDetails", {}).get("name") == "Join training data")
        output = json.loads(training["stateExitedEventDetails"]["output"])["training_data"]
        assert output["num_training_samples"] + output["num_validation_samples"] == N_IMAGES
        assert output["train_manifest_uri"].endswith(f"{TRAINING}train.manifest")


def test_a_failed_shard_ends_the_run_naming_it(embedded, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SHARD_LINES", "3")
    convert = training_data_step._convert

    def fail_the_second_shard(request: Any, store: Any, stored: Any, plan: Any, shard: Any, buckets: Any) -> Any:
        if shard.index == 1:
            raise OSError("emulated: no space left on device")
        return convert(request, store, stored, plan, shard, buckets)

    monkeypatch.setattr(training_data_step, "_convert", fail_the_second_shard)
    with embedded() as aws:
        result = run(aws, job_file())

        description = result["description"]
        assert description["status"] == "FAILED"
        assert description["error"] == "TrainingDataFailed"
        assert "1 of 4 shards failed: shard 1 (bytes" in description["cause"]
        assert "OSError: emulated: no space left on device" in description["cause"]
        # The other shards ran to the end: the Map tolerates failures so that the join can name every one.
        assert result["entered"][-4:] == [
            "Build training data", "Join training data", "Notify training data failed", "Training data failed",
        ]  # fmt: skip


@pytest.mark.parametrize("tolerated", [None, 100])
def test_the_emulated_distributed_map_fails_as_step_functions_does_beyond_its_tolerated_failures(tolerated):
    """moto lets a Distributed Map succeed whatever fails; the embedded AWS applies the tolerated failures."""
    import boto3

    from truthflow.local.emulator import EmbeddedAws, quiet_moto_logs

    child = {"Type": "Choice", "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Fail item"}],
             "Default": "Item done"}  # fmt: skip
    shards: dict[str, Any] = {
        "Type": "Map",
        "ItemsPath": "$.items",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Item failing?",
            "States": {
                "Item failing?": child,
                "Fail item": {"Type": "Fail", "Error": "Broken", "Cause": "item"},
                "Item done": {"Type": "Succeed"},
            },
        },
        "ResultPath": None,
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
        "End": True,
    }
    if tolerated is not None:
        shards["ToleratedFailurePercentage"] = tolerated
    definition = {"StartAt": "Map items", "States": {"Map items": shards, "Caught": {"Type": "Pass", "End": True}}}
    with quiet_moto_logs(), EmbeddedAws(lambda line, n: []) as aws:
        from truthflow.local.step_functions import moto_compatible_definition

        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(
            name="tolerance", definition=moto_compatible_definition(json.dumps(definition)),
            roleArn="arn:aws:iam::123456789012:role/emulated",
        )["stateMachineArn"]  # fmt: skip
        items = {"items": [{"fail": False}, {"fail": True}, {"fail": False}]}
        execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(items))["executionArn"]
        description = aws.wait(execution)

    output = json.loads(description["output"])
    if tolerated is None:
        assert output["error"]["Error"] == "States.ExceedToleratedFailureThreshold"
        assert "1 of 3 child executions failed" in output["error"]["Cause"]
    else:
        assert "error" not in output
