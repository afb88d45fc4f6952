"""Depth from a fitted cube: the location μ of one component per pixel, in metres.

Bin x of the fitted grid is sampled at its centre, so a component at μ (fitted bins) arrives at
optical path t_start + (μ + ½)·δt; line-of-sight depth is half of it (the light goes and comes back).
``component``: "strongest" (most photons) or "first" (the earliest component holding at least
``min_fraction`` of the pixel's strongest, so a few stray photons before the surface do not win).
Pixels with no component get NaN.
"""

from __future__ import annotations

import numpy as np

from mlkit.errors import InputError

from .container import Encoded

__all__ = ["depth_map", "histogram_peak_depth"]


def depth_map(enc: Encoded, component: str = "first", *, min_fraction: float = 0.1) -> np.ndarray:
    """(H, W) float64 depth in metres (optical path / 2)."""
    if component not in ("first", "strongest"):
        raise InputError("unknown component rule", expected="first or strongest", got=component)
    theta, active = enc.theta()
    K = active.shape[1]
    a, mu = theta[:, :K].numpy(), theta[:, K:2 * K].numpy()
    on = active.numpy()
    strongest = np.where(on, a, -np.inf).max(1, initial=-np.inf)
    if component == "strongest":
        pick = np.where(on, a, -np.inf).argmax(1)
    else:
        ok = on & (a >= min_fraction * strongest[:, None])
        pick = np.where(ok, mu, np.inf).argmin(1)
    m = mu[np.arange(len(mu)), pick]
    d = (enc.t_start + (m + 0.5) * enc.delta_t) / 2
    d[~on.any(1)] = np.nan
    return d.reshape(enc.shape)


def histogram_peak_depth(H: np.ndarray, delta_t: float, t_start: float = 0.0) -> np.ndarray:
    """The baseline: the centre of each pixel's fullest bin, halved. (T, Y, X) -> (Y, X)."""
    return (t_start + (H.argmax(0) + 0.5) * delta_t) / 2
