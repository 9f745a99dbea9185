"""Does θ keep its promise? How often machine labels accepted at the chosen θ fall short of the target, and how many
images they cover, over many random calibration sets, next to two anchors measured on the same draws.

The promise (``truthflow.automated_labeling.threshold``): with probability at least 1 - delta over the calibration
draw, the images the model labels at confidence >= θ have mean quality >= target. Each scenario is a population of
model outputs, ``confidence`` and the ``quality`` of the machine label against the human one (0/1 for a class, a
per-image IoU score for boxes); its true quality at any θ is taken from 400,000 draws. Every trial draws a
calibration set of ``n`` images, chooses θ three ways, and scores each θ on the population:

- truthflow: fixed-sequence testing from the θ accepting half the calibration set (the product's code);
- point estimate (anchor): the lowest θ whose calibration mean reaches the target, no bound (a threshold picked on
  validation accuracy alone);
- walk from the strictest θ (anchor): the same fixed-sequence test started at the most confident image.

"misses" is the share of trials whose accepted machine labels are below the target on the population (the promise:
at most delta = 5 %); "machine-labeled" the mean share of the population accepted (0 when no θ qualifies).

Run ``.venv/bin/python -m benchmarks.threshold_guarantee [--trials 1000]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LAMBDAS = REPO / "lambdas"
if str(LAMBDAS) not in sys.path:
    sys.path.insert(0, str(LAMBDAS))

from truthflow.automated_labeling import threshold  # noqa: E402

DELTA = 0.05
TRIALS = 1000
POPULATION = 400_000
CALIBRATION_SIZES = (60, 100, 200, 400)
Draw = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]


def _calibrated(rng: np.random.Generator, n: int, sharpness: float) -> tuple[np.ndarray, np.ndarray]:
    """A 5-class classifier whose confidence is its probability of being right; ``sharpness`` (Beta's a) sets how
    many of its outputs are near 1."""
    confidence = 0.2 + 0.8 * rng.beta(sharpness, 1.0, n)
    return confidence, (rng.random(n) < confidence).astype(np.float64)


def _strong(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return _calibrated(rng, n, 12.0)


def _weaker(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return _calibrated(rng, n, 4.0)


def _overconfident(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Confident and often wrong: right with probability confidence**3, so the top is worth less than it says."""
    confidence = 0.2 + 0.8 * rng.beta(12.0, 1.0, n)
    return confidence, (rng.random(n) < confidence**3).astype(np.float64)


def _noisy_humans(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The strong model scored against human labels that are wrong 3 % of the time."""
    confidence, right = _strong(rng, n)
    flipped = rng.random(n) < 0.03
    return confidence, np.where(flipped, 0.0, right)


def _boxes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A detector: per-image IoU score (missed/extra boxes count 0) Beta-distributed around 0.25 + 0.7 * confidence."""
    confidence = rng.beta(2.0, 1.5, n)
    mean = 0.25 + 0.7 * confidence
    strength = 6.0
    return confidence, rng.beta(mean * strength, (1.0 - mean) * strength)


@dataclass(frozen=True)
class Scenario:
    name: str
    draw: Draw
    kind: str
    target: float


SCENARIOS = (
    Scenario("classes, strong model", _strong, "binary", 0.95),
    Scenario("classes, weaker model", _weaker, "binary", 0.95),
    Scenario("classes, overconfident", _overconfident, "binary", 0.90),
    Scenario("classes, 3 % human noise", _noisy_humans, "binary", 0.95),
    Scenario("boxes, IoU score", _boxes, "bounded", 0.60),
    Scenario("boxes, IoU score", _boxes, "bounded", 0.75),
)


class Population:
    """True mean quality and share accepted at any θ, from a large sample sorted by confidence."""

    def __init__(self, confidence: np.ndarray, quality: np.ndarray) -> None:
        order = np.argsort(-confidence, kind="stable")
        self._descending = confidence[order]
        self._cumulative = np.cumsum(quality[order])

    def at(self, theta: float | None) -> tuple[float, float]:
        """(mean quality, share accepted) at confidence >= θ; (1.0, 0.0) when nothing is accepted."""
        if theta is None:
            return 1.0, 0.0
        accepted = int(np.searchsorted(-self._descending, -theta, side="right"))
        if accepted == 0:
            return 1.0, 0.0
        return float(self._cumulative[accepted - 1] / accepted), accepted / self._descending.size


def point_estimate(confidence: np.ndarray, quality: np.ndarray, target: float) -> float | None:
    """The lowest θ (a calibration confidence) whose accepted calibration images average at least the target."""
    order = np.argsort(-confidence, kind="stable")
    means = np.cumsum(quality[order]) / np.arange(1, confidence.size + 1)
    meets = np.nonzero(means >= target)[0]
    return float(confidence[order][meets[-1]]) if meets.size else None


def strict_walk(confidence: np.ndarray, quality: np.ndarray, target: float, kind: str) -> float | None:
    """Fixed-sequence testing from the most confident image down (the product's walk with its start at the top)."""
    saved = threshold.START_SHARE
    threshold.START_SHARE = 0.0
    try:
        return threshold.choose_threshold(confidence, quality, target=target, delta=DELTA, kind=kind).theta
    finally:
        threshold.START_SHARE = saved


def run(trials: int = TRIALS, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for scenario in SCENARIOS:
        population = Population(*scenario.draw(rng, POPULATION))
        for n in CALIBRATION_SIZES:
            outcomes: dict[str, list[tuple[float, float]]] = {"truthflow": [], "point estimate": [], "strict walk": []}
            for _ in range(trials):
                confidence, quality = scenario.draw(rng, n)
                chosen = threshold.choose_threshold(
                    confidence, quality, target=scenario.target, delta=DELTA, kind=scenario.kind
                )
                outcomes["truthflow"].append(population.at(chosen.theta))
                outcomes["point estimate"].append(population.at(point_estimate(confidence, quality, scenario.target)))
                outcomes["strict walk"].append(
                    population.at(strict_walk(confidence, quality, scenario.target, scenario.kind))
                )
            row: dict[str, Any] = {"scenario": scenario.name, "target": scenario.target, "n": n}
            for method, results in outcomes.items():
                quality_at = np.array([result[0] for result in results])
                share = np.array([result[1] for result in results])
                row[method] = {"misses": float(np.mean(quality_at < scenario.target)), "share": float(share.mean())}
            rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    methods = ("truthflow", "point estimate", "strict walk")
    lines = [
        "scenario                 | target | calibration | "
        + " | ".join(f"{method}: misses, machine-labeled" for method in methods),
        "-------------------------|--------|-------------|" + "|".join("-" * 36 for _ in methods),
    ]
    for row in rows:
        cells = [f"{row[method]['misses']:6.1%}, {row[method]['share']:6.1%}".rjust(34) for method in methods]
        lines.append(f"{row['scenario']:<24} | {row['target']:6.2f} | {row['n']:11d} | " + " | ".join(cells))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=TRIALS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(table(run(args.trials, args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
