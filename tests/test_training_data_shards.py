"""The sharded "Build training data" (plan, one call per shard, join) writes exactly what one pass writes: every file
equal byte for byte to :func:`build_training_data` over the same manifest, whatever the shard size, with renamed
colliding file names, repeated images and the stratified split; and the pieces on their own."""

from __future__ import annotations

import io
import itertools
import json
import random
from typing import Any

import pytest
from emulated_aws import DATA_BUCKET
from test_handler_build_training_data import (
    ARTIFACTS_BUCKET,
    ATTRIBUTE,
    JOB_ID,
    MANIFEST_KEY,
    TRAINING,
    build,
    event,
    put_job_file,
    put_manifest,
)

from truthflow.groundtruth.output_manifest import (
    LabeledBox,
    classification_annotation,
    detection_annotation,
    dump_manifest_line,
    output_manifest_line,
)
from truthflow.training_data import (
    ExclusionRule,
    ManifestSource,
    MemoryDestination,
    ShardNames,
    SplitConfig,
    TrainingDataPlanner,
    build_training_data,
    manifest_lines,
)

BOX_LABELS = ["pen", "pencil", "Stift ✓"]
FOLDER = f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/images"


def detection_manifest(n_images: int, seed: int) -> str:
    """Lines with shared stems (``cat.jpg`` in several folders, ``Cat.JPG``), the same image listed again, boxes to
    clip and exclude, images without boxes, unlabeled and blank lines, CRLF and lone CR line ends."""
    rng = random.Random(seed)
    lines = []
    for number in range(n_images):
        stem = rng.choice([f"img{number}", f"img{number % 9}", "cat", "Cat", "desk.v2", "x_0a1b2c3d"])
        source_ref = f"{FOLDER}/{rng.choice(['a', 'b', 'B'])}/{stem}{rng.choice(['.jpg', '.JPG', '.png', ''])}"
        boxes = [
            LabeledBox(rng.choice(BOX_LABELS), rng.randint(-40, 600), rng.randint(-40, 440), rng.randint(1, 120),
                       rng.randint(1, 120), round(rng.random(), 2))
            for _ in range(rng.choice([0, 1, 1, 2, 3, 6]))
        ]  # fmt: skip
        annotation = detection_annotation(
            label_attribute_name=ATTRIBUTE, class_names=BOX_LABELS, boxes=boxes, image_width=640, image_height=480,
            job_name="pens", creation_date="2026-01-01T00:00:00.000000",
        )  # fmt: skip
        line = dump_manifest_line(output_manifest_line({"source-ref": source_ref, "note": "ü"}, annotation))
        ending = rng.choice(["\n", "\n", "\r\n", "\r"])
        lines.append(line.removesuffix("\n") + ending)
        if rng.random() < 0.1:
            lines.append(lines[-1])  # the same image again
        if rng.random() < 0.05:
            lines.append(f'{{"source-ref": "{FOLDER}/unlabeled-{number}.jpg"}}\n')
        if rng.random() < 0.05:
            lines.append("\n")
    return "".join(lines)


def classification_manifest(n_images: int, seed: int) -> str:
    rng = random.Random(seed)
    lines = []
    for number in range(n_images):
        annotation = classification_annotation(
            label_attribute_name=ATTRIBUTE, class_names=["cat", "dog", "emu"],
            label=rng.choice(["cat", "dog", "dog", "emu"]), confidence=round(rng.random(), 2), job_name="pets",
            creation_date="2026-01-01T00:00:00.000000",
        )  # fmt: skip
        data_object = {"source-ref": f"{FOLDER}/{rng.choice('xy')}/{number % 13}.jpg"}
        lines.append(dump_manifest_line(output_manifest_line(data_object, annotation)))
    return "".join(lines)


def one_pass(text: str, labels: list[str], **settings: Any) -> dict[str, str | bytes]:
    """What :func:`build_training_data` writes for the manifest, read as a Lambda reads an S3 object."""
    destination = MemoryDestination()
    lines = [line.decode() for line in text.encode().splitlines()]
    source = ManifestSource(lambda: lines, label_attribute_name=ATTRIBUTE, class_names=labels)
    build_training_data(source, destination, class_names=labels, label_attribute_name=ATTRIBUTE, **settings)
    return destination.files


def dataset(s3: Any) -> dict[str, str]:
    files = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=DATA_BUCKET, Prefix=TRAINING):
        for entry in page.get("Contents", []):
            body = s3.get_object(Bucket=DATA_BUCKET, Key=entry["Key"])["Body"].read()
            files[entry["Key"].removeprefix(TRAINING)] = body.decode()
    return files


def sharded(s3: Any, load_handler: Any, monkeypatch: Any, context: Any, shard_lines: int) -> dict[str, Any]:
    monkeypatch.setenv("SHARD_LINES", str(shard_lines))
    monkeypatch.setenv("ARTIFACTS_BUCKET", ARTIFACTS_BUCKET)
    return build(load_handler("build_training_data"), event(), context)


@pytest.mark.parametrize("shard_lines", [1, 2, 7, 40, 100_000])
def test_boxes_sharded_equal_one_pass_byte_for_byte(s3, load_handler, monkeypatch, lambda_context, shard_lines):
    text = detection_manifest(90, seed=3)
    put_manifest(s3, text)
    put_job_file(s3, labels=BOX_LABELS, split={"validation_fraction": 0.3, "seed": 5},
                 exclusion={"min_box_width": 8, "min_box_height": 6, "min_confidence": 0.2})  # fmt: skip

    result = sharded(s3, load_handler, monkeypatch, lambda_context, shard_lines)

    expected = one_pass(text, BOX_LABELS, split=SplitConfig(0.3, 5), exclusion=ExclusionRule(8, 6, 0.2))
    written = dataset(s3)
    assert written == expected
    summary = json.loads(written["summary.json"])
    assert summary["renamed_images"] > 20 and "_2." in written["images.csv"]  # collisions and repeats were there
    assert summary["excluded"]["boxes_excluded"] > 0 and summary["images"]["validation"] > 0
    assert result["num_training_samples"] == len(written["train.manifest"].splitlines())
    # The parts are gone; the plan and the shard list stay as a record of how the job was split.
    work = s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix=f"jobs/{JOB_ID}/dataset/training-shards/parts/")
    assert {entry["Key"].rsplit("/", 1)[-1] for entry in work.get("Contents", [])} == {"result.json"}


@pytest.mark.parametrize("shard_lines", [1, 5, 1000])
def test_classification_sharded_equals_one_pass(s3, load_handler, monkeypatch, lambda_context, shard_lines):
    text = classification_manifest(60, seed=1)
    put_manifest(s3, text)
    labels = ["cat", "dog", "emu"]
    put_job_file(s3, task_type="image-classification", labels=labels, split={"validation_fraction": 0.25, "seed": 2},
                 exclusion={"min_confidence": 0.1})  # fmt: skip

    sharded(s3, load_handler, monkeypatch, lambda_context, shard_lines)

    expected = one_pass(text, labels, split=SplitConfig(0.25, 2), exclusion=ExclusionRule(min_confidence=0.1))
    assert dataset(s3) == expected


def test_the_plan_cuts_shards_at_line_starts_and_counts_what_comes_before(s3, load_handler, monkeypatch,
                                                                          lambda_context):  # fmt: skip
    text = detection_manifest(30, seed=8)
    put_manifest(s3, text)
    put_job_file(s3, labels=BOX_LABELS)
    monkeypatch.setenv("SHARD_LINES", "4")
    monkeypatch.setenv("ARTIFACTS_BUCKET", ARTIFACTS_BUCKET)
    handler = load_handler("build_training_data")

    planned = handler.lambda_handler({**event(), "step": "plan"}, lambda_context)

    shards = json.loads(s3.get_object(Bucket=DATA_BUCKET, Key=planned["shard_list"]["key"])["Body"].read())
    data = text.encode()
    assert planned["shards"] == len(shards) > 5
    assert shards[0]["start"] == 0 and shards[-1]["end"] == len(data)
    for earlier, later in itertools.pairwise(shards):
        assert earlier["end"] == later["start"] and data[later["start"] - 1 : later["start"]] in (b"\n", b"\r")
        for part in ("train", "validation"):
            assert later["before"][part]["images"] >= earlier["before"][part]["images"]
    assert sum(shard["images"] for shard in shards) == planned["images"]


def test_a_failed_shard_fails_the_join_naming_it_and_its_error(s3, load_handler, monkeypatch, lambda_context):
    put_manifest(s3, detection_manifest(12, seed=2))
    put_job_file(s3, labels=BOX_LABELS)
    monkeypatch.setenv("SHARD_LINES", "5")
    monkeypatch.setenv("ARTIFACTS_BUCKET", ARTIFACTS_BUCKET)
    handler = load_handler("build_training_data")
    planned = handler.lambda_handler({**event(), "step": "plan"}, lambda_context)
    shards = json.loads(s3.get_object(Bucket=DATA_BUCKET, Key=planned["shard_list"]["key"])["Body"].read())
    # The manifest is replaced after the plan: the first shard notices; the second never runs (a timeout, say).
    s3.put_object(Bucket=DATA_BUCKET, Key=MANIFEST_KEY, Body=b"{}\n")
    convert = {"step": "convert", "bucket": DATA_BUCKET, "job_id": JOB_ID, "plan_uri": planned["plan_uri"]}
    with pytest.raises(ValueError, match="was replaced after the training data was planned"):
        handler.lambda_handler({**convert, "shard": shards[0]}, lambda_context)

    with pytest.raises(ValueError) as failed:
        handler.lambda_handler({**event(), "step": "join", "training_plan": planned}, lambda_context)

    message = str(failed.value)
    assert f"{len(shards)} of {len(shards)} shards failed" in message
    assert "shard 0 (bytes 0-" in message and "ManifestChangedError" in message
    assert "shard 1 (bytes" in message and "no result (the conversion timed out" in message


def test_results_of_an_earlier_run_do_not_count(s3, load_handler, monkeypatch, lambda_context):
    put_manifest(s3, detection_manifest(8, seed=4))
    put_job_file(s3, labels=BOX_LABELS)
    sharded(s3, load_handler, monkeypatch, lambda_context, 100)  # an earlier run: its result.json stays
    handler = load_handler("build_training_data")
    planned = handler.lambda_handler({**event(), "step": "plan"}, lambda_context)

    with pytest.raises(ValueError, match=r"shard 0 .*no result"):
        handler.lambda_handler({**event(), "step": "join", "training_plan": planned}, lambda_context)


def test_a_join_called_again_returns_the_same_and_writes_nothing_again(s3, load_handler, monkeypatch, lambda_context):
    put_manifest(s3, detection_manifest(20, seed=9))
    put_job_file(s3, labels=BOX_LABELS)
    first = sharded(s3, load_handler, monkeypatch, lambda_context, 6)
    written = dataset(s3)
    handler = load_handler("build_training_data")
    planned = {"plan_uri": f"s3://{DATA_BUCKET}/jobs/{JOB_ID}/dataset/training-shards/plan.json",
               "shard_list": {"bucket": DATA_BUCKET, "key": f"jobs/{JOB_ID}/dataset/training-shards/shards.json"},
               "shards": 4, "images": 0}  # fmt: skip

    again = handler.lambda_handler({**event(), "step": "join", "training_plan": planned}, lambda_context)

    assert again == first and dataset(s3) == written


def test_a_shard_the_plan_does_not_have_is_refused(s3, load_handler, monkeypatch, lambda_context):
    put_manifest(s3, detection_manifest(5, seed=1))
    put_job_file(s3, labels=BOX_LABELS)
    monkeypatch.setenv("ARTIFACTS_BUCKET", ARTIFACTS_BUCKET)
    handler = load_handler("build_training_data")
    planned = handler.lambda_handler({**event(), "step": "plan"}, lambda_context)
    convert = {"step": "convert", "bucket": DATA_BUCKET, "job_id": JOB_ID, "plan_uri": planned["plan_uri"]}

    with pytest.raises(ValueError, match=r"plan\.json: no shard 7 in the plan"):
        handler.lambda_handler({**convert, "shard": {"index": 7}}, lambda_context)


def test_an_unknown_step_is_refused(s3, load_handler, monkeypatch, lambda_context):
    monkeypatch.setenv("ARTIFACTS_BUCKET", ARTIFACTS_BUCKET)
    with pytest.raises(ValueError, match="step must be 'plan', 'convert' or 'join', got None"):
        load_handler("build_training_data").lambda_handler(event(), lambda_context)


# --- the pieces ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 1 << 20])
def test_manifest_lines_split_as_a_whole_object_read_splits(chunk_size):
    data = "a\r\nbé\rc\n\n\r\nd\r\r\ne".encode()
    chunks = [data[start : start + chunk_size] for start in range(0, len(data), chunk_size)]

    lines = list(manifest_lines(chunks, start=100, first_number=7))

    assert [line.text for line in lines] == [part.decode() for part in data.splitlines()]
    assert [line.number for line in lines] == list(range(7, 7 + len(lines)))
    assert [line.start - 100 for line in lines] == [0, 3, 7, 9, 10, 12, 14, 16]
    assert lines[-1].end - 100 == len(data)


def test_a_line_that_is_not_utf8_is_named():
    with pytest.raises(ValueError, match=r"line 2: not UTF-8 \(invalid start byte at byte 2\)"):
        list(manifest_lines([b'{"a": 1}\n{\xff}\n']))


def test_renamed_images_are_the_same_whoever_converts_them():
    """The plan's names for each shard: images sharing a stem are renamed, repeats of one image numbered in order."""
    refs = ["s3://b/a/cat.jpg", "s3://b/b/Cat.png", "s3://b/dog.jpg", "s3://b/a/cat.jpg", "s3://b/a/cat.jpg"]
    lines = [
        dump_manifest_line(output_manifest_line({"source-ref": ref}, detection_annotation(
            label_attribute_name="x", class_names=["pen"], boxes=[LabeledBox("pen", 1, 1, 5, 5)], image_width=10,
            image_height=10, job_name="j")))
        for ref in refs
    ]  # fmt: skip
    planner = TrainingDataPlanner(shard_lines=2)
    offset = 0
    for number, line in enumerate(lines, start=1):
        planner.line(offset, number)
        offset += len(line.encode())
        record = ManifestSource(lambda line=line: [line])()
        planner.add(next(iter(record)))
    plan, names = planner.finish(end=offset)

    given = [names[index // 2].file_name(index % 2, ref) for index, ref in enumerate(refs)]

    assert [shard.images for shard in plan.shards] == [2, 2, 1]
    assert given[2] == "dog.jpg"
    assert given[0].startswith("cat_") and given[1].startswith("Cat_") and given[0] != given[1]
    assert given[3] == given[0].replace(".jpg", "_2.jpg") and given[4] == given[0].replace(".jpg", "_3.jpg")
    assert sum(shard_names.n_renamed for shard_names in names) == 4
    assert ShardNames.from_dict(json.loads(json.dumps(names[1].to_dict()))) == names[1]


def test_one_pass_reads_its_sources_once():
    text = detection_manifest(10, seed=0)
    reads = []

    def open_lines() -> io.StringIO:
        reads.append(1)
        return io.StringIO(text.replace("\r\n", "\n").replace("\r", "\n"))

    build_training_data(ManifestSource(open_lines, class_names=BOX_LABELS), MemoryDestination())
    assert len(reads) == 1


def test_bootstrap_data_leaves_the_calibration_images_out_of_every_shard(s3, load_handler, monkeypatch,
                                                                          lambda_context):  # fmt: skip
    text = detection_manifest(40, seed=6)
    put_manifest(s3, text)
    put_job_file(s3, labels=BOX_LABELS)
    lines = [line.decode() for line in text.encode().splitlines()]
    references = [json.loads(line)["source-ref"] for line in lines if line.strip()]
    calibration = sorted(set(references[::3]))
    plan_key = f"jobs/{JOB_ID}/manifests/automated-labeling-plan.json"
    plan = {"first_batch": sorted(set(references)), "calibration": calibration, "remaining": [], "note": ""}
    s3.put_object(Bucket=DATA_BUCKET, Key=plan_key, Body=json.dumps(plan).encode())
    automated = {
        "plan_uri": f"s3://{DATA_BUCKET}/{plan_key}", "bootstrap": True, "bootstrap_job_name": "tf-pens-boot",
        "model_name": "tf-pens-boot", "second_labeling_job_name": "tf-pens-2", "transform_batches": [],
        "target": 0.6, "confidence_level": 0.95, "price_per_task": 0.08, "workers_per_object": 3,
        "first_batch_workers_per_object": 5,
    }  # fmt: skip
    request = event()
    request["labeling"] = {**request["labeling"], "automated": automated}
    request["purpose"] = "bootstrap"
    monkeypatch.setenv("SHARD_LINES", "6")
    monkeypatch.setenv("ARTIFACTS_BUCKET", ARTIFACTS_BUCKET)

    result = build(load_handler("build_training_data"), request, lambda_context)

    folder = f"jobs/{JOB_ID}/dataset/bootstrap/training/"
    assert result["training"]["job_name"] == "tf-pens-boot" and result["train_manifest_uri"].endswith(
        f"{folder}train.manifest"
    )
    listing = s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix=folder)["Contents"]
    written = {entry["Key"].removeprefix(folder): s3.get_object(Bucket=DATA_BUCKET, Key=entry["Key"])["Body"].read()
               for entry in listing}  # fmt: skip
    kept = [line for line in lines if not line.strip() or json.loads(line).get("source-ref") not in calibration]
    destination = MemoryDestination()
    source = ManifestSource(lambda: kept, label_attribute_name=ATTRIBUTE, class_names=BOX_LABELS)
    build_training_data(source, destination, class_names=BOX_LABELS, label_attribute_name=ATTRIBUTE)
    assert {path: data.decode() for path, data in written.items()} == destination.files
    listed = {row.split(",")[1] for row in written["images.csv"].decode().splitlines()[1:]}
    assert listed and not listed & set(calibration)
