"""Whole cubes in and out: ``encode`` fits a (T, H, W) transient cube chunk by chunk of pixels and
packs the result; ``decode`` evaluates the mixtures on any time grid."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from mlkit.errors import InputError

from .container import Encoded, pack
from .fit import FitConfig, fit_pixels, model_of

__all__ = ["encode", "decode", "check_cube"]


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


def encode(cube: np.ndarray, cfg: FitConfig | None = None, *, delta_t: float = 1.0, t_start: float = 0.0,
           chunk: int = 4096, device: str = "cpu", dtype=torch.float64,
           progress: Callable[[int, int], None] | None = None) -> Encoded:
    """Fit every pixel of ``cube`` (T, H, W). Pooling sees whole rows of pixels: chunks are cut on
    image rows with ``pool // 2`` rows of context on each side, so results do not depend on ``chunk``."""
    cfg = (cfg or FitConfig()).validate()
    check_cube(cube, delta_t)
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
                k_max=cfg.k_max, loss=cfg.loss)


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
