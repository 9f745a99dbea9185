"""Reading the exact job file a run was started with (:class:`truthflow.run_start.JobFileVersion`)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from truthflow.aws.s3 import parse_s3_uri
from truthflow.gold_questions import ObjectTooLargeError
from truthflow.job_file import JobFileError
from truthflow.run_start import JobFileVersion

# Far above any valid job file (500 labels of 256 characters and 22,000 characters of instructions are ~150 KB);
# a larger object is refused unread, so a hostile upload cannot fill a Lambda's memory.
MAX_JOB_FILE_BYTES = 1_048_576


def read_job_file_version(client: Any, bucket: str, job_file: JobFileVersion) -> bytes:
    """The bytes of ``job_file``: by version id when the run has one, else the current object if its ETag is still
    the uploaded one. Raises :class:`JobFileError` (naming the key) when that version is gone, was replaced, or is
    larger than :data:`MAX_JOB_FILE_BYTES`; any other S3 error is raised as it is."""
    request: dict[str, Any] = {"Bucket": bucket, "Key": job_file.key}
    if job_file.version_id:
        request["VersionId"] = job_file.version_id
    else:
        request["IfMatch"] = f'"{job_file.etag}"'
    try:
        response = client.get_object(**request)
    except ClientError as error:
        problem = _unreadable(job_file, error)
        if problem is None:
            raise  # access, throttling, service errors: not the job file's fault
        raise JobFileError(job_file.key, [("", problem)]) from None
    size = int(response.get("ContentLength") or 0)
    body = response["Body"]
    if size > MAX_JOB_FILE_BYTES:
        body.close()
        raise JobFileError(
            job_file.key, [("", f"is {size:,} bytes; a job file may have at most {MAX_JOB_FILE_BYTES:,}")]
        )
    data: bytes = body.read(MAX_JOB_FILE_BYTES + 1)
    if len(data) > MAX_JOB_FILE_BYTES:
        raise JobFileError(job_file.key, [("", f"has more than {MAX_JOB_FILE_BYTES:,} bytes")])
    return data


def _unreadable(job_file: JobFileVersion, error: ClientError) -> str | None:
    code = str(error.response.get("Error", {}).get("Code", ""))
    if code in ("PreconditionFailed", "412"):
        return (
            f"was replaced after this run started (the run belongs to the upload with ETag {job_file.etag}; the "
            "bucket keeps no versions, so that upload's settings are gone). The new upload starts its own run."
        )
    if code in ("NoSuchKey", "404"):
        return "not found: it was deleted after this run started"
    if code in ("NoSuchVersion", "InvalidArgument"):
        return f"version {job_file.version_id} (the one this run started with) does not exist (any more)"
    return None


def read_object_within(client: Any, uri: str, limit: int) -> bytes | None:
    """The object at ``uri``, or ``None`` when there is no such object, or none this function may read
    (:data:`truthflow.gold_questions.ObjectReader`); one larger than ``limit`` bytes raises
    :class:`~truthflow.gold_questions.ObjectTooLargeError` unread. Other S3 errors are raised as they are."""
    bucket, key = parse_s3_uri(uri)
    try:
        response = client.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        # Without ListBucket on the key, S3 answers a missing object with AccessDenied: the same for the user.
        if str(error.response.get("Error", {}).get("Code", "")) in ("NoSuchKey", "404", "AccessDenied", "403"):
            return None
        raise
    body = response["Body"]
    size = int(response.get("ContentLength") or 0)
    if size > limit:
        body.close()
        raise ObjectTooLargeError(size)
    data: bytes = body.read(limit + 1)
    if len(data) > limit:
        raise ObjectTooLargeError(len(data))
    return data
