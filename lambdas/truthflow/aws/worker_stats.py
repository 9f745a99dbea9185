"""Per-job worker confusion counts in DynamoDB, so worker skill carries from one consolidation batch to the next.

Table: partition key ``job`` (S, the labeling job name), sort key ``worker`` (S). Each confusion cell is a
number attribute named by the JSON pair ``["<true label>", "<answered label>"]``, so counts stay meaningful
whatever order a batch sees the labels in. Updates use ``ADD``, which DynamoDB applies atomically on the
server: two batches consolidated at the same time both land, with no read-modify-write to lose either.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from truthflow.consolidation.majority_vote import FloatArray

# Smallest expected count worth storing: soft counts below it are rounding noise.
MIN_STORED_COUNT = 1e-6
# DynamoDB caps an expression at 4 KB; this many ADD clauses stay well under it.
CELLS_PER_UPDATE = 100
BATCH_GET_LIMIT = 100


def _cell_name(true_label: str, answered_label: str) -> str:
    return json.dumps([true_label, answered_label])


def _chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class WorkerStatsTable:
    """Load and add confusion counts (n_workers, K, K) for the workers of one job."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def load(self, job: str, workers: Sequence[str], labels: Sequence[str]) -> FloatArray:
        """Counts accumulated so far, aligned with ``workers`` and ``labels``; zeros for unseen workers."""
        counts = np.zeros((len(workers), len(labels), len(labels)))
        row_of = {worker: row for row, worker in enumerate(workers)}
        for chunk in _chunks(list(dict.fromkeys(workers)), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self._table: {"Keys": [{"job": {"S": job}, "worker": {"S": worker}} for worker in chunk]}
            }
            while request:
                response = self._client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._table, []):
                    row = row_of[item["worker"]["S"]]
                    for true_code, true_label in enumerate(labels):
                        for answered_code, answered_label in enumerate(labels):
                            cell = item.get(_cell_name(true_label, answered_label))
                            if cell is not None:
                                counts[row, true_code, answered_code] = float(cell["N"])
                request = response.get("UnprocessedKeys") or {}
        return counts

    def add(self, job: str, workers: Sequence[str], labels: Sequence[str], counts: FloatArray) -> None:
        """Atomically add this batch's counts (n_workers, K, K) to each worker's stored counts."""
        for row, worker in enumerate(workers):
            cells = [
                (_cell_name(true_label, answered_label), float(counts[row, true_code, answered_code]))
                for true_code, true_label in enumerate(labels)
                for answered_code, answered_label in enumerate(labels)
                if counts[row, true_code, answered_code] >= MIN_STORED_COUNT
            ]
            for chunk in _chunks(cells, CELLS_PER_UPDATE):
                names = {f"#c{index}": name for index, (name, _) in enumerate(chunk)}
                values = {f":v{index}": {"N": f"{value:.6f}"} for index, (_, value) in enumerate(chunk)}
                self._client.update_item(
                    TableName=self._table,
                    Key={"job": {"S": job}, "worker": {"S": worker}},
                    UpdateExpression="ADD " + ", ".join(f"#c{i} :v{i}" for i in range(len(chunk))),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
