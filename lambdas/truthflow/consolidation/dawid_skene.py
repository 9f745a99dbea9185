r"""Dawid-Skene consolidation of crowd class labels, with worker skill pooled toward the crowd.

Model (Dawid & Skene 1979). Item :math:`i` has a hidden true class :math:`T_i \sim \text{Cat}(p)`.
Worker :math:`w` answers class :math:`l` for an item of class :math:`k` with probability
:math:`\pi^w_{kl}` (row :math:`k` of the worker's confusion matrix), independently of other answers.
The posterior of item :math:`i` is

.. math:: q_{ik} \propto p_k \prod_{j \in \text{answers}(i)} \pi^{w_j}_{k l_j}.

Plain maximum-likelihood EM over-fits the confusion matrices of workers who answered a few items
(a worker with three answers gets rows of 0s and 1s) and then loses to majority vote on sparse data.
We fit the maximum a posteriori estimate instead, under Dirichlet priors centred on the *crowd's*
confusion matrix :math:`m` (all answers pooled, as if from one worker), with strength :math:`\alpha`
pseudo-answers per row:

.. math:: \pi^w_{k\cdot} \sim \text{Dir}(\alpha\, m_{k\cdot} + c^w_{k\cdot} + 1), \qquad p \sim \text{Dir}(\gamma + 1)

where :math:`c^w` are optional confusion counts carried over from earlier batches (so skill learnt on
one batch informs the next). A worker with few answers stays near the crowd; one with many answers is
governed by their own data. This is the hierarchical shrinkage of Kim & Ghahramani (2012, "Bayesian
classifier combination", community confusion as prior) and Venanzi et al. (2014, "Community-based Bayesian
aggregation models for crowdsourcing"), estimated here by empirical Bayes: :math:`m` is the confusion
of all answers pooled as if from one worker, scored against the majority vote that also starts EM, and it
stays fixed while the per-worker model is fitted, so EM's guarantee holds: the objective

.. math:: \mathcal{L} = \sum_i \log \sum_k p_k \prod_j \pi^{w_j}_{k l_j}
          + \sum_{w,k,l} (\alpha m_{kl} + c^w_{kl}) \log \pi^w_{kl} + \gamma \sum_k \log p_k

(the log-likelihood plus log-priors, stored as ``log_likelihood_``) never decreases. With
``prior_strength=0`` and no carried counts it is the classical likelihood and the classical EM.

One-coin Dawid-Skene (``OneCoinDawidSkene``) ties each worker's matrix to a single accuracy
:math:`a_w` (errors spread evenly over the other classes), the model behind Ground Truth's built-in
"modified Dawid-Skene" and Raykar et al. (2010). It can win where errors are symmetric over many classes and
collapse every item into one class on ordinal scales (relevance): which model, and which prior strength, fits a
data set is chosen per data set by :mod:`~truthflow.consolidation.model_choice`.

Computation: answers become a sparse item-by-(worker, label) count matrix ``A``; the E-step is
``A @ log_pi`` and the M-step ``A.T @ q``, so one iteration costs two sparse products over the answers.
EM starts from the soft majority vote, as Dawid & Skene did: deterministic, no random restarts. Known labels (gold,
:class:`~truthflow.consolidation.known_labels.KnownLabels`) stay fixed; with them EM also starts from the skills the
gold shows and keeps the start that reaches the higher objective (both share the prior, so they compare).

Shapes: ``n_items`` I, ``n_workers`` W, ``n_classes`` K. ``posteriors_`` (I, K); ``confusion_`` (W, K, K)
with rows = true class, columns = answered class; ``class_prior_`` (K,); ``worker_counts_`` (W, K, K)
expected confusion counts from this fit's answers only (add them to carried counts to update them).
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import NamedTuple, Self

import numpy as np
import scipy.sparse as sp

from truthflow.consolidation.acceleration import accelerated_ascent
from truthflow.consolidation.coding import IntArray
from truthflow.consolidation.known_labels import KnownLabels, normalise_log_joint, start_from_known
from truthflow.consolidation.majority_vote import FloatArray, vote_counts, vote_fractions

# Smallest probability a model may assign: keeps log() finite when a prior strength of 0 leaves a zero count.
PROBABILITY_FLOOR = 1e-12


class _EMState(NamedTuple):
    """Posteriors (I, K) from the E-step of ``skill``/``class_prior``, and the objective of those parameters.
    ``skill`` is in the answered-major layout (W, K_answered, K_true)."""

    posteriors: FloatArray
    objective: float
    skill: FloatArray
    class_prior: FloatArray


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before the objective settled within ``tol``."""


class _WorkerSkillEM(ABC):
    """The EM loop shared by the Dawid-Skene family; subclasses define how worker skill is parameterised.

    Inside the loop a worker's skill is kept *answered-major*, ``skill[w, l, k] = P(answer l | true class k)``
    (W, K, K): that is the layout both sparse products read and write (``A.T @ q`` gives counts as (W*K, K) rows of
    answered labels), so no step copies or transposes a (W, K, K) array. ``confusion_`` is turned row-major
    (true class first) once, at the end."""

    #: Pseudo-answers per confusion row drawn from the crowd when none is given (box labels use it; label
    #: consolidation chooses the strength per data set, see model_choice).
    default_prior_strength = 20.0

    def __init__(
        self,
        *,
        prior_strength: float | None = None,
        class_prior_strength: float = 1.0,
        tol: float = 1e-6,
        max_iter: int = 300,
        accelerate: bool = True,
    ) -> None:
        prior_strength = self.default_prior_strength if prior_strength is None else prior_strength
        if prior_strength < 0 or class_prior_strength < 0:
            raise ValueError("prior strengths must be >= 0")
        if tol <= 0 or max_iter < 1:
            raise ValueError("tol must be > 0 and max_iter >= 1")
        self.prior_strength = prior_strength
        self.class_prior_strength = class_prior_strength
        self.tol = tol
        self.max_iter = max_iter
        self.accelerate = accelerate

    # -- skill parameterisation (answered-major layout, see the class docstring) ------------------
    @abstractmethod
    def _fit_skill(self, counts: FloatArray, pseudo_counts: FloatArray) -> FloatArray:
        """Skill (W, K_answered, K_true) maximising the expected complete log-likelihood plus log-prior, given
        expected counts and pseudo-counts, both (W, K_answered, K_true)."""

    def _log_prior(self, skill: FloatArray, log_skill: FloatArray, pseudo_counts: FloatArray) -> float:
        return float(np.sum(pseudo_counts * log_skill))

    # -- public API -------------------------------------------------------------------------------
    def fit(
        self,
        items: IntArray,
        workers: IntArray,
        labels: IntArray,
        *,
        n_items: int | None = None,
        n_workers: int | None = None,
        n_classes: int | None = None,
        prior_counts: FloatArray | None = None,
        known: KnownLabels | None = None,
    ) -> Self:
        """Fit on answers given as parallel code arrays of shape (n_answers,).

        ``prior_counts`` (W, K, K): confusion counts carried from earlier batches for these workers. ``known``: items
        whose class is given (gold); their posteriors stay fixed at it and they anchor every worker's skill.
        """
        items, workers, labels = (np.asarray(a, dtype=np.int64) for a in (items, workers, labels))
        n_items = int(items.max(initial=-1)) + 1 if n_items is None else n_items
        n_workers = int(workers.max(initial=-1)) + 1 if n_workers is None else n_workers
        n_classes = int(labels.max(initial=-1)) + 1 if n_classes is None else n_classes
        if n_classes < 1:
            raise ValueError("need at least one class")
        carried = np.zeros((n_workers, n_classes, n_classes))
        if prior_counts is not None:
            carried = np.asarray(prior_counts, dtype=np.float64)
            if carried.shape != (n_workers, n_classes, n_classes):
                expected = (n_workers, n_classes, n_classes)
                raise ValueError(f"prior_counts has shape {carried.shape}, expected {expected}")
        known = KnownLabels.none() if known is None else known
        known.check(n_items, n_classes)

        answer_matrix = sp.csr_matrix(
            (np.ones(items.size), (items, workers * n_classes + labels)),
            shape=(n_items, n_workers * n_classes),
        )
        answer_matrix_t = answer_matrix.T.tocsr()

        shares = vote_fractions(vote_counts(items, labels, n_items=n_items, n_classes=n_classes))
        shares[known.items] = 0.0
        shares[known.items, known.labels] = 1.0
        crowd = self._crowd_confusion(answer_matrix_t, shares, n_classes)
        # Answered-major: pseudo[w, l, k] (the carried counts and the crowd matrix are given true-class first).
        pseudo_counts = np.ascontiguousarray(
            (carried + self.prior_strength * crowd[np.newaxis, :, :]).transpose(0, 2, 1)
        )
        class_prior_strength = self.class_prior_strength

        def em_step(q: FloatArray) -> _EMState:
            skill = self._fit_skill(self._expected_counts(answer_matrix_t, q, n_workers, n_classes), pseudo_counts)
            log_skill = np.log(skill)
            class_prior = self._fit_class_prior(q)
            log_class_prior = np.log(class_prior)
            joint = np.asarray(answer_matrix @ log_skill.reshape(n_workers * n_classes, n_classes))
            joint += log_class_prior
            new_q, data_log_likelihood = normalise_log_joint(joint, known)
            objective = (
                data_log_likelihood
                + self._log_prior(skill, log_skill, pseudo_counts)
                + class_prior_strength * float(log_class_prior.sum())
            )
            return _EMState(new_q, objective, skill, class_prior)

        # Tolerance per answer, so that the same tol means the same thing for 1,000 or 1,000,000 answers.
        threshold = self.tol * max(items.size, 1)
        # With gold, EM also starts from the skills the gold shows (a confused majority can invert the vote's view)
        # and keeps whichever start reaches the higher objective: both share the prior, so they compare.
        starts = [shares]
        if known.size:
            shape = {"n_items": n_items, "n_workers": n_workers, "n_classes": n_classes}
            starts.append(start_from_known(items, workers, labels, known=known, shares=shares, **shape))
        best: tuple[_EMState, list[float], bool, int] | None = None
        for first in starts:
            if self.accelerate:
                state, history, converged, steps = accelerated_ascent(
                    em_step, first, threshold=threshold, max_steps=self.max_iter
                )
            else:
                state, history, converged, steps = _plain_ascent(em_step, first, threshold, self.max_iter)
            if best is None or history[-1] > best[1][-1]:
                best = (state, history, converged, steps)
        assert best is not None
        state, history, converged, steps = best
        posteriors, class_prior = state.posteriors, state.class_prior
        if not converged:
            warnings.warn(
                f"{type(self).__name__} did not converge in {self.max_iter} iterations "
                f"(last objective change {history[-1] - history[-2] if len(history) > 1 else float('nan'):.3g}); "
                "raise max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        confusion = np.ascontiguousarray(state.skill.transpose(0, 2, 1))

        self.posteriors_ = posteriors
        self.labels_ = np.argmax(posteriors, axis=1).astype(np.int64)
        self.confidence_ = posteriors[np.arange(n_items), self.labels_]
        self.confusion_ = confusion
        self.class_prior_ = class_prior
        self.crowd_confusion_ = crowd
        counts = self._expected_counts(answer_matrix_t, posteriors, n_workers, n_classes)
        self.worker_counts_ = np.ascontiguousarray(counts.transpose(0, 2, 1))
        self.worker_accuracy_ = np.einsum("k,wkk->w", class_prior, confusion)
        self.log_likelihood_ = history[-1]
        self.history_ = history
        self.n_iter_ = steps
        self.converged_ = converged
        return self

    def fit_predict(
        self, items: IntArray, workers: IntArray, labels: IntArray, *, n_classes: int | None = None
    ) -> IntArray:
        """Fit and return the consolidated class codes, shape (n_items,)."""
        predicted: IntArray = self.fit(items, workers, labels, n_classes=n_classes).labels_
        return predicted

    # -- EM pieces --------------------------------------------------------------------------------
    @staticmethod
    def _expected_counts(
        answer_matrix_t: sp.csr_matrix, posteriors: FloatArray, n_workers: int, n_classes: int
    ) -> FloatArray:
        """counts[w, l, k] = sum over worker w's answers l of P(true class k), answered-major (W, K, K)."""
        flat: FloatArray = np.asarray(answer_matrix_t @ posteriors)  # (W*K_answered, K_true)
        return flat.reshape(n_workers, n_classes, n_classes)

    def _fit_class_prior(self, posteriors: FloatArray) -> FloatArray:
        mass = np.ones(posteriors.shape[0]) @ posteriors + self.class_prior_strength
        prior: FloatArray = np.maximum(mass / mass.sum(), PROBABILITY_FLOOR)
        return prior

    @staticmethod
    def _posteriors(
        answer_matrix: sp.csr_matrix, confusion: FloatArray, class_prior: FloatArray, known: KnownLabels
    ) -> tuple[FloatArray, float]:
        """E-step in log space for row-major confusions (W, K_true, K_answered): posteriors (I, K) and the data
        log-likelihood (known items: joint with their class)."""
        n_workers, n_classes, _ = confusion.shape
        log_confusion = np.log(confusion).transpose(0, 2, 1).reshape(n_workers * n_classes, n_classes)
        joint = np.asarray(answer_matrix @ log_confusion)
        joint += np.log(class_prior)
        return normalise_log_joint(joint, known)

    def answer_probability(self, items: IntArray, workers: IntArray, labels: IntArray) -> FloatArray:
        """P(worker answers label | the fitted model, the item's posterior), shape (n,): how well the model predicts
        answers it was not fitted on (a held-out item or worker gets the class prior or the crowd's skill)."""
        probability: FloatArray = np.einsum("jk,jk->j", self.posteriors_[items], self.confusion_[workers, :, labels])
        return probability

    def _crowd_confusion(self, answer_matrix_t: sp.csr_matrix, posteriors: FloatArray, n_classes: int) -> FloatArray:
        """The crowd's confusion matrix (K, K), rows = true class: every answer pooled as if from one worker, scored
        against the majority-vote posteriors. Each row gets one pseudo-answer spread evenly, so a class the vote
        never chose keeps a defined (uniform) row."""
        n_workers = answer_matrix_t.shape[0] // n_classes
        counts = self._expected_counts(_pool_workers(answer_matrix_t, n_workers, n_classes), posteriors, 1, n_classes)
        skill = self._fit_skill(counts, np.full((1, n_classes, n_classes), 1.0 / n_classes))[0]
        crowd: FloatArray = np.ascontiguousarray(skill.T)
        return crowd


def _plain_ascent(
    em_step: Callable[[FloatArray], _EMState], start: FloatArray, threshold: float, max_steps: int
) -> tuple[_EMState, list[float], bool, int]:
    """Plain EM from ``start``: one step at a time until a step gains less than ``threshold``."""
    state = em_step(start)
    history = [state.objective]
    converged = False
    while len(history) < max_steps and not converged:
        state = em_step(state.posteriors)
        converged = state.objective - history[-1] < threshold
        history.append(state.objective)
    return state, history, converged, len(history)


def _pool_workers(answer_matrix_t: sp.csr_matrix, n_workers: int, n_classes: int) -> sp.csr_matrix:
    """Sum the (worker, label) rows of ``A.T`` over workers: one pseudo-worker with every answer."""
    rows = np.arange(n_workers * n_classes) % n_classes
    pooling = sp.csr_matrix(
        (np.ones(n_workers * n_classes), (rows, np.arange(n_workers * n_classes))),
        shape=(n_classes, n_workers * n_classes),
    )
    return (pooling @ answer_matrix_t).tocsr()


class DawidSkene(_WorkerSkillEM):
    """Dawid-Skene with a full confusion matrix per worker, shrunk toward the crowd's (see module docstring).

    ``prior_strength`` is the number of pseudo-answers per confusion row drawn from the crowd matrix.
    """

    def _fit_skill(self, counts: FloatArray, pseudo_counts: FloatArray) -> FloatArray:
        mass = counts + pseudo_counts  # (W, K_answered, K_true): normalise over the answered labels, axis 1
        totals = mass.sum(axis=1, keepdims=True)
        empty = totals <= 0
        if empty.any():  # a row without answers or pseudo-answers (prior strength 0): uniform
            mass = np.where(empty, 1.0, mass)
            totals = np.where(empty, float(counts.shape[1]), totals)
        mass /= totals
        floored: FloatArray = np.maximum(mass, PROBABILITY_FLOOR, out=mass)
        return floored


class OneCoinDawidSkene(_WorkerSkillEM):
    """One-coin Dawid-Skene: worker ``w`` is right with probability ``a_w`` whatever the class, and picks a wrong
    class uniformly otherwise. The accuracy prior is Beta, centred on the crowd's accuracy with
    ``prior_strength`` pseudo-answers (carried counts add their own correct/wrong tallies)."""

    default_prior_strength = 2.0

    def _fit_skill(self, counts: FloatArray, pseudo_counts: FloatArray) -> FloatArray:
        # The diagonal and the totals are the same in either layout, and so are the one-coin matrices.
        n_classes = counts.shape[1]
        correct = np.einsum("wkk->w", counts) + np.einsum("wkk->w", pseudo_counts)
        total = counts.sum(axis=(1, 2)) + pseudo_counts.sum(axis=(1, 2))
        accuracy = np.divide(correct, total, out=np.full_like(correct, 1.0 / n_classes), where=total > 0)
        return _one_coin_matrices(accuracy, n_classes)

    def _log_prior(self, skill: FloatArray, log_skill: FloatArray, pseudo_counts: FloatArray) -> float:
        # The Beta prior on accuracy: pseudo-counts of right and wrong answers.
        n_classes = skill.shape[1]
        accuracy = skill[:, 0, 0]
        correct = np.einsum("wkk->w", pseudo_counts)
        wrong = pseudo_counts.sum(axis=(1, 2)) - correct
        error = np.maximum(1.0 - accuracy, PROBABILITY_FLOOR) if n_classes > 1 else np.ones_like(accuracy)
        return float(np.sum(correct * np.log(accuracy) + wrong * np.log(error)))


def _one_coin_matrices(accuracy: FloatArray, n_classes: int) -> FloatArray:
    if n_classes == 1:
        return np.ones((accuracy.size, 1, 1))
    accuracy = np.clip(accuracy, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
    off_diagonal = (1.0 - accuracy) / (n_classes - 1)
    matrices = np.repeat(off_diagonal[:, np.newaxis, np.newaxis], n_classes, axis=1).repeat(n_classes, axis=2)
    diagonal = np.arange(n_classes)
    matrices[:, diagonal, diagonal] = accuracy[:, np.newaxis]
    return matrices


def posteriors_given_skill(
    items: IntArray,
    workers: IntArray,
    labels: IntArray,
    *,
    confusion: FloatArray,
    class_prior: FloatArray,
    n_items: int,
) -> FloatArray:
    """The E-step alone: item posteriors (n_items, K) for known worker confusions (W, K, K) and class prior (K,).

    For scoring a batch with skills learnt elsewhere, and for checking the model by hand.
    """
    n_workers, n_classes, _ = confusion.shape
    answer_matrix = sp.csr_matrix(
        (np.ones(len(items)), (items, np.asarray(workers) * n_classes + labels)),
        shape=(n_items, n_workers * n_classes),
    )
    posteriors, _ = _WorkerSkillEM._posteriors(
        answer_matrix, np.maximum(confusion, PROBABILITY_FLOOR), class_prior, KnownLabels.none()
    )
    return posteriors
