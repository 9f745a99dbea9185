"""A reproducible, stratified train/validation split that does not depend on line order.

Choice: rank by a seeded hash, per stratum. Every image gets ``h = blake2b(seed, source-ref)`` (64 bits). Within a
stratum of ``n`` images, the ``k`` images with the smallest ``h`` go to validation, where ``k = round(n * fraction)``,
kept within ``[1, n - 1]`` when ``n >= 2`` (so every class with two or more images is seen in both parts) and ``0``
when ``n == 1``. Consequences:

* the same input gives the same split whatever the order of its lines, and a different ``seed`` gives another split;
* the validation share of every stratum is exact (up to rounding), not just expected;
* adding images moves few existing ones, since an image's hash never changes, only the per-stratum cut-off;
* the same ``source-ref`` twice lands in the same part (no leakage between the parts).

Streaming in two passes: :class:`SplitPlanner` keeps 8 bytes per image (the hash) while reading, then
:meth:`SplitPlanner.plan` keeps one cut-off per stratum; :meth:`SplitPlan.assign` needs nothing else.
The stratum of a detection image is its most frequent class (ties to the alphabetically first), ``""`` for an image
without boxes; for classification it is the label.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

Split = Literal["train", "validation"]
SPLITS: tuple[Split, Split] = ("train", "validation")
NO_BOXES_STRATUM = ""


@dataclass(frozen=True)
class SplitConfig:
    """``validation_fraction`` of each stratum goes to validation; ``seed`` picks which images."""

    validation_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be within [0, 1), got {self.validation_fraction}")


def stable_hash(*parts: str) -> int:
    """A 64-bit hash of the parts that is the same on every machine and run (unlike ``hash``)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def split_key_hash(source_ref: str, seed: int) -> int:
    return stable_hash(str(seed), source_ref)


def detection_stratum(labels: Iterable[str]) -> str:
    """The most frequent label (ties to the alphabetically first), or :data:`NO_BOXES_STRATUM`."""
    counts = Counter(labels)
    if not counts:
        return NO_BOXES_STRATUM
    return min(counts, key=lambda label: (-counts[label], label))


def validation_count(n_images: int, fraction: float) -> int:
    """How many of a stratum's ``n_images`` go to validation (see the module docstring)."""
    if n_images < 2 or fraction <= 0.0:
        return 0
    return min(max(int(n_images * fraction + 0.5), 1), n_images - 1)


@dataclass(frozen=True)
class SplitPlan:
    """Per-stratum hash cut-offs: an image is in validation when its hash is at most its stratum's cut-off."""

    seed: int
    cutoffs: dict[str, int]
    stratum_sizes: dict[str, int]

    def assign(self, source_ref: str, stratum: str) -> Split:
        if stratum not in self.cutoffs:
            raise ValueError(
                f"stratum {stratum!r} of {source_ref} was not seen when the split was planned: "
                "the input changed between the two passes"
            )
        return "validation" if split_key_hash(source_ref, self.seed) <= self.cutoffs[stratum] else "train"


class SplitPlanner:
    """First pass: ``add`` every image, then ``plan``."""

    def __init__(self, config: SplitConfig | None = None) -> None:
        self.config = config if config is not None else SplitConfig()
        self._hashes: dict[str, array[int]] = {}

    def add(self, source_ref: str, stratum: str) -> None:
        hashes = self._hashes.get(stratum)
        if hashes is None:
            hashes = self._hashes[stratum] = array("Q")
        hashes.append(split_key_hash(source_ref, self.config.seed))

    def plan(self) -> SplitPlan:
        cutoffs: dict[str, int] = {}
        sizes: dict[str, int] = {}
        for stratum, hashes in self._hashes.items():
            n_images = len(hashes)
            k = validation_count(n_images, self.config.validation_fraction)
            if k == 0:
                cutoff = -1
            else:
                values = np.frombuffer(hashes, dtype=np.uint64)
                values.partition(k - 1)  # in place: the hashes are dropped right after
                cutoff = int(values[k - 1])
            cutoffs[stratum] = cutoff
            sizes[stratum] = n_images
        self._hashes = {}
        return SplitPlan(seed=self.config.seed, cutoffs=cutoffs, stratum_sizes=sizes)
