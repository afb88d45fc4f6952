"""Hidden-scene reconstruction from confocal NLOS transients.

``fk``: f-k migration (Lindell, Wetzstein, O'Toole, "Wave-based non-line-of-sight imaging using
fast f-k migration", SIGGRAPH 2019), for a confocal N x N scan of a ``wall``-metre square relay
wall and T bins of ``delta_t`` metres of optical path:

1. ψ(x, y, t) = √τ(x, y, t) · t/T (the measured intensity to a wave amplitude, with the radial
   fall-off compensated), zero-padded to (2T, 2N, 2N);
2. Φ = FFT(ψ); the Stolt change of variables resamples Φ along k_z at
   k_z' = √(s²·(k_x² + k_y²) + k_z²), s = N·R / (4·T·w), R = T·δt, w = wall/2 (coordinates
   normalised to [−1, 1)), keeps k_z > 0 and scales by |k_z| / k_z';
3. the volume is |IFFT|², cropped to (T, N, N); voxel z holds depth z·δt/2.

Only k_z needs interpolating (k_x, k_y stay on their grid), so step 2 is a 1-D linear interpolation
per (k_y, k_x) column. ``mip`` (max over depth) and ``depth_of_max`` summarise a volume.
"""

from __future__ import annotations

import numpy as np
import torch

from mlkit.errors import InputError

__all__ = ["fk", "mip", "depth_of_max", "ncc"]


def fk(H: np.ndarray, delta_t: float, wall: float, *, device: str = "cpu") -> np.ndarray:
    """(T, N, N) transient (counts >= 0, square confocal scan) -> (T, N, N) float32 volume."""
    if H.ndim != 3 or H.shape[1] != H.shape[2]:
        raise InputError("f-k needs a square confocal scan", expected="(T, N, N)", got=str(H.shape))
    if wall <= 0 or delta_t <= 0:
        raise InputError("wall size and delta_t must be > 0", got=f"wall {wall}, delta_t {delta_t}")
    T, N, _ = H.shape
    dev = torch.device(device)
    tau = torch.as_tensor(np.clip(H, 0, None), dtype=torch.float64, device=dev)
    grid_t = torch.linspace(0, 1, T, dtype=torch.float64, device=dev)[:, None, None]
    psi = torch.zeros((2 * T, 2 * N, 2 * N), dtype=torch.float64, device=dev)
    psi[:T, :N, :N] = torch.sqrt(tau) * grid_t
    spec = torch.fft.fftshift(torch.fft.fftn(psi))                                # (2T, 2N, 2N)
    kz = torch.arange(-T, T, dtype=torch.float64, device=dev) / T
    kxy = torch.arange(-N, N, dtype=torch.float64, device=dev) / N
    s = N * (T * delta_t) / (4 * T * (wall / 2))
    lateral = (kxy[:, None] ** 2 + kxy[None, :] ** 2)[None]                        # (1, 2N, 2N)
    kz_src = torch.sqrt(s * s * lateral + kz[:, None, None] ** 2)                  # (2T, 2N, 2N)
    pos = (kz_src + 1.0) * T                                                      # fractional index in kz
    lo = torch.floor(pos)
    frac = pos - lo
    lo = lo.long()
    valid_lo = (lo >= 0) & (lo < 2 * T)
    valid_hi = (lo + 1 >= 0) & (lo + 1 < 2 * T)
    take = lambda idx, ok: torch.where(ok, torch.gather(spec, 0, idx.clamp(0, 2 * T - 1)), 0)  # noqa: E731
    vol = take(lo, valid_lo) * (1 - frac) + take(lo + 1, valid_hi) * frac
    vol = vol * (kz[:, None, None] > 0) * (kz[:, None, None].abs() / kz_src.clamp_min(1e-8))
    out = torch.fft.ifftn(torch.fft.ifftshift(vol)).abs() ** 2
    return out[:T, :N, :N].float().cpu().numpy()


def mip(vol: np.ndarray) -> np.ndarray:
    """Max-intensity projection over depth: (T, N, N) -> (N, N)."""
    return vol.max(axis=0)


def depth_of_max(vol: np.ndarray, delta_t: float) -> np.ndarray:
    """Depth (m) of each column's brightest voxel: index·δt/2."""
    return vol.argmax(axis=0) * delta_t / 2


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two arrays (zero-mean, unit-norm)."""
    a = np.asarray(a, np.float64).ravel() - np.mean(a)
    b = np.asarray(b, np.float64).ravel() - np.mean(b)
    den = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / den) if den > 0 else 0.0
