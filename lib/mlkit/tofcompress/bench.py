"""Benchmarks of ``tof-compress`` (work in progress: the full method-vs-baselines sweep of the issue
is not written yet).

``speed``: the batched fitter against a per-pixel ``scipy.optimize.least_squares`` loop (TRF, the
same model, bounds, analytic Jacobian, starting point and per-pixel time window), both on the L2
loss so they minimise the same objective, on the same pixels in the same run: the ratio is what
batching buys, nothing else. Reports pixels/second of each, the ratio, and
the median final loss of each (so the speed is not bought with a worse fit).
"""

from __future__ import annotations

import time

import numpy as np
import torch

__all__ = ["speed"]


def _scipy_fit(y: np.ndarray, theta0: np.ndarray, on: np.ndarray, cfg, T: int) -> float:
    from scipy.optimize import least_squares
    from scipy.special import erfc, erfcx

    K = on.size
    idx = np.flatnonzero(on)
    k = len(idx)
    a0, mu0, s0, l0, b0 = theta0[:K], theta0[K:2 * K], theta0[2 * K:3 * K], theta0[3 * K:4 * K], theta0[4 * K]
    x0 = np.concatenate([a0[idx], mu0[idx], s0[idx], l0[idx], [b0]])
    lo = np.concatenate([np.zeros(k), np.full(k, -5.0), np.full(k, cfg.sigma_min), np.full(k, cfg.lam_min), [0.0]])
    hi = np.concatenate([np.full(k, np.inf), np.full(k, float(T)), np.full(k, max(cfg.sigma_min, T / 4)),
                         np.full(k, cfg.lam_max), [np.inf]])
    x0 = np.clip(x0, lo + 1e-12, hi - 1e-12)

    tn = np.arange(T, dtype=np.float64)

    def parts(x):   # numpy/scipy.special per pixel: no torch call overhead on the baseline's side
        a, mu, s, lam = (x[i * k:(i + 1) * k, None] for i in range(4))
        z = (mu + lam * s * s - tn) / (np.sqrt(2) * s)
        u = (tn - mu) / s
        phi = np.exp(-0.5 * u * u) / (np.sqrt(2 * np.pi) * s)
        with np.errstate(over="ignore", invalid="ignore"):
            g = np.where(z >= 0, 0.5 * lam * np.exp(-0.5 * u * u) * erfcx(np.maximum(z, 0)),
                         0.5 * lam * np.exp(np.minimum(lam * (mu + 0.5 * lam * s * s - tn), 0)) * erfc(np.minimum(z, 0)))
        dmu = lam * (g - phi)
        ds = lam * lam * s * g + lam * phi * (mu - tn - lam * s * s) / s
        dl = g * (1 / lam + mu + lam * s * s - tn) - lam * s * s * phi
        return a, g, dmu, ds, dl

    def resid(x):
        a, g, *_ = parts(x)
        return x[-1] + (a * g).sum(0) - y

    def jac(x):
        a, g, dmu, ds, dl = parts(x)
        return np.concatenate([g.T, (a * dmu).T, (a * ds).T, (a * dl).T, np.ones((T, 1))], axis=1)

    if k == 0:
        return float(((y - y.mean()) ** 2).sum())
    r = least_squares(resid, x0, jac=jac, bounds=(lo, hi), method="trf", max_nfev=cfg.iters)
    return float((r.fun ** 2).sum())


def speed(pixels: int = 256, scipy_pixels: int = 32, photons: float = 1000.0, k_max: int = 2, seed: int = 0) -> dict:
    """Batched LM on ``pixels`` pixels of the LOS scene vs scipy on the first ``scipy_pixels`` of
    them (the loop is slow; its rate is per pixel, so fewer pixels measure it as well)."""
    from .fit import FitConfig, _windows, initial_components, lm_fit
    from .synth import los_scene

    side = int(np.ceil(np.sqrt(pixels)))
    tr = los_scene(size=side, photons=photons, seed=seed)
    T = tr.H.shape[0]
    y = torch.from_numpy(tr.H.reshape(T, -1).T[:pixels].astype(np.float64))
    cfg = FitConfig(k_max=k_max, loss="l2", pool=1, sigma0=0.4, tau0=1.2, iters=30).validate()
    theta0, active = initial_components(y, cfg)
    lo, width = _windows(theta0, active, T, cfg)                    # both fitters get the same windows
    y = y.gather(1, lo[:, None] + torch.arange(width)[None, :])
    theta0[:, k_max:2 * k_max] -= lo[:, None].double()
    T = width
    t0 = time.perf_counter()
    _, loss = lm_fit(y, theta0, active, cfg)
    batched_s = time.perf_counter() - t0
    n = min(scipy_pixels, pixels)
    t0 = time.perf_counter()
    sl = [_scipy_fit(y[i].numpy(), theta0[i].numpy(), active[i].numpy(), cfg, T) for i in range(n)]
    scipy_s = time.perf_counter() - t0
    rate_b, rate_s = pixels / batched_s, n / scipy_s
    return {"pixels": pixels, "scipy_pixels": n, "bins": tr.H.shape[0], "window": width, "k_max": k_max, "threads": torch.get_num_threads(),
            "batched_px_per_s": rate_b, "scipy_px_per_s": rate_s, "speedup": rate_b / rate_s,
            "batched_median_loss": float(loss[:n].median()), "scipy_median_loss": float(np.median(sl))}
