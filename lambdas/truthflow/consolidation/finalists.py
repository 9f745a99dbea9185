"""The final fit of a model choice: every finalist on all answers, their posteriors averaged.

The finalists of :func:`~truthflow.consolidation.model_choice.choose_model` are the candidates whose held-out answer
likelihood is not significantly below the best one's: the data cannot tell them apart. Picking one of them is then a
coin toss that can cost a lot (on small crowds, two pooling strengths a hair apart in held-out likelihood can differ
by points of accuracy), so each finalist is fitted on all answers and the item posteriors are averaged, equally:
the labels are those the tied models agree on, and where they disagree, the one the sum of their beliefs favours.
With a single finalist this is that model's fit.

Averaging is only meaningful between fits that describe the same solution. Two candidates can tie in held-out
likelihood while sitting in different optima (one reads the classes shifted, as a confused majority suggests): the
average of such posteriors is neither. So a finalist joins the chosen one only when its labels agree with the chosen
fit's at least as often as two independent draws from the chosen fit's own posteriors would agree (the mean over items
of the sum of squared posteriors): a fit of the same solution agrees about that often or more, one of another solution
far less (on a confused-majority crowd: 0.99 and 0.09 against 0.91). The rule has no constant of its own; it asks
the chosen fit how sure it is.

Averages are taken where they stay meaningful: posteriors (I, K), confusion matrices (W, K, K), worker accuracies
(W,) and expected confusion counts (W, K, K; linear in the posteriors, so they are the counts of the averaged
posteriors). A known (gold) item is one-hot in every finalist, so it stays so.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from truthflow.consolidation.coding import IntArray
from truthflow.consolidation.dawid_skene import ConvergenceWarning
from truthflow.consolidation.known_labels import KnownLabels
from truthflow.consolidation.majority_vote import FloatArray
from truthflow.consolidation.model_choice import Candidate, LabelModel, ModelChoice


@dataclass(frozen=True)
class FinalFit:
    """What the consolidation reports of the final fit: per item ``labels`` (codes), ``confidence`` and
    ``posteriors`` (I, K); per worker ``confusion`` (W, K, K), ``accuracy`` (W,) and expected confusion ``counts``
    (W, K, K); ``model`` names what was fitted, ``finalists`` the candidates averaged; ``warnings`` are the fits'
    convergence warnings."""

    labels: IntArray
    confidence: FloatArray
    posteriors: FloatArray
    confusion: FloatArray
    accuracy: FloatArray
    counts: FloatArray
    model: str
    finalists: tuple[str, ...]
    warnings: tuple[warnings.WarningMessage, ...]


def fit_finalists(
    choice: ModelChoice,
    candidates: Sequence[Candidate],
    items: IntArray,
    workers: IntArray,
    labels: IntArray,
    *,
    n_items: int,
    n_workers: int,
    n_classes: int,
    prior_counts: FloatArray | None,
    known: KnownLabels,
    tol: float,
    max_iter: int,
) -> FinalFit:
    """Fit every finalist of ``choice`` (the chosen candidate when it names none) on all answers and average them."""
    named = [candidate for candidate in candidates if candidate.name in choice.finalists and candidate != choice.chosen]
    fitted: list[tuple[Candidate, LabelModel]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        for candidate in [choice.chosen, *named]:
            model = candidate.make(tol, max_iter).fit(
                items,
                workers,
                labels,
                n_items=n_items,
                n_workers=n_workers,
                n_classes=n_classes,
                prior_counts=prior_counts,
                known=known,
            )
            fitted.append((candidate, model))
    anchor = fitted[0][1].posteriors_
    anchor_labels = np.argmax(anchor, axis=1)
    expected_agreement = float(np.square(anchor).sum(axis=1).mean()) if n_items else 1.0
    kept = [
        (candidate, model)
        for position, (candidate, model) in enumerate(fitted)
        if position == 0 or float(np.mean(np.argmax(model.posteriors_, axis=1) == anchor_labels)) >= expected_agreement
    ]
    finalists = [candidate for candidate, _ in kept]
    models = [model for _, model in kept]
    posteriors = _mean([model.posteriors_ for model in models])
    codes = np.argmax(posteriors, axis=1).astype(np.int64)
    name = finalists[0].name if len(finalists) == 1 else "mean of " + ", ".join(c.name for c in finalists)
    return FinalFit(
        labels=codes,
        confidence=posteriors[np.arange(n_items), codes],
        posteriors=posteriors,
        confusion=_mean([model.confusion_ for model in models]),
        accuracy=_mean([model.worker_accuracy_ for model in models]),
        counts=_mean([model.worker_counts_ for model in models]),
        model=name,
        finalists=tuple(candidate.name for candidate in finalists),
        warnings=tuple(caught),
    )


def _mean(arrays: list[FloatArray]) -> FloatArray:
    if len(arrays) == 1:
        return arrays[0]
    total = arrays[0].copy()
    for array in arrays[1:]:
        total += array
    total /= len(arrays)
    return total
