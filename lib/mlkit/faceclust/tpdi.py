"""TPDi, the transition-probability distance (official ``utils/compute_density.py``):

    P_ij = exp(-d_ij / σ_t) / (Σ_{j' ∈ kNN(i)} exp(-d_ij' / σ_t) + 1e-5),   S = √P  (sparse)
    TPDi(i, j) = 1 - Σ_m S_im S_jm   for j ∈ kNN(i)

one minus the Bhattacharyya coefficient of the two rows' transition distributions over their
shared neighbours. Computed in row chunks with a dense scatter buffer of ``chunk × N`` floats,
so memory stays near the graph size; the result keeps the kNN row order (not re-sorted)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .density import transition_weights

__all__ = ["tpdi", "tpdi_dense_reference"]


def tpdi(ids: np.ndarray, dists: np.ndarray, sigma: float = 0.05, *, chunk: int | None = None,
         dtype=np.float64, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(N, k) TPDi for every kNN edge (computed and returned in ``dtype``; float32 halves the
    memory at millions of points); missing slots (-1) get distance 1."""
    n, k = ids.shape
    nb, p = transition_weights(ids, dists, k, sigma)
    s = np.sqrt(p).astype(dtype)                            # (N, k)
    safe = np.where(nb >= 0, nb, 0)
    if chunk is None:
        chunk = int(max(16, min(2048, 2e7 // max(n, 1))))
    out = np.ones((n, k), dtype=dtype)
    buf = np.zeros((chunk, n), dtype=dtype)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        r = np.arange(hi - lo)[:, None]
        buf[r, safe[lo:hi]] = np.where(nb[lo:hi] >= 0, s[lo:hi], 0.0)   # row i of S, scattered
        nbj = safe[lo:hi]                                               # (c, k) neighbours j
        # Σ_m S_im S_jm = Σ_m buf[i, nb[j, m]] · s[j, m], gathered for every j ∈ kNN(i)
        vals = buf[r[:, :, None], safe[nbj]] * np.where(nb[nbj] >= 0, s[nbj], 0.0)   # (c, k, k)
        out[lo:hi] = 1.0 - vals.sum(axis=2)
        buf[r, safe[lo:hi]] = 0.0
        if progress:
            progress(hi, n)
    out[nb < 0] = 1.0
    return out


def tpdi_dense_reference(ids: np.ndarray, dists: np.ndarray, sigma: float = 0.05) -> np.ndarray:
    """Brute force with a dense S (small n only)."""
    n, k = ids.shape
    nb, p = transition_weights(ids, dists, k, sigma)
    dense = np.zeros((n, n))
    for i in range(n):
        for j, v in zip(nb[i], p[i], strict=True):
            if j >= 0:
                dense[i, j] += v
    s = np.sqrt(dense)
    full = 1.0 - s @ s.T
    out = np.ones((n, k))
    for i in range(n):
        for c, j in enumerate(nb[i]):
            if j >= 0:
                out[i, c] = full[i, j]
    return out
