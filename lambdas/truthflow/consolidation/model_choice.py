"""Which model fits these answers: chosen by how well each candidate predicts answers it has not seen.

No single latent-class model is best on every crowd. Pooling worker skill toward the crowd helps when workers answer
a few items each and hurts when the crowd is full of spammers; item subtypes help when workers make the same mistakes
on the same hard items and cost accuracy when they do not. So the settings come from the data: the answers are split
into ``folds`` parts, each candidate is fitted on all but one part and scored by the log-probability it gives the
answers of the part it did not see (a held-out item's posterior comes from its other answers, an unseen worker gets
the crowd's skill). Gold questions, when given, are split into folds the same way: a held-out gold item is fitted as
unknown and its gold label scored by the posterior its answers give it, so the choice also weighs how well each
candidate recovers known truths.

Folds are scored one after the other. After each, a candidate whose held-out log-probabilities are significantly below
the leader's (paired over the same held-out answers: :data:`ELIMINATION_Z` standard errors of the difference) is
dropped: the remaining folds would not plausibly close the gap, and it costs no more fits. When one candidate is left,
it is chosen without scoring the remaining folds. The candidates still in the running after the last fold are the
finalists: the held-out answers cannot tell them apart (:mod:`~truthflow.consolidation.finalists` averages them).

A model with subtypes is a candidate only when the answers each fold fits it on outnumber its skill cells (workers x
classes^2 x subtypes): with fewer, the subtypes cannot be learnt from them, and their fits would cost more than all the
others.

Above ``max_answers`` answers the choice is made on the answers of a random (seeded) subset of items with about that
many answers, for speed. The subset must not be too small: with fewer items, models with more parameters lose more
held-out likelihood than they would on all answers (fact_eval: 20,000 of its 215,000 answers rank item subtypes
behind plain Dawid-Skene, every answer ranks them far ahead).

Candidates (:func:`default_candidates`): Dawid-Skene shrunk toward the crowd's confusion with 1, 4, 16 or 64
pseudo-answers per row (a log grid from "each worker on their own" to "everyone like the crowd"), one-coin, and
Dawid-Skene with item subtypes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, Self

import numpy as np

from truthflow.consolidation.coding import IntArray
from truthflow.consolidation.dawid_skene import ConvergenceWarning, DawidSkene, OneCoinDawidSkene
from truthflow.consolidation.known_labels import KnownLabels
from truthflow.consolidation.majority_vote import FloatArray
from truthflow.consolidation.subtypes import SubtypeDawidSkene

#: The fold split and the item subset are drawn with this seed: the same answers always choose the same model.
CHOICE_SEED = 0
DEFAULT_FOLDS = 3
#: Answers the choice is made on at most; a bound for speed, see the module docstring.
DEFAULT_MAX_ANSWERS = 40_000
# Fits inside the choice only rank candidates: a looser stop saves iterations without changing the ranking.
_CHOICE_TOL = 1e-4
_CHOICE_MAX_ITER = 100
#: A candidate is dropped after a fold when its held-out log-probabilities are this many standard errors (of the
#: paired per-answer difference) below the leader's: a gap the remaining folds would not plausibly close.
ELIMINATION_Z = 3.0
# What the model deems impossible still gets this probability, so one surprise cannot dominate a score.
_MIN_PROBABILITY = 1e-12


class LabelModel(Protocol):
    """What the candidates share: a fit on coded answers, and the fitted state the consolidation reports."""

    posteriors_: FloatArray
    labels_: IntArray
    confidence_: FloatArray
    confusion_: FloatArray
    class_prior_: FloatArray
    worker_counts_: FloatArray
    worker_accuracy_: FloatArray
    n_iter_: int
    converged_: bool

    def fit(
        self,
        items: IntArray,
        workers: IntArray,
        labels: IntArray,
        *,
        n_items: int,
        n_workers: int,
        n_classes: int,
        prior_counts: FloatArray | None = None,
        known: KnownLabels | None = None,
    ) -> Self: ...

    def answer_probability(self, items: IntArray, workers: IntArray, labels: IntArray) -> FloatArray: ...


@dataclass(frozen=True)
class Candidate:
    """A named model; ``make(tol, max_iter)`` builds an unfitted instance. ``subtypes`` scales its memory."""

    name: str
    make: Callable[[float, int], LabelModel]
    subtypes: int = 1


def _dawid_skene(strength: float) -> Candidate:
    return Candidate(
        f"ds(prior {strength:g})", lambda tol, max_iter: DawidSkene(prior_strength=strength, tol=tol, max_iter=max_iter)
    )


PRIOR_STRENGTHS = (1.0, 4.0, 16.0, 64.0)
ONE_COIN = Candidate("onecoin", lambda tol, max_iter: OneCoinDawidSkene(tol=tol, max_iter=max_iter))
SUBTYPES = Candidate(
    "subtypes(3)", lambda tol, max_iter: SubtypeDawidSkene(subtypes=3, tol=tol, max_iter=max_iter), subtypes=3
)


def dawid_skene_candidates() -> tuple[Candidate, ...]:
    """Dawid-Skene at each prior strength of the grid."""
    return tuple(_dawid_skene(strength) for strength in PRIOR_STRENGTHS)


def default_candidates() -> tuple[Candidate, ...]:
    return (*dawid_skene_candidates(), ONE_COIN, SUBTYPES)


@dataclass(frozen=True)
class ModelChoice:
    """The chosen candidate; every candidate's held-out score (mean log-probability per held-out answer or gold
    label, over the folds it was scored on: ``folds_scored``, fewer than ``folds`` for a candidate dropped early);
    and how many answers the choice was made on."""

    chosen: Candidate
    scores: dict[str, float]
    n_answers: int
    folds: int
    folds_scored: dict[str, int] = field(default_factory=dict)
    finalists: tuple[str, ...] = ()


def choose_model(
    candidates: Sequence[Candidate],
    items: IntArray,
    workers: IntArray,
    labels: IntArray,
    *,
    n_items: int,
    n_workers: int,
    n_classes: int,
    prior_counts: FloatArray | None = None,
    known: KnownLabels | None = None,
    folds: int = DEFAULT_FOLDS,
    max_answers: int = DEFAULT_MAX_ANSWERS,
    seed: int = CHOICE_SEED,
) -> ModelChoice:
    """Score the candidates fold by fold by held-out answer likelihood (module docstring), dropping those that are
    clearly behind. The finalists are those still in the running at the end; the best of them is ``chosen`` (a tie
    goes to the earlier candidate)."""
    if not candidates:
        raise ValueError("no candidate models")
    known = KnownLabels.none() if known is None else known
    if len(candidates) == 1:
        return ModelChoice(candidates[0], {}, 0, 0, finalists=(candidates[0].name,))
    rng = np.random.default_rng(seed)
    subset = _item_subset(items, workers, labels, n_items, known, max_answers, rng)
    # Each candidate is fitted on (folds - 1) / folds of the answers: that is what must outnumber its skill cells.
    fitted_on = subset.size * (folds - 1) // folds
    learnable = [c for c in candidates if c.subtypes == 1 or c.subtypes * n_workers * n_classes**2 <= fitted_on]
    alive = learnable or list(candidates[:1])
    if len(alive) == 1:
        return ModelChoice(alive[0], {}, subset.size, 0, finalists=(alive[0].name,))
    alive, scored = _scored_folds(alive, subset, n_workers, n_classes, prior_counts, folds, rng)
    totals = {name: np.concatenate(parts) for name, parts in scored.items()}
    scores = {name: float(values.mean()) if values.size else 0.0 for name, values in totals.items()}
    best = max(alive, key=lambda candidate: float(totals[candidate.name].sum()))
    return ModelChoice(
        best,
        scores,
        subset.size,
        folds,
        {name: len(parts) for name, parts in scored.items()},
        tuple(candidate.name for candidate in alive),
    )


@dataclass(frozen=True)
class _Answers:
    """Coded answers (and their known labels) the choice is made on."""

    items: IntArray
    workers: IntArray
    labels: IntArray
    n_items: int
    known: KnownLabels

    @property
    def size(self) -> int:
        return int(self.items.size)


def _scored_folds(
    alive: list[Candidate],
    answers: _Answers,
    n_workers: int,
    n_classes: int,
    prior_counts: FloatArray | None,
    folds: int,
    rng: np.random.Generator,
) -> tuple[list[Candidate], dict[str, list[FloatArray]]]:
    """``folds``-fold scoring on ``answers``: the candidates still in the running after it, and per candidate the
    log-probability of every held-out answer and gold label, fold by fold."""
    items, workers, labels, known = answers.items, answers.workers, answers.labels, answers.known
    fold = rng.permutation(items.size) % folds
    gold_fold = rng.permutation(known.size) % folds
    scored: dict[str, list[FloatArray]] = {candidate.name: [] for candidate in alive}
    for part in range(folds):
        held_out = fold == part
        train = ~held_out
        kept = gold_fold != part
        train_known = KnownLabels(known.items[kept], known.labels[kept])
        for candidate in alive:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = candidate.make(_CHOICE_TOL, _CHOICE_MAX_ITER).fit(
                    items[train],
                    workers[train],
                    labels[train],
                    n_items=answers.n_items,
                    n_workers=n_workers,
                    n_classes=n_classes,
                    prior_counts=prior_counts,
                    known=train_known,
                )
            probability = model.answer_probability(items[held_out], workers[held_out], labels[held_out])
            # Held-out gold labels are predicted too: P(the gold label | the item's training answers).
            gold_probability = model.posteriors_[known.items[~kept], known.labels[~kept]]
            scored[candidate.name].append(
                np.log(np.maximum(np.concatenate([probability, gold_probability]), _MIN_PROBABILITY))
            )
        # After the last fold too: the finalists are those not significantly behind on every answer held out.
        alive = _still_in_the_running(alive, scored)
        if len(alive) == 1:
            break  # the others are significantly behind: more folds cannot change the choice
    return alive, scored


def _still_in_the_running(alive: list[Candidate], scored: dict[str, list[FloatArray]]) -> list[Candidate]:
    """The candidates whose held-out log-probabilities so far are not significantly below the leader's: paired over
    the same held-out answers, the mean difference plus :data:`ELIMINATION_Z` standard errors is not negative."""
    seen = {candidate.name: np.concatenate(scored[candidate.name]) for candidate in alive}
    leader = max(alive, key=lambda candidate: float(seen[candidate.name].sum()))
    running = []
    for candidate in alive:
        difference = seen[candidate.name] - seen[leader.name]
        if difference.size == 0:
            running.append(candidate)
            continue
        standard_error = float(difference.std()) / np.sqrt(difference.size)
        if candidate is leader or float(difference.mean()) + ELIMINATION_Z * standard_error >= 0:
            running.append(candidate)
    return running


def _item_subset(
    items: IntArray,
    workers: IntArray,
    labels: IntArray,
    n_items: int,
    known: KnownLabels,
    max_answers: int,
    rng: np.random.Generator,
) -> _Answers:
    """All answers of random items, about ``max_answers`` of them (all answers when there are no more); items
    renumbered, workers kept."""
    if items.size <= max_answers:
        return _Answers(items, workers, labels, n_items, known)
    per_item = np.bincount(items, minlength=n_items)
    order = rng.permutation(n_items)
    n_chosen = int(np.searchsorted(np.cumsum(per_item[order]), max_answers)) + 1
    chosen = np.sort(order[:n_chosen])
    new_code = np.full(n_items, -1, dtype=np.int64)
    new_code[chosen] = np.arange(chosen.size)
    keep = new_code[items] >= 0
    return _Answers(new_code[items[keep]], workers[keep], labels[keep], int(chosen.size), known.subset(chosen, n_items))
