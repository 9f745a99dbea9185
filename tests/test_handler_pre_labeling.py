"""The PRE Lambda through ``lambda_handler``: recorded Ground Truth requests, settings from the manifest line or the
environment, and data objects it must keep from workers instead of raising."""

from __future__ import annotations

import json
from typing import Any

import pytest
from emulated_aws import DATA_BUCKET, load_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from truthflow.labeling_input import LabelingTask, labeling_task_from_environment, pre_annotation

ENV_LABELS = ["cat", "dog"]
ENV_HEADER = "Is this a cat or a dog?"


@pytest.fixture
def env_task(monkeypatch):
    """The stack's fallback settings, as environment variables."""
    monkeypatch.setenv("TASK_TYPE", "image-classification")
    monkeypatch.setenv("LABELS", json.dumps(ENV_LABELS))
    monkeypatch.setenv("HEADER", ENV_HEADER)


@pytest.fixture
def no_env_task(monkeypatch):
    for name in ("TASK_TYPE", "LABELS", "HEADER"):
        monkeypatch.delenv(name, raising=False)


def assert_contract(response: dict[str, Any]) -> None:
    assert set(response) == {"taskInput", "isHumanAnnotationRequired"}
    assert isinstance(response["taskInput"], dict)
    assert type(response["isHumanAnnotationRequired"]) is bool
    assert json.loads(json.dumps(response)) == response


def test_console_test_event_uses_the_environment_settings(env_task, load_handler, lambda_context):
    handler = load_handler("pre_labeling")
    response = handler.lambda_handler(load_event("pre_annotation_request_console_test.json"), lambda_context)
    assert response == {
        "taskInput": {
            "taskObject": "s3://sagemakerexample/object_to_annotate.jpg",
            "labels": ENV_LABELS,
            "header": ENV_HEADER,
        },
        "isHumanAnnotationRequired": True,
    }


def test_truthflow_task_attribute_wins_over_the_environment(env_task, load_handler, lambda_context):
    handler = load_handler("pre_labeling")
    response = handler.lambda_handler(load_event("pre_annotation_request_truthflow_task.json"), lambda_context)
    assert response == {
        "taskInput": {
            "taskObject": "s3://truthflow-data/jobs/pens-v1/images/desk 01.jpg",
            "labels": ["pen", "pencil", "marker"],
            "header": "Draw a box around each pen, pencil and marker.",
        },
        "isHumanAnnotationRequired": True,
    }


def test_truthflow_task_attribute_works_without_environment(no_env_task, load_handler, lambda_context):
    handler = load_handler("pre_labeling")
    assert handler.DEFAULT_TASK is None
    response = handler.lambda_handler(load_event("pre_annotation_request_truthflow_task.json"), lambda_context)
    assert response["isHumanAnnotationRequired"] is True
    assert response["taskInput"]["labels"] == ["pen", "pencil", "marker"]


def test_truthflow_task_without_header_gets_the_task_type_default(no_env_task, load_handler, lambda_context):
    request = load_event("pre_annotation_request_truthflow_task.json")
    del request["dataObject"]["truthflow-task"]["header"]
    response = load_handler("pre_labeling").lambda_handler(request, lambda_context)
    assert response["taskInput"]["header"] == "Draw a box around each object and choose its label."


def test_text_source_is_passed_through_as_task_object(env_task, load_handler, lambda_context):
    response = load_handler("pre_labeling").lambda_handler(
        load_event("pre_annotation_request_text_source.json"), lambda_context
    )
    assert response["isHumanAnnotationRequired"] is True
    assert response["taskInput"]["taskObject"] == "Sue purchased 10 shares of the stock on April 10th, 2020"


def test_line_written_by_the_prepare_step_reaches_workers_unchanged(s3, load_handler, lambda_context, no_env_task):
    put = s3.put_object(
        Bucket=DATA_BUCKET, Key="jobs/fruit-v1/job.json", Body=json.dumps(load_event("job_image_classification.json"))
    )
    s3.put_object(Bucket=DATA_BUCKET, Key="jobs/fruit-v1/images/apple 1.jpg", Body=b"\xff\xd8")
    job_file = {"key": "jobs/fruit-v1/job.json", "etag": put["ETag"].strip('"')}
    prepared = load_handler("prepare_labeling").lambda_handler(
        {"bucket": DATA_BUCKET, "job_id": "fruit-v1", "run_id": "run-1", "job_file": job_file}, lambda_context
    )
    manifest = s3.get_object(Bucket=DATA_BUCKET, Key="jobs/fruit-v1/manifests/input.manifest")["Body"].read()
    [line] = manifest.decode().splitlines()
    request = {
        "version": "2018-10-06",
        "labelingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:labeling-job/{prepared['labeling_job_name']}",
        "dataObject": json.loads(line),
    }
    response = load_handler("pre_labeling").lambda_handler(request, lambda_context)
    assert response == {
        "taskInput": {
            "taskObject": f"s3://{DATA_BUCKET}/jobs/fruit-v1/images/apple 1.jpg",
            "labels": ["apple", "banana", "orange"],
            "header": "Which fruit does this photo show?",
        },
        "isHumanAnnotationRequired": True,
    }


# --- objects kept from workers ----------------------------------------------------------------------------------------


def request_with(data_object: Any) -> dict[str, Any]:
    return {
        "version": "2018-10-16",
        "labelingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/tf-pens-v1-1a2b3c4d",
        "dataObject": data_object,
    }


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (request_with({"id": "7"}), "needs a 'source-ref' (S3 URI) or a 'source'"),
        (request_with({"source-ref": 42}), "dataObject is unusable"),
        (request_with({"source-ref": "https://b.s3.amazonaws.com/x.jpg"}), "is not an s3:// URI"),
        (request_with({"source-ref": "s3://bucket-only"}), "needs a bucket and an object key"),
        (request_with("s3://b/x.jpg"), "has no dataObject object"),
        ({"version": "2018-10-16"}, "has no dataObject object"),
        (
            request_with(
                {"source-ref": "s3://b/x.jpg", "truthflow-task": {"task_type": "image-classification", "labels": ["a"]}}
            ),
            "the truthflow-task attribute is invalid: labels: a image-classification job needs at least 2",
        ),
        (
            request_with({"source-ref": "s3://b/x.jpg", "truthflow-task": {"task_type": "polygon", "labels": ["a"]}}),
            "the truthflow-task attribute is invalid: task_type",
        ),
        (request_with({"source-ref": "s3://b/x.jpg", "truthflow-task": "pens"}), "truthflow-task attribute is invalid"),
    ],
)
def test_unusable_data_objects_are_kept_from_workers_with_the_reason(
    env_task, load_handler, lambda_context, event, reason
):
    response = load_handler("pre_labeling").lambda_handler(event, lambda_context)
    assert_contract(response)
    assert response["isHumanAnnotationRequired"] is False
    assert response["taskInput"]["excluded"] is True
    assert reason in response["taskInput"]["reason"]


def test_without_attribute_or_environment_the_object_is_kept_from_workers(no_env_task, load_handler, lambda_context):
    response = load_handler("pre_labeling").lambda_handler(
        load_event("pre_annotation_request_console_test.json"), lambda_context
    )
    assert response["isHumanAnnotationRequired"] is False
    assert response["taskInput"]["reason"].startswith("no task settings")


def test_invalid_truthflow_task_does_not_fall_back_to_the_environment(env_task):
    # The attribute is the job's own setting: a broken one must not silently become the stack's default labels.
    result = pre_annotation(
        request_with({"source-ref": "s3://b/x.jpg", "truthflow-task": {"labels": ["cat", "dog"]}}),
        default_task=LabelingTask(task_type="image-classification", labels=ENV_LABELS, header=ENV_HEADER),
    )
    assert result.response["isHumanAnnotationRequired"] is False
    assert result.excluded_because is not None and "task_type" in result.excluded_because


def test_an_unexpected_error_is_caught_by_the_handler(env_task, load_handler, lambda_context, monkeypatch):
    handler = load_handler("pre_labeling")

    def broken(event, *, default_task):
        raise RuntimeError("boom")

    monkeypatch.setattr(handler, "pre_annotation", broken)
    response = handler.lambda_handler(load_event("pre_annotation_request_console_test.json"), lambda_context)
    assert response == {
        "taskInput": {"excluded": True, "reason": "internal error: boom"},
        "isHumanAnnotationRequired": False,
    }


# --- environment settings ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TASK_TYPE": "bounding-box"}, "set TASK_TYPE and LABELS together"),
        ({"LABELS": '["pen"]'}, "set TASK_TYPE and LABELS together"),
        ({"TASK_TYPE": "bounding-box", "LABELS": "pen,pencil"}, "LABELS must be a JSON list of strings"),
        ({"TASK_TYPE": "bounding-box", "LABELS": '"pen"'}, "TASK_TYPE/LABELS/HEADER: labels"),
        ({"TASK_TYPE": "image-classification", "LABELS": '["pen"]'}, "at least 2"),
        ({"TASK_TYPE": "boxes", "LABELS": '["pen"]'}, "TASK_TYPE/LABELS/HEADER: task_type"),
    ],
)
def test_bad_environment_settings_are_clear_errors(environ, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        labeling_task_from_environment(environ)


def test_bad_environment_fails_the_cold_start(aws, monkeypatch, load_handler):
    monkeypatch.setenv("TASK_TYPE", "bounding-box")
    monkeypatch.setenv("LABELS", "pen, pencil")
    with pytest.raises(ValueError, match="LABELS must be a JSON list"):
        load_handler("pre_labeling")


def test_environment_settings_default_the_header():
    task = labeling_task_from_environment({"TASK_TYPE": "bounding-box", "LABELS": '["pen"]'})
    assert task == LabelingTask(
        task_type="bounding-box", labels=["pen"], header="Draw a box around each object and choose its label."
    )
    assert labeling_task_from_environment({}) is None


# --- never raises -----------------------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
KEYS = st.sampled_from(["source-ref", "source", "truthflow-task", "id", "$x", ""]) | st.text(max_size=10)
TASKS = st.fixed_dictionaries(
    {"task_type": st.sampled_from(["bounding-box", "image-classification", "x"]) | JSON_VALUES},
    optional={"labels": st.lists(st.text(max_size=5), max_size=4) | JSON_VALUES, "header": JSON_VALUES},
)
DATA_OBJECTS = st.dictionaries(KEYS, JSON_VALUES | TASKS | st.just("s3://b/k.jpg"), max_size=5)
EVENTS = (
    st.fixed_dictionaries({"version": st.text(max_size=12), "labelingJobArn": JSON_VALUES, "dataObject": DATA_OBJECTS})
    | st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=4)
    | st.fixed_dictionaries({"dataObject": JSON_VALUES})
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=EVENTS)
def test_any_event_gets_the_two_documented_keys_and_never_raises(env_task, load_handler, lambda_context, event):
    handler = load_handler("pre_labeling")
    response = handler.lambda_handler(event, lambda_context)
    assert_contract(response)
    if response["isHumanAnnotationRequired"]:
        assert set(response["taskInput"]) == {"taskObject", "labels", "header"}
    else:
        assert response["taskInput"]["excluded"] is True and response["taskInput"]["reason"]
