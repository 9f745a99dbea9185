"""Shared fixtures: an emulated AWS account (moto) and Lambda handlers imported inside it."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

EVENTS = Path(__file__).parent / "events"
REGION = "us-east-1"
DATA_BUCKET = "truthflow-data"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials, Powertools set as the stack sets it, and every AWS call answered by moto."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_SERVICE_NAME": "truthflow-tests",
        "POWERTOOLS_METRICS_NAMESPACE": "truthflow",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=DATA_BUCKET)
    return client


@pytest.fixture
def load_handler(aws: None) -> Callable[[str], ModuleType]:
    """Import ``lambdas/<name>/handler.py`` afresh inside the moto context, so its module-level clients are mocked
    and environment variables set by the test are read, as on a Lambda cold start."""

    def load(name: str) -> ModuleType:
        module_name = f"{name}.handler"
        sys.modules.pop(module_name, None)
        return importlib.import_module(module_name)

    return load


@pytest.fixture
def lambda_context() -> Any:
    class Context:
        function_name = "truthflow-test"
        memory_limit_in_mb = 1024
        invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:truthflow-test"
        aws_request_id = "00000000-0000-0000-0000-000000000000"

    return Context()


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())
