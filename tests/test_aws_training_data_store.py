"""The sharded training-data step's S3 storage on moto: streamed uploads of any size, ranged reads of the planned
manifest only, listing and deleting in batches."""

from __future__ import annotations

import pytest
from emulated_aws import DATA_BUCKET

from truthflow.aws.training_data_store import ManifestChangedError, S3TrainingDataStore


@pytest.fixture
def store(s3):
    return S3TrainingDataStore(s3)


def test_a_file_larger_than_a_part_is_streamed_in_parts_and_read_back_whole(s3, store):
    uri = f"s3://{DATA_BUCKET}/jobs/a/dataset/training/train.manifest"
    line = '{"source-ref": "s3://b/ü.jpg", "n": %d}\n'
    chunks = (line % number for number in range(400_000))  # ~17 MB: more than one 16 MiB part

    store.write_chunks(uri, chunks)

    text = "".join(store.read_text_chunks(uri))
    assert text == "".join(line % number for number in range(400_000))
    assert s3.head_object(Bucket=DATA_BUCKET, Key="jobs/a/dataset/training/train.manifest")["ETag"].endswith('-2"')


def test_an_empty_file_is_written(s3, store):
    uri = f"s3://{DATA_BUCKET}/jobs/a/dataset/training/validation.lst"
    store.write_chunks(uri, iter(()))
    assert s3.get_object(Bucket=DATA_BUCKET, Key="jobs/a/dataset/training/validation.lst")["Body"].read() == b""


def test_a_range_is_read_only_from_the_planned_manifest(s3, store):
    key = "jobs/a/dataset/consolidated.manifest"
    s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=b"first\nsecond\nthird\n")
    etag, size, chunks = store.open_manifest(f"s3://{DATA_BUCKET}/{key}")
    assert size == 19 and b"".join(chunks) == b"first\nsecond\nthird\n"

    assert b"".join(store.read_range(f"s3://{DATA_BUCKET}/{key}", 6, 13, etag)) == b"second\n"
    assert b"".join(store.read_range(f"s3://{DATA_BUCKET}/{key}", 13, 13, etag)) == b""
    s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=b"replaced\n")
    with pytest.raises(ManifestChangedError, match=r"consolidated\.manifest was replaced after the training data"):
        list(store.read_range(f"s3://{DATA_BUCKET}/{key}", 6, 13, etag))


def test_objects_are_listed_and_deleted_a_thousand_at_a_time(s3, store):
    prefix = "jobs/a/dataset/training-shards/parts/"
    uris = [f"s3://{DATA_BUCKET}/{prefix}{number}/train.manifest" for number in range(1500)]
    for uri in uris:
        s3.put_object(Bucket=DATA_BUCKET, Key=uri.split(f"{DATA_BUCKET}/")[1], Body=b"x")
    s3.put_object(Bucket=DATA_BUCKET, Key="jobs/a/dataset/training-shards/plan.json", Body=b"{}")

    assert store.list_uris(f"s3://{DATA_BUCKET}/{prefix}") == set(uris)
    store.delete(uris)
    assert store.list_uris(f"s3://{DATA_BUCKET}/{prefix}") == set()
    assert store.list_uris(f"s3://{DATA_BUCKET}/jobs/a/dataset/training-shards/") == {
        f"s3://{DATA_BUCKET}/jobs/a/dataset/training-shards/plan.json"
    }
