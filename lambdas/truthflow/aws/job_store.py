"""The whole-job consolidation's storage on S3 (:class:`truthflow.job_dataset.JobStore`): a module of its own, so
that the Lambdas reading single objects do not import the whole-job code at cold start."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any

from botocore.exceptions import ClientError

from truthflow.aws.s3 import (
    iter_lines,
    iter_objects,
    parse_s3_uri,
    read_bytes,
    read_prefix_bytes,
    s3_uri,
    write_json,
)
from truthflow.groundtruth.job_consolidation import WorkerResponseFile
from truthflow.image_headers import HEADER_BYTES, ImageHeaderError, NeedMoreBytesError, image_size

# Worker-response files are small and there is one per object: read them concurrently (boto3 clients are
# thread-safe), or a 100,000-object job would spend most of the Lambda's 15 minutes waiting on GetObject.
READ_THREADS = 32
# Objects read ahead of the consumer at most: memory stays bounded whatever the number of keys.
MAX_READ_AHEAD = 1024


class S3JobStore:
    """:class:`truthflow.job_dataset.JobStore` on S3."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def list_keys(self, bucket: str, prefix: str) -> Iterator[str]:
        return (key for key, _ in iter_objects(self._client, bucket, prefix))

    def read_files(self, bucket: str, keys: Sequence[str]) -> Iterator[WorkerResponseFile]:
        """GetObject for each key on a thread pool, yielded in key order, at most ``MAX_READ_AHEAD`` ahead; a failed
        read is a file with its ``error``."""

        def read(key: str) -> WorkerResponseFile:
            try:
                return WorkerResponseFile(key, read_bytes(self._client, s3_uri(bucket, key)))
            except ClientError as error:
                return WorkerResponseFile(key, b"", error=str(error))

        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
            pending: deque[Future[WorkerResponseFile]] = deque()
            for key in keys:
                pending.append(pool.submit(read, key))
                if len(pending) >= MAX_READ_AHEAD:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def iter_lines(self, uri: str) -> Iterator[str]:
        return iter_lines(self._client, uri)

    def read_text(self, uri: str) -> str:
        return read_bytes(self._client, uri).decode("utf-8")

    def upload_text(self, stream: IO[str], uri: str, content_type: str) -> None:
        """Upload a spooled text file from its start (multipart when large)."""
        stream.flush()
        stream.seek(0)
        bucket, key = parse_s3_uri(uri)
        self._client.upload_fileobj(stream.buffer, bucket, key, ExtraArgs={"ContentType": content_type})  # type: ignore[attr-defined]

    def write_json(self, uri: str, value: Any) -> None:
        write_json(self._client, uri, value)

    def read_export(self, uri: str, max_bytes: int) -> bytes:
        """An export file; its size is checked before its body is read (``ValueError`` naming the file)."""
        bucket, key = parse_s3_uri(uri)
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                raise ValueError(f"{uri}: no such file (job.json's annotations.files names it)") from None
            raise ValueError(f"{uri}: cannot be read ({error})") from None
        size = int(response.get("ContentLength") or 0)
        if size > max_bytes:
            response["Body"].close()
            raise ValueError(
                f"{uri}: {size / 2**20:,.0f} MiB; at most {max_bytes / 2**20:,.0f} MiB per export file are read (the "
                "step parses each file in memory): split the export, or export Label Studio's JSON_MIN or CSV, which "
                "are smaller"
            )
        body: bytes = response["Body"].read()
        return body

    def read_image_sizes(self, uris: Sequence[str]) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
        """Each image's size from its first ``HEADER_BYTES`` (the whole file when the header lies further in), read
        on the thread pool; an image that cannot be read or has no JPEG/PNG header is a problem, not an error."""

        def size_of(uri: str) -> tuple[int, int] | str:
            try:
                try:
                    return image_size(read_prefix_bytes(self._client, uri, HEADER_BYTES))
                except NeedMoreBytesError:
                    return image_size(read_bytes(self._client, uri))
            except ImageHeaderError as error:
                return f"{uri}: {error}"
            except ClientError as error:
                return f"{uri}: cannot be read ({error})"

        sizes: dict[str, tuple[int, int]] = {}
        problems: dict[str, str] = {}
        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
            for uri, found in zip(uris, pool.map(size_of, uris), strict=True):
                if isinstance(found, tuple):
                    sizes[uri] = found
                else:
                    problems[uri] = found
        return sizes, problems

    def read_json_if_present(self, uri: str) -> Any:
        try:
            text = read_bytes(self._client, uri)
        except ClientError:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None
