"""Fixtures shared by every test module (defined in emulated_aws.py, which tests also import for constants)."""

from emulated_aws import aws, lambda_context, load_handler, s3

__all__ = ["aws", "lambda_context", "load_handler", "s3"]
