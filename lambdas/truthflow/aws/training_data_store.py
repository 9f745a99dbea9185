"""Storage of the sharded "Build training data" step on S3 (:class:`truthflow.training_data_step.TrainingDataStore`).

Manifests are streamed in 1 MiB chunks; a shard reads its byte range with one ranged GetObject, on condition that the
manifest is still the one that was planned (``If-Match`` its ETag). Joined files are streamed into a multipart upload
as they are produced (never spooled to /tmp: at a million images one file passes 500 MB, Lambda's default /tmp).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from truthflow.aws.job_files import read_job_file_version
from truthflow.aws.s3 import (
    ConcurrentS3Destination,
    S3Destination,
    iter_objects,
    parse_s3_uri,
    read_bytes,
    read_json,
    s3_uri,
    write_json,
)
from truthflow.run_start import JobFileVersion

CHUNK_BYTES = 1 << 20
# Joined files: 16 MiB parts (10,000 parts allow 160 GB), 4 uploading at once: at most ~100 MB in flight.
JOINED_UPLOADS = TransferConfig(multipart_threshold=16 << 20, multipart_chunksize=16 << 20, max_concurrency=4)
# DeleteObjects takes at most this many keys a request.
DELETE_BATCH = 1000


class ManifestChangedError(ValueError):
    """The manifest is no longer the object that was planned."""


class S3TrainingDataStore:
    """The sharded training-data step's storage, on one boto3 S3 client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def read_job_file(self, bucket: str, job_file: JobFileVersion) -> str:
        return read_job_file_version(self._client, bucket, job_file).decode("utf-8")

    def read_text(self, uri: str) -> str:
        return read_bytes(self._client, uri).decode("utf-8")

    def read_json(self, uri: str) -> Any:
        return read_json(self._client, uri)

    def write_json(self, uri: str, value: Any) -> None:
        write_json(self._client, uri, value)

    def list_uris(self, prefix_uri: str) -> set[str]:
        """Every object under a prefix (ListObjectsV2, all pages): a role may list only where it must, and without
        ListBucket a missing object reads as "access denied", not "not found"."""
        bucket, prefix = parse_s3_uri(prefix_uri)
        return {s3_uri(bucket, key) for key, _ in iter_objects(self._client, bucket, prefix)}

    def open_manifest(self, uri: str) -> tuple[str, int, Iterator[bytes]]:
        """The manifest's ETag, its size and its bytes, streamed."""
        bucket, key = parse_s3_uri(uri)
        response = self._client.get_object(Bucket=bucket, Key=key)
        return str(response["ETag"]), int(response["ContentLength"]), response["Body"].iter_chunks(CHUNK_BYTES)

    def read_range(self, uri: str, start: int, end: int, etag: str) -> Iterator[bytes]:
        """Bytes ``[start, end)`` of the manifest, if it is still the object with ``etag``."""
        if end <= start:
            return iter(())
        bucket, key = parse_s3_uri(uri)
        try:
            response = self._client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", IfMatch=etag)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in ("PreconditionFailed", "412"):
                raise ManifestChangedError(
                    f"{uri} was replaced after the training data was planned (ETag {etag} is gone)"
                ) from None
            raise
        return response["Body"].iter_chunks(CHUNK_BYTES)  # type: ignore[no-any-return]

    def files(self, prefix_uri: str) -> AbstractContextManager[ConcurrentS3Destination]:
        """The dataset's folder, for one-object-per-image files (uploads run on a thread pool)."""
        return ConcurrentS3Destination(S3Destination(self._client, prefix_uri))

    def parts(self, prefix_uri: str) -> S3Destination:
        return S3Destination(self._client, prefix_uri)

    def read_text_chunks(self, uri: str) -> Iterator[str]:
        """A text object as chunks, decoded as they arrive; the object is opened when the iteration starts."""
        bucket, key = parse_s3_uri(uri)
        body = self._client.get_object(Bucket=bucket, Key=key)["Body"]
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            for chunk in body.iter_chunks(CHUNK_BYTES):
                if text := decoder.decode(chunk):
                    yield text
            if text := decoder.decode(b"", final=True):
                yield text
        finally:
            body.close()

    def write_chunks(self, uri: str, chunks: Iterable[str]) -> None:
        """A text object from chunks, uploaded as they come (multipart once it passes 16 MiB)."""
        bucket, key = parse_s3_uri(uri)
        self._client.upload_fileobj(_EncodedChunks(chunks), bucket, key, Config=JOINED_UPLOADS)

    def delete(self, uris: Sequence[str]) -> None:
        """Delete objects (of one bucket or several), a thousand a request."""
        by_bucket: dict[str, list[str]] = {}
        for uri in uris:
            bucket, key = parse_s3_uri(uri)
            by_bucket.setdefault(bucket, []).append(key)
        for bucket, keys in by_bucket.items():
            for first in range(0, len(keys), DELETE_BATCH):
                batch = [{"Key": key} for key in keys[first : first + DELETE_BATCH]]
                response = self._client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
                errors = response.get("Errors") or []
                if errors:
                    first_error = errors[0]
                    raise RuntimeError(
                        f"could not delete {len(errors)} of {len(batch)} objects in {bucket}, e.g. "
                        f"{first_error.get('Key')}: {first_error.get('Code')} {first_error.get('Message')}"
                    )


class _EncodedChunks:
    """A readable binary file over text chunks (UTF-8), pulled as the upload reads; ``read(n)`` returns ``n`` bytes
    unless the chunks end first (the upload takes each read as a whole part)."""

    def __init__(self, chunks: Iterable[str]) -> None:
        self._chunks = iter(chunks)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._done = False

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or self._pending_bytes < size):
            chunk = next(self._chunks, None)
            if chunk is None:
                self._done = True
            elif chunk:
                data = chunk.encode("utf-8")
                self._pending.append(data)
                self._pending_bytes += len(data)
        joined = b"".join(self._pending)
        taken = joined if size < 0 else joined[:size]
        rest = joined[len(taken) :]
        self._pending, self._pending_bytes = ([rest], len(rest)) if rest else ([], 0)
        return taken
