"""Per-job worker confusion counts in DynamoDB, so worker skill carries from one consolidation batch to the next.

Table: partition key ``job`` (S, the labeling job name), sort key ``worker`` (S). The sort key holds more than a
worker id, so that no item grows with the square of the label count:

``<worker>\\tc\\t<answered label key>`` (a *column*)
    One worker's counts for one label it answered: the number attribute ``t<true label key>`` is the expected number
    of times the worker answered that label when the truth was the other (soft counts from the model). Also
    ``worker_id`` and ``answered`` (the label itself), for people reading the table. An item holds at most one
    number per label, ~28 bytes each with its name, whatever the labels' length: :data:`MAX_LABELS` (10,000)
    labels stay under DynamoDB's 400 KB item size.
``<worker>\\tb\\t<batch key>\\t<part>`` (a *marker*)
    Written with the counts a batch adds for the worker, in one transaction, on condition that it does not exist
    yet: a batch that Ground Truth sends again (the same answers) finds its markers and adds nothing.

A label key is the first 16 hex digits of the label's SHA-256: fixed length, so keys stay far below DynamoDB's
1,024-byte sort-key limit whatever the label. Counts are added with ``ADD``, which the server applies atomically:
batches consolidated at the same time both land; a transaction that conflicts with another is retried. Loading is
one Query per worker over its columns.

The table is optional: the caller catches what this module raises (a missing table, throttling, a label set beyond
:data:`MAX_LABELS`) and consolidates without carried skill.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

from truthflow.consolidation.majority_vote import FloatArray

# Smallest expected count worth storing: soft counts below it are rounding noise.
MIN_STORED_COUNT = 1e-6
# Labels a column item can hold within DynamoDB's 400 KB item limit: 10,000 x (17-byte name + a number of at most
# 11 bytes) = 280 KB, plus the key and the answered label.
MAX_LABELS = 10_000
# Numbers added by one UpdateItem: its expression ("... ADD #c0 :v0, ..." at most 13 characters a number) stays
# below DynamoDB's 4 KB expression limit.
CELLS_PER_UPDATE = 250
# Actions in one TransactWriteItems (DynamoDB's limit is 100): the marker and the updates.
UPDATES_PER_TRANSACTION = 99
TRANSACTION_ATTEMPTS = 5
_LONGEST_PLAIN_WORKER_ID = 256
_COLUMN, _MARKER = "c", "b"


class WorkerStatsError(RuntimeError):
    """Carried skill cannot be used for this batch; the message says why."""


def label_key(label: str) -> str:
    return hashlib.sha256(label.encode("utf-8")).hexdigest()[:16]


def batch_key(pairs: Iterable[tuple[str | int, str]]) -> str:
    """The identity of a batch: a hash of its (dataset object id, worker) answers, whatever their order or file."""
    canonical = json.dumps(sorted([str(object_id), worker] for object_id, worker in pairs), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def _worker_key(worker: str) -> str:
    """The worker id in sort keys: as is when short and free of control characters, else a hash of it."""
    if len(worker.encode("utf-8")) <= _LONGEST_PLAIN_WORKER_ID and worker.isprintable():
        return worker
    return "sha256:" + hashlib.sha256(worker.encode("utf-8")).hexdigest()


class WorkerStatsTable:
    """Load and add confusion counts (n_workers, K, K) for the workers of one job."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def load(self, job: str, workers: Sequence[str], labels: Sequence[str]) -> FloatArray:
        """Counts accumulated so far, aligned with ``workers`` and ``labels``; zeros for unseen workers and cells."""
        _check_label_count(labels)
        code_of = {label_key(label): code for code, label in enumerate(labels)}
        counts = np.zeros((len(workers), len(labels), len(labels)))
        for row, worker in enumerate(workers):
            for item in self._columns(job, worker):
                answered = code_of.get(item["worker"]["S"].rsplit("\t", 1)[-1])
                if answered is None:
                    continue
                for name, value in item.items():
                    true = code_of.get(name[1:]) if name.startswith("t") else None
                    if true is not None:
                        counts[row, true, answered] = float(value["N"])
        return counts

    def _columns(self, job: str, worker: str) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#job = :job AND begins_with(#worker, :prefix)",
            "ExpressionAttributeNames": {"#job": "job", "#worker": "worker"},
            "ExpressionAttributeValues": {
                ":job": {"S": job},
                ":prefix": {"S": f"{_worker_key(worker)}\t{_COLUMN}\t"},
            },
        }
        while True:
            response = self._client.query(**request)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def add(self, job: str, workers: Sequence[str], labels: Sequence[str], counts: FloatArray, *, batch: str) -> int:
        """Add this batch's counts (n_workers, K, K) to each worker's stored counts, once per ``batch`` key (see
        :func:`batch_key`). Returns how many workers' counts were already stored for this batch (and were skipped)."""
        _check_label_count(labels)
        keys = [label_key(label) for label in labels]
        already = 0
        for row, worker in enumerate(workers):
            updates = list(self._updates(job, worker, labels, keys, counts[row]))
            for part, transaction in enumerate(_transactions(updates)):
                marker = {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "job": {"S": job},
                            "worker": {"S": f"{_worker_key(worker)}\t{_MARKER}\t{batch}\t{part}"},
                            "worker_id": {"S": worker},
                        },
                        "ConditionExpression": "attribute_not_exists(#worker)",
                        "ExpressionAttributeNames": {"#worker": "worker"},
                    }
                }
                if not self._transact([marker, *transaction]):
                    already += part == 0
        return already

    def _updates(
        self, job: str, worker: str, labels: Sequence[str], keys: Sequence[str], counts: FloatArray
    ) -> Iterator[dict[str, Any]]:
        """One UpdateItem per column the worker answered in this batch (and per CELLS_PER_UPDATE numbers), found
        with numpy: a worker's (K, K) counts are mostly zeros."""
        true_codes, answered_codes = np.nonzero(counts >= MIN_STORED_COUNT)
        order = np.argsort(answered_codes, kind="stable")  # by answered label, then true label
        true_codes, answered_codes = true_codes[order], answered_codes[order]
        starts = [int(start) for start in np.flatnonzero(np.diff(answered_codes, prepend=-1))]
        for start, end in zip(starts, [*starts[1:], len(answered_codes)], strict=True):
            answered = int(answered_codes[start])
            column = f"{_worker_key(worker)}\t{_COLUMN}\t{keys[answered]}"
            cells = [(f"t{keys[true]}", float(counts[true, answered])) for true in true_codes[start:end]]
            for first in range(0, len(cells), CELLS_PER_UPDATE):
                chunk = cells[first : first + CELLS_PER_UPDATE]
                yield {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"job": {"S": job}, "worker": {"S": column}},
                        "UpdateExpression": "SET #worker_id = :worker, #answered = :answered ADD "
                        + ", ".join(f"#c{i} :v{i}" for i in range(len(chunk))),
                        "ExpressionAttributeNames": {
                            "#worker_id": "worker_id",
                            "#answered": "answered",
                            **{f"#c{i}": name for i, (name, _) in enumerate(chunk)},
                        },
                        "ExpressionAttributeValues": {
                            ":worker": {"S": worker},
                            ":answered": {"S": labels[answered]},
                            **{f":v{i}": {"N": f"{value:.6f}"} for i, (_, value) in enumerate(chunk)},
                        },
                    }
                }

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        """Write ``items`` at once; False when the marker (the first item) exists, i.e. this part is stored."""
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                self._client.transact_write_items(TransactItems=items)
                return True
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    return False
                if "TransactionConflict" not in reasons or attempt == TRANSACTION_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0.05, 0.2) * 2**attempt)  # another batch is updating the same items
        return False


def _transactions(updates: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Updates grouped into transactions of at most UPDATES_PER_TRANSACTION, never one item twice in a group
    (DynamoDB refuses that); deterministic, so a batch sent again makes the same parts."""
    group: list[dict[str, Any]] = []
    keys: set[str] = set()
    for update in updates:
        key = update["Update"]["Key"]["worker"]["S"]
        if len(group) == UPDATES_PER_TRANSACTION or key in keys:
            yield group
            group, keys = [], set()
        group.append(update)
        keys.add(key)
    if group:
        yield group


def _check_label_count(labels: Sequence[str]) -> None:
    if len(labels) > MAX_LABELS:
        raise WorkerStatsError(f"{len(labels):,} labels; carried skill is kept for at most {MAX_LABELS:,}")
