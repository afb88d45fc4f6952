"""Synthetic transients with ground truth [R: the paper's data are not available; paper notes §5].

Time convention (all of ``tofcompress``): bin i covers optical path [t_start + i·δ, t_start +
(i + 1)·δ); counts are bin integrals of continuous-time responses, so nothing here favours the
fitter's own point-sampled model.

* ``los``: a line-of-sight camera looking at two fronto-parallel planes (left half at ``z1``, right
  half at ``z2``) through a pinhole with ``fov`` degrees. Each pixel gets a direct return at optical
  path 2d (d = distance along its ray), an interreflection ``indirect`` metres of path later with
  a 3x longer tail and ``indirect_ratio`` of the photons, and a uniform ambient floor.
* ``confocal``: an NLOS capture on a ``wall`` metre square relay wall (z = 0), laser and SPAD at the
  same point of an N x N grid; the hidden scene is an L shape at ``z = 0.5`` m and a square at
  ``0.8`` m made of points; a point at distance r adds 1/r⁴ at optical path 2r.

Both convolve with a SPAD response, an EMG of ``jitter = (σ, τ)`` bins, scale to ``photons`` per
pixel (mean over pixels), add ``dark`` counts per bin and draw Poisson noise. Ground truth: the
clean cube, per-pixel depth (LOS) or the hidden points (NLOS), and the LOS component parameters.
"""

from __future__ import annotations

import math

import numpy as np

from mlkit.errors import InputError

from .formats import Transient

__all__ = ["los_scene", "confocal_scene", "emg_bins", "SCENES"]

SCENES = ("los", "confocal")


def emg_bins(T: int, mu: np.ndarray, sigma: float | np.ndarray, tau: float | np.ndarray) -> np.ndarray:
    """(T, *mu.shape) unit-area EMG integrated over bins [i, i + 1) (μ, σ, τ in bins)."""
    import torch

    from .emg import emg_cdf

    edges = torch.arange(T + 1, dtype=torch.float64).reshape(-1, *([1] * np.ndim(mu)))
    f = emg_cdf(edges, torch.as_tensor(np.asarray(mu, np.float64)), torch.as_tensor(np.asarray(sigma, np.float64)),
                1.0 / torch.as_tensor(np.asarray(tau, np.float64)))
    return (f[1:] - f[:-1]).numpy()


def _check(photons, bins, size, jitter):
    if not photons > 0:
        raise InputError("photons must be > 0", got=str(photons))
    if bins < 8:
        raise InputError("too few time bins", expected=">= 8", got=str(bins))
    if size < 1:
        raise InputError("size must be >= 1", got=str(size))
    if min(jitter) <= 0:
        raise InputError("jitter sigma and tau must be > 0", got=str(jitter))


def _noisy(clean: np.ndarray, dark: float, rng) -> np.ndarray:
    return rng.poisson(clean + dark).astype(np.float32)


def los_scene(size: int = 32, bins: int = 512, delta_t: float = 0.02, photons: float = 1000.0,
              dark: float = 0.01, jitter: tuple[float, float] = (0.4, 1.2), z1: float = 1.2, z2: float = 2.0,
              fov: float = 30.0, indirect: float = 0.3, indirect_ratio: float = 0.15, ambient: float = 0.05,
              seed: int = 0) -> Transient:
    _check(photons, bins, size, jitter)
    rng = np.random.default_rng(seed)
    half = math.tan(math.radians(fov) / 2)
    u = (np.arange(size) + 0.5) / size * 2 - 1                                 # (-1, 1)
    ux, uy = np.meshgrid(u * half, u * half)                                    # (Y, X) ray slopes
    z = np.where(np.arange(size)[None, :] < size // 2, z1, z2) * np.ones((size, 1))
    depth = z * np.sqrt(1 + ux ** 2 + uy ** 2)                                  # distance along the ray
    sig, tau = jitter
    mu1 = 2 * depth / delta_t                                                   # bins (t_start = 0)
    mu2 = mu1 + indirect / delta_t
    direct = emg_bins(bins, mu1, sig, tau)
    inter = emg_bins(bins, mu2, sig, 3 * tau)
    signal = (1 - indirect_ratio) * direct + indirect_ratio * inter
    clean = photons * signal + ambient * photons / bins
    params = np.stack([np.stack([(1 - indirect_ratio) * photons * np.ones_like(mu1), mu1, sig + 0 * mu1,
                                 1 / tau + 0 * mu1], -1),
                       np.stack([indirect_ratio * photons * np.ones_like(mu1), mu2, sig + 0 * mu1,
                                 1 / (3 * tau) + 0 * mu1], -1)], axis=2)       # (Y, X, 2, 4)
    tr = Transient(_noisy(clean, dark, rng), delta_t, 0.0, True, None,
                   {"clean": clean.astype(np.float32), "depth": depth.astype(np.float32), "params": params})
    tr.extra["scene_info"] = f"mlkit tof-compress synth los: planes z={z1},{z2} m, {photons} photons/px, seed {seed}"
    return tr


def _hidden_points(n: int = 24) -> np.ndarray:
    """(M, 3) points: an L at z = 0.5 m and a square at z = 0.8 m, in a 1 m wide volume."""
    s = np.linspace(-0.15, 0.15, n)
    L = [np.stack([np.full(n, -0.25), s + 0.05, np.full(n, 0.5)], 1),
         np.stack([np.linspace(-0.25, -0.05, n // 2), np.full(n // 2, -0.1), np.full(n // 2, 0.5)], 1)]
    gx, gy = np.meshgrid(np.linspace(0.05, 0.3, n // 2), np.linspace(-0.1, 0.15, n // 2))
    square = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, 0.8)], 1)
    return np.concatenate(L + [square])


def confocal_scene(size: int = 32, bins: int = 256, delta_t: float = 0.01, photons: float = 3000.0,
                   dark: float = 0.01, jitter: tuple[float, float] = (0.4, 1.2), wall: float = 1.0,
                   seed: int = 0) -> Transient:
    _check(photons, bins, size, jitter)
    rng = np.random.default_rng(seed)
    pts = _hidden_points()
    g = (np.arange(size) + 0.5) / size * wall - wall / 2
    wx, wy = np.meshgrid(g, g)                                                  # (Y, X)
    wallp = np.stack([wx, wy, np.zeros_like(wx)], -1)                           # (Y, X, 3)
    r = np.linalg.norm(wallp[:, :, None, :] - pts[None, None], axis=-1)        # (Y, X, M)
    opl = 2 * r / delta_t                                                       # bins
    w = 1.0 / r ** 4
    sig, tau = jitter
    clean = np.zeros((bins, size, size))
    for m in range(0, len(pts), 16):                                            # (T, Y, X, 16) at a time
        clean += (emg_bins(bins, opl[..., m:m + 16], sig, tau) * w[None, ..., m:m + 16]).sum(-1)
    total = clean.sum(0).mean()
    if not total > 1e-12 * w.sum(-1).mean():
        raise InputError("the hidden scene is outside the time window",
                         expected=f"optical paths up to about {2 * r.max():.2f} m",
                         got=f"{bins} bins of {delta_t} m = {bins * delta_t:.2f} m", hint="more --bins or a larger --delta-t")
    clean *= photons / total
    tr = Transient(_noisy(clean, dark, rng), delta_t, 0.0, True, wallp.astype(np.float32),
                   {"clean": clean.astype(np.float32), "points": pts.astype(np.float32)})
    tr.extra.update(scene_info=f"mlkit tof-compress synth confocal: wall {wall} m, {photons} photons/px, seed {seed}",
                    t_accounts_first_and_last_bounces=False)
    return tr
