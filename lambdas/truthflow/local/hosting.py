"""Emulated SageMaker hosting for the offline run: CreateEndpoint, UpdateEndpoint, DescribeEndpoint, ListEndpoints.

moto creates endpoints InService at once and has no UpdateEndpoint. Real endpoints move through states, and the
pipeline's deployment states depend on them, so this emulator plays them out from an :class:`HostingScenario`:

* an endpoint is ``Creating`` (or ``Updating``) for ``polls_before_settled`` DescribeEndpoint calls, then settles;
* it settles ``InService`` on the new endpoint config, or ``Failed`` / ``OutOfService`` with a FailureReason;
* an update can be rolled back (``InService`` on the *previous* config, with a FailureReason, as when the new model
  fails its health checks) or end ``UpdateRollbackFailed``;
* an endpoint of the job can already exist from an earlier run (``earlier_endpoint_status``, e.g. still
  ``Updating`` for ``earlier_endpoint_polls`` describes, or ``Failed``);
* DescribeEndpoint can fail with any error code (``describe_error``, e.g. ``AccessDeniedException``).

Errors are SageMaker's: ``ValidationException`` "Could not find endpoint ..." for a missing endpoint, "Cannot create
already existing endpoint ..." and "Cannot update in-progress endpoint ..." for the other refusals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

TRANSITIONAL = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
EARLIER_CONFIG = "earlier-run-endpoint-config"
_GONE = "(deleted)"  # the settled "status" of an endpoint being deleted: it disappears

UpdateOutcome = Literal["applied", "rolled_back", "rollback_failed"]


@dataclass(frozen=True)
class HostingScenario:
    """How emulated endpoints behave; the defaults are the happy path."""

    endpoint_status: str = "InService"
    update_outcome: UpdateOutcome = "applied"
    polls_before_settled: int = 0
    earlier_endpoint_status: str | None = None
    earlier_endpoint_polls: int = 0
    describe_error: str | None = None
    failure_reason: str = "emulated failure (EmulatorScenario)"


@dataclass
class EmulatedEndpoint:
    name: str
    arn: str
    config_name: str
    status: str
    failure_reason: str | None = None
    pending: list[str] = field(default_factory=list)
    settled: tuple[str, str, str | None] | None = None  # status, config, failure reason once ``pending`` is used up
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))

    def observe(self) -> None:
        """One DescribeEndpoint: the next pending status, or the settled one."""
        if self.pending:
            self.status = self.pending.pop(0)
        elif self.settled is not None:
            self.status, self.config_name, self.failure_reason = self.settled
            self.settled = None
            self.modified = datetime.now(UTC)


class HostingError(Exception):
    """A SageMaker error: ``code`` as the API names it, and its message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class HostingEmulator:
    """Endpoints of the embedded account, by name."""

    def __init__(self, scenario: HostingScenario, *, region: str, account: str) -> None:
        self.scenario = scenario
        self.region = region
        self.account = account
        self.endpoints: dict[str, EmulatedEndpoint] = {}
        self._earlier_endpoint_placed = False

    def _arn(self, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:endpoint/{name.lower()}"

    def _find(self, name: str) -> EmulatedEndpoint | None:
        """SageMaker endpoint names are case-insensitive."""
        self._place_earlier_endpoint(name)
        return self.endpoints.get(name.lower())

    def _place_earlier_endpoint(self, name: str) -> None:
        """The scenario's endpoint "from an earlier run" exists under the first name the run asks for."""
        status = self.scenario.earlier_endpoint_status
        if status is None or self._earlier_endpoint_placed:
            return
        self._earlier_endpoint_placed = True
        endpoint = EmulatedEndpoint(name, self._arn(name), EARLIER_CONFIG, status)
        if status in TRANSITIONAL:
            endpoint.pending = [status] * self.scenario.earlier_endpoint_polls
            endpoint.settled = ("InService", EARLIER_CONFIG, None) if status != "Deleting" else (_GONE, "", None)
        if status == "Failed":
            endpoint.failure_reason = self.scenario.failure_reason
        self.endpoints[name.lower()] = endpoint

    def create(self, name: str, config_name: str) -> dict[str, Any]:
        if self._find(name) is not None:
            raise HostingError("ValidationException", f'Cannot create already existing endpoint "{self._arn(name)}".')
        endpoint = EmulatedEndpoint(name, self._arn(name), config_name, "Creating")
        endpoint.pending = ["Creating"] * self.scenario.polls_before_settled
        status = self.scenario.endpoint_status
        endpoint.settled = (status, config_name, self.scenario.failure_reason if status != "InService" else None)
        self.endpoints[name.lower()] = endpoint
        return {"EndpointArn": endpoint.arn}

    def update(self, name: str, config_name: str) -> dict[str, Any]:
        endpoint = self._find(name)
        if endpoint is None:
            raise HostingError("ValidationException", f'Could not find endpoint "{self._arn(name)}".')
        if endpoint.status in TRANSITIONAL or endpoint.pending:
            raise HostingError("ValidationException", f'Cannot update in-progress endpoint "{endpoint.arn}".')
        if endpoint.status == "Failed":
            raise HostingError("ValidationException", f'Cannot update failed endpoint "{endpoint.arn}".')
        previous = endpoint.config_name
        endpoint.status = "Updating"
        endpoint.pending = ["Updating"] * self.scenario.polls_before_settled
        reason = self.scenario.failure_reason
        outcome = self.scenario.update_outcome
        if outcome == "rolled_back":
            endpoint.settled = ("InService", previous, reason)
        elif outcome == "rollback_failed":
            endpoint.settled = ("UpdateRollbackFailed", previous, reason)
        else:
            status = self.scenario.endpoint_status
            endpoint.settled = (status, config_name, reason if status != "InService" else None)
        return {"EndpointArn": endpoint.arn}

    def describe(self, name: str) -> dict[str, Any]:
        if self.scenario.describe_error is not None:
            raise HostingError(self.scenario.describe_error, f"emulated {self.scenario.describe_error} (scenario)")
        endpoint = self._find(name)
        if endpoint is None:
            raise HostingError("ValidationException", f'Could not find endpoint "{self._arn(name)}".')
        endpoint.observe()
        if endpoint.status == _GONE:
            del self.endpoints[name.lower()]
            raise HostingError("ValidationException", f'Could not find endpoint "{self._arn(name)}".')
        description: dict[str, Any] = {
            "EndpointName": endpoint.name,
            "EndpointArn": endpoint.arn,
            "EndpointConfigName": endpoint.config_name,
            "EndpointStatus": endpoint.status,
            "CreationTime": endpoint.created,
            "LastModifiedTime": endpoint.modified,
        }
        if endpoint.failure_reason:
            description["FailureReason"] = endpoint.failure_reason
        return description

    def list(self) -> dict[str, Any]:
        return {
            "Endpoints": [
                {
                    "EndpointName": endpoint.name,
                    "EndpointArn": endpoint.arn,
                    "EndpointStatus": endpoint.status,
                    "CreationTime": endpoint.created,
                    "LastModifiedTime": endpoint.modified,
                }
                for endpoint in self.endpoints.values()
            ]
        }
