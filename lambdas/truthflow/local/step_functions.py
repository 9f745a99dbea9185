"""What moto's Step Functions interpreter lacks to run our definition as AWS runs it, patched in by the embedded AWS.

* ``.sync`` for SageMaker labeling and training jobs: Describe* is polled until the job ends, a Failed or Stopped job
  fails the task with ``States.TaskFailed`` and the description as its cause (moto forwards SageMaker calls as plain
  requests and refuses ``.sync``);
* task errors named as Step Functions names them: ``SageMaker.ResourceLimitExceededException`` or
  ``SageMaker.AmazonSageMakerException`` (throttling included) for the optimized integrations, and
  ``SageMaker.<error code>`` with an ``Exception`` suffix for the AWS SDK integration (moto reports the uncatchable
  ``States.Runtime`` for the former and ``SageMaker.SageMakerException`` for every error of the latter);
* AWS SDK results handed to the state as JSON (timestamps as text);
* Wait states and Retry intervals that do not sleep (the offline run is about what happens, not when);
* a Distributed Map's tolerated failures: moto counts failed child executions but lets the Map succeed whatever
  their number; Step Functions fails the Map with ``States.ExceedToleratedFailureThreshold`` once failures exceed
  ``ToleratedFailureCount`` / ``ToleratedFailurePercentage`` (both 0 when not set: any failure). moto's parser also
  refuses a whole-number ``ToleratedFailurePercentage`` (``100``), which Step Functions accepts:
  :func:`moto_compatible_definition` writes it as ``100.0``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any
from unittest import mock


def step_functions_patches() -> Iterator[Any]:
    """The patchers, to be entered for as long as the embedded AWS runs."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_unsupported as unsupported,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
        StateTaskServiceAwsSdk,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    yield mock.patch.object(unsupported.StateTaskServiceUnsupported, "_build_sync_resolver", _sagemaker_sync_resolver)
    yield mock.patch.object(
        unsupported, "_SUPPORTED_INTEGRATION_PATTERNS", {ResourceCondition.WaitForTaskToken, ResourceCondition.Sync}
    )
    yield mock.patch.object(WaitFunction, "_wait_interval", lambda self, env, wait_seconds: None)
    yield mock.patch.object(retrier_decl, "time", SimpleNamespace(sleep=lambda seconds: None))
    yield mock.patch.object(unsupported.StateTaskServiceUnsupported, "_from_error", _sagemaker_task_error)
    yield mock.patch.object(iteration_worker, "CustomErrorName", _iteration_error_name)
    yield mock.patch.object(StateTaskServiceAwsSdk, "_normalise_exception_name", staticmethod(_aws_sdk_error_name))
    original_eval = StateTaskServiceAwsSdk._eval_service_task

    def eval_aws_sdk_task(service: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        original_eval(service, env, *args, **kwargs)
        env.stack.append(json.loads(json.dumps(env.stack.pop(), default=lambda value: value.isoformat())))

    yield mock.patch.object(StateTaskServiceAwsSdk, "_eval_service_task", eval_aws_sdk_task)
    original_map_run = DistributedIterationComponent._map_run

    def map_run(component: Any, env: Any, eval_input: Any) -> None:
        original_map_run(component, env, eval_input)
        _fail_above_tolerated_failures(env, eval_input)

    yield mock.patch.object(DistributedIterationComponent, "_map_run", map_run)


def moto_compatible_definition(definition: str) -> str:
    """The definition with every whole-number ``ToleratedFailurePercentage`` written as a decimal (the same value),
    which moto's parser requires."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: float(item) if key == "ToleratedFailurePercentage" and type(item) is int else convert(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [convert(item) for item in value]
        return value

    return json.dumps(convert(json.loads(definition)))


def _fail_above_tolerated_failures(env: Any, eval_input: Any) -> None:
    """Fail the Map as Step Functions does when more child executions failed (or timed out) than it tolerates: the
    larger of ``ToleratedFailureCount`` and ``ToleratedFailurePercentage`` of the items (0 when neither is set)."""
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    counter = eval_input.map_run_record.item_counter
    failed = counter.failed.get() + counter.timed_out.get()
    total = counter.total.get()
    tolerated = max(
        int(eval_input.tolerated_failure_count or 0),
        math.floor(float(eval_input.tolerated_failure_percentage or 0.0) * total / 100),
    )
    if failed <= tolerated:
        return
    error = StatesErrorNameType.StatesExceedToleratedFailureThreshold
    cause = f"{failed} of {total} child executions failed; the Map tolerates {tolerated} (emulated)"
    raise FailureEventException(
        FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=error),
            event_type=HistoryEventType.MapRunFailed,
            event_details=EventDetails(  # type: ignore[typeddict-item]
                mapRunFailedEventDetails=MapRunFailedEventDetails(error=error.to_name(), cause=cause)
            ),
        )
    )


def _sagemaker_sync_resolver(
    self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
) -> Callable[[], Any]:
    """``.sync`` for SageMaker labeling, training and transform jobs: describe until terminal, as Step Functions
    does."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    action = self._get_boto_service_action()
    kinds = {
        "create_labeling_job": ("LabelingJob", "LabelingJobName"),
        "create_training_job": ("TrainingJob", "TrainingJobName"),
        "create_transform_job": ("TransformJob", "TransformJobName"),
    }
    if action not in kinds:
        raise RuntimeError(f"Unsupported .sync callback procedure in resource {self.resource.resource_arn}")
    kind, name_key = kinds[action]
    env.stack.pop()
    client = boto_client_for(
        service="sagemaker", region=resource_runtime_part.region, state_credentials=state_credentials
    )
    describe = getattr(client, f"describe_{action.removeprefix('create_')}")

    def resolve() -> Any:
        description = describe(**{name_key: normalised_parameters[name_key]})
        description.pop("ResponseMetadata", None)
        # The state's output is JSON: timestamps become text, as boto's datetimes cannot be serialised.
        description = json.loads(json.dumps(description, default=lambda value: value.isoformat()))
        status = description[f"{kind}Status"]
        if status in ("Completed",):
            return description
        if status not in ("Failed", "Stopped"):
            return None
        raise FailureEventException(
            FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                event_type=HistoryEventType.TaskFailed,
                # moto's EventDetails TypedDict marks every kind of event as required; one is given, as moto does.
                event_details=EventDetails(  # type: ignore[typeddict-item]
                    taskFailedEventDetails=TaskFailedEventDetails(
                        resource=self._get_sfn_resource(),
                        resourceType=self._get_sfn_resource_type(),
                        error=StatesErrorNameType.StatesTaskFailed.to_name(),
                        cause=to_json_str(description),
                    )
                ),
            )
        )

    return resolve


def _sagemaker_task_error(self: Any, env: Any, ex: Exception) -> Any:
    """A SageMaker API error fails the task as ``SageMaker.AmazonSageMakerException`` (catchable), as in AWS; moto
    would otherwise report the uncatchable ``States.Runtime``."""
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    if not isinstance(ex, ClientError):
        return StateTaskService._from_error(self, env, ex)
    code = ex.response["Error"]["Code"]
    # Optimized SageMaker tasks name a resource limit as such and every other service error (throttling included)
    # SageMaker.AmazonSageMakerException.
    error = (
        "SageMaker.ResourceLimitExceededException"
        if code == "ResourceLimitExceeded"
        else ("SageMaker.AmazonSageMakerException")
    )
    cause = f"{ex.response['Error']['Message']} (Service: SageMaker, Error Code: {code})"
    return FailureEvent(
        env=env,
        error_name=CustomErrorName(error_name=error),
        event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(  # type: ignore[typeddict-item]
            taskFailedEventDetails=TaskFailedEventDetails(
                error=error, cause=cause, resource=self._get_sfn_resource(), resourceType=self._get_sfn_resource_type()
            )
        ),
    )


def _aws_sdk_error_name(service: str, ex: Exception) -> str:
    """The Error of a failed AWS SDK task as Step Functions names it: ``<Service>.<error code>``, with an
    ``Exception`` suffix added when the code lacks one (``SageMaker.ValidationException``). moto would name every
    error ``SageMaker.SageMakerException``."""
    from botocore.exceptions import ClientError

    code = ex.response.get("Error", {}).get("Code", "") if isinstance(ex, ClientError) else ""
    service = {"sagemaker": "SageMaker"}.get(service.lower(), service)
    name = f"{service}.{code or service}"
    return name if name.endswith("Exception") else name + "Exception"


def _iteration_error_name(error_name: str) -> Any:
    """A failed Map iteration fails the Map state with the iteration's error. moto 5.2 wraps every such name as a
    custom error and refuses the ``States.`` ones (``States.TaskFailed`` of a failed ``.sync`` job), losing the
    cause; Step Functions passes them on as they are."""
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName

    if error_name.startswith("States."):
        return StatesErrorName.from_name(error_name)
    return CustomErrorName(error_name=error_name)
