"""Starting a run from an uploaded job file: which upload it was, the execution's name and its input.

The execution name is derived from the job id and the uploaded object's version (or ETag when the bucket is not
versioned), so the same upload delivered twice maps to the same name and Step Functions starts nothing new.

A run is tied to the job file that started it: the execution input carries the object's version id (``job_version``)
and ETag (``job_etag``), and every step reads exactly that version (:class:`JobFileVersion`). In a versioned bucket
(the stack's data bucket is one) that is a read by version id, which outlives later uploads. In a bucket without
versioning the event has no version id; the steps then read the current object only if its ETag is still the one
that was uploaded, so a replaced job file stops the old run with a clear error instead of feeding it new settings.

Nothing here raises for a malformed event or key: :func:`read_job_upload` returns what it could read and the
problem, so the starter can still write ``status.json`` beside the uploaded file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from truthflow.aws.s3 import decode_event_key
from truthflow.job_file import JOBS_PREFIX, job_id_from_key

# Step Functions execution names: 1-80 characters of letters, digits, hyphens and underscores.
MAX_EXECUTION_NAME = 80
STATUS_FILE_NAME = "status.json"


class JobFileVersion(BaseModel):
    """The exact job file a run reads: its key and the version id or ETag the upload event named."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    version_id: str | None = None
    etag: str | None = None

    @model_validator(mode="after")
    def _names_a_version(self) -> JobFileVersion:
        if not self.version_id and not self.etag:
            raise ValueError(f"{self.key}: the run names neither a version id nor an ETag of its job file")
        return self


@dataclass(frozen=True)
class JobUpload:
    """A job file upload as the S3 "Object Created" event describes it."""

    bucket: str
    key: str
    job_id: str
    version_id: str | None
    etag: str | None
    sequencer: str | None = None

    @property
    def version(self) -> str:
        """What identifies this upload: the version id, else the ETag, else the event's sequencer."""
        return self.version_id or self.etag or self.sequencer or ""

    @property
    def job_file(self) -> JobFileVersion:
        return JobFileVersion(key=self.key, version_id=self.version_id, etag=self.etag)


@dataclass(frozen=True)
class UploadReading:
    """What an event says: the bucket and key when it has them (so that ``status.json`` can be written), the upload
    when everything is usable, else the problem."""

    bucket: str | None
    key: str | None
    upload: JobUpload | None
    problem: str | None

    @property
    def status_key(self) -> str | None:
        """``status.json`` beside the uploaded job file (``jobs/a/b/job.json`` -> ``jobs/a/b/status.json``), or
        ``None`` for a key outside ``jobs/`` (the trigger's pattern never delivers one; nothing is written there)."""
        return status_key_for(self.key) if self.key is not None else None


def status_key_for(key: str) -> str | None:
    if not key.startswith(JOBS_PREFIX):
        return None
    folder, _, _ = key.rpartition("/")
    return f"{folder}/{STATUS_FILE_NAME}"


def read_job_upload(event: object) -> UploadReading:
    """Read an EventBridge S3 "Object Created" event (object keys arrive URL-encoded, ``+`` for a space)."""
    detail = event.get("detail") if isinstance(event, Mapping) else None
    if not isinstance(detail, Mapping):
        return UploadReading(None, None, None, "the event has no 'detail': expected an S3 'Object Created' event")
    bucket = _string(detail.get("bucket"), "name")
    s3_object = detail.get("object") if isinstance(detail.get("object"), Mapping) else {}
    assert isinstance(s3_object, Mapping)
    raw_key = s3_object.get("key")
    if bucket is None or not isinstance(raw_key, str) or not raw_key:
        return UploadReading(bucket, None, None, "the event has no bucket.name or object.key")
    key = decode_event_key(raw_key)
    try:
        job_id = job_id_from_key(key)
    except ValueError as error:
        return UploadReading(bucket, key, None, str(error))
    version_id = _nonempty(s3_object.get("version-id"))
    etag = _nonempty(s3_object.get("etag"))
    if version_id is None and etag is None:
        return UploadReading(bucket, key, None, f"the event for {key} has neither an object version-id nor an etag")
    upload = JobUpload(bucket, key, job_id, version_id, etag, _nonempty(s3_object.get("sequencer")))
    return UploadReading(bucket, key, upload, None)


def _string(section: object, name: str) -> str | None:
    value = section.get(name) if isinstance(section, Mapping) else None
    return value if isinstance(value, str) and value else None


def _nonempty(value: object) -> str | None:
    return value.strip('"') if isinstance(value, str) and value.strip('"') else None


def execution_name(upload: JobUpload) -> str:
    """``<job id>-<16 hex of the object version>``: stable for one upload, new for every new upload."""
    digest = hashlib.sha256(f"{upload.key}\n{upload.version}".encode()).hexdigest()[:16]
    return f"{upload.job_id}-{digest}"[:MAX_EXECUTION_NAME]


def execution_input(upload: JobUpload, *, poll_seconds: int, max_endpoint_polls: int) -> dict[str, Any]:
    return {
        "bucket": upload.bucket,
        "job_id": upload.job_id,
        "job_key": upload.key,
        "job_version": upload.version_id,
        "job_etag": upload.etag,
        "settings": {"poll_seconds": poll_seconds, "max_endpoint_polls": max_endpoint_polls},
    }
