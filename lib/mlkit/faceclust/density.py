"""Densities over a kNN graph (ids (N, k) int32 with -1 = missing, dists (N, k) ascending).

NDDe, neighbourhood-diffusion density (official ``utils/compute_density.py``):

* transition weights over the ``k_d`` lowest-distance neighbours, self included:
  p_ij = exp(-d_ij / σ_d) / (Σ_{j' ∈ N_kd(i)} exp(-d_ij' / σ_d) + 1e-5)
* ``approximate_ndde`` (the configs' default): one diffusion step from a uniform start,
  ρ_j = Σ_i Σ_{j ∈ N_kd(i)} p_ij  (an in-weighted degree);
* ``ndde`` (full): L = p without the 1e-5 and with the diagonal zeroed; from ρ⁰ = 1/n iterate
  ρ ← d·ρ + (1 - d)·Lᵀρ (d = 0.1) until ‖Δ‖₁ < ε (0.05) and return the previous iterate, exactly
  as the official loop does. Sparse here (the official code builds a dense n×n matrix).

``sumsim_density`` is the baseline: ρ_i = Σ_{j ∈ kNN(i)} (1 - d_ij).
"""

from __future__ import annotations

import numpy as np

from mlkit.errors import InputError

__all__ = ["transition_weights", "approximate_ndde", "ndde", "ndde_dense_reference", "sumsim_density"]


def _check(ids: np.ndarray, dists: np.ndarray, k: int, sigma: float) -> None:
    if sigma <= 0:
        raise InputError("sigma must be > 0", got=str(sigma))
    if not 1 <= k <= ids.shape[1]:
        raise InputError("bad NDDe k", expected=f"1..{ids.shape[1]}", got=str(k))


def transition_weights(ids: np.ndarray, dists: np.ndarray, k: int, sigma: float, *, eps: float = 1e-5):
    """(ids[:, :k], p (N, k) float64) with p_ij = exp(-d/σ) / (row sum + eps); missing slots get 0."""
    _check(ids, dists, k, sigma)
    nb = ids[:, :k]
    w = np.exp(-dists[:, :k].astype(np.float64) / sigma)
    w[nb < 0] = 0.0
    return nb, w / (w.sum(axis=1, keepdims=True) + eps)


def approximate_ndde(ids: np.ndarray, dists: np.ndarray, k: int = 20, sigma: float = 0.5) -> np.ndarray:
    """One-step NDDe (the official configs' ``approximate_NDDe``)."""
    nb, p = transition_weights(ids, dists, k, sigma)
    ok = nb >= 0
    return np.bincount(nb[ok], weights=p[ok], minlength=len(ids))


def _transition_matrix(ids, dists, k, sigma):
    import scipy.sparse as sp

    nb, p = transition_weights(ids, dists, k, sigma, eps=0.0)
    n = len(ids)
    rows = np.repeat(np.arange(n), nb.shape[1])
    cols = nb.ravel()
    vals = p.ravel()
    keep = (cols >= 0) & (cols != rows)  # zero the diagonal, drop missing slots
    return sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n, n))


def ndde(ids: np.ndarray, dists: np.ndarray, k: int = 20, sigma: float = 0.5, *, damping: float = 0.1,
         eps: float = 0.05, max_iter: int = 1000) -> np.ndarray:
    """Full NDDe by sparse power iteration; never forms an n×n dense matrix."""
    lt = _transition_matrix(ids, dists, k, sigma).T.tocsr()
    n = len(ids)
    rho = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        new = damping * rho + (1 - damping) * (lt @ rho)
        if np.abs(new - rho).sum() < eps:
            return rho
        rho = new
    return rho


def ndde_dense_reference(ids, dists, k: int = 20, sigma: float = 0.5, *, damping: float = 0.1,
                         eps: float = 0.05, max_iter: int = 1000) -> np.ndarray:
    """The official dense formulation, for tests on small n."""
    nb, p = transition_weights(ids, dists, k, sigma, eps=0.0)
    n = len(ids)
    dense = np.zeros((n, n))
    for i in range(n):
        for j, v in zip(nb[i], p[i], strict=True):
            if j >= 0:
                dense[i, j] += v
    np.fill_diagonal(dense, 0.0)
    rho = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        new = damping * rho + (1 - damping) * dense.T @ rho
        if np.abs(new - rho).sum() < eps:
            return rho
        rho = new
    return rho


def sumsim_density(ids: np.ndarray, dists: np.ndarray) -> np.ndarray:
    """Sum of similarities (1 - d) over each row's neighbours (the baseline density)."""
    sim = 1.0 - dists.astype(np.float64)
    sim[ids < 0] = 0.0
    return sim.sum(axis=1)
