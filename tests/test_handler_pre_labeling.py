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


def test_without_attribute_job_settings_or_environment_the_object_still_goes_to_workers(
    no_env_task, load_handler, lambda_context
):
    # The console test event's job does not exist here: its settings cannot be read. The worker template still has
    # the labels it was rendered with, so the image is labeled rather than dropped.
    response = load_handler("pre_labeling").lambda_handler(
        load_event("pre_annotation_request_console_test.json"), lambda_context
    )
    assert response == {
        "taskInput": {"taskObject": "s3://sagemakerexample/object_to_annotate.jpg"},
        "isHumanAnnotationRequired": True,
    }


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

    def broken(event, **settings):
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
        assert "taskObject" in response["taskInput"]
        assert set(response["taskInput"]) <= {"taskObject", "labels", "header"}
    else:
        assert response["taskInput"]["excluded"] is True and response["taskInput"]["reason"]


# --- plain manifest lines: the job's own label-category file ------------------------------------------------------

JOB_ARN = "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/console-made-job"
LABEL_CONFIG_KEY = "jobs/fruit-v1/labeling/console-made-job/annotation-tool/data.json"


def plain_request(image: str) -> dict[str, Any]:
    return {"version": "2018-10-06", "labelingJobArn": JOB_ARN, "dataObject": {"source-ref": image}}


def describe_response(label_config_uri: str, title: str) -> dict[str, Any]:
    from test_handler_annotation_consolidation import _describe_labeling_job

    description = _describe_labeling_job(label_config_uri)
    description["HumanTaskConfig"]["TaskTitle"] = title
    return description


def test_a_plain_line_takes_the_jobs_labels_and_title_read_once_per_container(
    s3, load_handler, lambda_context, env_task
):
    from botocore.stub import Stubber

    config = {"document-version": "2021-05-13", "labels": [{"label": "apple"}, {"label": "banana"}]}
    s3.put_object(Bucket=DATA_BUCKET, Key=LABEL_CONFIG_KEY, Body=json.dumps(config))
    handler = load_handler("pre_labeling")
    with Stubber(handler.client("sagemaker")) as stub:
        stub.add_response(
            "describe_labeling_job",
            describe_response(f"s3://{DATA_BUCKET}/{LABEL_CONFIG_KEY}", "Which fruit is this?"),
            {"LabelingJobName": "console-made-job"},
        )
        responses = [
            handler.lambda_handler(plain_request(f"s3://{DATA_BUCKET}/jobs/fruit-v1/images/{n}.jpg"), lambda_context)
            for n in range(3)
        ]
        stub.assert_no_pending_responses()  # one DescribeLabelingJob for three objects
    for number, response in enumerate(responses):
        assert response == {
            "taskInput": {
                "taskObject": f"s3://{DATA_BUCKET}/jobs/fruit-v1/images/{number}.jpg",
                "labels": ["apple", "banana"],  # the job's, not the environment's cat/dog
                "header": "Which fruit is this?",
            },
            "isHumanAnnotationRequired": True,
        }


def test_a_failed_lookup_falls_back_to_the_environment_and_is_not_repeated_for_every_object(
    s3, load_handler, lambda_context, env_task, capsys
):
    from botocore.stub import Stubber

    handler = load_handler("pre_labeling")
    with Stubber(handler.client("sagemaker")) as stub:
        stub.add_client_error("describe_labeling_job", service_error_code="AccessDeniedException", http_status_code=400)
        first = handler.lambda_handler(plain_request("s3://b/1.jpg"), lambda_context)
        second = handler.lambda_handler(plain_request("s3://b/2.jpg"), lambda_context)
        stub.assert_no_pending_responses()
    for response, image in ((first, "s3://b/1.jpg"), (second, "s3://b/2.jpg")):
        assert response["isHumanAnnotationRequired"] is True
        assert response["taskInput"] == {"taskObject": image, "labels": ENV_LABELS, "header": ENV_HEADER}


def test_the_emulated_ground_truth_labels_every_plain_line_of_a_console_made_job(tmp_path):
    """Ground Truth (emulated) calls our PRE Lambda with lines that carry only source-ref; every image reaches the
    workforce and is consolidated with the labels of the job's label-category file."""
    import boto3

    from truthflow.local.emulator import REGION, EmbeddedAws, quiet_moto_logs

    seen: list[str] = []

    def workforce(line: dict[str, Any], n_workers: int) -> list[tuple[str, dict[str, Any]]]:
        seen.append(line["source-ref"])
        return [(f"w{n}", {"crowd-image-classifier": {"label": "banana"}}) for n in range(n_workers)]

    with quiet_moto_logs(), EmbeddedAws(workforce) as aws:
        s3 = boto3.client("s3", region_name=REGION)
        bucket = aws.resources.data_bucket
        images = [f"s3://{bucket}/jobs/fruit-v1/images/{n}.jpg" for n in range(4)]
        manifest = "".join(json.dumps({"source-ref": image}) + "\n" for image in images)
        s3.put_object(Bucket=bucket, Key="jobs/fruit-v1/manifests/plain.manifest", Body=manifest.encode())
        config = {"document-version": "2018-11-28", "labels": [{"label": "apple"}, {"label": "banana"}]}
        s3.put_object(Bucket=bucket, Key="jobs/fruit-v1/manifests/labels.json", Body=json.dumps(config).encode())
        functions = {folder: name for name, folder in aws.resources.function_names.items()}
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sagemaker.create_labeling_job(
            LabelingJobName="console-made-job",
            LabelAttributeName="fruit",
            InputConfig={
                "DataSource": {
                    "S3DataSource": {"ManifestS3Uri": f"s3://{bucket}/jobs/fruit-v1/manifests/plain.manifest"}
                }
            },
            OutputConfig={"S3OutputPath": f"s3://{bucket}/jobs/fruit-v1/labeling/"},
            RoleArn="arn:aws:iam::123456789012:role/truthflow-emulated",
            LabelCategoryConfigS3Uri=f"s3://{bucket}/jobs/fruit-v1/manifests/labels.json",
            HumanTaskConfig={
                "WorkteamArn": "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/team",
                "UiConfig": {"UiTemplateS3Uri": f"s3://{bucket}/jobs/fruit-v1/manifests/template.html"},
                "PreHumanTaskLambdaArn": functions["pre_labeling"],
                "TaskTitle": "Which fruit?",
                "TaskDescription": "Choose the fruit",
                "NumberOfHumanWorkersPerDataObject": 2,
                "TaskTimeLimitInSeconds": 300,
                "AnnotationConsolidationConfig": {
                    "AnnotationConsolidationLambdaArn": functions["annotation_consolidation"]
                },
            },
        )
        described = sagemaker.describe_labeling_job(LabelingJobName="console-made-job")
        output = s3.get_object(Bucket=bucket, Key=described["LabelingJobOutput"]["OutputDatasetS3Uri"].split("/", 3)[3])
        lines = [json.loads(line) for line in output["Body"].read().decode().splitlines()]
    assert seen == images
    assert described["LabelCounters"]["TotalLabeled"] == 4
    assert [line["fruit-metadata"]["class-name"] for line in lines] == ["banana"] * 4
    assert [line["fruit"] for line in lines] == [1] * 4
