"""The ACS Lambda against hostile and unlucky batches: it never raises for data, answers every ``datasetObjectId``
once, leaves out only what is bad, keeps memory bounded, and treats its worker-statistics table as optional and
idempotent per batch."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from emulated_aws import DATA_BUCKET, REGION
from test_handler_annotation_consolidation import (
    box_answer,
    class_answer,
    data_object,
    make_stats_table,
    put_payload,
    request,
    stored_counts,
)

from truthflow.aws.worker_stats import MAX_LABELS, MIN_STORED_COUNT, WorkerStatsError, WorkerStatsTable, label_key
from truthflow.groundtruth.worker_answers import MAX_BOXES_PER_ANSWER

PEN = ("pen", 100, 100, 50, 20)


@pytest.fixture
def load_handler(load_handler: Any) -> Iterator[Any]:
    """``load_handler`` with the Lambda's log lines going to this test's captured stdout: Powertools keeps the
    stream its logger first wrote to, which belongs to an earlier test when several run."""
    redirected: list[tuple[Any, Any]] = []

    def load(name: str) -> Any:
        handler = load_handler(name)
        stream_handler = handler.logger.logger_handler
        redirected.append((stream_handler, stream_handler.stream))
        stream_handler.stream = sys.stdout
        return handler

    yield load
    for stream_handler, stream in reversed(redirected):
        stream_handler.stream = stream


def metrics_of(printed: str) -> dict[str, float]:
    """The EMF metrics Powertools printed (one JSON line per flush)."""
    found: dict[str, float] = {}
    for line in printed.splitlines():
        if line.startswith('{"_aws"'):
            document = json.loads(line)
            for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                found[definition["Name"]] = sum(document[definition["Name"]])
    return found


def content_of(response: list[dict[str, Any]], object_id: Any) -> dict[str, Any]:
    [entry] = [entry for entry in response if entry["datasetObjectId"] == object_id]
    content: dict[str, Any] = entry["consolidatedAnnotation"]["content"]
    return content


# --- item 13: one bad annotation, answer or box does not discard the good ones ----------------------------------


@pytest.mark.parametrize(
    ("bad_annotation", "reason"),
    [
        ({"annotationData": {"content": json.dumps({"crowd-image-classifier": {"label": "pen"}})}}, "has no workerId"),
        ({"workerId": "", "annotationData": {"content": "{}"}}, "has no workerId"),
        (
            {"workerId": "w4", "annotationData": {"content": {"crowd-image-classifier": {"label": "pencil"}}}},
            "annotationData.content: expected a JSON string, got dict",
        ),
        ({"workerId": "w4", "annotationData": "pencil"}, "annotationData: expected an object"),
        ("pencil", "annotations[3]: expected an object, got str"),
        # Half of a surrogate pair (valid JSON, not Unicode): in the worker id, or escaped inside the answer.
        ({"workerId": "w\ud800", "annotationData": {"content": "{}"}}, "workerId is not valid Unicode"),
        (
            {"workerId": "w4", "annotationData": {"content": '{"crowd-image-classifier": {"label": "p\\udfff"}}'}},
            "holds a lone surrogate escape",
        ),
    ],
)
def test_a_bad_annotation_is_left_out_and_the_other_workers_answers_count(
    s3, load_handler, lambda_context, capsys, bad_annotation, reason
):
    answers = [class_answer("w1", "pencil"), class_answer("w2", "pencil"), class_answer("w3", "pen"), bad_annotation]
    put_payload(s3, [data_object("0", answers)])
    response = load_handler("annotation_consolidation").lambda_handler(request(["pen", "pencil"]), lambda_context)
    content = content_of(response, "0")
    assert content["pens-v1-metadata"]["class-name"] == "pencil"
    printed = capsys.readouterr().out
    assert reason in printed and "answer not used" in printed
    assert metrics_of(printed)["AnswersRejected"] == 1


def test_one_bad_box_is_left_out_and_the_workers_other_boxes_count(s3, load_handler, lambda_context, capsys):
    pencil = ("pencil", 300, 300, 20, 80)
    broken = {"label": "pen", "left": "ten", "top": 1, "width": 2, "height": 3}
    sloppy = box_answer("w1", [PEN, pencil])
    content = json.loads(sloppy["annotationData"]["content"])
    content["boundingBox"]["boundingBoxes"].append(broken)
    sloppy["annotationData"]["content"] = json.dumps(content)
    put_payload(s3, [data_object("0", [sloppy, box_answer("w2", [PEN, pencil])])])
    response = load_handler("annotation_consolidation").lambda_handler(request(["pen", "pencil"]), lambda_context)
    annotations = content_of(response, "0")["pens-v1"]["annotations"]
    assert sorted(annotation["class_id"] for annotation in annotations) == [0, 1]  # both of w1's good boxes kept
    assert "boundingBox.boundingBoxes[2].left: expected a finite number, got 'ten' (box left out)" in (
        capsys.readouterr().out
    )


# --- item 12: one entry per datasetObjectId, numeric ids included ----------------------------------------------


def test_numeric_ids_are_answered_as_given_and_each_id_exactly_once(s3, load_handler, lambda_context):
    objects = [
        data_object("7", [class_answer("w1", "pen")]),
        {**data_object("x", [class_answer("w1", "pencil")]), "datasetObjectId": 7},
        {**data_object("x", [class_answer("w2", "pencil")]), "datasetObjectId": 0},
        data_object("7", [class_answer("w2", "pen")]),  # a repeated id: answered once, answers merged
        {**data_object("x", []), "datasetObjectId": True},
        {**data_object("x", []), "datasetObjectId": [1] * 3},
        {"annotations": []},
    ]
    put_payload(s3, objects)
    response = load_handler("annotation_consolidation").lambda_handler(request(["pen", "pencil"]), lambda_context)
    assert [entry["datasetObjectId"] for entry in response] == ["7", 7, 0]
    assert content_of(response, 7)["pens-v1-metadata"]["class-name"] == "pencil"
    assert content_of(response, "7")["pens-v1-metadata"]["class-name"] == "pen"


# --- item 12: bounded memory whatever a worker sends -----------------------------------------------------------


def test_an_answer_nested_a_thousand_levels_deep_is_refused_not_raised(s3, load_handler, lambda_context, capsys):
    deep = {"workerId": "w3", "annotationData": {"content": "[" * 1000 + "]" * 1000}}
    deeper = {"workerId": "w4", "annotationData": {"content": '{"crowd-image-classifier": ' + "[" * 5000}}
    put_payload(s3, [data_object("0", [class_answer("w1", "pen"), class_answer("w2", "pen"), deep, deeper])])
    response = load_handler("annotation_consolidation").lambda_handler(request(["pen", "pencil"]), lambda_context)
    assert content_of(response, "0")["pens-v1-metadata"]["class-name"] == "pen"
    printed = capsys.readouterr().out
    assert "nested 1000 levels deep; at most 64 levels are read" in printed
    assert metrics_of(printed)["AnswersOverLimit"] == 2


def test_ten_thousand_boxes_in_one_answer_are_refused_and_the_others_consolidated(
    s3, load_handler, lambda_context, capsys
):
    flood = box_answer("w3", [("pen", i % 600, i // 600, 5, 5) for i in range(10_000)])
    put_payload(s3, [data_object("0", [box_answer("w1", [PEN]), box_answer("w2", [PEN]), flood])])
    response = load_handler("annotation_consolidation").lambda_handler(request(["pen", "pencil"]), lambda_context)
    [annotation] = content_of(response, "0")["pens-v1"]["annotations"]
    assert annotation["left"] == 100
    printed = capsys.readouterr().out
    assert f"10,000 boxes; at most {MAX_BOXES_PER_ANSWER} per answer are read" in printed
    assert metrics_of(printed)["AnswersOverLimit"] == 1


def test_an_object_takes_at_most_nine_full_answers_of_boxes(s3, load_handler, lambda_context, capsys):
    full = [("pen", i % 40 * 10, i // 40 * 10, 8, 8) for i in range(MAX_BOXES_PER_ANSWER)]
    answers = [box_answer(f"w{worker}", full) for worker in range(10)]
    put_payload(s3, [data_object("0", answers)])
    response = load_handler("annotation_consolidation").lambda_handler(request(["pen", "pencil"]), lambda_context)
    assert len(content_of(response, "0")["pens-v1"]["annotations"]) == MAX_BOXES_PER_ANSWER
    printed = capsys.readouterr().out
    assert "at most 4,500 boxes per object are read" in printed
    assert metrics_of(printed)["AnswersOverLimit"] == 1


@pytest.mark.parametrize("payload", [b"{not json", b"[" * 100_000 + b"]" * 100_000, b'{"objects": []}'])
def test_an_unreadable_payload_is_answered_with_nothing_and_logged_not_raised(
    s3, load_handler, lambda_context, capsys, payload
):
    key = request(None)["payload"]["s3Uri"].removeprefix(f"s3://{DATA_BUCKET}/")
    s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=payload)
    assert load_handler("annotation_consolidation").lambda_handler(request(["pen"]), lambda_context) == []
    printed = capsys.readouterr().out
    assert "consolidation payload unusable" in printed
    assert metrics_of(printed)["BatchesNotConsolidated"] == 1


def test_without_readable_labels_every_object_comes_back_failed(s3, load_handler, lambda_context):
    put_payload(s3, [data_object("0", [class_answer("w1", "pen")]), data_object("1", [])])
    handler = load_handler("annotation_consolidation")  # no labels in the event, and no such labeling job
    response = handler.lambda_handler(request(None), lambda_context)
    assert [entry["datasetObjectId"] for entry in response] == ["0", "1"]
    for entry in response:
        metadata = entry["consolidatedAnnotation"]["content"]["pens-v1-metadata"]
        assert metadata["failure-reason"].startswith("the job's labels cannot be read")


def test_an_internal_error_returns_every_object_failed(s3, load_handler, lambda_context, monkeypatch):
    put_payload(s3, [data_object("0", [class_answer("w1", "pen")]), data_object(5, [])])
    handler = load_handler("annotation_consolidation")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError("engine ran out")

    monkeypatch.setattr(handler, "consolidate_batch", broken)
    response = handler.lambda_handler(request(["pen", "pencil"]), lambda_context)
    assert [entry["datasetObjectId"] for entry in response] == ["0", 5]
    assert content_of(response, 5)["pens-v1-metadata"]["failure-reason"] == "internal error: engine ran out"


# --- item 12: the worker-statistics table ----------------------------------------------------------------------


def classification_batch(labels: list[str], n_objects: int = 6) -> list[dict[str, Any]]:
    return [
        data_object(str(index), [class_answer(w, labels[index % len(labels)]) for w in ("w1", "w2", "w3")])
        for index in range(n_objects)
    ]


def test_worker_statistics_fit_dynamodb_with_fifty_labels_of_256_characters(
    s3, load_handler, lambda_context, monkeypatch, capsys
):
    dynamodb = make_stats_table()
    monkeypatch.setenv("WORKER_STATS_TABLE", "worker-stats")
    labels = [f"{index:03d}" + "x" * 253 for index in range(50)]
    # One worker per object: each answer's soft counts spread over every true label, so the worker's counts fill
    # all 50 x 50 cells (about 1.3 MB in one item, were the cells named by the labels).
    put_payload(s3, [data_object(str(index), [class_answer("w1", label)]) for index, label in enumerate(labels)])
    response = load_handler("annotation_consolidation").lambda_handler(request(labels), lambda_context)
    assert len(response) == len(labels)
    assert "WorkerStatsUnavailable" not in metrics_of(capsys.readouterr().out)
    stored = stored_counts(dynamodb, "w1", labels)
    # Every answer counted once; cells below MIN_STORED_COUNT are not stored, so at most that much per cell is lost.
    assert stored.sum() == pytest.approx(len(labels), abs=len(labels) ** 2 * MIN_STORED_COUNT)
    assert np.count_nonzero(stored) == len(labels) ** 2


def test_a_column_of_the_largest_label_set_fits_in_one_dynamodb_item():
    # DynamoDB counts an item's size as its attribute names' and values' bytes; a number takes at most 21 bytes.
    labels = [f"label-{index}" for index in range(MAX_LABELS)]
    counts = np.zeros((MAX_LABELS, MAX_LABELS))
    counts[:, 0] = 123456.654321  # one answered label, every true label
    table = WorkerStatsTable(None, "worker-stats")
    updates = list(table._updates("job", "w" * 256, labels, [label_key(label) for label in labels], counts))
    names = [name for update in updates for name in update["Update"]["ExpressionAttributeNames"].values()]
    key = updates[0]["Update"]["Key"]
    assert {json.dumps(update["Update"]["Key"]) for update in updates} == {json.dumps(key)}  # one item
    size = sum(len(name.encode()) + 21 for name in set(names)) + sum(len(json.dumps(v)) for v in key.values())
    assert size < 400 * 1024
    expression = max(len(update["Update"]["UpdateExpression"]) for update in updates)
    assert expression < 4096


def test_worker_statistics_refuse_more_labels_than_an_item_can_hold(aws):
    table = WorkerStatsTable(make_stats_table(), "worker-stats")
    labels = [f"l{index}" for index in range(MAX_LABELS + 1)]
    with pytest.raises(WorkerStatsError, match=f"carried skill is kept for at most {MAX_LABELS:,}"):
        table.load("pens-v1", ["w1"], labels)
    with pytest.raises(WorkerStatsError, match="at most"):
        table.add("pens-v1", ["w1"], labels, np.zeros((1, 1, 1)), batch="b")


def test_a_batch_sent_again_is_not_counted_twice(s3, load_handler, lambda_context, monkeypatch, capsys):
    dynamodb = make_stats_table()
    monkeypatch.setenv("WORKER_STATS_TABLE", "worker-stats")
    handler = load_handler("annotation_consolidation")
    batch = classification_batch(["pen", "pencil"])
    put_payload(s3, batch)
    first = handler.lambda_handler(request(["pen", "pencil"]), lambda_context)
    once = stored_counts(dynamodb, "w1", ["pen", "pencil"])
    put_payload(s3, list(reversed(batch)))  # the same answers again (Ground Truth retrying), in another order
    again = handler.lambda_handler(request(["pen", "pencil"]), lambda_context)
    assert stored_counts(dynamodb, "w1", ["pen", "pencil"]) == pytest.approx(once)
    assert once.sum() == pytest.approx(6, abs=1e-3)
    assert sorted(e["datasetObjectId"] for e in again) == sorted(e["datasetObjectId"] for e in first)
    assert metrics_of(capsys.readouterr().out)["BatchesSentAgain"] == 1
    put_payload(s3, classification_batch(["pen", "pencil"], n_objects=2))  # a different batch is counted
    handler.lambda_handler(request(["pen", "pencil"]), lambda_context)
    assert stored_counts(dynamodb, "w1", ["pen", "pencil"]).sum() == pytest.approx(8, abs=1e-3)


def test_a_missing_table_means_no_carried_skill_not_a_failed_batch(
    s3, load_handler, lambda_context, monkeypatch, capsys
):
    monkeypatch.setenv("WORKER_STATS_TABLE", "no-such-table")
    put_payload(s3, classification_batch(["pen", "pencil"]))
    response = load_handler("annotation_consolidation").lambda_handler(request(["pen", "pencil"]), lambda_context)
    assert [content_of(response, str(i))["pens-v1"] for i in range(6)] == [0, 1, 0, 1, 0, 1]
    printed = capsys.readouterr().out
    assert "carried worker skill not loaded" in printed
    assert metrics_of(printed)["WorkerStatsUnavailable"] == 2  # neither loaded nor stored


def test_a_throttled_table_means_no_carried_skill_not_a_failed_batch(
    s3, load_handler, lambda_context, monkeypatch, capsys
):
    make_stats_table()
    monkeypatch.setenv("WORKER_STATS_TABLE", "worker-stats")
    handler = load_handler("annotation_consolidation")
    throttled = ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "Query"
    )
    dynamodb = handler.client("dynamodb")
    monkeypatch.setattr(dynamodb, "query", lambda **_: (_ for _ in ()).throw(throttled))
    monkeypatch.setattr(dynamodb, "transact_write_items", lambda **_: (_ for _ in ()).throw(throttled))
    put_payload(s3, classification_batch(["pen", "pencil"]))
    response = handler.lambda_handler(request(["pen", "pencil"]), lambda_context)
    assert len(response) == 6 and all(
        entry["consolidatedAnnotation"]["content"]["pens-v1"] is not None for entry in response
    )
    assert metrics_of(capsys.readouterr().out)["WorkerStatsUnavailable"] == 2
    assert boto3.client("dynamodb", region_name=REGION).scan(TableName="worker-stats")["Count"] == 0


def test_a_skill_model_too_large_for_memory_falls_back_to_plurality_vote(
    s3, load_handler, lambda_context, monkeypatch, capsys
):
    from truthflow.groundtruth import consolidation_batch

    labels = [f"l{index}" for index in range(40)]
    workers = [f"w{index}" for index in range(30)]
    # 30 workers x 40 x 40 labels x 8 bytes = 384,000 bytes per model array; the budget is set just below.
    monkeypatch.setattr(consolidation_batch, "MAX_SKILL_MODEL_BYTES", 383_999)
    objects = [
        data_object(str(index), [class_answer(w, labels[index] if n < 2 else labels[0]) for n, w in enumerate(workers)])
        for index in range(3)
    ]
    objects[2]["annotations"] = [class_answer("w1", "l5"), class_answer("w2", "l3")]  # a tie: first in label order
    put_payload(s3, objects)
    response = load_handler("annotation_consolidation").lambda_handler(request(labels), lambda_context)
    names = [content_of(response, str(i))["pens-v1-metadata"]["class-name"] for i in range(3)]
    assert names == ["l0", "l0", "l3"]
    assert content_of(response, "1")["pens-v1-metadata"]["confidence"] == pytest.approx(28 / 30, abs=0.01)
    printed = capsys.readouterr().out
    assert "consolidated by plurality vote: a skill model of 30 workers x 40^2 labels" in printed
    assert metrics_of(printed)["SkillModelSkipped"] == 1
