"""Baselines of the benchmark, each given a compression ratio r against the dense float32 cube
(P pixels x T bins x 4 bytes) and returning (reconstruction (T, H, W) float32, stored bytes).
Their sizes are rounded *up* to whole ranks/coefficients, so at a matched ratio a baseline gets at
least the bytes the EMG used (ratio <= r).

* ``svd``: truncated SVD of the (P, T) matrix; rank k stores k·(P + T + 1) float32 numbers.
* ``dct``: per pixel, the k largest-magnitude coefficients of the orthonormal DCT-II along time,
  each stored as a float32 value and a uint16 index (6 bytes).
* ``wavelet``: the same top-k rule on a full ``db2`` wavelet decomposition along time (PyWavelets).
* ``gzip``: lossless: the cube as float32 in HDF5 with gzip level 9 (the ratio is what it is).

The Gaussian-mixture baseline (the EMG with λ → ∞) is the fitter itself with λ pinned (see
``gaussian_config``); it is stored in a .tofz like the EMG.
"""

from __future__ import annotations

import math

import numpy as np

from mlkit.errors import InputError

__all__ = ["svd", "dct", "wavelet", "gzip_bytes", "gaussian_config", "BASELINES"]

BASELINES = ("svd", "dct", "wavelet", "gzip")


def _flat(cube: np.ndarray) -> np.ndarray:
    T = cube.shape[0]
    return cube.reshape(T, -1).T.astype(np.float64)                                # (P, T)


def _unflat(y: np.ndarray, shape) -> np.ndarray:
    return np.ascontiguousarray(y.T.reshape(shape), dtype=np.float32)


def _check_ratio(r: float) -> None:
    if not r > 0:
        raise InputError("compression ratio must be > 0", got=str(r))


def svd(cube: np.ndarray, ratio: float) -> tuple[np.ndarray, int]:
    _check_ratio(ratio)
    y = _flat(cube)
    P, T = y.shape
    k = max(1, math.ceil(P * T / (ratio * (P + T + 1))))                         # at least the budget
    u, s, vt = np.linalg.svd(y, full_matrices=False)
    k = min(k, len(s))
    rec = (u[:, :k] * s[:k]) @ vt[:k]
    return _unflat(rec, cube.shape), 4 * k * (P + T + 1)


def _topk(coef: np.ndarray, k: int) -> np.ndarray:
    keep = np.argpartition(-np.abs(coef), k - 1, axis=1)[:, :k]
    out = np.zeros_like(coef)
    rows = np.arange(coef.shape[0])[:, None]
    out[rows, keep] = coef[rows, keep]
    return out


def _k_per_pixel(T: int, ratio: float) -> int:
    return max(1, min(T, math.ceil(4 * T / (ratio * 6))))                        # at least the budget


def dct(cube: np.ndarray, ratio: float) -> tuple[np.ndarray, int]:
    from scipy.fft import dct as fdct
    from scipy.fft import idct

    _check_ratio(ratio)
    y = _flat(cube)
    P, T = y.shape
    k = _k_per_pixel(T, ratio)
    rec = idct(_topk(fdct(y, norm="ortho", axis=1), k), norm="ortho", axis=1)
    return _unflat(rec, cube.shape), 6 * k * P


def wavelet(cube: np.ndarray, ratio: float, name: str = "db2") -> tuple[np.ndarray, int]:
    import pywt

    _check_ratio(ratio)
    y = _flat(cube)
    P, T = y.shape
    coeffs = pywt.wavedec(y, name, axis=1, mode="periodization")
    sizes = [c.shape[1] for c in coeffs]
    flat = np.concatenate(coeffs, axis=1)                                          # (P, ~T)
    k = _k_per_pixel(T, ratio)
    kept = np.split(_topk(flat, min(k, flat.shape[1])), np.cumsum(sizes)[:-1], axis=1)
    rec = pywt.waverec(kept, name, axis=1, mode="periodization")[:, :T]
    return _unflat(rec, cube.shape), 6 * k * P


def gzip_bytes(cube: np.ndarray) -> int:
    """Bytes of the cube as a float32 HDF5 dataset with gzip 9 (lossless)."""
    import io

    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_dataset("H", data=np.asarray(cube, np.float32), compression="gzip", compression_opts=9)
    return len(buf.getvalue())


def gaussian_config(cfg):
    """A copy of a FitConfig whose components are Gaussians: λ pinned at 1e3 per bin (1/λ = 0.001
    bin, far below any bin), so g is N(μ, σ²) to within float precision."""
    from dataclasses import replace

    return replace(cfg, lam_min=1e3, lam_max=1e3, tau0=1e-3)
