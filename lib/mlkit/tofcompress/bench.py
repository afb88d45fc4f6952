"""Benchmarks of ``tof-compress``.

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
    # warm both sides (first-call dispatch, scipy's lazy imports) outside the timed regions
    lm_fit(y[:8], theta0[:8], active[:8], cfg)
    _scipy_fit(y[0].numpy(), theta0[0].numpy(), active[0].numpy(), cfg, T)
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


# ---------------------------------------------------------------- methods side by side
def compare(photons: float = 3000.0, ratios=(25, 50, 100), *, size: int = 32, bins: int = 256, k_max: int = 3,
            seed: int = 0, wall: float = 1.0, methods=("emg", "gmm", "svd", "dct", "wavelet", "gzip"),
            progress=None) -> list[dict]:
    """One row per (method, target ratio) on the synthetic confocal scene at ``photons`` per pixel.

    EMG and the Gaussian mixture cannot be told a ratio: they are fitted once (``k_max``) and
    reported at their f32 and f16 storage; the transform baselines are run at every target ratio and
    at the EMG's own ratios, so every EMG row has baselines at an equal ratio beside it. Metrics
    against the clean cube: relative L2, PSNR (peak-normalised), f-k MIP NCC, reconstruction depth
    error on the mask (bins), seconds; ``vs_emg`` = relL2 / EMG's relL2 at the nearest EMG ratio."""
    from . import baselines as B
    from .container import tofz_bytes
    from .encode import decode, encode
    from .fit import FitConfig
    from .recon import depth_of_max, fk, mip, ncc
    from .synth import confocal_scene

    tr = confocal_scene(size=size, bins=bins, photons=photons, seed=seed)
    clean = tr.gt["clean"].astype(np.float64)
    dense = clean.size * 4
    vc = fk(clean, tr.delta_t, wall)
    mc = mip(vc)
    mask = mc > 0.3 * mc.max()
    dc = depth_of_max(vc, tr.delta_t)
    peak = clean.max()

    def score(method, rec, nbytes, seconds, target=None):
        rec = rec.astype(np.float64)
        vr = fk(rec, tr.delta_t, wall)
        mse = np.mean((rec / peak - clean / peak) ** 2)
        return {"photons": photons, "method": method, "target_ratio": target, "ratio": dense / nbytes,
                "rel_l2": float(np.linalg.norm(rec - clean) / np.linalg.norm(clean)),
                "psnr_db": float(10 * np.log10(1 / mse)) if mse > 0 else float("inf"),
                "mip_ncc": ncc(mip(vr), mc),
                "depth_err_bins": float(np.abs(depth_of_max(vr, tr.delta_t) - dc)[mask].mean() / (tr.delta_t / 2)),
                "seconds": seconds}

    rows: list[dict] = [score("raw", tr.H, dense, 0.0)]
    emg_ratios = []
    cfg = FitConfig(k_max=k_max, sigma0=0.4, tau0=1.2)
    for name, c in (("emg", cfg), ("gmm", B.gaussian_config(cfg))):
        if name not in methods:
            continue
        t0 = time.perf_counter()
        enc = encode(tr.H, c, delta_t=tr.delta_t)
        secs = time.perf_counter() - t0
        rec = decode(enc)
        for dt in ("f32", "f16"):
            n = len(tofz_bytes(enc, dt))
            rows.append(score(f"{name}-{dt}", rec, n, secs))
            rows[-1]["blend"] = enc.meta["blend"]
            if name == "emg":
                emg_ratios.append(rows[-1]["ratio"])
        if progress:
            progress(name)
    targets = sorted(set(list(ratios) + [round(r, 1) for r in emg_ratios]))
    for name in ("svd", "dct", "wavelet"):
        if name not in methods:
            continue
        fn = getattr(B, name)
        for r in targets:
            t0 = time.perf_counter()
            rec, n = fn(tr.H, r)
            rows.append(score(name, rec, n, time.perf_counter() - t0, r))
        if progress:
            progress(name)
    if "gzip" in methods:
        t0 = time.perf_counter()
        n = B.gzip_bytes(tr.H)
        rows.append(score("gzip", tr.H, n, time.perf_counter() - t0))
    emg = [r for r in rows if r["method"].startswith("emg")]
    for r in rows:
        if emg and r["method"] not in ("raw",):
            near = min(emg, key=lambda e: abs(np.log(e["ratio"] / r["ratio"])))
            r["vs_emg"] = r["rel_l2"] / near["rel_l2"]
    return rows
