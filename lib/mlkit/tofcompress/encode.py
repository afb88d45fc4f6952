"""Whole cubes in and out: ``encode`` fits a (T, H, W) transient cube chunk by chunk of pixels and
packs the result; ``decode`` evaluates the mixtures on any time grid.

Spatial coupling of the fit [R: the paper's title says "structure-aware" without saying how; this
is ours]. Each pixel is fitted to ``blend_cube``: itself plus its 8 neighbours, each weighted by w
times the similarity of its returns to the pixel's (so depth edges are not blurred),
y'_p = (y_p + w·Σ_q c_pq·y_q) / (1 + w·Σ_q c_pq). Few photons make the variance of a per-pixel
fit dominate, many make the neighbours' bias (their returns arrive at other times) dominate, so no
fixed w suits both. ``choose_blend`` picks w per cube by Poisson thinning: y = y1 + y2 with
y1 ~ Binomial(y, p) gives independent Poisson y1 (rate p·x) and y2 (rate (1 − p)·x), so for a fit
m1 of y1, E‖m1·(1 − p)/p − y2‖² = ‖m1·(1 − p)/p − (1 − p)·x‖² + Σ(1 − p)·x: the held-out squared
error ranks candidate w by their squared error against the unknown clean cube x, plus a constant.
Needs integer counts; for anything else (rendered, already-processed data) the blend is 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from mlkit.errors import InputError

from .container import Encoded, pack
from .fit import FitConfig, fit_pixels, model_of

__all__ = ["encode", "decode", "check_cube", "blend_cube", "choose_blend", "BLEND_GRID"]

BLEND_GRID = (0.0, 0.05, 0.1, 0.25, 0.5)   # candidate neighbour weights for ``choose_blend``


def check_cube(cube: np.ndarray, delta_t: float, *, allow_negative: bool = False) -> None:
    """(T, H, W) finite counts, T >= 8, delta_t > 0."""
    if cube.ndim != 3:
        raise InputError("transient cube must be 3-D", expected="(T, H, W)", got=str(cube.shape))
    if cube.shape[0] < 8:
        raise InputError("too few time bins", expected=">= 8", got=str(cube.shape[0]))
    if not np.isfinite(delta_t) or delta_t <= 0:
        raise InputError("delta_t must be > 0", got=str(delta_t))
    bad = ~np.isfinite(cube)
    if bad.any():
        t, y, x = np.argwhere(bad)[0]
        raise InputError("non-finite value in the transient", got=f"{cube[t, y, x]} at t={t}, y={y}, x={x}")
    if not allow_negative and (cube < 0).any():
        t, y, x = np.argwhere(cube < 0)[0]
        raise InputError("negative count in the transient", got=f"{cube[t, y, x]:g} at t={t}, y={y}, x={x}",
                         hint="photon counts are >= 0")


def blend_cube(cube: np.ndarray, w: float, *, smooth: float = 2.0) -> np.ndarray:
    """y'_p = (y_p + w·Σ_q c_pq·y_q) / (1 + w·Σ_q c_pq) over the 8 neighbours q (edges replicate),
    float64. c_pq ∈ [0, 1] is the cosine similarity of the two pixels' returns (histograms smoothed
    by ``smooth`` bins, background median removed, negatives clipped): a neighbour whose photons
    arrive at other times (another surface, across a depth edge) lends nothing."""
    y = np.asarray(cube, np.float64)
    if w <= 0:
        return y
    from scipy.ndimage import gaussian_filter1d

    H, W = y.shape[1:]
    sig = gaussian_filter1d(y, smooth, axis=0, mode="nearest") if smooth > 0 else y.copy()
    sig = np.clip(sig - np.median(sig, axis=0, keepdims=True), 0, None)
    norm = np.linalg.norm(sig, axis=0)
    sig = sig / np.where(norm > 0, norm, 1.0)
    pad_y = np.pad(y, ((0, 0), (1, 1), (1, 1)), mode="edge")
    pad_s = np.pad(sig, ((0, 0), (1, 1), (1, 1)), mode="edge")
    num, den = y.copy(), np.ones((H, W))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                win = (slice(None), slice(1 + dy, 1 + dy + H), slice(1 + dx, 1 + dx + W))
                c = w * np.clip((sig * pad_s[win]).sum(0), 0.0, 1.0)            # (H, W)
                num += c * pad_y[win]
                den += c
    return num / den


def choose_blend(cube: np.ndarray, cfg: FitConfig, *, grid=BLEND_GRID, p: float = 0.8, max_pixels: int = 4096,
                 seed: int = 0, device: str = "cpu", dtype=torch.float64) -> tuple[float, dict[float, float]]:
    """(w, {w: held-out squared error per bin}) by Poisson thinning on a central strip of at most
    ``max_pixels`` pixels (see the module docstring). Non-integer cubes get (0.0, {})."""
    if not np.array_equal(cube, np.round(cube)):
        return 0.0, {}
    T, H, W = cube.shape
    rows = max(1, min(H, max_pixels // max(W, 1)))
    y0 = (H - rows) // 2
    y = np.asarray(cube[:, y0:y0 + rows], np.int64)
    y1 = np.random.default_rng(seed).binomial(y, p)
    y2 = (y - y1).astype(np.float64)
    quick = dataclasses.replace(cfg, iters=max(10, cfg.iters // 2))      # ranks candidates; half the iterations
    scores = {}
    for w in grid:
        m = decode(encode(blend_cube(y1, w), quick, blend=0.0, device=device, dtype=dtype))
        scores[float(w)] = float(np.mean((m * ((1 - p) / p) - y2) ** 2))
    return min(scores, key=scores.get), scores


def encode(cube: np.ndarray, cfg: FitConfig | None = None, *, delta_t: float = 1.0, t_start: float = 0.0,
           blend: float | None = None, chunk: int = 4096, device: str = "cpu", dtype=torch.float64,
           progress: Callable[[int, int], None] | None = None) -> Encoded:
    """Fit every pixel of ``cube`` (T, H, W). Pooling sees whole rows of pixels: chunks are cut on
    image rows with ``pool // 2`` rows of context on each side, so results do not depend on ``chunk``.
    ``blend``: the neighbour weight of the fitted target (``blend_cube``); None chooses it by
    ``choose_blend``. The weight used is in the result's ``meta["blend"]``."""
    cfg = (cfg or FitConfig()).validate()
    check_cube(cube, delta_t)
    if blend is None:
        blend, _ = choose_blend(cube, cfg, device=device, dtype=dtype)
    if not 0 <= blend <= 1:
        raise InputError("blend weight out of range", expected="0..1", got=str(blend))
    if blend > 0:
        cube = blend_cube(cube, blend)
    T, H, W = cube.shape
    rows = max(1, chunk // max(W, 1))
    r = cfg.pool // 2
    thetas, actives = [], []
    for y0 in range(0, H, rows):
        y1 = min(H, y0 + rows)
        lo, hi = max(0, y0 - r), min(H, y1 + r)
        block = torch.as_tensor(np.ascontiguousarray(cube[:, lo:hi].reshape(T, -1).T), dtype=dtype, device=device)
        theta, active, _ = fit_pixels(block, cfg, (hi - lo, W))
        keep = slice((y0 - lo) * W, (y1 - lo) * W)
        thetas.append(theta[keep].cpu())
        actives.append(active[keep].cpu())
        if progress:
            progress(y1 * W, H * W)
    return pack(torch.cat(thetas), torch.cat(actives), shape=(H, W), bins=T, delta_t=delta_t, t_start=t_start,
                k_max=cfg.k_max, loss=cfg.loss, meta={"blend": float(blend)})


def decode(enc: Encoded, *, bins: int | None = None, delta_t: float | None = None, t_start: float | None = None,
           chunk: int = 16384) -> np.ndarray:
    """(T', H, W) float32 expected counts per output bin i, which covers [t_start' + i·delta_t',
    t_start' + (i + 1)·delta_t') (defaults: the fitted grid). Time parameters are converted from fitted bins to output bins;
    amplitudes are photon counts, so a coarser grid gathers more counts per bin."""
    T2 = int(bins or enc.bins)
    dt2 = float(delta_t or enc.delta_t)
    t02 = float(enc.t_start if t_start is None else t_start)
    if T2 < 1 or dt2 <= 0:
        raise InputError("bad output grid", expected="bins >= 1, delta_t > 0", got=f"bins {T2}, delta_t {dt2}")
    theta, active = enc.theta()
    K = active.shape[1]
    r = enc.delta_t / dt2                                                     # fitted bins -> output bins
    theta = theta.clone()
    # fitted coordinate x samples bin x at its centre: time = t_start + (x + ½)·delta_t
    theta[:, K:2 * K] = (enc.t_start + (theta[:, K:2 * K] + 0.5) * enc.delta_t - t02) / dt2 - 0.5
    theta[:, 2 * K:3 * K] *= r
    theta[:, 3 * K:4 * K] /= r
    theta[:, 4 * K] /= r                                                      # background per output bin
    t = torch.arange(T2, dtype=torch.float64)
    out = np.empty((T2, enc.n_pixels), dtype=np.float32)
    for s in range(0, enc.n_pixels, chunk):      # inactive slots already hold a = 0 (Encoded.theta)
        out[:, s:s + chunk] = model_of(theta[s:s + chunk], t, K).T.numpy()
    return out.reshape(T2, *enc.shape)
