"""Which boxes show the same object: constrained agglomerative clustering on IoU, batched over images.

Two clusters that contain boxes of the same worker never merge (cannot-link), so a worker contributes at most one
box per object; the closest pair of compatible clusters merges while its linkage similarity is at least the
threshold (see :func:`truthflow.consolidation.boxes.consolidate_boxes` for the model and the measured choices).

Memory. Clustering an image compares every pair of its boxes, (N, N) cells. Boxes whose x extents do not overlap,
or whose y extents do not, have IoU 0 and can never share a cluster, so an image with more than
``MAX_DENSE_BOXES`` boxes is first cut into groups that cannot interact (:func:`overlap_groups`: connected runs of
overlapping extents, alternately along x and y) and each group is clustered on its own: exact, and linear in the
boxes for real scenes, where objects overlap a few neighbours. A group that stays larger than ``MAX_DENSE_BOXES``
(over a thousand boxes piled on one spot, which no real answer contains) is clustered in spatial slices of that size,
so memory stays bounded whatever a worker sends.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

Linkage = Literal["single", "average", "complete"]

# Padding an image batch costs B * N * N floats per temporary array; cap a batch at this many cells (~8 MB each).
_MAX_BATCH_CELLS = 1 << 20
#: Largest group of boxes clustered as one (N, N) problem (8 MB per array at 1,024).
MAX_DENSE_BOXES = 1024


def _padded_widths(counts: IntArray) -> IntArray:
    """Batch width per image: its box count rounded up to a quarter-octave step (1..8, 10, 12, 14, 16, 20, 24, ...).

    Images of similar counts share a padded (B, N, N) batch; padding wastes at most a quarter of N while the number
    of batches grows only logarithmically with the largest count.
    """
    count = np.maximum(counts, 1)
    step = np.left_shift(1, np.maximum(np.floor(np.log2(count)).astype(np.int64) - 2, 0))
    return np.asarray(-(-count // step) * step, dtype=np.int64)


def _batched_iou(corners: FloatArray) -> FloatArray:
    """IoU of every pair of boxes within each image of a batch: corners (B, N, 4) -> (B, N, N).

    In-place arithmetic: this is the largest allocation of the consolidation, so it keeps few (B, N, N) temporaries.
    """
    x1, y1, x2, y2 = (corners[:, :, k] for k in range(4))
    inter = np.minimum(x2[:, :, None], x2[:, None, :])
    inter -= np.maximum(x1[:, :, None], x1[:, None, :])
    np.clip(inter, 0.0, None, out=inter)
    height = np.minimum(y2[:, :, None], y2[:, None, :])
    height -= np.maximum(y1[:, :, None], y1[:, None, :])
    np.clip(height, 0.0, None, out=height)
    inter *= height
    area = (x2 - x1) * (y2 - y1)
    union = np.add(area[:, :, None], area[:, None, :], out=height)
    union -= inter
    # Where the union is empty (padding) the intersection is 0 too, so leaving it in place gives IoU 0.
    np.divide(inter, union, out=inter, where=union > 0)
    iou: FloatArray = np.nan_to_num(inter, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return iou


def _combine(
    first: FloatArray, second: FloatArray, n_first: FloatArray, n_second: FloatArray, linkage: Linkage
) -> FloatArray:
    """Lance-Williams update: similarity of a merged cluster to the others, from those of its two parts."""
    if linkage == "average":
        # UPGMA: the mean similarity over member pairs, kept exact by this size-weighted update; -inf propagates.
        mean: FloatArray = (n_first * first + n_second * second) / (n_first + n_second)
        return mean
    if linkage == "complete":
        return np.minimum(first, second)
    return np.where(np.isneginf(first) | np.isneginf(second), -np.inf, np.maximum(first, second))


def _agglomerate(corners: FloatArray, workers: IntArray, *, threshold: float, linkage: Linkage) -> IntArray:
    """Cluster each image of a batch; returns per slot (B, N) the slot that represents its cluster.

    ``workers`` (B, N) holds worker codes, -1 for padding. Greedy agglomeration merges the most similar pair of
    compatible clusters while the similarity is at least ``threshold``. Every step here merges, in every image at
    once, *all* pairs of clusters that are each other's most similar compatible cluster: for a reducible linkage
    (single, complete and average are; merging never creates a similarity above both parts') these merges are the
    ones the one-pair-at-a-time greedy would also make (the nearest-neighbour-chain argument, Murtagh 1983,
    "A survey of recent advances in hierarchical clustering algorithms"), and the cannot-link mask only removes
    pairs. So a step costs O(B N^2) and there are few steps (about log2 of the workers per object), instead of one
    step per merge.
    """
    n_batch, width = workers.shape
    valid = workers >= 0
    similarity = _batched_iou(corners)
    # Cannot-link: same worker (which covers the diagonal) or padding. -inf survives every linkage update, so a
    # merged cluster stays incompatible with any cluster that shares a worker with either of its parts.
    similarity[(workers[:, :, None] == workers[:, None, :]) | ~valid[:, :, None] | ~valid[:, None, :]] = -np.inf
    size = valid.astype(np.float64)
    slots = np.arange(width)
    result = np.broadcast_to(slots, (n_batch, width)).copy()
    root = result.copy()  # representative slot per slot, for the images still being clustered
    images = np.arange(n_batch)  # batch rows still being clustered; the work arrays are compacted to them
    for _ in range(width):
        best = similarity.argmax(axis=2)
        best_value = np.take_along_axis(similarity, best[:, :, None], axis=2)[:, :, 0]
        going = best_value.max(axis=1) >= threshold
        if not going.all():
            result[images[~going]] = root[~going]
            images, root, similarity, size = images[going], root[going], similarity[going], size[going]
            best, best_value = best[going], best_value[going]
        if images.size == 0:
            break
        # Mutual best pairs (i < j): disjoint within an image, so all can merge in one vectorised step.
        mutual = (np.take_along_axis(best, best, axis=1) == slots) & (best_value >= threshold) & (slots < best)
        a, i = np.nonzero(mutual)
        j = best[a, i]
        n_i, n_j = size[a, i][:, None], size[a, j][:, None]
        # Rows first, then columns: entry (i, k) of two merged pairs (i, j) and (k, l) then combines all four.
        similarity[a, i, :] = _combine(similarity[a, i, :], similarity[a, j, :], n_i, n_j, linkage)
        similarity[a, :, i] = _combine(similarity[a, :, i], similarity[a, :, j], n_i, n_j, linkage)
        similarity[a, j, :] = -np.inf
        similarity[a, :, j] = -np.inf
        similarity[a, i, i] = -np.inf
        size[a, i] += size[a, j]
        target = np.broadcast_to(slots, (images.size, width)).copy()
        target[a, j] = i
        root = np.take_along_axis(target, root, axis=1)
    result[images] = root
    return result


def cluster_boxes(
    image: IntArray, worker: IntArray, corners: FloatArray, n_images: int, *, threshold: float, linkage: Linkage
) -> IntArray:
    """Cluster ids 0..C-1 for boxes given grouped by image, numbered in order of each cluster's first box.

    ``corners`` (n, 4) are x1, y1, x2, y2; ``threshold`` must be > 0 (boxes that do not overlap never merge).
    """
    n_boxes = image.size
    if n_boxes == 0:
        return np.zeros(0, dtype=np.int64)
    counts = np.bincount(image, minlength=n_images)
    if counts.max() <= MAX_DENSE_BOXES:
        return _cluster_images(image, worker, corners, n_images, threshold=threshold, linkage=linkage)
    group, n_groups = overlap_groups(image, corners, counts)
    order = np.argsort(group, kind="stable")
    in_order = _cluster_images(
        group[order], worker[order], corners[order], n_groups, threshold=threshold, linkage=linkage
    )
    cluster = np.empty(n_boxes, dtype=np.int64)
    cluster[order] = in_order
    return _numbered_by_first_box(cluster)


def overlap_groups(image: IntArray, corners: FloatArray, counts: IntArray) -> tuple[IntArray, int]:
    """Group per box, and the number of groups: each image with at most ``MAX_DENSE_BOXES`` boxes is one group; a
    larger one is cut into groups no cluster can span (module docstring)."""
    group = image.copy()
    n_groups = counts.size
    for large in np.flatnonzero(counts > MAX_DENSE_BOXES).tolist():
        pieces = _separate(np.flatnonzero(image == large), corners)
        for piece in pieces[1:]:
            group[piece] = n_groups
            n_groups += 1
    return group, n_groups


def _separate(members: IntArray, corners: FloatArray) -> list[IntArray]:
    """Split boxes into runs whose x (then y) extents chain-overlap, until every piece is small or cannot be split;
    an unsplittable pile larger than ``MAX_DENSE_BOXES`` is sliced by x centre."""
    pending, done = [members], []
    while pending:
        piece = pending.pop()
        if piece.size <= MAX_DENSE_BOXES:
            done.append(piece)
            continue
        runs = _overlapping_runs(piece, corners[:, 0], corners[:, 2])
        if len(runs) == 1:
            runs = _overlapping_runs(piece, corners[:, 1], corners[:, 3])
        if len(runs) > 1:
            pending.extend(runs)
            continue
        centre = corners[piece, 0] + corners[piece, 2]
        ordered = piece[np.argsort(centre, kind="stable")]
        done.extend(np.array_split(ordered, -(-piece.size // MAX_DENSE_BOXES)))
    return done


def _overlapping_runs(piece: IntArray, low: FloatArray, high: FloatArray) -> list[IntArray]:
    """Sort by ``low``; a run ends where the next interval starts at or after every earlier interval's end (so no
    box of a later run overlaps a box of an earlier one on this axis)."""
    ordered = piece[np.argsort(low[piece], kind="stable")]
    reach = np.maximum.accumulate(high[ordered])
    breaks = np.flatnonzero(low[ordered][1:] >= reach[:-1]) + 1
    return np.split(ordered, breaks)


def _numbered_by_first_box(cluster: IntArray) -> IntArray:
    _, first_box, by_key = np.unique(cluster, return_index=True, return_inverse=True)
    rank = np.empty(first_box.size, dtype=np.int64)
    rank[np.argsort(first_box, kind="stable")] = np.arange(first_box.size)
    renumbered: IntArray = rank[by_key.reshape(-1)]
    return renumbered


def _cluster_images(
    image: IntArray, worker: IntArray, corners: FloatArray, n_images: int, *, threshold: float, linkage: Linkage
) -> IntArray:
    """:func:`cluster_boxes` for images of at most ``MAX_DENSE_BOXES`` boxes, each clustered as a whole."""
    n_boxes = image.size
    counts = np.bincount(image, minlength=n_images)
    starts = np.cumsum(counts) - counts
    slot = np.arange(n_boxes) - starts[image]
    root = slot.copy()
    widths = _padded_widths(counts)
    for width in np.unique(widths[counts > 1]).tolist():
        members = np.flatnonzero((widths == width) & (counts > 1))
        chunk = max(1, _MAX_BATCH_CELLS // (width * width))
        for first in range(0, members.size, chunk):
            batch = members[first : first + chunk]
            local = np.full(n_images, -1, dtype=np.int64)
            local[batch] = np.arange(batch.size)
            chosen = np.flatnonzero(local[image] >= 0)
            b, s = local[image[chosen]], slot[chosen]
            padded_corners = np.zeros((batch.size, width, 4))
            padded_workers = np.full((batch.size, width), -1, dtype=np.int64)
            padded_corners[b, s] = corners[chosen]
            padded_workers[b, s] = worker[chosen]
            root[chosen] = _agglomerate(padded_corners, padded_workers, threshold=threshold, linkage=linkage)[b, s]
    # Keys are representative slots; renumber by first member so output follows input order.
    return _numbered_by_first_box(starts[image] + root)
