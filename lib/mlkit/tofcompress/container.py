"""The ``.tofz`` container: a fitted cube, stored compactly [R: the paper's storage is not public].

A zip (deflate level 9) of ``.npy`` members, each a 1-D array stored byte-shuffled (all first
bytes, then all second bytes, ...: float16/float32 planes deflate far better that way):

* ``meta``: JSON text: format ``mlkit.tofz``, ``version``, ``shape`` [H, W], ``bins`` T, ``delta_t``
  and ``t_start`` (metres of optical path, as HDF5-TAL), ``k_max``, ``loss``, ``dtype``,
  ``a_scale``, and ``arrays`` {name: [dtype, length]};
* ``count`` uint8 (H·W,): active components per pixel (0 for an empty pixel);
* ``a``, ``mu``, ``sigma``, ``lam`` (Σ count,): the active components only, in pixel order and in
  time order within a pixel. Time parameters are in bins of the fitted grid. With ``dtype=f16``,
  a/a_scale, σ and λ are float16 and μ is uint16 in 1/``MU_STEPS`` of the window [−5, T] (0.004
  bin at T = 256), since float16 cannot hold an arrival time finely enough;
* ``bg`` (H·W,) background per bin, float16 or float32.

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

__all__ = ["Encoded", "pack", "write_tofz", "tofz_bytes", "read_tofz", "FORMAT", "VERSION", "MU_STEPS"]

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


def _shuffle(arr: np.ndarray) -> np.ndarray:
    """Byte planes (all first bytes, then all second bytes, ...): floats deflate far better so."""
    b = np.frombuffer(np.ascontiguousarray(arr).tobytes(), dtype=np.uint8)
    return np.ascontiguousarray(b.reshape(-1, arr.dtype.itemsize).T).ravel() if arr.dtype.itemsize > 1 else b


def _unshuffle(b: np.ndarray, dtype: str, n: int) -> np.ndarray:
    dt = np.dtype(dtype)
    if b.size != n * dt.itemsize:
        raise ValueError(f"array of {b.size} bytes, expected {n} x {dt.itemsize}")
    return np.frombuffer(np.ascontiguousarray(b.reshape(dt.itemsize, n).T).tobytes(), dtype=dt)


def write_tofz(enc: Encoded, dst, dtype: str = "f32") -> int:
    """Write atomically; returns the bytes written."""
    data = tofz_bytes(enc, dtype)
    write_bytes(data, dst)
    return len(data)


def tofz_bytes(enc: Encoded, dtype: str = "f32") -> bytes:
    """The file's bytes. Each array is stored 1-D, byte-shuffled, as a ``.npy`` member of a zip
    deflated at level 9; ``meta`` lists their dtypes and lengths."""
    _check_dtype(dtype)
    fl = np.float16 if dtype == "f16" else np.float32
    c = enc.comps
    arrays = {"count": enc.count.astype(np.uint8), "bg": enc.bg.astype(fl)}
    if dtype == "f16":
        span = enc.bins - _MU_LO
        a_scale = float(max(1.0, np.abs(c[:, 0]).max(initial=0.0) / 6e4))     # keep a inside float16's range
        arrays.update(a=(c[:, 0] / a_scale).astype(np.float16),
                      mu=np.clip(np.rint((c[:, 1] - _MU_LO) / span * MU_STEPS), 0, MU_STEPS).astype(np.uint16),
                      sigma=c[:, 2].astype(np.float16), lam=c[:, 3].astype(np.float16))
    else:
        a_scale = 1.0
        arrays.update(a=c[:, 0].astype(np.float32), mu=c[:, 1].astype(np.float32),
                      sigma=c[:, 2].astype(np.float32), lam=c[:, 3].astype(np.float32))
    meta = {"format": FORMAT, "version": VERSION, "shape": list(enc.shape), "bins": enc.bins,
            "delta_t": enc.delta_t, "t_start": enc.t_start, "k_max": enc.k_max, "loss": enc.loss,
            "dtype": dtype, "a_scale": a_scale, **enc.meta,
            "arrays": {k: [v.dtype.str, int(v.size)] for k, v in arrays.items()}}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for key, arr in [("meta", np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))] + \
                [(k, _shuffle(v)) for k, v in arrays.items()]:
            member = io.BytesIO()
            np.save(member, arr, allow_pickle=False)
            z.writestr(f"{key}.npy", member.getvalue())
    return buf.getvalue()


def read_tofz(src) -> Encoded:
    name = display_name(src)
    raw = read_bytes(src)
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
        meta = json.loads(files.pop("meta").tobytes().decode())
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, UnicodeDecodeError, AttributeError) as exc:
        raise InputError(f"{name}: not a .tofz file", got=str(exc)[:80]) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{name}: not a .tofz file", expected=FORMAT,
                         got=str(meta.get("format") if isinstance(meta, dict) else type(meta).__name__))
    if meta.get("version") != VERSION:
        raise InputError(f"{name}: .tofz version mismatch", expected=f"version {VERSION}",
                         got=f"version {meta.get('version')}", hint="re-encode with this mlkit, or upgrade mlkit")
    try:
        arr = {k: _unshuffle(files[k], dt, n) for k, (dt, n) in meta["arrays"].items()}
        count = arr["count"].astype(np.uint8)
        bg = arr["bg"].astype(np.float64)
        T = int(meta["bins"])
        a = arr["a"].astype(np.float64) * float(meta.get("a_scale", 1.0))
        mu = arr["mu"].astype(np.float64)
        if meta.get("dtype") == "f16":
            mu = mu / MU_STEPS * (T - _MU_LO) + _MU_LO
        comps = np.stack([a, mu, arr["sigma"].astype(np.float64), arr["lam"].astype(np.float64)], axis=1)
        shape = tuple(int(v) for v in meta["shape"])
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise InputError(f"{name}: corrupt .tofz", got=str(exc)[:80]) from exc
    P = shape[0] * shape[1]
    if count.shape != (P,) or bg.shape != (P,) or comps.shape != (int(count.sum()), 4):
        raise InputError(f"{name}: corrupt .tofz", expected=f"{P} pixels, {int(count.sum())} components",
                         got=f"count {count.shape}, bg {bg.shape}, comps {comps.shape}")
    extra = {k: v for k, v in meta.items() if k not in ("format", "version", "shape", "bins", "delta_t", "t_start",
                                                         "k_max", "loss", "arrays", "a_scale")}
    return Encoded(shape, T, float(meta["delta_t"]), float(meta["t_start"]), count, comps, bg,
                   int(meta.get("k_max", 4)), str(meta.get("loss", "poisson")), extra)
