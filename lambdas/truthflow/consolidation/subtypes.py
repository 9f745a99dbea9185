r"""Dawid-Skene with item subtypes, fitted by variational Bayes: correlated worker errors on hard items.

Plain Dawid-Skene assumes answers are independent given the true class. On real data they are not: some items of a
class look like another class to *every* worker (an ambiguous entity link, a borderline fact). Dawid-Skene then
explains the shared "mistakes" by moving those items to the other class and making the good workers look even
better on the first class: the latent classes drift away from the labels' meaning. Following EBCC (Li, Rubinstein &
Cohn 2019, "Exploiting worker correlation for label aggregation in crowdsourcing", ICML), each class has ``M``
subtypes, and a worker's answer depends on the item's class *and* subtype, so a class can have a "looks like
something else" subtype without moving its items.

Model. Item :math:`i` has class :math:`z_i` and subtype :math:`g_i`:

.. math:: \tau \sim \text{Dir}(\gamma), \quad \nu_k \sim \text{Dir}(\eta), \quad (z_i, g_i) \sim \tau_k \nu_{km},
          \quad \pi^{w}_{km\cdot} \sim \text{Dir}(\beta_k + c^w_{k\cdot}), \quad
          y_{iw} \mid z_i = k, g_i = m \sim \text{Cat}(\pi^w_{km\cdot})

with :math:`\beta_{kl}` = ``diagonal_prior`` for :math:`l = k` and ``off_diagonal_prior`` otherwise (EBCC's default
4 and 1: a worker is believed better than chance, weakly), :math:`c^w` counts carried from earlier batches, and a
sparse subtype prior :math:`\eta` (``subtype_prior`` per subtype, far below 1) so that subtypes the data do not need
fade away. Mean-field variational Bayes, :math:`q(z, g)\,q(\tau)\,q(\nu)\,q(\pi)`, alternates closed-form updates;
each one raises the evidence lower bound (stored as ``history_``), so the ELBO never decreases.

Start, deterministic (EBCC starts from a random split): the class part is the soft majority vote; the subtype part
ranks items by how strongly the vote agrees (``M`` equal-width bands of the winning share), so subtype 0 starts as
the clear-cut items and the last subtype as the contested ones.

Shapes: I items, W workers, K classes, M subtypes. ``posteriors_`` (I, K) (subtypes summed out), ``confusion_``
(W, K, K) the class-level expected confusion (subtypes mixed by their weights), ``worker_counts_`` (W, K, K),
``class_prior_`` (K,), ``subtype_posteriors_`` (I, K, M).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import cache
from typing import NamedTuple, Self

import numpy as np
import scipy.sparse as sp

from truthflow.consolidation.acceleration import accelerated_ascent
from truthflow.consolidation.coding import IntArray
from truthflow.consolidation.dawid_skene import ConvergenceWarning
from truthflow.consolidation.known_labels import KnownLabels, normalise_log_joint, start_from_known
from truthflow.consolidation.majority_vote import FloatArray, vote_counts, vote_fractions


class _VBState(NamedTuple):
    """States (I, K, M) after one round of updates, and the evidence lower bound they reach."""

    posteriors: FloatArray
    objective: float


class SubtypeDawidSkene:
    """Dawid-Skene with ``subtypes`` latent subtypes per class (module docstring), variational Bayes."""

    def __init__(
        self,
        *,
        subtypes: int = 3,
        diagonal_prior: float = 4.0,
        off_diagonal_prior: float = 1.0,
        subtype_prior: float = 0.01,
        class_prior_strength: float = 1.0,
        tol: float = 1e-6,
        max_iter: int = 300,
        accelerate: bool = True,
    ) -> None:
        if subtypes < 1:
            raise ValueError("subtypes must be >= 1")
        if min(diagonal_prior, off_diagonal_prior, subtype_prior, class_prior_strength) <= 0:
            raise ValueError("prior parameters must be > 0")
        if tol <= 0 or max_iter < 1:
            raise ValueError("tol must be > 0 and max_iter >= 1")
        self.subtypes = subtypes
        self.diagonal_prior = diagonal_prior
        self.off_diagonal_prior = off_diagonal_prior
        self.subtype_prior = subtype_prior
        self.class_prior_strength = class_prior_strength
        self.tol = tol
        self.max_iter = max_iter
        self.accelerate = accelerate

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
    ) -> Self:
        """Fit on answers given as parallel code arrays (n_answers,); see :class:`DawidSkene.fit` for the rest."""
        known = KnownLabels.none() if known is None else known
        known.check(n_items, n_classes)
        carried = np.zeros((n_workers, n_classes, n_classes))
        if prior_counts is not None:
            carried = np.asarray(prior_counts, dtype=np.float64)
            if carried.shape != (n_workers, n_classes, n_classes):
                expected = (n_workers, n_classes, n_classes)
                raise ValueError(f"prior_counts has shape {carried.shape}, expected {expected}")
        answer_matrix = sp.csr_matrix(
            (np.ones(items.size), (items, workers * n_classes + labels)), shape=(n_items, n_workers * n_classes)
        )
        answer_matrix_t = answer_matrix.T.tocsr()
        beta = np.full((n_classes, n_classes), self.off_diagonal_prior)
        np.fill_diagonal(beta, self.diagonal_prior)
        # Prior of every (worker, class, subtype) row, answered-major: prior[w, l, k, 0] (W, K, K, 1), broadcast over
        # subtypes (see _expected_counts for the layout).
        worker_prior = np.ascontiguousarray((beta[np.newaxis] + carried).transpose(0, 2, 1))[..., np.newaxis]

        # With gold, VB also starts from the skills the gold shows and keeps the start with the higher bound.
        best: tuple[FloatArray, list[float], bool, int] | None = None
        for start in self._starts(items, workers, labels, n_items, n_workers, n_classes, known):
            run = self._run(start, answer_matrix, answer_matrix_t, worker_prior, known, n_answers=items.size)
            if best is None or run[1][-1] > best[1][-1]:
                best = run
        assert best is not None
        states, history, converged, steps = best
        if not converged:
            warnings.warn(
                f"SubtypeDawidSkene did not converge in {self.max_iter} iterations; raise max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )

        counts = self._expected_counts(answer_matrix_t, states, n_workers, n_classes)
        mass = worker_prior + counts
        mass /= mass.sum(axis=1, keepdims=True)  # posterior means, answered-major (W, L, K, M)
        skill = np.ascontiguousarray(mass.transpose(0, 2, 3, 1))  # (W, K, M, L)
        subtype_weight = states.sum(axis=0) + self.subtype_prior
        subtype_weight /= subtype_weight.sum(axis=1, keepdims=True)
        class_prior = states.sum(axis=(0, 2)) + self.class_prior_strength
        self.subtype_posteriors_ = states
        self.posteriors_ = states.sum(axis=2)
        self.labels_ = np.argmax(self.posteriors_, axis=1).astype(np.int64)
        self.confidence_ = self.posteriors_[np.arange(n_items), self.labels_]
        self.skill_ = skill
        self.confusion_ = np.einsum("km,wkml->wkl", subtype_weight, skill)
        self.class_prior_ = class_prior / class_prior.sum()
        self.subtype_weight_ = subtype_weight
        self.worker_counts_ = np.ascontiguousarray(counts.sum(axis=3).transpose(0, 2, 1))
        self.worker_accuracy_ = np.einsum("k,wkk->w", self.class_prior_, self.confusion_)
        self.log_likelihood_ = history[-1]
        self.history_ = history
        self.n_iter_ = steps
        self.converged_ = converged
        return self

    def _run(
        self,
        states: FloatArray,
        answer_matrix: sp.csr_matrix,
        answer_matrix_t: sp.csr_matrix,
        worker_prior: FloatArray,
        known: KnownLabels,
        *,
        n_answers: int,
    ) -> tuple[FloatArray, list[float], bool, int]:
        """Coordinate ascent from ``states`` (I, K, M) until the bound gains less than ``tol`` per answer (with
        SQUAREM jumps, :mod:`~truthflow.consolidation.acceleration`, unless ``accelerate`` is off)."""
        digamma, gammaln = _special_functions()

        n_items, n_classes, n_subtypes = states.shape
        n_workers = worker_prior.shape[0]
        item_ones = np.ones(n_items)  # column sums as a product: much faster than .sum(axis=0) on (I, K * M)
        # The workers' prior normalisers, the same for every subtype: the constant part of KL(q(pi) || p(pi)).
        prior_total = worker_prior.sum(axis=1)  # (W, K, 1)
        prior_log_norm = n_subtypes * float(np.sum(gammaln(prior_total)) - np.sum(gammaln(worker_prior)))

        def vb_step(current: FloatArray) -> _VBState:
            counts = self._expected_counts(answer_matrix_t, current, n_workers, n_classes)  # (W, L, K, M)
            mass = worker_prior + counts
            total = mass.sum(axis=1)  # (W, K, M): over the answered labels
            log_skill = digamma(mass)
            log_skill -= digamma(total)[:, np.newaxis]
            per_state = (item_ones @ current.reshape(n_items, -1)).reshape(n_classes, n_subtypes)  # (K, M)
            subtype_mass = per_state + self.subtype_prior
            log_subtype = digamma(subtype_mass) - digamma(subtype_mass.sum(axis=1, keepdims=True))
            class_mass = per_state.sum(axis=1) + self.class_prior_strength
            log_class = digamma(class_mass) - digamma(class_mass.sum())
            joint = np.asarray(answer_matrix @ log_skill.reshape(n_workers * n_classes, -1))
            joint += (log_class[:, np.newaxis] + log_subtype).reshape(1, -1)
            flat_states, log_evidence = normalise_log_joint(joint, known, n_subtypes)
            # KL(Dir(mass) || Dir(prior)) summed over every (worker, class, subtype); mass - prior = counts.
            skill_kl = (
                float(np.sum(gammaln(total)) - np.sum(gammaln(mass)))
                - prior_log_norm
                + float(np.einsum("i,i->", counts.ravel(), log_skill.ravel()))
            )
            bound = (
                log_evidence
                - skill_kl
                - float(_dirichlet_kl(subtype_mass, np.full_like(subtype_mass, self.subtype_prior)).sum())
                - float(_dirichlet_kl(class_mass, np.full_like(class_mass, self.class_prior_strength)))
            )
            return _VBState(flat_states.reshape(n_items, n_classes, n_subtypes), bound)

        threshold = self.tol * max(n_answers, 1)
        if self.accelerate:
            state, history, converged, steps = accelerated_ascent(
                vb_step, states, threshold=threshold, max_steps=self.max_iter
            )
            return state.posteriors, history, converged, steps
        history = []
        converged = False
        while len(history) < self.max_iter and not converged:
            state = vb_step(states)
            states = state.posteriors
            converged = bool(history) and state.objective - history[-1] < threshold
            history.append(state.objective)
        return states, history, converged, len(history)

    def fit_predict(self, items: IntArray, workers: IntArray, labels: IntArray, *, n_classes: int) -> IntArray:
        """Fit and return the consolidated class codes, shape (n_items,)."""
        n_items = int(items.max(initial=-1)) + 1
        n_workers = int(workers.max(initial=-1)) + 1
        predicted: IntArray = self.fit(
            items, workers, labels, n_items=n_items, n_workers=n_workers, n_classes=n_classes
        ).labels_
        return predicted

    def answer_probability(self, items: IntArray, workers: IntArray, labels: IntArray) -> FloatArray:
        """P(worker answers label | the fit), shape (n,): subtypes of the item weighed by their posterior."""
        probability: FloatArray = np.einsum(
            "jkm,jkm->j", self.subtype_posteriors_[items], self.skill_[workers, :, :, labels]
        )
        return probability

    def _starts(
        self,
        items: IntArray,
        workers: IntArray,
        labels: IntArray,
        n_items: int,
        n_workers: int,
        n_classes: int,
        known: KnownLabels,
    ) -> list[FloatArray]:
        """Starting states (I, K, M): the soft majority vote with gold fixed (and, with gold, the gold-informed start
        of :func:`start_from_known`), times a subtype band by how strongly the vote agrees."""
        votes = vote_fractions(vote_counts(items, labels, n_items=n_items, n_classes=n_classes))
        shares = votes.copy()
        shares[known.items] = 0.0
        shares[known.items, known.labels] = 1.0
        starts = [shares]
        if known.size:
            shape = {"n_items": n_items, "n_workers": n_workers, "n_classes": n_classes}
            starts.append(start_from_known(items, workers, labels, known=known, shares=shares, **shape))
        return [self._with_subtypes(start, votes) for start in starts]

    def _with_subtypes(self, shares: FloatArray, votes: FloatArray) -> FloatArray:
        """Class shares (I, K) times subtype bands (I, M) of vote agreement: subtype 0 the clearest third."""
        n_items = shares.shape[0]
        n_subtypes = self.subtypes
        if n_subtypes == 1:
            return shares[:, :, np.newaxis].copy()
        agreement = votes.max(axis=1)
        edges = np.quantile(agreement, np.linspace(0.0, 1.0, n_subtypes + 1)[1:-1]) if n_items else np.zeros(0)
        band = (n_subtypes - 1) - np.searchsorted(edges, agreement, side="right")
        split = np.full((n_items, n_subtypes), 0.1 / (n_subtypes - 1))
        split[np.arange(n_items), band] = 0.9
        states: FloatArray = shares[:, :, np.newaxis] * split[:, np.newaxis, :]
        return states

    @staticmethod
    def _expected_counts(
        answer_matrix_t: sp.csr_matrix, states: FloatArray, n_workers: int, n_classes: int
    ) -> FloatArray:
        """counts[w, l, k, m]: expected number of worker w's answers l on items of class k, subtype m. Answered-major
        (W, L, K, M), the layout ``A.T @ states`` gives and ``A @ log_skill`` reads: no step copies or transposes."""
        n_items, _, n_subtypes = states.shape
        flat = np.asarray(answer_matrix_t @ states.reshape(n_items, n_classes * n_subtypes))
        counts: FloatArray = flat.reshape(n_workers, n_classes, n_classes, n_subtypes)
        return counts


def _dirichlet_kl(posterior: FloatArray, prior: FloatArray) -> FloatArray:
    """KL(Dir(posterior) || Dir(prior)) over the last axis, elementwise over the others."""
    digamma, gammaln = _special_functions()
    posterior_total = posterior.sum(axis=-1)
    prior_total = prior.sum(axis=-1)
    kl: FloatArray = (
        gammaln(posterior_total)
        - gammaln(posterior).sum(axis=-1)
        - gammaln(prior_total)
        + gammaln(prior).sum(axis=-1)
        + ((posterior - prior) * (digamma(posterior) - digamma(posterior_total)[..., np.newaxis])).sum(axis=-1)
    )
    return kl


@cache
def _special_functions() -> tuple[Callable[..., FloatArray], Callable[..., FloatArray]]:
    """scipy's digamma and log-gamma, imported on first use: scipy.special adds ~80 ms to a cold start that box-only
    Lambdas never need, and a function-level import in the VB loop would cost more than the arithmetic it serves."""
    from scipy.special import digamma, gammaln

    return digamma, gammaln
