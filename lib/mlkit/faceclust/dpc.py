"""Density-peak clustering on the kNN graph (official ``utils/dpc.py``, max_conn = 1):
each point's parent is its nearest neighbour (by the given distance, ties broken stably) with
density ρ_j >= ρ_i, j ≠ i; the edge i–parent is kept when its distance is below τ; connected
components are the clusters. Vectorised over all rows."""

from __future__ import annotations

import numpy as np

from mlkit.errors import InputError

__all__ = ["density_peaks"]


def density_peaks(ids: np.ndarray, dist: np.ndarray, rho: np.ndarray, tau: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """Labels (N,) int64 numbered by first appearance, and each point's parent (-1 = a peak or
    a cut edge)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    if tau <= 0:
        raise InputError("tau must be > 0", got=str(tau))
    n = len(ids)
    order = np.argsort(np.where(ids >= 0, dist, np.inf), axis=1, kind="stable")
    nb = np.take_along_axis(ids, order, axis=1)
    d = np.take_along_axis(dist, order, axis=1)
    me = np.arange(n)[:, None]
    cand = (nb >= 0) & (nb != me) & (rho[np.where(nb >= 0, nb, 0)] >= rho[:, None])
    has = cand.any(axis=1)
    first = cand.argmax(axis=1)
    parent = np.where(has, nb[np.arange(n), first], -1)
    pdist = np.where(has, d[np.arange(n), first], np.inf)
    keep = (parent >= 0) & (pdist < tau)
    parent = np.where(keep, parent, -1)
    rows = np.flatnonzero(keep)
    g = sp.coo_matrix((np.ones(len(rows)), (rows, parent[rows])), shape=(n, n))
    _, labels = connected_components(g, directed=False)
    # renumber by first appearance so labels are stable and compact
    _, first_seen, inv = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first_seen))
    return rank[inv].astype(np.int64), parent
