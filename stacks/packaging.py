"""Lambda code and dependencies, built on the machine that synthesises: no Docker.

The function code is the ``lambdas/`` folder as it is (handlers and the pure-Python ``truthflow`` package). The
third-party packages go into one layer, installed by pip for the Lambda platform (manylinux wheels for the
runtime's Python) into the asset folder. Unit tests skip bundling (context ``aws:cdk:bundling-stacks = []``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

REPO = Path(__file__).resolve().parents[1]
LAMBDAS = REPO / "lambdas"
LAYER_REQUIREMENTS = REPO / "stacks" / "layer"
RUNTIME = lambda_.Runtime.PYTHON_3_14
RUNTIME_PYTHON_VERSION = "3.14"
ARCHITECTURE = lambda_.Architecture.X86_64
# Amazon Linux 2023 (the python3.14 runtime) has glibc 2.34: manylinux 2.28 and 2014 wheels both run there.
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")
# The offline runner (moto, matplotlib) never runs in Lambda.
CODE_EXCLUDES = ["**/__pycache__", "*.egg-info", "**/*.pyc", "truthflow/local"]
# The Lambda Python runtime ships the AWS SDK; aws-xray-sdk pulls it in again (30 MB). Test suites are dead weight.
# Removing both keeps the layer well under Lambda's 250 MB limit for function plus layers.
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six.py")
DROPPED_FOLDERS = ("tests", "__pycache__")


@jsii.implements(ILocalBundling)
class PipLayerBundling:
    """Installs the layer's requirements with pip for the Lambda platform into ``<output>/python``."""

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
            "--requirement", str(LAYER_REQUIREMENTS / "requirements.txt"),
            "--target", str(Path(output_dir) / "python"),
            "--python-version", RUNTIME_PYTHON_VERSION, "--implementation", "cp", "--only-binary=:all:",
            *(argument for platform in WHEEL_PLATFORMS for argument in ("--platform", platform)),
        ]  # fmt: skip
        subprocess.run(command, check=True)
        prune_layer(Path(output_dir) / "python")
        return True


def prune_layer(site_packages: Path) -> None:
    for entry in list(site_packages.iterdir()):
        name = entry.name.split("-")[0]
        if name in PROVIDED_BY_RUNTIME or name.replace("python_", "") in PROVIDED_BY_RUNTIME:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for folder in sorted(site_packages.rglob("*"), reverse=True):
        if folder.is_dir() and folder.name in DROPPED_FOLDERS:
            shutil.rmtree(folder)


def function_code() -> lambda_.Code:
    return lambda_.Code.from_asset(str(LAMBDAS), exclude=CODE_EXCLUDES)


def dependency_layer(scope: Construct, construct_id: str) -> lambda_.LayerVersion:
    code = lambda_.Code.from_asset(
        str(LAYER_REQUIREMENTS),
        bundling=BundlingOptions(
            # Never pulled: local bundling always succeeds, and the machine has no Docker engine.
            image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.14"),
            local=PipLayerBundling(),
        ),
    )
    return lambda_.LayerVersion(
        scope,
        construct_id,
        code=code,
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        description="truthflow dependencies: numpy, scipy, pydantic, Powertools",
    )
