"""Integer requantisation as TFLite Micro / gemmlowp do it, on int32 values held in numpy int64
(used by the int8 path of ``simulate``; each function is tested against exact Fraction / isqrt
references)."""

from __future__ import annotations

import numpy as np

from mlkit.errors import InputError

__all__ = ["quantize_multiplier", "rounding_doubling_high_mul", "rounding_divide_by_pot",
           "multiply_by_quantized_multiplier", "multiply_by_quantized_multiplier_64", "isqrt"]

_I32 = (-(1 << 31), (1 << 31) - 1)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """``real ≈ m · 2^(shift - 31)`` with m in [2^30, 2^31) (TFLM ``QuantizeMultiplier``); (0, 0) for 0
    or a real too small to represent (shift < -31)."""
    m, shift = _multipliers(np.float64(real))
    return int(m), int(shift)


def _multipliers(real) -> tuple[np.ndarray, np.ndarray]:
    real = np.asarray(real, np.float64)
    if (real < 0).any() or not np.isfinite(real).all():
        raise InputError("bad requantisation multiplier", expected="finite values >= 0", got=str(real.min()))
    q, shift = np.frexp(real)
    m = np.floor(q * 2.0 ** 31 + 0.5).astype(np.int64)          # std::round: q > 0, half away from zero
    shift = np.where(m == 1 << 31, shift + 1, shift).astype(np.int64)
    m = np.where(m == 1 << 31, m // 2, m)
    tiny = (real == 0) | (shift < -31)
    return np.where(tiny, 0, m), np.where(tiny, 0, shift)


def rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values held in int64: the high 32 bits
    of 2·a·b, i.e. floor((a·b + 2^30) / 2^31) (the nudge rounds ties toward +inf), saturated for
    a == b == -2^31."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    ab = a * b
    v = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    out = np.where(v >= 0, v >> 31, -((-v) >> 31))      # C division: truncation toward zero
    return np.where((a == _I32[0]) & (b == _I32[0]), _I32[1], out)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT``: x / 2^exponent rounded to nearest, ties away from zero."""
    x, e = np.asarray(x, np.int64), np.asarray(exponent, np.int64)
    mask = (np.int64(1) << e) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + ((x & mask) > threshold)


def multiply_by_quantized_multiplier(x, m, shift) -> np.ndarray:
    """TFLM ``MultiplyByQuantizedMultiplier`` (int32); [R] the left-shifted input saturates to int32."""
    shift = np.asarray(shift, np.int64)
    x = np.clip(np.asarray(x, np.int64) << np.maximum(shift, 0), *_I32)
    return rounding_divide_by_pot(rounding_doubling_high_mul(x, m), np.maximum(-shift, 0))


def multiply_by_quantized_multiplier_64(x, m, shift) -> np.ndarray:
    """TFLM's int64 ``MultiplyByQuantizedMultiplier`` (the 16x8 kernels): |x| < 2^47, shift in
    [-31, 7]; the multiplier reduced to 16 bits, one shift rounding ties up, saturated to int32."""
    x, m, shift = np.asarray(x, np.int64), np.asarray(m, np.int64), np.asarray(shift, np.int64)
    if (np.abs(x) >= 1 << 47).any() or (shift < -31).any() or (shift > 7).any():
        raise InputError("16x8 requantisation out of range", expected="|acc| < 2^47, shift in -31..7",
                         got=f"|acc| {int(np.abs(x).max())}, shift {int(shift.min())}..{int(shift.max())}")
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - shift
    return np.clip((x * reduced + (np.int64(1) << (total - 1))) >> total, *_I32)


def isqrt(n) -> np.ndarray:
    """floor(sqrt(n)) of non-negative int64 values, by Newton's iteration from 2^32 (> sqrt(2^63))."""
    n = np.asarray(n, np.int64)
    if (n < 0).any():
        raise InputError("isqrt of a negative value", got=str(int(n.min())))
    x = np.full(n.shape, 1 << 32, np.int64)
    while True:
        y = (x + n // np.maximum(x, 1)) // 2
        if not (y < x).any():
            return x
        x = np.minimum(x, y)
