"""The S3 adapters the whole-job steps use, on moto: text files written through a temporary file (large ones
streamed, never held whole in memory) and worker-response files read concurrently but handed over in order."""

from __future__ import annotations

from typing import Any

from emulated_aws import DATA_BUCKET

from truthflow.aws import job_store
from truthflow.aws import s3 as s3_adapter
from truthflow.aws.job_store import S3JobStore
from truthflow.aws.s3 import ConcurrentS3Destination, S3Destination


def test_small_and_large_text_files_arrive_whole_and_large_ones_are_streamed(s3, monkeypatch):
    monkeypatch.setattr(s3_adapter, "SPOOL_BYTES", 64)
    streamed: list[str] = []
    original = s3.upload_fileobj

    def upload_fileobj(stream: Any, bucket: str, key: str, **kwargs: Any) -> None:
        streamed.append(key)
        original(stream, bucket, key, **kwargs)

    monkeypatch.setattr(s3, "upload_fileobj", upload_fileobj)
    large = "".join(f"line {number}: caf\u00e9\n" for number in range(1000))
    with ConcurrentS3Destination(S3Destination(s3, f"s3://{DATA_BUCKET}/out/")) as destination:
        with destination.open_text("small.txt") as stream:
            stream.write("pen\n")
        with destination.open_text("train.manifest") as stream:
            stream.write(large)
    assert streamed == ["out/train.manifest"]
    assert s3.get_object(Bucket=DATA_BUCKET, Key="out/small.txt")["Body"].read() == b"pen\n"
    assert s3.get_object(Bucket=DATA_BUCKET, Key="out/train.manifest")["Body"].read().decode() == large


def test_worker_response_files_come_back_in_key_order_with_unreadable_ones_named(s3, monkeypatch):
    monkeypatch.setattr(job_store, "MAX_READ_AHEAD", 3)
    keys = [f"responses/{number}/r.json" for number in range(20)]
    for number, key in enumerate(keys):
        if number != 7:
            s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=str(number).encode())
    files = list(S3JobStore(s3).read_files(DATA_BUCKET, keys))
    assert [file.key for file in files] == keys
    assert [file.text for number, file in enumerate(files) if number != 7] == [
        str(number).encode() for number in range(20) if number != 7
    ]
    assert files[7].error is not None and "NoSuchKey" in files[7].error
    assert sorted(S3JobStore(s3).list_keys(DATA_BUCKET, "responses/1")) == sorted(
        key for key in keys if key.startswith("responses/1") and key != "responses/7/r.json"
    )
