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
per (k_y, k_x) column.

``lct``: the light-cone transform (O'Toole, Lindell, Wetzstein, "Confocal non-line-of-sight imaging
based on the light-cone transform", Nature 2018), same grid:

1. τ · t⁴ (diffuse fall-off; t = linspace(0, 1, T), as f-k's t/T), then v = t² resampling with the
   paper's operator: fine grid x = 1..T², sample x reads time bin ⌈√x⌉ with weight 1/√x, then rows
   averaged in pairs log2(T) times (hence T = 2^k) -> a sparse (T, T) matrix M;
2. Wiener deconvolution by the light cone h(x, y, v) = δ(v − (4s)²(x² + y²)), s = w / R (w = wall/2,
   R = T·δt, x, y normalised so that ±1 is ±wall, the half-width of the (2N, 2N) padded grid), on the
   (2T, 2N, 2N) grid in the frequency domain: Ĥ* / (|Ĥ|² + 1/snr), h of unit L2 norm; h puts
   each lateral offset in its nearest v bin [R: see ``lct_psf``];
3. crop to (T, N, N), back to depth with Mᵀ, keep the positive part; voxel z at depth z·δt/2.

[R] choices: snr defaults to 0.1 (public code by the authors uses 0.08 to 0.8 depending on the
scene, 0.1 in the f-k release); ``pad`` zero-pads time to 2^k bins, which lengthens R with it.

``backproject``: confocal back-projection: voxel (z, y, x), at the scan position (y, x) and depth
z·δt/2, sums over all scan points (y', x') the transient at fractional bin
2·√((x − x')² + (y − y')² + (zδt/2)²) / δt, linearly interpolated (bin i read as a sample at i·δt,
the same convention that puts voxel z at bin z; past the last bin reads 0) [R]. No fall-off
compensation [R]. ``filtered=True`` applies −∂²/∂z² (second difference along depth; the first and
last depth, where it is undefined, are 0) and keeps the positive part [R: of the usual choices
(3-D Laplacian, |∂²/∂z²|, clipped −∂²/∂z²) the one that keeps peaks and drops their side lobes].

``mip`` (max over depth) and ``depth_of_max`` summarise a volume; ``reconstruct`` picks a method.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mlkit.errors import InputError

__all__ = ["METHODS", "fk", "lct", "backproject", "reconstruct", "mip", "depth_of_max", "ncc"]

METHODS = ("fk", "lct", "bp", "fbp")


def _check(H: np.ndarray, delta_t: float, wall: float, name: str) -> None:
    if H.ndim != 3 or H.shape[1] != H.shape[2]:
        raise InputError(f"{name} needs a square confocal scan", expected="(T, N, N)", got=str(H.shape))
    if wall <= 0 or delta_t <= 0:
        raise InputError("wall size and delta_t must be > 0", got=f"wall {wall}, delta_t {delta_t}")


def fk(H: np.ndarray, delta_t: float, wall: float, *, device: str = "cpu") -> np.ndarray:
    """(T, N, N) transient (counts >= 0, square confocal scan) -> (T, N, N) float32 volume."""
    _check(H, delta_t, wall, "f-k")
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


def lct_resampling(T: int, device: str = "cpu") -> torch.Tensor:
    """Sparse (T, T) t -> v = t² operator M (float64). The paper halves a (T², T) matrix log2(T)
    times; that equals averaging each run of T fine rows, which is built here directly."""
    xi = torch.arange(1, T * T + 1)
    x = xi.double()
    r = torch.floor(torch.sqrt(x)).long()                                          # ⌊√x⌋, exact for x < 2⁵²
    col = r + (r * r < xi).long() - 1                                              # ⌈√x⌉ − 1 (0-based bin)
    row = (xi - 1) // T
    m = torch.sparse_coo_tensor(torch.stack([row, col]), 1.0 / (T * torch.sqrt(x)), (T, T),
                                check_invariants=True).coalesce()
    return m.to(device)


def lct_psf(T: int, N: int, slope: float, device: str = "cpu") -> torch.Tensor:
    """(2T, 2N, 2N) light cone, one voxel per lateral offset (wrapped, origin at [0, 0, 0]), unit L2
    norm: offset (i, j) voxels -> v bin round(T·(4·slope)²·(i² + j²)/N²) [R: nearest bin on an
    integer-offset grid; the paper's grid is linspace(−1, 1, 2N) and shifted]. Offsets whose bin
    falls past 2T are left out."""
    k = torch.arange(2 * N, device=device)
    k = torch.where(k < N, k, k - 2 * N).double()
    r2 = (k[:, None] ** 2 + k[None, :] ** 2) / N ** 2                            # (2N, 2N)
    v = torch.round(T * (4 * slope) ** 2 * r2).long()
    psf = torch.zeros((2 * T, 2 * N, 2 * N), dtype=torch.float64, device=device)
    iy, ix = torch.meshgrid(torch.arange(2 * N, device=device), torch.arange(2 * N, device=device), indexing="ij")
    ok = v < 2 * T
    psf[v[ok], iy[ok], ix[ok]] = 1.0
    return psf / psf.norm()


def lct(H: np.ndarray, delta_t: float, wall: float, *, snr: float = 0.1, pad: bool = False,
        device: str = "cpu") -> np.ndarray:
    """(T, N, N) transient -> (T, N, N) float32 volume by the light-cone transform. T must be a power
    of two; ``pad=True`` zero-pads time to the next one (R grows with it) and crops the output."""
    _check(H, delta_t, wall, "LCT")
    if not snr > 0:
        raise InputError("the LCT Wiener SNR must be > 0", got=str(snr))
    T0, N, _ = H.shape
    T = 1 << (T0 - 1).bit_length()                                                # next power of two
    if T != T0 and not pad:
        raise InputError("LCT needs a power-of-two number of bins", expected=f"a power of two such as {T}",
                         got=str(T0), hint=f"use --pad to zero-pad to {T}")
    dev = torch.device(device)
    tau = torch.zeros((T, N * N), dtype=torch.float64, device=dev)
    tau[:T0] = torch.as_tensor(np.clip(H, 0, None), dtype=torch.float64, device=dev).reshape(T0, -1)
    tau *= torch.linspace(0, 1, T, dtype=torch.float64, device=dev)[:, None] ** 4
    m = lct_resampling(T, dev)
    b = torch.zeros((2 * T, 2 * N, 2 * N), dtype=torch.float64, device=dev)
    b[:T, :N, :N] = torch.sparse.mm(m, tau).reshape(T, N, N)                       # (T, N, N) in v
    fpsf = torch.fft.rfftn(lct_psf(T, N, (wall / 2) / (T * delta_t), dev))
    wiener = fpsf.conj() / (fpsf.abs() ** 2 + 1.0 / snr)
    x = torch.fft.irfftn(torch.fft.rfftn(b) * wiener, s=b.shape)[:T, :N, :N]      # (T, N, N) in u = z²
    vol = torch.sparse.mm(m.t(), x.reshape(T, -1)).reshape(T, N, N).clamp_min(0)
    return vol[:T0].float().cpu().numpy()


def backproject(H: np.ndarray, delta_t: float, wall: float, *, filtered: bool = True,
                device: str = "cpu") -> np.ndarray:
    """(T, N, N) transient -> (T, N, N) float32 (filtered) back-projection.

    The fractional bin depends only on (z, |y − y'|, |x − x'|), so the sum runs over the N² lateral
    offset magnitudes: per offset, one interpolated read of the cube is added to the volume at up to
    four shifts, a slab of depths at a time. Memory is a few (T, N, N) float64 arrays; work O(T·N⁴)
    (64 x 64 x 512 takes minutes on two CPU cores)."""
    _check(H, delta_t, wall, "back-projection")
    T, N, _ = H.shape
    dev = torch.device(device)
    tau = torch.zeros((T + 2, N, N), dtype=torch.float64, device=dev)              # two zero bins past the end
    tau[:T] = torch.as_tensor(np.clip(H, 0, None), dtype=torch.float64, device=dev)
    vol = torch.zeros((T, N, N), dtype=torch.float64, device=dev)
    z2 = torch.arange(T, dtype=torch.float64, device=dev) ** 2                    # (z·δt/2 / (δt/2))²
    step = 2 * (wall / N) / delta_t                                                # one pixel of offset, in bins
    offsets = [(a, c, step * step * (a * a + c * c)) for a in range(N) for c in range(N)]  # d² in bins²
    slab = max(32, N * N // 32)    # depths per slab: the fastest tried at N = 32 (32) and N = 64 (128), CPU
    for z0 in range(0, T, slab):
        for a, c, d2 in offsets:
            z1 = min(T, z0 + slab, math.ceil(math.sqrt(max(T * T - d2, 0.0))))    # reads below bin T only
            if z1 <= z0:
                continue
            f = torch.sqrt(z2[z0:z1] + d2)                                         # (nz,) fractional bin
            lo = torch.floor(f).clamp_max(T).long()
            read = torch.lerp(tau.index_select(0, lo), tau.index_select(0, lo + 1),
                              (f - lo).clamp(0, 1)[:, None, None])                # (nz, N, N) at sources
            for sy in {a, -a}:
                for sx in {c, -c}:                                                 # target = source − shift
                    ty, tx = slice(max(0, -sy), N - max(0, sy)), slice(max(0, -sx), N - max(0, sx))
                    fy, fx = slice(max(0, sy), N - max(0, -sy)), slice(max(0, sx), N - max(0, -sx))
                    vol[z0:z1, ty, tx] += read[:, fy, fx]
    if filtered:                                                                   # −∂²/∂z², 0 at both ends
        lap = torch.zeros_like(vol)
        lap[1:-1] = 2 * vol[1:-1] - vol[:-2] - vol[2:]
        vol = lap.clamp_min(0)
    return vol.float().cpu().numpy()


def reconstruct(H: np.ndarray, delta_t: float, wall: float, method: str = "fk", *, snr: float = 0.1,
                pad: bool = False, device: str = "cpu") -> np.ndarray:
    """One of ``METHODS``: f-k, LCT (``snr``, ``pad``), back-projection, filtered back-projection."""
    if method == "fk":
        return fk(H, delta_t, wall, device=device)
    if method == "lct":
        return lct(H, delta_t, wall, snr=snr, pad=pad, device=device)
    if method in ("bp", "fbp"):
        return backproject(H, delta_t, wall, filtered=method == "fbp", device=device)
    raise InputError("unknown reconstruction method", expected=", ".join(METHODS), got=str(method))


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
