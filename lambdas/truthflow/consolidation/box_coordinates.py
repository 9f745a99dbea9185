"""Where an object is: the consolidated edges of a cluster of boxes, from the boxes and their workers' skill.

The model (per-worker Student-t edge spread, leave-one-out residuals) is described in
:mod:`truthflow.consolidation.boxes`; this module holds its computation and the per-edge median it starts from.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def weighted_median(values: FloatArray, weights: FloatArray, group: IntArray, n_groups: int) -> FloatArray:
    """Weighted median of ``values`` within each (non-empty) group.

    The smallest value whose cumulative weight reaches half the group's total; when it reaches exactly half, the
    mean of that value and the next, so equal weights give the ordinary median.
    """
    order = np.lexsort((values, group))
    v, w, g = values[order], weights[order], group[order]
    counts = np.bincount(g, minlength=n_groups)
    starts = np.cumsum(counts) - counts
    cumulative = np.cumsum(w)
    within = cumulative - (cumulative[starts] - w[starts])[g]
    half = np.bincount(g, weights=w, minlength=n_groups) / 2.0
    slack = 1e-9 * half
    below = (within < half[g] - slack[g]).astype(np.float64)
    low = starts + np.bincount(g, weights=below, minlength=n_groups).astype(np.int64)
    exact = np.abs(within[low] - half) <= slack
    high = np.where(exact & (low + 1 < starts + counts), low + 1, low)
    median: FloatArray = (v[low] + v[high]) / 2.0
    return median


def grouped_median(corners: FloatArray, cluster: IntArray, n_clusters: int) -> FloatArray:
    """Per-edge median of each cluster's boxes, (C, 4). The median of x2 exceeds that of x1 (each x2 does)."""
    if n_clusters == 0:
        return np.zeros((0, 4))
    ones = np.ones(cluster.size)
    return np.stack([weighted_median(corners[:, k], ones, cluster, n_clusters) for k in range(4)], axis=1)


def worker_skill_consensus(
    corners: FloatArray,
    cluster: IntArray,
    worker: IntArray,
    n_clusters: int,
    n_workers: int,
    *,
    dof: float,
    prior: float,
    max_iter: int,
    tol: float,
) -> FloatArray:
    """EM for the per-worker Student-t edge model of the module docstring; returns consensus corners (C, 4)."""
    median = grouped_median(corners, cluster, n_clusters)
    if n_clusters == 0:
        return median
    n_boxes = cluster.size
    members = np.bincount(cluster, minlength=n_clusters)[cluster].astype(np.float64)
    informative = members >= 2  # a lone box says nothing about its worker's spread
    by_cluster = sp.csr_matrix((np.ones(n_boxes), (cluster, np.arange(n_boxes))), shape=(n_clusters, n_boxes))
    by_worker = sp.csr_matrix(
        (informative.astype(np.float64), (worker, np.arange(n_boxes))), shape=(n_workers, n_boxes)
    )
    boxes_per_worker = np.asarray(by_worker.sum(axis=1)).reshape(-1)
    n_informative = max(float(informative.sum()), 1.0)
    axis_of_edge = [0, 1, 0, 1]  # x1, y1, x2, y2 -> x, y

    consensus = median
    # First residuals: against the median, inflated by m / (m - 1) since that median contains the box itself.
    scale = np.tile(np.maximum(consensus[:, 2:] - consensus[:, :2], 1e-12), 2)
    residual = (corners - consensus[cluster]) / scale[cluster]
    residual *= np.sqrt(np.where(informative, members / np.maximum(members - 1.0, 1.0), 0.0))[:, None]
    latent = np.ones(n_boxes)
    for _ in range(max_iter):
        squared = residual * residual
        # M-step, worker spread per axis: latent-weighted residual variance, shrunk toward the crowd's.
        weighted_squares = squared * (latent * informative)[:, None]
        per_axis = weighted_squares[:, :2] + weighted_squares[:, 2:]  # (x1 + x2, y1 + y2)
        crowd = np.maximum(per_axis.sum(axis=0) / (2.0 * n_informative), 1e-12)
        variance = (np.asarray(by_worker @ per_axis) + prior * crowd) / (2.0 * boxes_per_worker + prior)[:, None]
        spread = np.maximum(variance, 1e-12)[:, axis_of_edge][worker]
        # E-step: a box's latent precision falls with its Mahalanobis residual (Student-t as a scale mixture).
        if math.isfinite(dof):
            latent = (dof + 4.0) / (dof + (squared / spread).sum(axis=1))
        weight = latent[:, None] / spread
        # M-step, objects: precision-weighted mean of the member boxes.
        weighted_corners = weight * corners
        weighted_sum = np.asarray(by_cluster @ weighted_corners)
        weight_sum = np.asarray(by_cluster @ weight)
        updated = weighted_sum / weight_sum
        scale = np.tile(np.maximum(updated[:, 2:] - updated[:, :2], 1e-12), 2)
        moved = float(np.max(np.abs(updated - consensus) / scale, initial=0.0))
        consensus = updated
        # Leave-one-out residuals: each box against the weighted mean of the other members of its cluster (their
        # weights are positive, so the remainder is too for every box that has company).
        others = np.where(informative[:, None], weight_sum[cluster] - weight, 1.0)
        loo = (weighted_sum[cluster] - weighted_corners) / others
        residual = np.where(informative[:, None], (corners - loo) / scale[cluster], 0.0)
        if moved <= tol:
            break
    # A weighted mean of boxes with x2 > x1 keeps x2 > x1 unless weights make it degenerate; fall back to the median.
    broken = ~(
        np.isfinite(consensus).all(axis=1) & (consensus[:, 2] > consensus[:, 0]) & (consensus[:, 3] > consensus[:, 1])
    )
    consensus[broken] = median[broken]
    return consensus
