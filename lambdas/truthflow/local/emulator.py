"""Embedded AWS for the offline run: moto, plus what moto cannot execute by itself.

moto 5.2 interprets Amazon States Language for real (``execute_state_machine``); this module adds, by patching moto
for the duration of a ``with EmbeddedAws(...)`` block (moto is pinned for that reason):

* Lambda invocations dispatched in-process to our real handlers (``lambdas/<folder>/handler.py``, imported once, also
  when a Distributed Map calls one from several threads); a handler that raises returns Lambda's ``Unhandled``
  function error, so Retry and Catch behave as in AWS;
* Ground Truth behind CreateLabelingJob / DescribeLabelingJob (:class:`GroundTruthEmulator`): our PRE Lambda per
  manifest line, a workforce answering each task, worker responses and consolidation requests written where Ground
  Truth writes them, our ACS Lambda called per batch, the output manifest and the label counters;
* ``.sync`` for SageMaker labeling and training jobs, task errors named as in AWS, Wait states and Retry intervals
  that do not sleep (:mod:`truthflow.local.step_functions`);
* SageMaker training and batch transform jobs (:mod:`truthflow.local.emulated_sagemaker`): image classification is
  trained for real on the training manifests, object detection is a simulated detector with stated skill;
* hosting and job outcomes set by an :class:`EmulatorScenario` (endpoints move through their states as
  :mod:`truthflow.local.hosting` plays them out), and SageMaker calls that fail once when the scenario says so.

What moto does not deliver, the caller does: S3 -> EventBridge -> starter Lambda is replaced by calling the starter
handler with the same event (:meth:`EmbeddedAws.upload_job_event`).
"""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import boto3

from truthflow.aws.s3 import iter_lines, parse_s3_uri, read_json, read_text, s3_uri, write_json, write_text
from truthflow.local.emulated_models import DetectorSkill
from truthflow.local.emulated_sagemaker import SageMakerJobs
from truthflow.local.hosting import HostingEmulator, HostingError, HostingScenario, UpdateOutcome
from truthflow.local.step_functions import moto_compatible_definition, step_functions_patches

REGION = "us-east-1"
ACCOUNT = "123456789012"
LAMBDAS_FOLDER = Path(__file__).resolve().parents[2]
DEFINITION = LAMBDAS_FOLDER.parent / "statemachine" / "pipeline.asl.json"
HANDLERS = {
    "PrepareLabelingFunctionName": "prepare_labeling",
    "ConsolidateJobFunctionName": "reconsolidate",
    "BuildTrainingDataFunctionName": "build_training_data",
    "CheckModelQualityFunctionName": "check_model_quality",
    "RouteMachineLabelsFunctionName": "route_machine_labels",
    "PreLabelingFunctionName": "pre_labeling",
    "AnnotationConsolidationFunctionName": "annotation_consolidation",
    "StartRunFunctionName": "start_run",
}
# Ground Truth hands the ACS Lambda batches of objects; its batch size is not documented, this is ours.
CONSOLIDATION_BATCH_SIZE = 25

Workforce = Callable[[Mapping[str, Any], int], list[tuple[str, dict[str, Any]]]]
"""(manifest line, workers per object) -> [(worker id, answerContent)] for one data object."""


@dataclass(frozen=True)
class EmulatorScenario:
    """How the emulated services end their jobs; the defaults are the happy path. The endpoint fields are those of
    :class:`truthflow.local.hosting.HostingScenario`."""

    labeling_status: str = "Completed"
    training_status: str = "Completed"
    endpoint_status: str = "InService"
    transform_status: str = "Completed"
    # The final metric training jobs report; None: measured (image classification is trained for real) or, for the
    # simulated detector, SIMULATED_DETECTOR_MAP.
    validation_metric: float | None = None
    detector_skill: DetectorSkill = field(default_factory=DetectorSkill)
    # Labeling jobs (by creation order, 1-based) that end with labeling_status; empty = every job.
    labeling_status_jobs: tuple[int, ...] = ()
    failure_reason: str = "emulated failure (EmulatorScenario)"
    endpoint_update: UpdateOutcome = "applied"
    endpoint_polls_before_settled: int = 0
    earlier_endpoint_status: str | None = None
    earlier_endpoint_polls: int = 0
    describe_endpoint_error: str | None = None
    # (SageMaker API action, error code): the action's first call fails with that error, e.g.
    # ("create_model", "ThrottlingException") or ("create_training_job", "ResourceLimitExceeded").
    transient_errors: tuple[tuple[str, str], ...] = ()

    def hosting(self) -> HostingScenario:
        return HostingScenario(
            endpoint_status=self.endpoint_status,
            update_outcome=self.endpoint_update,
            polls_before_settled=self.endpoint_polls_before_settled,
            earlier_endpoint_status=self.earlier_endpoint_status,
            earlier_endpoint_polls=self.earlier_endpoint_polls,
            describe_error=self.describe_endpoint_error,
            failure_reason=self.failure_reason,
        )


@dataclass
class LabelingJobRecord:
    request: dict[str, Any]
    status: str = "InProgress"
    counters: dict[str, int] = field(default_factory=dict)
    failure_reason: str | None = None
    output_manifest_uri: str | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


class GroundTruthEmulator:
    """Runs a labeling job the way Ground Truth does, against our PRE and ACS Lambdas."""

    def __init__(self, workforce: Workforce, scenario: EmulatorScenario) -> None:
        self.workforce = workforce
        self.scenario = scenario
        self.jobs: dict[str, LabelingJobRecord] = {}

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["LabelingJobName"]
        record = LabelingJobRecord(request=request)
        self.jobs[name] = record  # registered first: the ACS Lambda describes the job while it runs
        affected = not self.scenario.labeling_status_jobs or len(self.jobs) in self.scenario.labeling_status_jobs
        if self.scenario.labeling_status != "Completed" and affected:
            record.status, record.failure_reason = self.scenario.labeling_status, self.scenario.failure_reason
        else:
            self._label(name, record)
        return {"LabelingJobArn": _arn("labeling-job", name)}

    def describe(self, name: str) -> dict[str, Any]:
        record = self.jobs.get(name)
        if record is None:
            raise KeyError(name)
        request = record.request
        description: dict[str, Any] = {
            "LabelingJobStatus": record.status,
            "LabelCounters": record.counters,
            "CreationTime": record.created,
            "LastModifiedTime": datetime.now(UTC),
            "JobReferenceCode": f"emulated-{name}",
            "LabelingJobName": name,
            "LabelingJobArn": _arn("labeling-job", name),
            "LabelAttributeName": request["LabelAttributeName"],
            "InputConfig": request["InputConfig"],
            "OutputConfig": request["OutputConfig"],
            "RoleArn": request["RoleArn"],
            "LabelCategoryConfigS3Uri": request.get("LabelCategoryConfigS3Uri"),
            "HumanTaskConfig": request["HumanTaskConfig"],
        }
        if record.failure_reason:
            description["FailureReason"] = record.failure_reason
        if record.output_manifest_uri:
            description["LabelingJobOutput"] = {"OutputDatasetS3Uri": record.output_manifest_uri}
        return description

    def _label(self, name: str, record: LabelingJobRecord) -> None:
        s3 = boto3.client("s3", region_name=REGION)
        lambda_client = boto3.client("lambda", region_name=REGION)
        request = record.request
        task = request["HumanTaskConfig"]
        job_arn = _arn("labeling-job", name)
        output = request["OutputConfig"]["S3OutputPath"].rstrip("/") + f"/{name}"
        lines = [
            json.loads(line)
            for line in iter_lines(s3, request["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"])
            if line.strip()
        ]
        stamp = datetime.now(UTC).strftime("%Y-%m-%d_%H:%M:%S")
        batch: list[dict[str, Any]] = []
        answered: dict[str, dict[str, Any]] = {}
        for index, line in enumerate(lines):
            object_id = str(index)
            pre = _invoke(lambda_client, task["PreHumanTaskLambdaArn"], {
                "version": "2018-10-06", "labelingJobArn": job_arn, "dataObject": line,
            })  # fmt: skip
            if not pre.get("isHumanAnnotationRequired", True):
                continue
            answers = self.workforce(line, int(task["NumberOfHumanWorkersPerDataObject"]))
            if not answers:
                continue
            write_json(s3, f"{output}/annotations/worker-response/iteration-1/{object_id}/{stamp}.json", {
                "answers": [_worker_response(worker, content) for worker, content in answers],
            })  # fmt: skip
            answered[object_id] = line
            batch.append({
                "datasetObjectId": object_id,
                "dataObject": {"s3Uri": line["source-ref"]} if "source-ref" in line else {"content": line["source"]},
                "annotations": [{"workerId": worker, "annotationData": {"content": json.dumps(content)}}
                                for worker, content in answers],
            })  # fmt: skip
        consolidated: dict[str, dict[str, Any]] = {}
        for number, start in enumerate(range(0, len(batch), CONSOLIDATION_BATCH_SIZE)):
            chunk = batch[start : start + CONSOLIDATION_BATCH_SIZE]
            request_uri = (
                f"{output}/annotations/consolidated-annotation/consolidation-request/iteration-1/{stamp}-{number}.json"
            )
            write_json(s3, request_uri, chunk)
            acs_event = {
                "version": "2018-10-06", "labelingJobArn": job_arn, "labelAttributeName": request["LabelAttributeName"],
                "roleArn": request["RoleArn"], "payload": {"s3Uri": request_uri},
                "outputConfig": f"{output}/annotations",
            }  # fmt: skip
            acs = task["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"]
            response = _invoke(lambda_client, acs, acs_event)
            write_json(s3, request_uri.replace("consolidation-request", "consolidation-response"), response)
            for entry in response:
                consolidated[entry["datasetObjectId"]] = entry["consolidatedAnnotation"]["content"]
        manifest_lines = []
        attribute = request["LabelAttributeName"]
        for object_id, line in answered.items():
            content = consolidated.get(object_id)
            if content is not None and content.get(attribute) is not None:
                manifest_lines.append(json.dumps({**line, **content}))
        record.output_manifest_uri = f"{output}/manifests/output/output.manifest"
        write_text(s3, record.output_manifest_uri, "\n".join(manifest_lines) + ("\n" if manifest_lines else ""))
        labeled = len(manifest_lines)
        record.counters = {
            "TotalLabeled": labeled, "HumanLabeled": labeled, "MachineLabeled": 0,
            "FailedNonRetryableError": len(answered) - labeled, "Unlabeled": len(lines) - len(answered),
        }  # fmt: skip
        record.status = "Completed"


def _worker_response(worker: str, content: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "workerId": worker,
        "answerContent": content,
        "acceptanceTime": now,
        "submissionTime": now,
        "timeSpentInSeconds": 12.5,
        "workerMetadata": {"identityData": {"identityProviderType": "Cognito", "issuer": "emulated", "sub": worker}},
    }


def _arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name}"


def _invoke(client: Any, function: str, payload: Any) -> Any:
    response = client.invoke(FunctionName=function, Payload=json.dumps(payload).encode())
    body = json.loads(response["Payload"].read())
    if response.get("FunctionError"):
        raise RuntimeError(f"{function} failed: {body.get('errorType')}: {body.get('errorMessage')}")
    return body


# --- the embedded account -------------------------------------------------------------------------------------------


@dataclass
class Resources:
    data_bucket: str = "truthflow-data"
    artifacts_bucket: str = "truthflow-artifacts"
    worker_stats_table: str = "truthflow-worker-stats"
    topic_arn: str = ""
    state_machine_arn: str = ""
    function_names: dict[str, str] = field(default_factory=dict)


class EmbeddedAws:
    """``with EmbeddedAws(workforce) as aws:`` — an account with the stacks' resources and our handlers wired in."""

    def __init__(
        self,
        workforce: Workforce,
        scenario: EmulatorScenario | None = None,
        *,
        versioned_data_bucket: bool = True,
        gold_boxes: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        seed: int = 0,
    ) -> None:
        self.scenario = scenario or EmulatorScenario()
        self.ground_truth = GroundTruthEmulator(workforce, self.scenario)
        self.sagemaker_jobs = SageMakerJobs(
            validation_metric=self.scenario.validation_metric,
            detector_skill=self.scenario.detector_skill,
            gold_boxes=dict(gold_boxes or {}),
            seed=seed,
        )
        self.hosting = HostingEmulator(self.scenario.hosting(), region=REGION, account=ACCOUNT)
        self.resources = Resources()
        self.versioned_data_bucket = versioned_data_bucket
        self._stack = ExitStack()
        self._handlers: dict[str, Any] = {}
        self._import_lock = threading.Lock()
        self._uploads: dict[tuple[str, str], tuple[str | None, str]] = {}
        self.sagemaker_calls: Counter[str] = Counter()

    def __enter__(self) -> EmbeddedAws:
        from moto import mock_aws

        environment = {
            "AWS_ACCESS_KEY_ID": "emulated", "AWS_SECRET_ACCESS_KEY": "emulated", "AWS_SESSION_TOKEN": "emulated",
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "truthflow", "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_SERVICE_NAME": "truthflow-offline", "POWERTOOLS_METRICS_DISABLED": "true",
            "WORKER_STATS_TABLE": self.resources.worker_stats_table,
            "ARTIFACTS_BUCKET": self.resources.artifacts_bucket, "POLL_SECONDS": "0", "MAX_ENDPOINT_POLLS": "5",
        }  # fmt: skip
        self._stack.enter_context(mock.patch.dict(os.environ, environment))
        if str(LAMBDAS_FOLDER) not in sys.path:
            sys.path.insert(0, str(LAMBDAS_FOLDER))
        self._stack.enter_context(
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
        )
        for patcher in self._patches():
            self._stack.enter_context(patcher)
        self._create_resources()
        return self

    def __exit__(self, *exc: object) -> None:
        for module in [
            name for name in sys.modules if name.endswith(".handler") and name.split(".")[0] in HANDLERS.values()
        ]:
            del sys.modules[module]
        self._stack.close()

    # -- patches ----------------------------------------------------------------------------------------------------
    def _patches(self) -> Iterator[Any]:
        from moto.awslambda_simple.models import LambdaSimpleBackend
        from moto.sagemaker.models import SageMakerModelBackend
        from moto.sagemaker.responses import SageMakerResponse

        emulator = self

        def invoke(
            backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> bytes:
            return emulator._invoke_handler(function_name, body, response_headers)

        def create_labeling_job(response: Any) -> Any:
            from moto.core.responses import ActionResult

            return ActionResult(emulator.ground_truth.create(json.loads(response.body)))

        def describe_labeling_job(response: Any) -> Any:
            from moto.core.responses import ActionResult
            from moto.sagemaker.exceptions import ValidationError

            name = response._get_param("LabelingJobName")
            try:
                return ActionResult(emulator.ground_truth.describe(name))
            except KeyError:
                raise ValidationError(message=f"Could not find labeling job '{_arn('labeling-job', name)}'.") from None

        def hosting_call(method: Callable[..., dict[str, Any]], *names: str) -> Callable[[Any], Any]:
            def respond(response: Any) -> Any:
                from moto.core.responses import ActionResult
                from moto.sagemaker.exceptions import SagemakerClientError

                try:
                    return ActionResult(method(*(response._get_param(name) for name in names)))
                except HostingError as error:
                    raise SagemakerClientError(error.code, error.message) from None

            return respond

        original_describe_training = SageMakerModelBackend.describe_training_job

        original_describe_transform = SageMakerModelBackend.describe_transform_job

        def describe_training_job(backend: Any, name: str) -> dict[str, Any]:
            return emulator._training_outcome(original_describe_training(backend, name))

        def describe_transform_job(backend: Any, transform_job_name: str) -> dict[str, Any]:
            def container(model: str) -> dict[str, Any]:
                return dict(backend.describe_model(model).primary_container)

            return emulator._transform_outcome(original_describe_transform(backend, transform_job_name), container)

        hosting = self.hosting

        yield mock.patch.object(LambdaSimpleBackend, "invoke", invoke)
        yield mock.patch.object(SageMakerResponse, "create_labeling_job", create_labeling_job, create=True)
        yield mock.patch.object(SageMakerResponse, "describe_labeling_job", describe_labeling_job, create=True)
        yield mock.patch.object(
            SageMakerResponse, "create_endpoint", hosting_call(hosting.create, "EndpointName", "EndpointConfigName")
        )
        yield mock.patch.object(
            SageMakerResponse,
            "update_endpoint",
            hosting_call(hosting.update, "EndpointName", "EndpointConfigName"),
            create=True,
        )
        yield mock.patch.object(SageMakerResponse, "describe_endpoint", hosting_call(hosting.describe, "EndpointName"))
        yield mock.patch.object(SageMakerResponse, "list_endpoints", hosting_call(hosting.list))
        yield mock.patch.object(SageMakerModelBackend, "describe_training_job", describe_training_job)
        yield mock.patch.object(SageMakerModelBackend, "describe_transform_job", describe_transform_job)
        yield from step_functions_patches()
        yield from self._transient_error_patches(SageMakerResponse)

    def _transient_error_patches(self, response_class: Any) -> Iterator[Any]:
        """Count SageMaker calls; the scenario's ``transient_errors`` fail an action's first call."""
        from moto.sagemaker.exceptions import SagemakerClientError

        failing = dict(self.scenario.transient_errors)
        for action in sorted(failing):
            current = getattr(response_class, action)

            def flaky(response: Any, _action: str = action, _call: Any = current) -> Any:
                self.sagemaker_calls[_action] += 1
                if self.sagemaker_calls[_action] == 1:
                    raise SagemakerClientError(failing[_action], f"emulated {failing[_action]} (scenario)")
                return _call(response)

            yield mock.patch.object(response_class, action, flaky)

    def _invoke_handler(self, function_name: str, body: Any, response_headers: dict[str, str]) -> bytes:
        name = function_name.split(":function:")[-1].split(":")[0]
        folder = self.resources.function_names.get(name)
        if folder is None:
            raise KeyError(f"no handler registered for Lambda function {function_name!r}")
        with self._import_lock:  # a Distributed Map invokes a handler from several threads at once
            module = self._handlers.get(folder)
            if module is None:
                sys.modules.pop(f"{folder}.handler", None)
                module = self._handlers[folder] = importlib.import_module(f"{folder}.handler")
        event = json.loads(body) if body else {}
        try:
            result = module.lambda_handler(event, _Context(name))
        except Exception as error:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()
        finally:
            # Metrics are disabled here, so Powertools keeps each invocation's values instead of publishing them;
            # across the in-process invocations they would pile up until its 100-value auto-publish prints them.
            metrics = getattr(module, "metrics", None)
            if metrics is not None:
                metrics.clear_metrics()
        return json.dumps(result).encode()

    def _training_outcome(self, description: dict[str, Any]) -> dict[str, Any]:
        description = dict(description)
        missing = _missing_channels(description.get("InputDataConfig") or [])
        if missing:
            description["TrainingJobStatus"] = "Failed"
            description["FailureReason"] = f"input channels not found in S3: {', '.join(missing)}"
            return description
        status = self.scenario.training_status
        description["TrainingJobStatus"] = status
        if status != "Completed":
            description["FailureReason"] = self.scenario.failure_reason
            return description
        outcome = self.sagemaker_jobs.train(description)
        now = datetime.now(UTC)
        description["FinalMetricDataList"] = [
            {"MetricName": name, "Value": value, "Timestamp": now} for name, value in outcome.metrics.items()
        ]
        description["ModelArtifacts"] = {"S3ModelArtifacts": outcome.artifact_uri}
        return description

    def _transform_outcome(
        self, description: dict[str, Any], describe_model: Callable[[str], Mapping[str, Any]]
    ) -> dict[str, Any]:
        description = dict(description)
        if self.scenario.transform_status != "Completed":
            description["TransformJobStatus"] = self.scenario.transform_status
            description["FailureReason"] = self.scenario.failure_reason
            return description
        self.sagemaker_jobs.transform(description, describe_model)
        failure = self.sagemaker_jobs.transformed.get(str(description["TransformJobName"]))
        description["TransformJobStatus"] = "Failed" if failure else "Completed"
        if failure:
            description["FailureReason"] = failure
        return description

    # -- resources ----------------------------------------------------------------------------------------------------
    def _create_resources(self) -> None:
        r = self.resources
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (r.data_bucket, r.artifacts_bucket):
            s3.create_bucket(Bucket=bucket)
        if self.versioned_data_bucket:
            s3.put_bucket_versioning(Bucket=r.data_bucket, VersioningConfiguration={"Status": "Enabled"})
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=r.worker_stats_table,
            KeySchema=[{"AttributeName": "job", "KeyType": "HASH"}, {"AttributeName": "worker", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "job", "AttributeType": "S"},
                {"AttributeName": "worker", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        r.topic_arn = boto3.client("sns", region_name=REGION).create_topic(Name="truthflow-runs")["TopicArn"]
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="truthflow-emulated", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lambda_client = boto3.client("lambda", region_name=REGION)
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("handler.py", "# the embedded AWS runs lambdas/<folder>/handler.py in-process\n")
        substitutions = {"Partition": "aws", "Region": REGION, "Account": ACCOUNT}
        for key, folder in HANDLERS.items():
            name = f"truthflow-{folder.replace('_', '-')}"
            lambda_client.create_function(
                FunctionName=name, Runtime="python3.12", Role=role, Handler=f"{folder}.handler.lambda_handler",
                Code={"ZipFile": archive.getvalue()},
            )  # fmt: skip
            r.function_names[name] = folder
            substitutions[key] = name
        substitutions.update({
            "GroundTruthRoleArn": role, "SageMakerRoleArn": role, "NotificationTopicArn": r.topic_arn,
            "WorkteamArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:workteam/private-crowd/emulated-workforce",
        })  # fmt: skip
        definition = DEFINITION.read_text()
        for key, value in substitutions.items():
            definition = definition.replace("${" + key + "}", value)
        definition = moto_compatible_definition(definition)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        r.state_machine_arn = sfn.create_state_machine(name="truthflow-pipeline", definition=definition, roleArn=role)[
            "stateMachineArn"
        ]
        os.environ["STATE_MACHINE_ARN"] = r.state_machine_arn

    # -- running ------------------------------------------------------------------------------------------------------
    def upload_job(
        self,
        job_id: str,
        job_file: Mapping[str, Any] | str,
        images: Sequence[tuple[str, bytes]],
        files: Sequence[tuple[str, bytes]] = (),
    ) -> str:
        """Put images, other ``files`` (paths relative to the job folder, e.g. a gold file) and, last, job.json
        under ``jobs/<id>/``; returns the job file's version id."""
        s3 = boto3.client("s3", region_name=REGION)
        for file_name, data in images:
            s3.put_object(Bucket=self.resources.data_bucket, Key=f"jobs/{job_id}/images/{file_name}", Body=data)
        for path, data in files:
            s3.put_object(Bucket=self.resources.data_bucket, Key=f"jobs/{job_id}/{path}", Body=data)
        body = job_file if isinstance(job_file, str) else json.dumps(job_file, indent=2)
        return self.put_job_file(job_id, body)

    def put_job_file(self, job_id: str, body: str) -> str:
        """Upload (or replace) ``jobs/<id>/job.json``; returns the version id (the ETag in an unversioned bucket)."""
        s3 = boto3.client("s3", region_name=REGION)
        put = s3.put_object(Bucket=self.resources.data_bucket, Key=f"jobs/{job_id}/job.json", Body=body.encode())
        version_id, etag = put.get("VersionId"), put["ETag"].strip('"')
        token = str(version_id or etag)
        self._uploads[(job_id, token)] = (version_id, etag)
        return token

    def upload_job_event(self, job_id: str, version: str) -> dict[str, Any]:
        """The EventBridge event S3 sends for the job file upload (what the stack's rule delivers to the starter):
        ``version-id`` only in a versioned bucket, ``etag`` always."""
        version_id, etag = self._uploads.get((job_id, version), (version, version))
        s3_object: dict[str, Any] = {"key": f"jobs/{job_id}/job.json", "etag": etag, "sequencer": "0A1B2C3D4E5F"}
        if version_id is not None:
            s3_object["version-id"] = version_id
        return {
            "version": "0", "id": f"emulated-{version}", "detail-type": "Object Created", "source": "aws.s3",
            "account": ACCOUNT, "time": datetime.now(UTC).isoformat(timespec="seconds"), "region": REGION,
            "resources": [f"arn:aws:s3:::{self.resources.data_bucket}"],
            "detail": {"version": "0", "bucket": {"name": self.resources.data_bucket},
                       "object": s3_object,
                       "reason": "PutObject"},
        }  # fmt: skip

    def start_run(self, job_id: str, version: str) -> dict[str, Any]:
        """Deliver the upload event to the starter Lambda, as EventBridge would."""
        event = json.dumps(self.upload_job_event(job_id, version))
        result: dict[str, Any] = json.loads(self._invoke_handler("truthflow-start-run", event, {}))
        return result

    def wait(
        self, execution_arn: str, *, timeout: float = 300.0, on_event: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        """Poll until the execution ends; ``on_event`` sees each history event once, in order."""
        sfn = boto3.client("stepfunctions", region_name=REGION)
        seen = 0
        deadline = time.monotonic() + timeout
        while True:
            description = sfn.describe_execution(executionArn=execution_arn)
            events = self.history(execution_arn)
            if on_event is not None:
                for event in events[seen:]:
                    on_event(event)
            seen = len(events)
            if description["status"] != "RUNNING":
                return dict(description)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout:.0f} s")
            time.sleep(0.05)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = boto3.client("stepfunctions", region_name=REGION)
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def read_text(self, key: str) -> str:
        return read_text(boto3.client("s3", region_name=REGION), s3_uri(self.resources.data_bucket, key))

    def read_json(self, key: str) -> Any:
        return read_json(boto3.client("s3", region_name=REGION), s3_uri(self.resources.data_bucket, key))

    def keys(self, prefix: str) -> list[str]:
        s3 = boto3.client("s3", region_name=REGION)
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=self.resources.data_bucket, Prefix=prefix)
        return [entry["Key"] for page in pages for entry in page.get("Contents", [])]


class _Context:
    def __init__(self, name: str) -> None:
        self.function_name = name
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        self.aws_request_id = "emulated-request"


def _missing_channels(channels: Sequence[Mapping[str, Any]]) -> list[str]:
    s3 = boto3.client("s3", region_name=REGION)
    missing = []
    for channel in channels:
        uri = channel.get("DataSource", {}).get("S3DataSource", {}).get("S3Uri", "")
        try:
            bucket, key = parse_s3_uri(uri)
            s3.head_object(Bucket=bucket, Key=key)
        except Exception:
            missing.append(f"{channel.get('ChannelName')}={uri}")
    return missing


@contextmanager
def quiet_moto_logs() -> Iterator[None]:
    """moto warns on every forwarded SageMaker call; the demo's own progress is the output that matters."""
    import logging

    logger = logging.getLogger("moto")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
