"""Consolidate class labels by name: the entry point the CLI, the Lambdas and the benchmarks share.

Methods: ``auto`` (default) picks, per data set, the latent-class model that best predicts held-out answers
(:mod:`~truthflow.consolidation.model_choice`): Dawid-Skene at four prior strengths, one-coin, or Dawid-Skene with
item subtypes; when the held-out answers cannot tell several apart, their posteriors are averaged
(:mod:`~truthflow.consolidation.finalists`). ``ds`` makes the same choice among the Dawid-Skene prior strengths
only; ``subtypes`` and ``onecoin`` fit that one model; ``mv`` is majority vote. Gold questions (``gold``: item ->
label) fix those items' labels in every method and anchor each worker's skill; the result scores every worker on
them.

Memory is linear in the answers: when per-worker confusion matrices or per-item posteriors over every label would
need more than ``DENSE_CELL_BUDGET`` cells and more than ``CELLS_PER_ANSWER`` per answer (thousands of distinct
labels), every method except ``mv`` falls back to one-coin over the labels each item received
(:mod:`~truthflow.consolidation.many_labels`) and says so in ``notes``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
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
from truthflow.consolidation.finalists import fit_finalists
from truthflow.consolidation.known_labels import KnownLabels
from truthflow.consolidation.majority_vote import FloatArray, majority_vote, vote_counts, vote_fractions
from truthflow.consolidation.many_labels import SparseOneCoin, sparse_majority_vote
from truthflow.consolidation.model_choice import (
    ONE_COIN,
    SUBTYPES,
    Candidate,
    choose_model,
    dawid_skene_candidates,
    default_candidates,
)
from truthflow.consolidation.worker_statistics import (
    GoldScores,
    WorkerCounts,
    WorkerSkill,
    agreement,
    empirical_skill,
    gold_scores,
    hard_counts,
    soft_counts,
)

Method = Literal["auto", "ds", "subtypes", "onecoin", "mv"]
METHODS: tuple[Method, ...] = ("auto", "ds", "subtypes", "onecoin", "mv")
DEFAULT_METHOD: Method = "auto"
DENSE_CELL_BUDGET = 1 << 23
CELLS_PER_ANSWER = 64
# The final fit's stopping rule: objective gain per answer below FINAL_TOL, or FINAL_MAX_ITER EM steps.
FINAL_TOL = 1e-5
FINAL_MAX_ITER = 300


@dataclass(frozen=True)
class LabelConsolidation:
    """Per item (in ``item_names`` order): ``labels`` (names) and ``confidence`` (posterior of that label). Per worker
    (``worker_names`` order): ``accuracy`` estimated by the model, and the ``gold`` scores. ``model`` names what was
    fitted (for ``auto``/``ds``, the chosen candidate, or ``mean of ...`` the ``model_finalists`` the held-out answers
    could not tell apart; ``model_scores`` holds every candidate's held-out score).
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
    model_finalists: tuple[str, ...] = ()
    ties: int = 0
    gold: GoldScores = field(default_factory=GoldScores)
    notes: tuple[str, ...] = ()

    def with_duplicates_dropped(self, dropped: int) -> LabelConsolidation:
        return replace(self, duplicates_dropped=dropped)

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
    return consolidate_encoded(
        answers, method=method, known=_known_labels(answers, gold), n_gold=len(gold), prior_counts=prior_counts
    ).with_duplicates_dropped(dropped)


def consolidate_encoded(
    answers: EncodedAnswers,
    *,
    method: Method = DEFAULT_METHOD,
    known: KnownLabels | None = None,
    n_gold: int | None = None,
    prior_counts: FloatArray | None = None,
) -> LabelConsolidation:
    """:func:`consolidate_labels` on answers already coded (one answer per (item, worker)); ``known`` gold as codes,
    ``n_gold`` the number of gold items given (answered or not; default: ``known.size``)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    known = KnownLabels.none() if known is None else known
    if method == "mv":
        result = _majority_vote(answers, known)
    elif not _dense_fits(answers, 1):
        result = _many_labels(answers, known, prior_counts)
    else:
        candidates = _candidates(method, answers)
        shape = {"n_items": answers.n_items, "n_workers": answers.n_workers, "n_classes": answers.n_classes}
        choice = choose_model(
            candidates, answers.items, answers.workers, answers.labels, prior_counts=prior_counts, known=known, **shape
        )
        final = fit_finalists(
            choice,
            candidates,
            answers.items,
            answers.workers,
            answers.labels,
            prior_counts=prior_counts,
            known=known,
            tol=FINAL_TOL,
            max_iter=FINAL_MAX_ITER,
            **shape,
        )
        result = _Fitted(
            final.labels,
            final.confidence,
            sp.csr_matrix(final.posteriors),
            WorkerSkill(answers.n_classes, matrices=final.confusion),
            final.accuracy,
            WorkerCounts(final.counts.shape, whole=final.counts),
            final.model,
            choice.scores,
            final.finalists,
            notes=_convergence_notes(list(final.warnings)),
        )
    return LabelConsolidation(
        item_names=answers.item_names,
        label_names=answers.label_names,
        worker_names=answers.worker_names,
        labels=[answers.label_names[code] for code in result.codes.tolist()],
        confidence=result.confidence,
        accuracy=result.accuracy,
        duplicates_dropped=0,
        method=method,
        model=result.model,
        posterior_matrix=result.posteriors,
        skill=result.skill,
        counts=result.counts,
        model_scores=result.scores,
        model_finalists=result.finalists,
        ties=result.ties,
        gold=gold_scores(answers, known, known.size if n_gold is None else n_gold),
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
    finalists: tuple[str, ...] = ()
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
            WorkerSkill(answers.n_classes, one_coin=agreement(answers, vote.labels)),
            agreement(answers, vote.labels),
            hard_counts(answers, vote.labels),
            "mv",
            ties=vote.ties,
        )
    vote = majority_vote(answers.items, answers.labels, n_items=n_items, n_classes=n_classes)
    codes, confidence = vote.labels.copy(), vote.confidence.copy()
    codes[known.items], confidence[known.items] = known.labels, 1.0
    posteriors = vote_fractions(vote_counts(answers.items, answers.labels, n_items=n_items, n_classes=n_classes))
    posteriors[known.items] = 0.0
    posteriors[known.items, known.labels] = 1.0
    confusion, accuracy, counts = empirical_skill(answers, codes)
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
        soft_counts(answers, cells, model.cell_posteriors_),
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
