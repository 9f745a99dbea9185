"""Which images people label first, which of those calibrate θ, and which the model labels (or passes on).

The split is a seeded random draw, so the first human batch and the calibration images are a random sample of the
job: θ calibrated on them holds for the rest (exchangeability). Sizes:

* the first batch is ``initial_fraction`` of the images, but at least :data:`MIN_FIRST_BATCH` (a bootstrap model
  learns little from fewer) and at least enough that its calibration share could show the target at all: twice the
  count at which a perfect record passes (:func:`~truthflow.automated_labeling.bounds.smallest_passing_size`), so
  that a few disagreements with the human labels do not rule θ out;
* ``calibration_fraction`` of the first batch is held out from the bootstrap model's training data;
* everything else is ``remaining``: the model labels what it is sure of, people the rest.

When the first batch would take every image, nothing remains for the model and the run labels everything with
people, as without automated labeling (the plan says why).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from truthflow.automated_labeling.bounds import lower_bound_for, smallest_passing_size

MIN_FIRST_BATCH = 100


@dataclass(frozen=True)
class LabelingPlan:
    """Image keys (sorted) of the first human batch, its calibration subset, and the remaining images."""

    first_batch: tuple[str, ...]
    calibration: tuple[str, ...]
    remaining: tuple[str, ...]
    note: str

    @property
    def training(self) -> tuple[str, ...]:
        """First-batch images that are not calibration images (the bootstrap model trains on them)."""
        held_out = set(self.calibration)
        return tuple(key for key in self.first_batch if key not in held_out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "first_batch": list(self.first_batch),
            "calibration": list(self.calibration),
            "remaining": list(self.remaining),
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelingPlan:
        return cls(
            first_batch=tuple(data["first_batch"]),
            calibration=tuple(data["calibration"]),
            remaining=tuple(data["remaining"]),
            note=str(data.get("note", "")),
        )


def first_batch_size(
    n_images: int, *, initial_fraction: float, calibration_fraction: float, target: float, delta: float, kind: str
) -> int:
    """How many images people label first (see the module docstring), at most ``n_images``."""
    passing = smallest_passing_size(lower_bound_for(kind, delta=delta), target)
    needed_for_calibration = n_images if passing is None else math.ceil(2 * passing / calibration_fraction)
    return min(n_images, max(math.ceil(initial_fraction * n_images), MIN_FIRST_BATCH, needed_for_calibration))


def plan_labeling(
    image_keys: Sequence[str],
    *,
    initial_fraction: float,
    calibration_fraction: float,
    target: float,
    delta: float,
    kind: str,
    seed: int,
) -> LabelingPlan:
    """Split ``image_keys`` for automated labeling; the same keys and seed always give the same plan."""
    keys = sorted(set(image_keys))
    size = first_batch_size(
        len(keys),
        initial_fraction=initial_fraction,
        calibration_fraction=calibration_fraction,
        target=target,
        delta=delta,
        kind=kind,
    )
    order = np.random.default_rng(seed).permutation(len(keys))
    first = [keys[i] for i in order[:size]]
    n_calibration = min(size - 1, max(1, round(calibration_fraction * size))) if size > 1 else 0
    calibration = first[:n_calibration]
    remaining = [keys[i] for i in order[size:]]
    if remaining:
        note = (
            f"people label {size} of {len(keys)} images first ({len(calibration)} of them calibrate the confidence "
            f"threshold); the model labels what it is sure of among the other {len(remaining)}"
        )
    else:
        note = (
            f"all {len(keys)} images go to people: the first batch needs {size} images (at least {MIN_FIRST_BATCH}, "
            f"and enough calibration images to show quality {target:g} at {1 - delta:.0%} confidence)"
        )
    return LabelingPlan(tuple(sorted(first)), tuple(sorted(calibration)), tuple(sorted(remaining)), note)
