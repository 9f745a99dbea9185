"""Starting a run from an uploaded job file: which upload it was, the execution's name and its input.

The execution name is derived from the job id and the uploaded object's version (or ETag when the bucket is not
versioned), so the same upload delivered twice maps to the same name and Step Functions starts nothing new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from truthflow.aws.s3 import decode_event_key
from truthflow.job_file import job_id_from_key

# Step Functions execution names: 1-80 characters of letters, digits, hyphens and underscores.
MAX_EXECUTION_NAME = 80


@dataclass(frozen=True)
class JobUpload:
    bucket: str
    key: str
    job_id: str
    version: str


def job_upload_from_event(event: Mapping[str, Any]) -> JobUpload:
    """Read an EventBridge S3 "Object Created" event; a ``ValueError`` names what is missing or wrong."""
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise ValueError("event has no 'detail': expected an EventBridge S3 'Object Created' event")
    bucket = (detail.get("bucket") or {}).get("name")
    s3_object = detail.get("object") or {}
    raw_key = s3_object.get("key")
    if not isinstance(bucket, str) or not isinstance(raw_key, str):
        raise ValueError("event detail has no bucket.name or object.key")
    key = decode_event_key(raw_key)
    version = s3_object.get("version-id") or s3_object.get("etag") or s3_object.get("sequencer")
    if not isinstance(version, str) or not version:
        raise ValueError(f"event for {key} has no object version-id, etag or sequencer")
    return JobUpload(bucket=bucket, key=key, job_id=job_id_from_key(key), version=version)


def execution_name(upload: JobUpload) -> str:
    """``<job id>-<16 hex of the object version>``: stable for one upload, new for every new upload."""
    digest = hashlib.sha256(f"{upload.key}\n{upload.version}".encode()).hexdigest()[:16]
    return f"{upload.job_id}-{digest}"[:MAX_EXECUTION_NAME]


def execution_input(upload: JobUpload, *, poll_seconds: int, max_endpoint_polls: int) -> dict[str, Any]:
    return {
        "bucket": upload.bucket,
        "job_id": upload.job_id,
        "job_key": upload.key,
        "job_version": upload.version,
        "settings": {"poll_seconds": poll_seconds, "max_endpoint_polls": max_endpoint_polls},
    }
