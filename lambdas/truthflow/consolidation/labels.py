"""Consolidate class labels by name: the entry point the CLI, the Lambdas and the benchmarks share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from truthflow.consolidation.coding import EncodedAnswers, IntArray, encode_answers, keep_last_answer_per_worker
from truthflow.consolidation.dawid_skene import DawidSkene, OneCoinDawidSkene
from truthflow.consolidation.majority_vote import FloatArray, majority_vote, vote_counts, vote_fractions

Method = Literal["ds", "mv", "onecoin"]
METHODS: tuple[Method, ...] = ("ds", "mv", "onecoin")
# Dawid-Skene with crowd-pooled priors is the most accurate on the benchmark data sets (see README, make bench).
DEFAULT_METHOD: Method = "ds"


@dataclass(frozen=True)
class LabelConsolidation:
    """Per item (in ``item_names`` order): ``labels`` (names), ``confidence`` (posterior of that label), and
    ``posteriors`` (n_items, n_classes). Per worker: ``confusion`` (n_workers, K, K) and ``accuracy``.
    ``duplicates_dropped`` counts repeated (item, worker) answers that were replaced by the worker's last one."""

    item_names: list[str]
    label_names: list[str]
    worker_names: list[str]
    labels: list[str]
    confidence: FloatArray
    posteriors: FloatArray
    confusion: FloatArray
    accuracy: FloatArray
    worker_counts: FloatArray
    duplicates_dropped: int
    method: Method


def consolidate_labels(
    items: Sequence[str],
    workers: Sequence[str],
    labels: Sequence[str],
    *,
    method: Method = DEFAULT_METHOD,
    label_set: Sequence[str] | None = None,
    prior_counts: FloatArray | None = None,
) -> LabelConsolidation:
    """Consolidate answers given as parallel name sequences (one entry per answer).

    Every item with at least one answer gets a label. ``prior_counts`` (n_workers, K, K), aligned with the
    workers in order of first appearance, carries confusion counts from earlier batches (Dawid-Skene methods).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    answers, dropped = keep_last_answer_per_worker(encode_answers(items, workers, labels, label_set=label_set))
    return _consolidate_encoded(answers, dropped, method, prior_counts)


def _consolidate_encoded(
    answers: EncodedAnswers, dropped: int, method: Method, prior_counts: FloatArray | None
) -> LabelConsolidation:
    shape = {"n_items": answers.n_items, "n_classes": answers.n_classes}
    if method == "mv":
        codes, confidence = majority_vote(answers.items, answers.labels, **shape)
        posteriors = vote_fractions(vote_counts(answers.items, answers.labels, **shape))
        confusion, accuracy, worker_counts = _empirical_skill(answers, codes)
    else:
        model = (DawidSkene if method == "ds" else OneCoinDawidSkene)().fit(
            answers.items,
            answers.workers,
            answers.labels,
            n_workers=answers.n_workers,
            prior_counts=prior_counts,
            **shape,
        )
        codes, confidence, posteriors = model.labels_, model.confidence_, model.posteriors_
        confusion, accuracy, worker_counts = model.confusion_, model.worker_accuracy_, model.worker_counts_
    return LabelConsolidation(
        item_names=answers.item_names,
        label_names=answers.label_names,
        worker_names=answers.worker_names,
        labels=[answers.label_names[code] for code in codes],
        confidence=confidence,
        posteriors=posteriors,
        confusion=confusion,
        accuracy=accuracy,
        worker_counts=worker_counts,
        duplicates_dropped=dropped,
        method=method,
    )


def _empirical_skill(answers: EncodedAnswers, consensus: IntArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Worker confusion against the majority-vote consensus, for reporting skill when the method is MV."""
    n_workers, n_classes = answers.n_workers, answers.n_classes
    flat = np.bincount(
        (answers.workers * n_classes + consensus[answers.items]) * n_classes + answers.labels,
        minlength=n_workers * n_classes * n_classes,
    )
    counts = flat.reshape(n_workers, n_classes, n_classes).astype(np.float64)
    totals = counts.sum(axis=2, keepdims=True)
    confusion = np.divide(counts, totals, out=np.full_like(counts, 1.0 / n_classes), where=totals > 0)
    answered = counts.sum(axis=(1, 2))
    accuracy = np.divide(np.einsum("wkk->w", counts), answered, out=np.zeros(n_workers), where=answered > 0)
    return confusion, accuracy, counts
