"""Job ids: the ``<id>`` of ``jobs/<id>/job.json``, which becomes part of every SageMaker name a run makes.

A job id is lower-case letters, digits and hyphens, starting and ending with a letter or digit, at most 40
characters (``tf-<id>-<8 hex>`` must fit SageMaker's 63). Every SageMaker name made from it (labeling and training
jobs, models, endpoint configs, endpoints) is compared case-insensitively by SageMaker, while S3 keys are
case-sensitive, so ``jobs/Pens`` and ``jobs/pens`` would share an endpoint. Upper case is refused rather than
mapped to a hashed name: the id-to-name mapping stays one-to-one without collisions, and names stay readable
(``truthflow-pens``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

JOB_FILE_NAME = "job.json"
JOBS_PREFIX = "jobs/"
MAX_JOB_ID_CHARS = 40
# A Ground Truth name (API LabelingJobName: letters and digits, hyphens only between them), in lower case.
_JOB_ID = re.compile(r"[a-z0-9](-*[a-z0-9])*")


def validate_job_id(job_id: str, *, what: str = "job id") -> str:
    """Check a job id: lower-case letters, digits and hyphens, starting and ending with a letter or digit, at most
    40 characters, so that names derived from it (``tf-<id>-<8 hex>``) fit SageMaker's 63 and no two ids share one
    (SageMaker names are case-insensitive)."""
    if not isinstance(job_id, str) or not job_id:
        raise ValueError(f"{what} must be a non-empty string")
    if len(job_id) > MAX_JOB_ID_CHARS:
        raise ValueError(
            f"{what} {job_id[:60]!r} is {len(job_id)} characters; at most {MAX_JOB_ID_CHARS} "
            "(it becomes part of the SageMaker job names, which are limited to 63)"
        )
    if job_id != job_id.lower() and _JOB_ID.fullmatch(job_id.lower()):
        raise ValueError(
            f"{what} {job_id!r} has upper-case letters; use {job_id.lower()!r}: SageMaker names made from the id "
            "are case-insensitive, so ids differing only in case would share them"
        )
    if not _JOB_ID.fullmatch(job_id):
        raise ValueError(
            f"{what} {job_id[:60]!r} may contain only lower-case letters, digits and hyphens, and must start and end "
            "with a letter or digit (it becomes part of the SageMaker job names)"
        )
    return job_id


def job_id_from_key(key: str, *, decode: Callable[[str], str] | None = None) -> str:
    """The ``<id>`` of an object key ``jobs/<id>/job.json``; a ``ValueError`` for any other key or a bad id.

    ``decode`` (e.g. :func:`truthflow.aws.s3.decode_event_key`) undoes the URL encoding of S3 event keys first;
    a valid id never contains a character that encoding changes, so decoding only makes error messages readable.
    """
    if decode is not None:
        key = decode(key)
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != JOBS_PREFIX or parts[2] != JOB_FILE_NAME:
        raise ValueError(f"{key!r} is not a job file: expected {JOBS_PREFIX}<id>/{JOB_FILE_NAME}")
    return validate_job_id(parts[1], what=f"{key}: job id")


def job_file_key(job_id: str) -> str:
    return f"{JOBS_PREFIX}{validate_job_id(job_id)}/{JOB_FILE_NAME}"
