"""Deploying the endpoint, through the real definition on the embedded AWS: create vs update decided from
DescribeEndpoint, an earlier run's deployment waited for, rollbacks and failures named with SageMaker's reason, and
transient SageMaker errors retried."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from test_end_to_end import JOB_ID, box_workforce, failure, job_file, run

from truthflow.local.emulator import REGION, EmbeddedAws, EmulatorScenario, quiet_moto_logs

ENDPOINT = f"truthflow-{JOB_ID}"
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def embedded():
    def start(**scenario: Any) -> EmbeddedAws:
        return EmbeddedAws(box_workforce, EmulatorScenario(**scenario))

    with quiet_moto_logs():
        yield start


def endpoint() -> dict[str, Any]:
    return dict(boto3.client("sagemaker", region_name=REGION).describe_endpoint(EndpointName=ENDPOINT))


def training_job_name(result: dict[str, Any]) -> str:
    name = result["arn"].rsplit(":", 1)[-1]
    jobs = boto3.client("sagemaker", region_name=REGION).list_training_jobs()["TrainingJobSummaries"]
    [job] = [job for job in jobs if job["TrainingJobName"].startswith(f"tf-{JOB_ID}-")]
    assert name.startswith(JOB_ID)
    return str(job["TrainingJobName"])


def test_a_first_deployment_creates_the_endpoint_and_waits_while_it_is_creating(embedded):
    with embedded(endpoint_polls_before_settled=2) as aws:
        result = run(aws, job_file())
        assert result["description"]["status"] == "SUCCEEDED"
        entered = result["entered"]
        assert [state for state in entered if state in ("Find endpoint", "Endpoint missing?", "Create endpoint")] == [
            "Find endpoint",
            "Endpoint missing?",
            "Create endpoint",
        ]
        assert "Update endpoint" not in entered
        assert entered.count("Count endpoint wait") == 2
        assert endpoint()["EndpointConfigName"] == training_job_name(result)


def test_an_existing_endpoint_is_updated_to_the_new_config(embedded):
    with embedded(earlier_endpoint_status="InService") as aws:
        result = run(aws, job_file())
        assert result["description"]["status"] == "SUCCEEDED"
        assert "Update endpoint" in result["entered"] and "Create endpoint" not in result["entered"]
        assert endpoint()["EndpointConfigName"] == training_job_name(result)


def test_an_earlier_deployment_still_updating_is_waited_for_not_clobbered(embedded):
    with embedded(earlier_endpoint_status="Updating", earlier_endpoint_polls=2) as aws:
        result = run(aws, job_file())
        assert result["description"]["status"] == "SUCCEEDED"
        entered = result["entered"]
        assert entered.count("Wait for earlier deployment") == 2
        assert entered.index("Update endpoint") > entered.index("Wait for earlier deployment")
        assert endpoint()["EndpointConfigName"] == training_job_name(result)


def test_an_earlier_deployment_that_never_settles_stops_the_run_with_that_reason(embedded):
    with embedded(earlier_endpoint_status="Updating", earlier_endpoint_polls=50) as aws:
        fail_state, error, cause = failure(run(aws, job_file()))
        assert (fail_state, error) == ("Deployment failed", "DeploymentFailed")
        assert f"The endpoint {ENDPOINT} is still Updating from an earlier deployment after 5 polls" in cause
        assert endpoint()["EndpointConfigName"] == "earlier-run-endpoint-config"


def test_a_failed_endpoint_from_an_earlier_run_is_named_not_recreated(embedded):
    with embedded(earlier_endpoint_status="Failed") as aws:
        result = run(aws, job_file())
        fail_state, _, cause = failure(result)
        assert fail_state == "Deployment failed"
        assert "is Failed, and SageMaker allows only DeleteEndpoint" in cause
        assert f"aws sagemaker delete-endpoint --endpoint-name {ENDPOINT}" in cause
        assert "Create endpoint" not in result["entered"] and "Update endpoint" not in result["entered"]


def test_any_other_describe_error_goes_to_deployment_failed_with_its_cause(embedded):
    with embedded(describe_endpoint_error="AccessDeniedException") as aws:
        result = run(aws, job_file())
        fail_state, _, cause = failure(result)
        assert fail_state == "Deployment failed" and "emulated AccessDeniedException" in cause
        assert "Create endpoint" not in result["entered"] and "Update endpoint" not in result["entered"]


@pytest.mark.parametrize(
    ("outcome", "status"), [("rolled_back", "InService"), ("rollback_failed", "UpdateRollbackFailed")]
)
def test_a_rolled_back_update_is_a_named_failure_with_sagemakers_reason(embedded, outcome, status):
    reason = "The primary container for production variant AllTraffic did not pass the ping health check."
    with embedded(earlier_endpoint_status="InService", endpoint_update=outcome, failure_reason=reason) as aws:
        result = run(aws, job_file())
        fail_state, error, cause = failure(result)
        assert (fail_state, error) == ("Endpoint update rolled back", "EndpointUpdateRolledBack")
        assert f"did not switch to the endpoint config {training_job_name(result)}" in cause
        assert f"(endpoint status {status})" in cause and reason in cause
        assert "Notify endpoint update rolled back" in result["entered"]
        assert "Notify success" not in result["entered"]


@pytest.mark.parametrize("status", ["OutOfService", "Failed"])
def test_an_endpoint_out_of_service_or_failed_ends_the_wait_at_once(embedded, status):
    with embedded(endpoint_status=status, failure_reason="emulated instance failure") as aws:
        result = run(aws, job_file())
        fail_state, error, cause = failure(result)
        assert (fail_state, error) == ("Endpoint failed", "EndpointFailed")
        assert cause == f"The endpoint {ENDPOINT} is {status}. FailureReason: emulated instance failure"
        assert "Count endpoint wait" not in result["entered"]


def test_throttling_and_resource_limits_are_retried_on_sagemaker_tasks(embedded):
    transient = (
        ("create_training_job", "ResourceLimitExceeded"),
        ("create_model", "ThrottlingException"),
        ("create_endpoint_config", "ThrottlingException"),
        ("describe_endpoint", "ThrottlingException"),
    )
    with embedded(transient_errors=transient) as aws:
        result = run(aws, job_file())
        assert result["description"]["status"] == "SUCCEEDED"
        assert all(aws.sagemaker_calls[action] >= 2 for action, _ in transient), aws.sagemaker_calls
