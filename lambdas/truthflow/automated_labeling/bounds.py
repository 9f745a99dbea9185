r"""One-sided lower confidence bounds for the mean quality of machine labels.

Both bounds hold for any sample size (no normal approximation), for independent draws:

* :func:`clopper_pearson_lower` — the exact binomial bound (Clopper & Pearson 1934) for accuracy, where each
  calibration image is right or wrong: the largest ``p`` with :math:`P(X \ge k \mid n, p) \le \delta`, i.e. the
  :math:`\delta` quantile of :math:`\mathrm{Beta}(k, n - k + 1)`.
* :func:`betting_lower_bound` — for a mean of values in ``[0, 1]`` (a per-image IoU score), the betting bound of
  Waudby-Smith & Ramdas (2024, "Estimating means of bounded random variables by betting", JRSS B 86(1)). For a
  candidate mean ``m`` a gambler bets that the values exceed ``m``; with stakes :math:`\lambda_i \in [0, c]` fixed
  before :math:`x_i` is seen, the wealth :math:`K_t(m) = \prod_{i \le t} (1 + \lambda_i (x_i - m))` is a
  nonnegative supermartingale when the true mean is at most ``m``, so by Ville's inequality it reaches
  :math:`1/\delta` with probability at most :math:`\delta`. Every ``m`` at which it does is rejected; the bound is
  the smallest ``m`` that is not (on a grid of step 0.001, rounded down). Stakes are the paper's plug-in for a fixed
  sample size, :math:`\lambda_i = \min(\sqrt{2 \ln(1/\delta) / (n \hat\sigma^2_{i-1})}, c/m)`, with
  :math:`\hat\sigma^2` a running variance that starts at 1/4 and :math:`c = 3/4`. The bound depends on the order
  of the values, so they are put in a seeded random order: the same values always give the same bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import beta

# Stakes are truncated at MAX_STAKE / m for candidate mean m, so a factor never falls below 1 - MAX_STAKE (the paper
# uses 1/2 or 3/4).
MAX_STAKE = 0.75
_GRID_POINTS = 1001  # candidate means 0, 0.001, ..., 1: the bound is exact to 0.001, rounded down
_ORDER_SEED = 20240101


def clopper_pearson_lower(successes: int, n: int, *, delta: float) -> float:
    """Exact one-sided ``1 - delta`` lower bound for a success probability from ``successes`` out of ``n``."""
    _check_delta(delta)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n (got {successes} of {n})")
    if successes == 0:
        return 0.0
    return float(beta.ppf(delta, successes, n - successes + 1))


def betting_lower_bound(values: Sequence[float], *, delta: float) -> float:
    """One-sided ``1 - delta`` lower bound for the mean of independent values in ``[0, 1]`` (0 for no values)."""
    _check_delta(delta)
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return 0.0
    if not np.all(np.isfinite(x)) or x.min() < 0.0 or x.max() > 1.0:
        raise ValueError("values must be finite and between 0 and 1")
    x = x[np.random.default_rng(_ORDER_SEED).permutation(x.size)]
    means = np.linspace(0.0, 1.0, _GRID_POINTS)[1:]  # candidate means; 0 can never be rejected
    # Stake on value i when testing mean m: the plug-in, truncated at MAX_STAKE / m so that the worst value (0)
    # still leaves 1 - MAX_STAKE of the wealth.
    stakes = np.minimum(_stakes(x, delta)[:, None], MAX_STAKE / means[None, :])
    log_wealth = np.cumsum(np.log1p(stakes * (x[:, None] - means[None, :])), axis=0)
    rejected = log_wealth.max(axis=0) >= math.log(1.0 / delta)
    # The confidence set is every mean not rejected; the bound is the grid point below the smallest of them.
    kept = np.flatnonzero(~rejected)
    if kept.size == 0:
        return float(means[-1])
    return 0.0 if kept[0] == 0 else float(means[kept[0] - 1])


def _stakes(x: np.ndarray, delta: float) -> np.ndarray:
    """Predictable plug-in stakes: the i-th uses only the values before it (running variance, started at 1/4)."""
    n = x.size
    counts = np.arange(1, n + 1, dtype=np.float64)
    means = (0.5 + np.cumsum(x)) / (counts + 1.0)
    previous_means = np.concatenate(([0.5], means[:-1]))
    variances = (0.25 + np.cumsum((x - previous_means) ** 2)) / (counts + 1.0)
    previous_variances = np.concatenate(([0.25], variances[:-1]))
    stakes: np.ndarray = np.sqrt(2.0 * math.log(1.0 / delta) / (n * previous_variances))
    return stakes


LowerBound = Callable[[Sequence[float]], float]


def lower_bound_for(kind: str, *, delta: float) -> LowerBound:
    """The bound for a quality kind: ``"binary"`` (right/wrong, Clopper-Pearson) or ``"bounded"`` (betting)."""
    if kind == "binary":
        return lambda values: clopper_pearson_lower(round(sum(values)), len(values), delta=delta)
    if kind == "bounded":
        return lambda values: betting_lower_bound(values, delta=delta)
    raise ValueError(f"unknown quality kind {kind!r}")


def smallest_passing_size(bound: LowerBound, target: float, *, limit: int = 20_000) -> int | None:
    """The fewest values that could meet ``target`` at all: the smallest ``n`` whose bound for ``n`` perfect
    values (all 1) reaches it. ``None`` when not even ``limit`` perfect values would.

    Searched by doubling, then bisection: the betting bound costs O(n) per call, so sizes near ``limit`` are only
    computed when the answer is near it (a bisection over the whole range took a second for every threshold)."""
    low, high = 0, 1
    while bound([1.0] * high) < target:
        if high == limit:
            return None
        low, high = high, min(2 * high, limit)
    # bound(low) misses (or low == 0), bound(high) passes.
    while high - low > 1:
        middle = (low + high) // 2
        if bound([1.0] * middle) >= target:
            high = middle
        else:
            low = middle
    return high


def _check_delta(delta: float) -> None:
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be between 0 and 1 (got {delta})")
