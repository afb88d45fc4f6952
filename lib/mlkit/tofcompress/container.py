"""The ``.tofz`` container: a fitted cube, stored compactly [R: the paper's storage is not public].

A zip (``numpy.savez``, no compression) holding

* ``meta.json``: format ``mlkit.tofz``, ``version``, ``shape`` [H, W], ``bins`` T, ``delta_t`` and
  ``t_start`` (metres of optical path, as HDF5-TAL), ``k_max``, ``loss``, ``dtype``, ``layout``;
* ``count`` uint8 (H·W,): active components per pixel (0 for an empty pixel);
* ``comps`` (Σ count, 4) [a, μ, σ, λ] of the active components only, in pixel order. Time
  parameters are in bins of the fitted grid. With ``dtype=f16``, a, σ and λ are float16 and μ is
  uint16 in 1/``MU_STEPS`` of the time window (T/65535 bins: 0.004 bin at T = 256), since float16
  cannot hold an arrival time finely enough; a is divided by ``a_scale`` (stored) to fit float16;
* ``bg`` (H·W,) background per bin, same float type.

Only active components are stored, so the size follows the scene, not ``k_max``.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field

import numpy as np
import torch

from mlkit.codecs._io import display_name, read_bytes, write_bytes
from mlkit.errors import InputError

from .fit import unpack

__all__ = ["Encoded", "pack", "write_tofz", "read_tofz", "FORMAT", "VERSION", "MU_STEPS"]

FORMAT = "mlkit.tofz"
VERSION = 1
MU_STEPS = 65535
_MU_LO = -5.0   # μ bounds of the fitter, in bins: [-5, T]


@dataclass
class Encoded:
    shape: tuple[int, int]
    bins: int
    delta_t: float
    t_start: float
    count: np.ndarray                 # (P,) uint8
    comps: np.ndarray                 # (N, 4) float64 [a, μ, σ, λ], μ/σ in bins, λ per bin
    bg: np.ndarray                    # (P,) float64
    k_max: int = 4
    loss: str = "poisson"
    meta: dict = field(default_factory=dict)

    @property
    def n_pixels(self) -> int:
        return int(self.shape[0] * self.shape[1])

    def theta(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(theta (P, 4K + 1) float64, active (P, K)) with K = max count (at least 1)."""
        K = max(1, int(self.count.max(initial=0)))
        P = self.n_pixels
        slot = np.arange(K)[None, :] < self.count[:, None]                          # (P, K)
        params = np.zeros((P, K, 4))
        params[..., 2] = 1.0                                                        # harmless σ, λ
        params[..., 3] = 1.0
        params[slot] = self.comps
        a, mu, s, lam = (params[..., i] for i in range(4))
        theta = np.concatenate([a, mu, s, lam, self.bg[:, None]], axis=1)
        return torch.from_numpy(theta), torch.from_numpy(slot)


def pack(theta: torch.Tensor, active: torch.Tensor, *, shape, bins, delta_t, t_start, k_max, loss,
         meta: dict | None = None) -> Encoded:
    """The active components of a fit, in pixel order."""
    K = active.shape[1]
    a, mu, s, lam, b = (v.detach().double().cpu().numpy() for v in unpack(theta, K))
    on = active.cpu().numpy()
    # components in time order within a pixel (first = earliest arrival)
    order = np.argsort(np.where(on, mu, np.inf), axis=1, kind="stable")
    take = lambda v: np.take_along_axis(v, order, axis=1)  # noqa: E731
    a, mu, s, lam, on = take(a), take(mu), take(s), take(lam), take(on)
    comps = np.stack([a[on], mu[on], s[on], lam[on]], axis=1)
    return Encoded(tuple(int(v) for v in shape), int(bins), float(delta_t), float(t_start),
                   on.sum(1).astype(np.uint8), comps, b.astype(np.float64), int(k_max), loss, dict(meta or {}))


def _check_dtype(dtype: str) -> str:
    if dtype not in ("f16", "f32"):
        raise InputError("unknown storage dtype", expected="f16 or f32", got=dtype)
    return dtype


def write_tofz(enc: Encoded, dst, dtype: str = "f32") -> int:
    """Write atomically; returns the bytes written."""
    _check_dtype(dtype)
    fl = np.float16 if dtype == "f16" else np.float32
    arrays = {"count": enc.count.astype(np.uint8), "bg": enc.bg.astype(fl)}
    c = enc.comps
    if dtype == "f16":
        span = enc.bins - _MU_LO
        q = np.clip(np.rint((c[:, 1] - _MU_LO) / span * MU_STEPS), 0, MU_STEPS).astype(np.uint16)
        a_scale = float(max(1.0, np.abs(c[:, 0]).max(initial=0.0) / 6e4))     # keep a inside float16's range
        arrays.update(comps=np.stack([c[:, 0] / a_scale, c[:, 2], c[:, 3]], axis=1).astype(np.float16), mu=q,
                      a_scale=np.array([a_scale]))
    else:
        arrays["comps"] = c.astype(np.float32)
    meta = {"format": FORMAT, "version": VERSION, "shape": list(enc.shape), "bins": enc.bins,
            "delta_t": enc.delta_t, "t_start": enc.t_start, "k_max": enc.k_max, "loss": enc.loss,
            "dtype": dtype, **enc.meta}
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    data = buf.getvalue()
    write_bytes(data, dst)
    return len(data)


def read_tofz(src) -> Encoded:
    name = display_name(src)
    raw = read_bytes(src)
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
        meta = json.loads(files.pop("meta").tobytes().decode())
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{name}: not a .tofz file", got=str(exc)[:80]) from exc
    if meta.get("format") != FORMAT:
        raise InputError(f"{name}: not a .tofz file", expected=FORMAT, got=str(meta.get("format")))
    if meta.get("version") != VERSION:
        raise InputError(f"{name}: .tofz version mismatch", expected=f"version {VERSION}",
                         got=f"version {meta.get('version')}", hint="re-encode with this mlkit, or upgrade mlkit")
    try:
        count = files["count"].astype(np.uint8)
        bg = files["bg"].astype(np.float64)
        comps = files["comps"].astype(np.float64)
        T = int(meta["bins"])
        if meta.get("dtype") == "f16":
            mu = files["mu"].astype(np.float64) / MU_STEPS * (T - _MU_LO) + _MU_LO
            a = comps[:, 0] * float(files["a_scale"][0])
            comps = np.stack([a, mu, comps[:, 1], comps[:, 2]], axis=1)
        shape = tuple(int(v) for v in meta["shape"])
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise InputError(f"{name}: corrupt .tofz", got=str(exc)[:80]) from exc
    P = shape[0] * shape[1]
    if count.shape != (P,) or bg.shape != (P,) or comps.shape != (int(count.sum()), 4):
        raise InputError(f"{name}: corrupt .tofz", expected=f"{P} pixels, {int(count.sum())} components",
                         got=f"count {count.shape}, bg {bg.shape}, comps {comps.shape}")
    extra = {k: v for k, v in meta.items() if k not in ("format", "version", "shape", "bins", "delta_t", "t_start",
                                                         "k_max", "loss")}
    return Encoded(shape, T, float(meta["delta_t"]), float(meta["t_start"]), count, comps, bg,
                   int(meta.get("k_max", 4)), str(meta.get("loss", "poisson")), extra)
