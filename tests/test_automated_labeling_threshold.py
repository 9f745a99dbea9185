"""Choosing θ: the lower bounds hold their level, and the fixed-sequence walk accepts what the bound allows."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from truthflow.automated_labeling.bounds import (
    betting_lower_bound,
    clopper_pearson_lower,
    lower_bound_for,
    smallest_passing_size,
)
from truthflow.automated_labeling.threshold import MAX_CANDIDATES, choose_threshold


def test_clopper_pearson_is_the_exact_binomial_bound():
    lower = clopper_pearson_lower(58, 60, delta=0.05)
    # At the bound, seeing 58 or more successes is exactly 5 % likely.
    assert binom.sf(57, 60, lower) == pytest.approx(0.05, abs=1e-9)
    assert clopper_pearson_lower(0, 10, delta=0.05) == 0.0
    # All n right: the bound is delta ** (1 / n).
    assert clopper_pearson_lower(59, 59, delta=0.05) == pytest.approx(0.05 ** (1 / 59))


@pytest.mark.parametrize(("a", "b", "n"), [(6, 2, 40), (2, 2, 30), (20, 1, 60), (1, 1, 200)])
def test_betting_bound_covers_the_true_mean_at_its_level(a, b, n):
    rng = np.random.default_rng(7)
    true_mean = a / (a + b)
    misses = sum(betting_lower_bound(rng.beta(a, b, n), delta=0.1) > true_mean for _ in range(300))
    # At most 10 % of the bounds may exceed the true mean; allow binomial noise of 300 draws.
    assert misses / 300 <= 0.1 + 3 * (0.1 * 0.9 / 300) ** 0.5


def test_betting_bound_is_tighter_with_more_data_and_never_above_the_largest_value():
    rng = np.random.default_rng(3)
    values = rng.beta(8, 2, 400)
    small, large = betting_lower_bound(values[:40], delta=0.05), betting_lower_bound(values, delta=0.05)
    assert small < large < values.mean()
    assert betting_lower_bound([0.3] * 50, delta=0.05) <= 0.3
    assert betting_lower_bound([], delta=0.05) == 0.0


def test_betting_bound_refuses_values_outside_the_unit_interval():
    with pytest.raises(ValueError, match="between 0 and 1"):
        betting_lower_bound([0.5, 1.2], delta=0.05)


def test_smallest_passing_size_is_where_a_perfect_record_first_passes():
    binary = lower_bound_for("binary", delta=0.05)
    n = smallest_passing_size(binary, 0.95)
    assert n == 59  # ceil(ln 0.05 / ln 0.95)
    assert binary([1.0] * n) >= 0.95 > binary([1.0] * (n - 1))
    assert smallest_passing_size(binary, 1.0) is None


def calibration(n: int, *, good_share: float, good: float, bad: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Confidences uniform in [0, 1]; images above 1 - good_share are right with probability ``good``."""
    rng = np.random.default_rng(seed)
    confidence = rng.uniform(size=n)
    right = rng.uniform(size=n) < np.where(confidence > 1 - good_share, good, bad)
    return confidence, right.astype(float)


def test_a_good_model_gets_a_threshold_whose_bound_meets_the_target():
    confidence, quality = calibration(400, good_share=0.7, good=0.99, bad=0.5)
    choice = choose_threshold(confidence, quality, target=0.9, delta=0.05, kind="binary")
    assert choice.theta is not None
    chosen = choice.chosen
    assert chosen is not None and chosen.lower_bound is not None
    assert chosen.lower_bound >= 0.9
    accepted = confidence >= choice.theta
    assert accepted.sum() == chosen.n_accepted
    assert quality[accepted].mean() == pytest.approx(chosen.quality)
    # The walk starts at half of the calibration images and stops at its first failure.
    assert choice.tested[0].n_accepted >= 200
    failed = [step for step in choice.tested if step.lower_bound is not None and step.lower_bound < 0.9]
    assert len(failed) <= 1 and (not failed or failed[0] is choice.tested[-1])


def test_a_poor_model_gets_no_threshold_and_the_reason_says_why():
    confidence, quality = calibration(200, good_share=0.2, good=0.8, bad=0.5)
    choice = choose_threshold(confidence, quality, target=0.95, delta=0.05, kind="binary")
    assert choice.theta is None and choice.chosen is None
    assert "below the target 0.95" in choice.reason


def test_too_few_calibration_images_get_no_threshold():
    choice = choose_threshold([0.9] * 20, [1.0] * 20, target=0.95, delta=0.05, kind="binary")
    assert choice.theta is None
    assert "at least 59 are needed" in choice.reason


def test_ties_in_confidence_are_accepted_or_refused_together():
    confidence = [0.9] * 70 + [0.5] * 30
    quality = [1.0] * 70 + [0.0] * 30
    choice = choose_threshold(confidence, quality, target=0.9, delta=0.05, kind="binary")
    assert choice.theta == 0.9 and choice.chosen is not None and choice.chosen.n_accepted == 70


def test_bounded_quality_uses_the_betting_bound():
    rng = np.random.default_rng(5)
    confidence = rng.uniform(size=200)
    quality = np.clip(0.4 + 0.55 * confidence + rng.normal(0, 0.05, 200), 0, 1)
    choice = choose_threshold(confidence, quality, target=0.6, delta=0.05, kind="bounded")
    assert choice.theta is not None and choice.chosen is not None
    assert choice.chosen.lower_bound == pytest.approx(
        betting_lower_bound(quality[confidence >= choice.theta], delta=0.05)
    )


def test_many_distinct_confidences_are_tested_on_a_grid():
    confidence, quality = calibration(5000, good_share=0.9, good=0.99, bad=0.6)
    choice = choose_threshold(confidence, quality, target=0.95, delta=0.05, kind="binary")
    assert len(choice.curve) <= MAX_CANDIDATES
    assert choice.theta is not None


@pytest.mark.parametrize(
    ("confidence", "quality", "kind", "message"),
    [
        ([0.5, 0.6], [1.0], "binary", "same length"),
        ([0.5, float("nan")], [1.0, 0.0], "binary", "finite"),
        ([0.5, 0.6], [1.0, 0.5], "binary", "0 or 1"),
        ([0.5, 0.6], [1.0, 1.5], "bounded", "between 0 and 1"),
    ],
)
def test_bad_calibration_data_is_a_clear_error(confidence, quality, kind, message):
    with pytest.raises(ValueError, match=message):
        choose_threshold(confidence, quality, target=0.9, delta=0.05, kind=kind)
