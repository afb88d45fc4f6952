"""Baselines for ``bench``: kNN-DBSCAN on the kNN graph (learn-to-cluster's ``knn_dbscan``), with
the best eps chosen against the ground truth (an oracle, as the prototype and the paper's tables
report it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["knn_dbscan", "best_eps_knn_dbscan"]


def knn_dbscan(ids: np.ndarray, dists: np.ndarray, eps: float, min_samples: int = 1) -> np.ndarray:
    """DBSCAN restricted to the kNN graph: core points have >= ``min_samples`` neighbours within
    ``eps`` (self included); core points within eps of each other are joined; a border point takes
    the cluster of its nearest core neighbour; the rest are singletons."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    n = len(ids)
    near = (ids >= 0) & (dists <= eps)
    core = near.sum(axis=1) >= min_samples
    rows, cols = np.nonzero(near)
    nbr = ids[rows, cols]
    both = core[rows] & core[nbr] & (nbr != rows)
    g = sp.coo_matrix((np.ones(both.sum()), (rows[both], nbr[both])), shape=(n, n))
    _, labels = connected_components(g, directed=False)
    labels = labels.astype(np.int64)
    # border points: first (nearest) core neighbour within eps
    border = ~core & near.any(axis=1)
    for i in np.flatnonzero(border):
        for j, d in zip(ids[i], dists[i], strict=True):
            if j >= 0 and d <= eps and core[j] and j != i:
                labels[i] = labels[j]
                break
    return labels


def best_eps_knn_dbscan(ids, dists, gt, eps_grid: Sequence[float] | None = None, min_samples: int = 1):
    """(best labels, best eps, pairwise F) over ``eps_grid`` (cosine distance)."""
    from .metrics import pairwise

    grid = eps_grid if eps_grid is not None else np.round(np.arange(0.20, 0.80, 0.025), 3)
    best = None
    for eps in grid:
        lab = knn_dbscan(ids, dists, float(eps), min_samples)
        f = pairwise(gt, lab)["f"]
        if best is None or f > best[2]:
            best = (lab, float(eps), f)
    return best
