"""The whole-job consolidation's storage on S3 (:class:`truthflow.job_dataset.JobStore`): a module of its own, so
that the Lambdas reading single objects do not import the whole-job code at cold start."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any

from botocore.exceptions import ClientError

from truthflow.aws.s3 import iter_lines, iter_objects, parse_s3_uri, read_bytes, s3_uri, write_json
from truthflow.groundtruth.job_consolidation import WorkerResponseFile

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
