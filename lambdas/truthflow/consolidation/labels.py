"""Consolidate class labels by name: the entry point the CLI, the Lambdas and the benchmarks share.

Methods: ``auto`` (default) picks, per data set, the latent-class model that best predicts held-out answers
(:mod:`~truthflow.consolidation.model_choice`): Dawid-Skene at four prior strengths, one-coin, or Dawid-Skene with
item subtypes. ``ds`` makes the same choice among the Dawid-Skene prior strengths only; ``subtypes`` and ``onecoin``
fit that one model; ``mv`` is majority vote. Gold questions (``gold``: item -> label) fix those items' labels in
every method and anchor each worker's skill; the result scores every worker on them.

Memory is linear in the answers: when per-worker confusion matrices or per-item posteriors over every label would
need more than ``DENSE_CELL_BUDGET`` cells and more than ``CELLS_PER_ANSWER`` per answer (thousands of distinct
labels), every method except ``mv`` falls back to one-coin over the labels each item received
(:mod:`~truthflow.consolidation.many_labels`) and says so in ``notes``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp

from truthflow.consolidation.coding import (
    EncodedAnswers,
    IntArray,
    encode_answers,
    keep_last_answer_per_worker,
    natural_label_order,
)
from truthflow.consolidation.dawid_skene import ConvergenceWarning
from truthflow.consolidation.known_labels import KnownLabels
from truthflow.consolidation.majority_vote import FloatArray, majority_vote, vote_counts, vote_fractions
from truthflow.consolidation.many_labels import AnsweredCells, SparseOneCoin, sparse_majority_vote
from truthflow.consolidation.model_choice import (
    ONE_COIN,
    SUBTYPES,
    Candidate,
    choose_model,
    dawid_skene_candidates,
    default_candidates,
)

Method = Literal["auto", "ds", "subtypes", "onecoin", "mv"]
METHODS: tuple[Method, ...] = ("auto", "ds", "subtypes", "onecoin", "mv")
DEFAULT_METHOD: Method = "auto"
DENSE_CELL_BUDGET = 1 << 23
CELLS_PER_ANSWER = 64
# The final fit's stopping rule: objective gain per answer below FINAL_TOL, or FINAL_MAX_ITER EM steps.
FINAL_TOL = 1e-6
FINAL_MAX_ITER = 300


@dataclass(frozen=True)
class WorkerSkill:
    """Per-worker confusion, (W, K, K) rows = true class: stored whole, or as one-coin accuracies (W,) when K is too
    large to store whole (:meth:`dense` then builds the matrices, W * K * K cells)."""

    n_classes: int
    matrices: FloatArray | None = None
    one_coin: FloatArray | None = None

    def dense(self) -> FloatArray:
        if self.matrices is not None:
            return self.matrices
        accuracy = np.zeros(0) if self.one_coin is None else self.one_coin
        k = self.n_classes
        off = (1.0 - accuracy) / max(k - 1, 1)
        matrices = np.repeat(off[:, np.newaxis, np.newaxis], k, axis=1).repeat(k, axis=2)
        matrices[:, np.arange(k), np.arange(k)] = accuracy[:, np.newaxis]
        return matrices


@dataclass(frozen=True)
class WorkerCounts:
    """Expected confusion counts per worker, (W, K, K) rows = consolidated class, columns = answered class: the
    statistics carried to the next batch. Kept whole, or built on demand as cells (:meth:`cells`)."""

    shape: tuple[int, int, int]
    whole: FloatArray | None = None
    build_cells: Callable[[], tuple[IntArray, IntArray, IntArray, FloatArray]] | None = None

    def cells(self) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
        """Non-zero counts as parallel arrays ``(worker, true class, answered class, count)``."""
        if self.whole is not None:
            worker, true, answered = np.nonzero(self.whole)
            return worker, true, answered, self.whole[worker, true, answered]
        if self.build_cells is None:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty, np.zeros(0)
        return self.build_cells()

    def dense(self) -> FloatArray:
        if self.whole is not None:
            return self.whole
        counts = np.zeros(self.shape)
        worker, true, answered, values = self.cells()
        np.add.at(counts, (worker, true, answered), values)
        return counts


@dataclass(frozen=True)
class GoldScores:
    """Gold questions: how many were given and answered, and per worker (``worker_names`` order) how many gold items
    they answered and how many of those answers were right."""

    n_given: int = 0
    n_answered: int = 0
    answers: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    correct: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def accuracy(self) -> FloatArray:
        """Accuracy on gold per worker; NaN for a worker who answered no gold item."""
        rate: FloatArray = np.divide(
            self.correct, self.answers, out=np.full(self.answers.shape, np.nan), where=self.answers > 0
        )
        return rate


@dataclass(frozen=True)
class LabelConsolidation:
    """Per item (in ``item_names`` order): ``labels`` (names) and ``confidence`` (posterior of that label). Per worker
    (``worker_names`` order): ``accuracy`` estimated by the model, and the ``gold`` scores. ``model`` names what was
    fitted (for ``auto``/``ds``, the chosen candidate; ``model_scores`` holds every candidate's held-out score).
    ``ties`` counts items whose majority vote was tied (``mv``). ``duplicates_dropped`` counts repeated (item,
    worker) answers that were replaced by the worker's last one. ``notes`` says when a fallback was used."""

    item_names: list[str]
    label_names: list[str]
    worker_names: list[str]
    labels: list[str]
    confidence: FloatArray
    accuracy: FloatArray
    duplicates_dropped: int
    method: Method
    model: str
    posterior_matrix: sp.csr_matrix
    skill: WorkerSkill
    counts: WorkerCounts
    model_scores: dict[str, float] = field(default_factory=dict)
    ties: int = 0
    gold: GoldScores = field(default_factory=GoldScores)
    notes: tuple[str, ...] = ()

    @property
    def posteriors(self) -> FloatArray:
        """(n_items, n_classes) posteriors; builds a dense array."""
        dense: FloatArray = self.posterior_matrix.toarray()
        return dense

    @property
    def confusion(self) -> FloatArray:
        """(n_workers, K, K) estimated confusion matrices, rows = true class."""
        return self.skill.dense()

    @property
    def worker_counts(self) -> FloatArray:
        """(n_workers, K, K) this input's expected confusion counts (see :class:`WorkerCounts`)."""
        return self.counts.dense()


def consolidate_labels(
    items: Sequence[str],
    workers: Sequence[str],
    labels: Sequence[str],
    *,
    method: Method = DEFAULT_METHOD,
    label_set: Sequence[str] | None = None,
    prior_counts: FloatArray | None = None,
    gold: Mapping[str, str] | None = None,
) -> LabelConsolidation:
    """Consolidate answers given as parallel name sequences (one entry per answer).

    Every item with at least one answer gets a label; an item in ``gold`` gets its gold label. ``prior_counts``
    (n_workers, K, K), aligned with the workers in order of first appearance, carries confusion counts from earlier
    batches. A gold label outside ``label_set`` is a ``ValueError``; without ``label_set`` the classes are the labels
    answered or given as gold.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    gold = dict(gold or {})
    if label_set is None:
        label_set = natural_label_order([*labels, *gold.values()])
    allowed = set(label_set)
    for item, label in gold.items():
        if label not in allowed:
            raise ValueError(f"gold item {item!r}: label {label!r} is not in the label set {list(label_set)}")
    answers, dropped = keep_last_answer_per_worker(encode_answers(items, workers, labels, label_set=label_set))
    known = _known_labels(answers, gold)
    if method == "mv":
        result = _majority_vote(answers, known)
    elif not _dense_fits(answers, 1):
        result = _many_labels(answers, known, prior_counts)
    else:
        candidates = _candidates(method, answers)
        choice = choose_model(
            candidates,
            answers.items,
            answers.workers,
            answers.labels,
            n_items=answers.n_items,
            n_workers=answers.n_workers,
            n_classes=answers.n_classes,
            prior_counts=prior_counts,
            known=known,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model = choice.chosen.make(FINAL_TOL, FINAL_MAX_ITER).fit(
                answers.items,
                answers.workers,
                answers.labels,
                n_items=answers.n_items,
                n_workers=answers.n_workers,
                n_classes=answers.n_classes,
                prior_counts=prior_counts,
                known=known,
            )
        result = _Fitted(
            model.labels_,
            model.confidence_,
            sp.csr_matrix(model.posteriors_),
            WorkerSkill(answers.n_classes, matrices=model.confusion_),
            model.worker_accuracy_,
            WorkerCounts(model.worker_counts_.shape, whole=model.worker_counts_),
            choice.chosen.name,
            choice.scores,
            notes=_convergence_notes(caught),
        )
    return LabelConsolidation(
        item_names=answers.item_names,
        label_names=answers.label_names,
        worker_names=answers.worker_names,
        labels=[answers.label_names[code] for code in result.codes.tolist()],
        confidence=result.confidence,
        accuracy=result.accuracy,
        duplicates_dropped=dropped,
        method=method,
        model=result.model,
        posterior_matrix=result.posteriors,
        skill=result.skill,
        counts=result.counts,
        model_scores=result.scores,
        ties=result.ties,
        gold=_gold_scores(answers, known, len(gold)),
        notes=result.notes,
    )


@dataclass(frozen=True)
class _Fitted:
    codes: IntArray
    confidence: FloatArray
    posteriors: sp.csr_matrix
    skill: WorkerSkill
    accuracy: FloatArray
    counts: WorkerCounts
    model: str
    scores: dict[str, float] = field(default_factory=dict)
    ties: int = 0
    notes: tuple[str, ...] = ()


def _known_labels(answers: EncodedAnswers, gold: Mapping[str, str]) -> KnownLabels:
    """Gold items that have answers, as codes (gold items nobody answered have no code and no row in the output)."""
    item_code = {name: code for code, name in enumerate(answers.item_names)}
    label_code = {name: code for code, name in enumerate(answers.label_names)}
    pairs = [(item_code[item], label_code[label]) for item, label in gold.items() if item in item_code]
    if not pairs:
        return KnownLabels.none()
    codes = np.array(pairs, dtype=np.int64)
    return KnownLabels(codes[:, 0].copy(), codes[:, 1].copy())


def _dense_fits(answers: EncodedAnswers, subtypes: int) -> bool:
    cells = subtypes * answers.n_classes * max(answers.n_items, answers.n_workers * answers.n_classes)
    return cells <= max(DENSE_CELL_BUDGET, CELLS_PER_ANSWER * answers.n_answers)


def _candidates(method: Method, answers: EncodedAnswers) -> list[Candidate]:
    chosen = {
        "auto": default_candidates(),
        "ds": dawid_skene_candidates(),
        "subtypes": (SUBTYPES,),
        "onecoin": (ONE_COIN,),
    }[method]
    fitting = [candidate for candidate in chosen if _dense_fits(answers, candidate.subtypes)]
    # Subtypes multiply memory; if they do not fit, the plain models still do (the caller checked one subtype).
    return fitting or list(dawid_skene_candidates()[-1:])


def _majority_vote(answers: EncodedAnswers, known: KnownLabels) -> _Fitted:
    n_items, n_classes = answers.n_items, answers.n_classes
    if not _dense_fits(answers, 1):
        vote, cells, shares = sparse_majority_vote(
            answers.items, answers.labels, n_items=n_items, n_classes=n_classes, known=known
        )
        return _Fitted(
            vote.labels,
            vote.confidence,
            cells.matrix(shares, answers.n_classes),
            WorkerSkill(answers.n_classes, one_coin=_agreement(answers, vote.labels)),
            _agreement(answers, vote.labels),
            _hard_counts(answers, vote.labels),
            "mv",
            ties=vote.ties,
        )
    vote = majority_vote(answers.items, answers.labels, n_items=n_items, n_classes=n_classes)
    codes, confidence = vote.labels.copy(), vote.confidence.copy()
    codes[known.items], confidence[known.items] = known.labels, 1.0
    posteriors = vote_fractions(vote_counts(answers.items, answers.labels, n_items=n_items, n_classes=n_classes))
    posteriors[known.items] = 0.0
    posteriors[known.items, known.labels] = 1.0
    confusion, accuracy, counts = _empirical_skill(answers, codes)
    return _Fitted(
        codes,
        confidence,
        sp.csr_matrix(posteriors),
        WorkerSkill(answers.n_classes, matrices=confusion),
        accuracy,
        WorkerCounts(counts.shape, whole=counts),
        "mv",
        ties=vote.ties,
    )


def _many_labels(answers: EncodedAnswers, known: KnownLabels, prior_counts: FloatArray | None) -> _Fitted:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = SparseOneCoin(tol=FINAL_TOL, max_iter=FINAL_MAX_ITER).fit(
            answers.items,
            answers.workers,
            answers.labels,
            n_items=answers.n_items,
            n_workers=answers.n_workers,
            n_classes=answers.n_classes,
            known=known,
            prior_counts=prior_counts,
        )
    cells = model.cells_
    note = (
        f"{answers.n_classes} labels are too many for a confusion matrix per worker in bounded memory: "
        "used one-coin over the labels each item received"
    )
    return _Fitted(
        model.labels_,
        model.confidence_,
        cells.matrix(model.cell_posteriors_, answers.n_classes),
        WorkerSkill(answers.n_classes, one_coin=model.accuracy_),
        model.accuracy_,
        _soft_counts(answers, cells, model.cell_posteriors_),
        "onecoin (answered labels)",
        notes=(note, *_convergence_notes(caught)),
    )


def _convergence_notes(caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    """Convergence warnings of the final fit, as notes the caller shows (other warnings are passed on)."""
    notes = []
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            notes.append(f"{warning.message}; the labels are those of the last iteration")
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return tuple(notes)


def _hard_counts(answers: EncodedAnswers, consensus: IntArray) -> WorkerCounts:
    """Counts of each worker's answers against the consensus label, built on demand."""
    shape = (answers.n_workers, answers.n_classes, answers.n_classes)

    def build() -> tuple[IntArray, IntArray, IntArray, FloatArray]:
        keys = (answers.workers * shape[1] + consensus[answers.items]) * shape[2] + answers.labels
        return _summed(keys, np.ones(answers.n_answers), shape)

    return WorkerCounts(shape, build_cells=build)


def _soft_counts(answers: EncodedAnswers, cells: AnsweredCells, posterior: FloatArray) -> WorkerCounts:
    """Expected counts built on demand: each answer is spread over its item's cells by their posterior. That is one
    entry per (answer, cell of its item), so it is built only when asked for."""
    shape = (answers.n_workers, answers.n_classes, answers.n_classes)

    def build() -> tuple[IntArray, IntArray, IntArray, FloatArray]:
        first = cells.start[answers.items]
        lengths = cells.start[answers.items + 1] - first
        answer = np.repeat(np.arange(answers.n_answers), lengths)
        offset = np.arange(answer.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        cell = first[answer] + offset
        keys = (answers.workers[answer] * shape[1] + cells.label[cell]) * shape[2] + answers.labels[answer]
        return _summed(keys, posterior[cell], shape)

    return WorkerCounts(shape, build_cells=build)


def _summed(
    keys: IntArray, weights: FloatArray, shape: tuple[int, int, int]
) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
    """Sum weights per flat (worker, true, answered) key; returns the non-zero cells."""
    distinct, inverse = np.unique(keys, return_inverse=True)
    values = np.bincount(inverse.reshape(-1), weights=weights, minlength=distinct.size).astype(np.float64)
    keep = values > 0
    distinct, values = distinct[keep], values[keep]
    return distinct // (shape[1] * shape[2]), (distinct // shape[2]) % shape[1], distinct % shape[2], values


def _agreement(answers: EncodedAnswers, consensus: IntArray) -> FloatArray:
    """Each worker's share of answers equal to the consensus (0 for a worker without answers)."""
    right = answers.labels == consensus[answers.items]
    agree = np.bincount(answers.workers, weights=right, minlength=answers.n_workers)
    total = np.bincount(answers.workers, minlength=answers.n_workers)
    rate: FloatArray = np.divide(agree, total, out=np.zeros(answers.n_workers), where=total > 0)
    return rate


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
    return confusion, _agreement(answers, consensus), counts


def _gold_scores(answers: EncodedAnswers, known: KnownLabels, n_given: int) -> GoldScores:
    known_label = np.full(answers.n_items, -1, dtype=np.int64)
    known_label[known.items] = known.labels
    on_gold = known_label[answers.items] >= 0
    workers = answers.workers[on_gold]
    right = answers.labels[on_gold] == known_label[answers.items[on_gold]]
    return GoldScores(
        n_given=n_given,
        n_answered=known.size,
        answers=np.bincount(workers, minlength=answers.n_workers).astype(np.int64),
        correct=np.bincount(workers[right], minlength=answers.n_workers).astype(np.int64),
    )
