#!/usr/bin/env python3
"""Measure every acceptance figure of the tof-compress issue and print one JSON line per check.

    .venv/bin/python tools/tofcompress_acceptance.py [--checks 1,2,3,4,5,6]

Checks 1-2 also run as tests (tests/tofcompress/test_emg.py, test_fit.py); this script prints the
numbers for the record. Check 7 is `mlkit tof-compress bench`."""

import argparse
import json
import time

import numpy as np
import torch


def emit(**rec):
    print(json.dumps({k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in rec.items()}), flush=True)


def check1():
    from scipy.stats import exponnorm

    from mlkit.tofcompress.emg import emg_pdf, emg_pdf_jac

    rng = np.random.default_rng(0)
    n = 2000
    mu = rng.uniform(0, 200, n)
    sigma = np.exp(rng.uniform(np.log(0.05), np.log(20), n))
    lam = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), n)) / sigma
    lo, hi = mu - 8 * sigma, mu + 8 * sigma + np.minimum(30 / lam, 1e6)
    t = lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, 400)[None]
    ref = exponnorm.pdf(t, 1 / (sigma * lam)[:, None], loc=mu[:, None], scale=sigma[:, None])
    T = lambda a: torch.from_numpy(np.asarray(a, np.float64))  # noqa: E731
    got = emg_pdf(T(t), T(mu[:, None]), T(sigma[:, None]), T(lam[:, None])).numpy()
    err = np.abs(got - ref) / ref.max(1, keepdims=True)
    # Jacobian vs 5-point central differences with steps on each parameter's own scale (1e-3·σ for
    # μ and σ, 1e-3·λ for λ), relative to the derivative's range per set
    tt, m, s, lm = T(t), T(mu[:, None]), T(sigma[:, None]), T(lam[:, None])
    _, *jac = emg_pdf_jac(tt, m, s, lm)
    worst = 0.0
    for i, d in enumerate(jac):
        h = 1e-3 * (lm if i == 2 else s)
        args = lambda k, i=i, h=h: [q + k * h if j == i else q for j, q in enumerate((m, s, lm))]  # noqa: E731
        fd = (-emg_pdf(tt, *args(2)) + 8 * emg_pdf(tt, *args(1)) - 8 * emg_pdf(tt, *args(-1))
              + emg_pdf(tt, *args(-2))) / (12 * h)
        worst = max(worst, float(((d - fd).abs() / fd.abs().amax(1, keepdim=True)).max()))
    emit(check=1, sets=n, pdf_max_err_over_peak=float(err.max()), scipy_finite=bool(np.isfinite(ref).all()),
         ours_finite=bool(np.isfinite(got).all()), jacobian_max_rel_err=worst)


def check2():
    from mlkit.tofcompress.emg import emg_pdf
    from mlkit.tofcompress.fit import FitConfig, fit_pixels, unpack

    T = 256
    t = torch.arange(T, dtype=torch.float64)
    rng = np.random.default_rng(0)
    P = 200
    mu = torch.tensor(rng.uniform(30, 200, P))
    s = torch.tensor(rng.uniform(0.6, 3.0, P))
    lam = 1 / torch.tensor(rng.uniform(0.5, 6.0, P))
    a = torch.tensor(rng.uniform(1e3, 1e5, P))
    y = a[:, None] * emg_pdf(t[None], mu[:, None], s[:, None], lam[:, None])
    theta, _, _ = fit_pixels(y, FitConfig(k_max=1, iters=50))
    A, M, S, L, _ = unpack(theta, 1)
    rel = {k: float(((g[:, 0] - w) / w).abs().max()) for k, g, w in (("mu", M, mu), ("sigma", S, s), ("lam", L, lam),
                                                                      ("a", A, a))}
    torch.manual_seed(0)
    mu2 = torch.tensor(np.random.default_rng(1).uniform(30, 200, 300))
    clean = 1e4 * emg_pdf(t[None], mu2[:, None], torch.tensor(0.4), torch.tensor(1 / 1.2))
    th, _, _ = fit_pixels(torch.poisson(clean), FitConfig(k_max=1, iters=50))
    emit(check=2, noise_free_max_rel_err=rel, counts_1e4_mu_max_err_bins=float((unpack(th, 1)[1][:, 0] - mu2).abs().max()))


def confocal(photons, seeds):
    from mlkit.tofcompress.container import tofz_bytes
    from mlkit.tofcompress.encode import decode, encode
    from mlkit.tofcompress.fit import FitConfig
    from mlkit.tofcompress.recon import depth_of_max, fk, mip, ncc
    from mlkit.tofcompress.synth import confocal_scene

    for seed in seeds:
        tr = confocal_scene(size=32, bins=256, photons=photons, seed=seed)
        clean = tr.gt["clean"].astype(np.float64)
        t0 = time.perf_counter()
        enc = encode(tr.H, FitConfig(k_max=3, sigma0=0.4, tau0=1.2), delta_t=tr.delta_t)
        secs = time.perf_counter() - t0
        rec = decode(enc).astype(np.float64)
        vc, vr = fk(clean, tr.delta_t, 1.0), fk(rec, tr.delta_t, 1.0)
        mc = mip(vc)
        mask = mc > 0.3 * mc.max()
        derr = np.abs(depth_of_max(vr, tr.delta_t) - depth_of_max(vc, tr.delta_t))[mask] / (tr.delta_t / 2)
        rel = float(np.linalg.norm(rec - clean) / np.linalg.norm(clean))
        raw = float(np.linalg.norm(tr.H - clean) / np.linalg.norm(clean))
        yield dict(photons=photons, seed=seed, ratio_f32=clean.size * 4 / len(tofz_bytes(enc, "f32")),
                   ratio_f16=clean.size * 4 / len(tofz_bytes(enc, "f16")), rel_l2=rel, raw_rel_l2=raw,
                   rel_over_raw=rel / raw, fk_mip_ncc=ncc(mip(vr), mc), depth_mae_bins=float(derr.mean()),
                   depth_max_bins=float(derr.max()), mask_px=int(mask.sum()), blend=enc.meta["blend"],
                   components_per_px=float(enc.count.mean()), seconds=secs)


def check5(seeds):
    from mlkit.tofcompress.depth import depth_map, histogram_peak_depth
    from mlkit.tofcompress.encode import encode
    from mlkit.tofcompress.fit import FitConfig
    from mlkit.tofcompress.synth import los_scene

    for photons in (30, 100, 300, 1000):
        for seed in seeds:
            tr = los_scene(size=32, photons=float(photons), seed=seed)
            enc = encode(tr.H, FitConfig(k_max=3, sigma0=0.4, tau0=1.2), delta_t=tr.delta_t)
            gt = tr.gt["depth"]
            emit(check=5, photons=photons, seed=seed, bin_mm=tr.delta_t / 2 * 1000,
                 emg_mae_mm=float(np.nanmean(np.abs(depth_map(enc) - gt))) * 1000,
                 emg_nan_px=int(np.isnan(depth_map(enc)).sum()),
                 hist_peak_mae_mm=float(np.abs(histogram_peak_depth(tr.H, tr.delta_t) - gt).mean()) * 1000,
                 blend=enc.meta["blend"])


def check6(runs):
    from mlkit.tofcompress.bench import speed

    torch.set_num_threads(2)
    rows = [speed(pixels=1024, scipy_pixels=64) for _ in range(runs)]
    for r in rows:
        emit(check=6, **r)
    emit(check=6, runs=runs, median_speedup=float(np.median([r["speedup"] for r in rows])),
         min_speedup=float(min(r["speedup"] for r in rows)),
         median_batched_px_per_s=float(np.median([r["batched_px_per_s"] for r in rows])))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", default="1,2,3,4,5,6")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    checks = {int(c) for c in args.checks.split(",")}
    seeds = [int(s) for s in args.seeds.split(",")]
    if 1 in checks:
        check1()
    if 2 in checks:
        check2()
    if 3 in checks:
        for rec in confocal(3000.0, seeds):
            emit(check=3, **rec)
    if 4 in checks:
        for rec in confocal(100.0, seeds):
            emit(check=4, **rec)
    if 5 in checks:
        check5(seeds)
    if 6 in checks:
        check6(args.runs)


if __name__ == "__main__":
    main()
