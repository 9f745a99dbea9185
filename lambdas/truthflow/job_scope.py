"""What a job may read: its own folder ``s3://<data bucket>/jobs/<id>/``, and buckets the deployment names.

A job file can name S3 objects (``existing_annotations``), and manifests name images (``source-ref``). Without a
limit, one job could copy another job's labels into its own dataset and train on its images, because the pipeline's
roles read every job folder. So every address a job brings is checked against its :class:`JobScope`: at upload (the
starter), and again by every step that reads one. Buckets outside the data bucket are allowed only when the
deployment lists them (``input_buckets`` in ``cdk.json``, which also grants the roles read access to them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

JOBS_PREFIX = "jobs/"
SOURCE_REF = "source-ref"


class OutOfScopeError(ValueError):
    """A manifest names an object the job may not read."""


@dataclass(frozen=True)
class JobScope:
    """The places job ``job_id`` in ``bucket`` may read."""

    bucket: str
    job_id: str
    input_buckets: frozenset[str] = field(default_factory=frozenset)

    @property
    def folder(self) -> str:
        return f"s3://{self.bucket}/{JOBS_PREFIX}{self.job_id}/"

    def problem(self, uri: str) -> str | None:
        """Why the job may not read ``uri``, or ``None`` when it may."""
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            return f"{str(uri)[:200]!r} is not an s3:// URI"
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if bucket in self.input_buckets:
            return None
        if bucket == self.bucket and key.startswith(f"{JOBS_PREFIX}{self.job_id}/"):
            return None
        allowed = f"under {self.folder}"
        if self.input_buckets:
            allowed += f" or in the bucket(s) {', '.join(sorted(self.input_buckets))}"
        return (
            f"{uri[:300]!r} is outside this job: a job reads only {allowed} "
            "(the deployment's input_buckets setting in cdk.json allows more buckets)"
        )

    def check_manifest(self, lines: Iterable[str], *, manifest_uri: str) -> Iterator[str]:
        """Pass the lines of a manifest through, raising :class:`OutOfScopeError` at the first line whose
        ``source-ref`` the job may not read (naming the manifest and the line). Lines that are not JSON objects
        are passed on for the manifest's reader to report."""
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                reference = record.get(SOURCE_REF) if isinstance(record, dict) else None
                if reference is not None:
                    problem = self.problem(reference)
                    if problem is not None:
                        raise OutOfScopeError(f"{manifest_uri} line {number}: source-ref {problem}")
            yield line


def input_buckets_from_environment(value: str | None) -> frozenset[str]:
    """The ``INPUT_BUCKETS`` environment variable (a JSON list of bucket names, set by the stack) as a set."""
    if not value:
        return frozenset()
    names = json.loads(value)
    if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"INPUT_BUCKETS must be a JSON list of bucket names, got {value[:200]!r}")
    return frozenset(names)
