"""Audio: WAV, FLAC, OGG/Vorbis through soundfile; mono mix-down; polyphase resampling.

``read`` returns ``(samples, sample_rate)`` with samples ``(n,)`` for mono and ``(n, channels)``
otherwise. Reading integer PCM with ``dtype="int16"``/``"int32"`` gives the stored values exactly.
"""

from __future__ import annotations

import io
from math import gcd

import numpy as np

from ..errors import InputError
from ._io import PathLike, atomic_output, display_name, is_std, read_bytes, suffix_of

__all__ = ["FORMATS", "read", "write", "to_mono", "resample"]

FORMATS = ("wav", "flac", "ogg")


def read(src: PathLike, *, dtype: str = "float32", mono: bool = False,
         sr: int | None = None) -> tuple[np.ndarray, int]:
    """Decode audio. ``mono`` averages channels; ``sr`` resamples (float output)."""
    import soundfile as sf

    name = display_name(src)
    raw = read_bytes(src)
    try:
        data, rate = sf.read(io.BytesIO(raw), dtype=dtype, always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise InputError(f"{name}: not readable audio (corrupt or unsupported)",
                         expected="WAV, FLAC or OGG", got=str(exc).splitlines()[0][:120]) from exc
    if mono:
        data = to_mono(data)
    elif data.shape[1] == 1:
        data = data[:, 0]
    if sr is not None and sr != rate:
        data = resample(data, rate, sr)
        rate = sr
    return data, int(rate)


def to_mono(x: np.ndarray) -> np.ndarray:
    """``(n, c)`` -> ``(n,)`` by averaging channels (float32 unless x is float64)."""
    x = np.asarray(x)
    if x.ndim == 1:
        return x
    out_dt = np.float64 if x.dtype == np.float64 else np.float32
    return x.astype(out_dt).mean(axis=1).astype(out_dt)


def resample(x: np.ndarray, sr_in: int, sr_out: int, *, axis: int = 0) -> np.ndarray:
    """Polyphase resampling (scipy ``resample_poly``, Kaiser window) by the reduced ratio
    ``sr_out/sr_in``; output length ``ceil(n * sr_out / sr_in)``."""
    from scipy.signal import resample_poly

    if sr_in <= 0 or sr_out <= 0:
        raise InputError("bad sample rate", expected="> 0", got=f"{sr_in} -> {sr_out}")
    if sr_in == sr_out:
        return np.asarray(x)
    g = gcd(int(sr_in), int(sr_out))
    x = np.asarray(x)
    out_dt = np.float64 if x.dtype == np.float64 else np.float32
    y = resample_poly(x.astype(np.float64), int(sr_out) // g, int(sr_in) // g, axis=axis)
    return y.astype(out_dt)


def write(x: np.ndarray, sr: int, dst: PathLike, *, fmt: str | None = None,
          subtype: str | None = None) -> None:
    """Encode atomically. ``subtype`` e.g. ``PCM_16``, ``PCM_24``, ``FLOAT``; default: PCM_16 for
    int16 input, PCM_32 (wav)/PCM_24 (flac) for int32, FLOAT (wav)/PCM_24 (flac) for floats."""
    import soundfile as sf

    f = (fmt or ("wav" if is_std(dst) else suffix_of(dst))).lower()
    if f not in FORMATS:
        raise InputError(f"{dst}: unknown audio format '.{f}'", expected=", ".join(FORMATS))
    x = np.asarray(x)
    if x.ndim not in (1, 2) or x.size == 0:
        raise InputError("audio must be (n,) or (n, channels) and non-empty", got=str(x.shape))
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise InputError("audio has NaN/Inf samples")
    if subtype is None:
        subtype = _default_subtype(x.dtype, f)
    buf = io.BytesIO()
    try:
        sf.write(buf, x, int(sr), format=f.upper() if f != "ogg" else "OGG", subtype=subtype)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise InputError(f"cannot encode .{f}", got=str(exc).splitlines()[0][:120]) from exc
    with atomic_output(dst) as fh:
        fh.write(buf.getvalue())


def _default_subtype(dtype: np.dtype, f: str) -> str:
    if f == "ogg":
        return "VORBIS"
    if dtype == np.int16:
        return "PCM_16"
    if dtype == np.int32:
        return "PCM_32" if f == "wav" else "PCM_24"
    if dtype == np.uint8:
        return "PCM_U8" if f == "wav" else "PCM_S8"
    return "FLOAT" if f == "wav" else "PCM_24"
