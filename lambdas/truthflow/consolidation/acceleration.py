r"""Fewer EM steps for the same fixed point: squared extrapolation (SQUAREM) with a monotone safeguard.

EM (and the coordinate ascent of variational Bayes) converges linearly: near a fixed point each step only removes a
constant share of the remaining distance, and with strongly pooled skills or slowly splitting subtypes that share is
small (dozens of steps). SQUAREM (Varadhan & Roland 2008, "Simple and globally convergent methods for accelerating
the convergence of any EM algorithm", scheme S3) takes two steps from :math:`q_0`,
:math:`r = F(q_0) - q_0`, :math:`v = F(F(q_0)) - F(q_0) - r`, and jumps to
:math:`q_0 - 2\alpha r + \alpha^2 v` with :math:`\alpha = -\|r\| / \|v\|` (at most :math:`-1`): the step length the
two differences suggest. The jump is clipped to valid posteriors (negative entries to 0, rows renormalised; the
classes a known item cannot have are 0 in all three states, so they stay 0) and one more step is taken from it.

The safeguard keeps the method's guarantee: the jump is kept only when its step reaches an objective at least that of
the second plain step; otherwise the plain steps are kept. So every accepted state's objective is at least the
previous one's (``history`` never decreases), and the run stops by the plain method's rule: when one plain step from
the current state gains less than ``threshold``.

Works on any step whose state carries ``posteriors`` (items first; every other axis sums to 1) and ``objective``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

import numpy as np

from truthflow.consolidation.majority_vote import FloatArray


class AscentState(Protocol):
    @property
    def posteriors(self) -> FloatArray: ...

    @property
    def objective(self) -> float: ...


State = TypeVar("State", bound=AscentState)


def accelerated_ascent(
    step: Callable[[FloatArray], State],
    start: FloatArray,
    *,
    threshold: float,
    max_steps: int,
) -> tuple[State, list[float], bool, int]:
    """Iterate ``step`` from ``start`` with SQUAREM (module docstring) until a plain step gains less than
    ``threshold`` or ``max_steps`` steps were evaluated. Returns the last accepted state, the objective of every
    accepted state (non-decreasing), whether the stopping rule was met, and the number of steps evaluated."""
    state = step(start)
    steps = 1
    history = [state.objective]
    while steps < max_steps:
        origin = state.posteriors
        first = step(origin)
        steps += 1
        gain = first.objective - state.objective
        state = first
        history.append(first.objective)
        if gain < threshold:
            return state, history, True, steps
        if steps >= max_steps:
            break
        second = step(first.posteriors)
        steps += 1
        accepted = second
        jump = _extrapolated(origin, first.posteriors, second.posteriors)
        if jump is not None and steps < max_steps:
            jumped = step(jump)
            steps += 1
            if jumped.objective >= second.objective:
                accepted = jumped
        state = accepted
        history.append(accepted.objective)
    return state, history, False, steps


def _extrapolated(origin: FloatArray, first: FloatArray, second: FloatArray) -> FloatArray | None:
    """The SQUAREM jump from three successive posteriors, clipped to valid posteriors; ``None`` when the steps do
    not curve (nothing to extrapolate)."""
    change = first - origin
    curvature = second - first
    curvature -= change
    # Sums of squares by einsum: one pass, no temporary, and no BLAS threads (which cost more than they save here).
    curvature_norm = float(np.sqrt(np.einsum("i,i->", curvature.ravel(), curvature.ravel())))
    if curvature_norm == 0.0:
        return None
    length = min(-float(np.sqrt(np.einsum("i,i->", change.ravel(), change.ravel()))) / curvature_norm, -1.0)
    # origin - 2 length change + length^2 curvature, built in place.
    curvature *= length * length
    change *= -2.0 * length
    curvature += change
    curvature += origin
    jump = np.maximum(curvature, 0.0, out=curvature)
    rows = jump.reshape(jump.shape[0], -1)
    rows /= (rows @ np.ones(rows.shape[1]))[:, np.newaxis]  # row sums as a product: .sum(axis=1) is ~7x slower
    return jump
