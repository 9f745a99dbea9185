"""S3 objects by ``s3://`` URI: read, stream, write and list, with errors that name the object."""

from __future__ import annotations

import io
import json
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import IO, Any, TextIO
from urllib.parse import unquote_plus

S3_SCHEME = "s3://"
# ConcurrentS3Destination: uploads running at once, and the most accepted but not yet finished.
UPLOAD_THREADS = 32
MAX_PENDING_UPLOADS = 128
# A text file up to this size is written from memory as one PutObject; a larger one is spooled to disk and streamed.
SPOOL_BYTES = 8 << 20


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; anything else (an https URL included) is a ``ValueError``."""
    if not uri.startswith(S3_SCHEME):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len(S3_SCHEME) :].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} has no bucket name")
    return bucket, key


def s3_uri(bucket: str, key: str) -> str:
    return f"{S3_SCHEME}{bucket}/{key}"


def decode_event_key(key: str) -> str:
    """S3 event notifications URL-encode object keys (a space arrives as ``+``)."""
    return unquote_plus(key)


def read_bytes(client: Any, uri: str) -> bytes:
    bucket, key = parse_s3_uri(uri)
    body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def read_text(client: Any, uri: str) -> str:
    return read_bytes(client, uri).decode("utf-8")


def read_json(client: Any, uri: str) -> Any:
    text = read_text(client, uri)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{uri}: not valid JSON ({error})") from None


def iter_lines(client: Any, uri: str) -> Iterator[str]:
    """Stream a text object line by line (JSON Lines manifests can be large)."""
    bucket, key = parse_s3_uri(uri)
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    for raw in body.iter_lines():
        yield raw.decode("utf-8")


def write_bytes(client: Any, uri: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
    bucket, key = parse_s3_uri(uri)
    client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)


def write_text(client: Any, uri: str, text: str, *, content_type: str = "text/plain; charset=utf-8") -> None:
    write_bytes(client, uri, text.encode("utf-8"), content_type=content_type)


def write_json(client: Any, uri: str, value: Any) -> None:
    write_text(client, uri, json.dumps(value, indent=2, sort_keys=True), content_type="application/json")


def iter_objects(client: Any, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
    """Every ``(key, size)`` under a prefix, following pagination (1,000 keys a page)."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            yield entry["Key"], int(entry["Size"])


class _TextWriting:
    """``open_text`` for a destination that writes whole objects: the text goes to a temporary file (in memory up to
    ``SPOOL_BYTES``, then on disk) and is written when the file closes: a small file as one object, a large one
    streamed (multipart), so that a manifest of a million lines never sits in memory."""

    def write_bytes(self, path: str, data: bytes) -> None:
        raise NotImplementedError

    def upload_stream(self, path: str, stream: IO[bytes]) -> None:
        raise NotImplementedError

    @contextmanager
    def open_text(self, path: str) -> Iterator[TextIO]:
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
            yield text
            text.flush()
            text.detach()  # the raw file stays open for the upload
            size = raw.tell()
            raw.seek(0)
            if size <= SPOOL_BYTES:
                self.write_bytes(path, raw.read())
            else:
                self.upload_stream(path, raw)


class S3Destination(_TextWriting):
    """A ``truthflow.training_data`` destination writing under an ``s3://`` prefix (one object per path)."""

    def __init__(self, client: Any, prefix_uri: str) -> None:
        self._client = client
        self._prefix = prefix_uri.rstrip("/") + "/"
        parse_s3_uri(self._prefix)
        self.written: list[str] = []

    def uri(self, path: str) -> str:
        return self._prefix + path

    def write_bytes(self, path: str, data: bytes) -> None:
        write_bytes(self._client, self.uri(path), data)
        self.written.append(self.uri(path))

    def upload_stream(self, path: str, stream: IO[bytes]) -> None:
        bucket, key = parse_s3_uri(self.uri(path))
        self._client.upload_fileobj(stream, bucket, key)
        self.written.append(self.uri(path))


class ConcurrentS3Destination(_TextWriting):
    """An :class:`S3Destination` whose uploads run on a thread pool (at most ``MAX_PENDING_UPLOADS`` waiting), so
    that one-object-per-image formats (YOLO, VOC) do not take one round trip each. Use as a context manager: leaving
    it waits for every upload; the first failed upload is raised (on exit, or at the next write)."""

    def __init__(self, destination: S3Destination) -> None:
        self.destination = destination
        self._pool = ThreadPoolExecutor(max_workers=UPLOAD_THREADS)
        self._slots = threading.BoundedSemaphore(MAX_PENDING_UPLOADS)
        self._error: BaseException | None = None

    def __enter__(self) -> ConcurrentS3Destination:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        self._pool.shutdown(wait=True)
        if exc_type is None:
            self._raise_failed_upload()

    def write_bytes(self, path: str, data: bytes) -> None:
        self._raise_failed_upload()
        self._slots.acquire()
        self._pool.submit(self.destination.write_bytes, path, data).add_done_callback(self._finished)

    def upload_stream(self, path: str, stream: IO[bytes]) -> None:
        """A large file: streamed right away (boto3 runs its multipart parts on threads of its own)."""
        self._raise_failed_upload()
        self.destination.upload_stream(path, stream)

    def _finished(self, future: Future[None]) -> None:
        error = future.exception()
        if error is not None and self._error is None:
            self._error = error
        self._slots.release()

    def _raise_failed_upload(self) -> None:
        if self._error is not None:
            raise self._error


def read_prefix_bytes(client: Any, uri: str, n_bytes: int) -> bytes:
    """The first ``n_bytes`` of an object (all of it when shorter), with one ranged GET."""
    bucket, key = parse_s3_uri(uri)
    body: bytes = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{n_bytes - 1}")["Body"].read()
    return body
