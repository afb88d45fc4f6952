"""f-k migration, the light-cone transform and (filtered) back-projection on synthetic confocal
captures; LCT and back-projection against dense, loop-written references on tiny cases."""

import numpy as np
import pytest

from mlkit.errors import InputError
from mlkit.tofcompress.recon import backproject, depth_of_max, fk, lct, mip, ncc, reconstruct
from mlkit.tofcompress.synth import confocal_scene


@pytest.fixture(scope="module")
def scene():
    return confocal_scene(size=32, bins=256, photons=3000.0)


def test_fk_puts_the_hidden_shapes_at_their_depths(scene):
    """The L at 0.5 m (left half of the wall) and the square at 0.8 m (right half)."""
    vol = fk(scene.gt["clean"], scene.delta_t, 1.0)
    assert vol.shape == (256, 32, 32) and vol.dtype == np.float32
    m = mip(vol)
    mask = m > 0.3 * m.max()
    d = depth_of_max(vol, scene.delta_t)
    left = mask & (np.arange(32)[None, :] < 16)
    right = mask & (np.arange(32)[None, :] >= 16)
    assert left.sum() > 10 and right.sum() > 30
    voxel = scene.delta_t / 2
    assert np.abs(d[left] - 0.5).max() <= 1.01 * voxel                  # within one voxel (5 mm)
    assert np.abs(d[right] - 0.8).max() <= 1.01 * voxel


def test_fk_of_noisy_data_matches_the_clean_reconstruction(scene):
    clean = mip(fk(scene.gt["clean"], scene.delta_t, 1.0))
    noisy = mip(fk(scene.H, scene.delta_t, 1.0))
    assert ncc(noisy, clean) > 0.99                                  # measured 0.9997 at 3,000 photons


def test_ncc_and_bad_input():
    a = np.random.default_rng(0).normal(size=(8, 8))
    assert ncc(a, a) == pytest.approx(1.0) and ncc(a, -a) == pytest.approx(-1.0) and ncc(a, np.ones((8, 8))) == 0.0
    with pytest.raises(InputError, match="square"):
        fk(np.zeros((16, 4, 5)), 0.01, 1.0)
    with pytest.raises(InputError, match="wall"):
        fk(np.zeros((16, 4, 4)), 0.01, 0.0)


def _hidden_depth_errors(vol, delta_t, threshold=0.3):
    """Depth error (voxels) of each bright MIP column against the hidden shape it lies over: the L
    (0.5 m) is on the left half of the wall, the square (0.8 m) on the right."""
    n = vol.shape[1]
    m = mip(vol)
    mask = m > threshold * m.max()
    truth = np.where(np.arange(n)[None, :] < n // 2, 0.5, 0.8) * np.ones((n, 1))
    return (depth_of_max(vol, delta_t) - truth)[mask] / (delta_t / 2), mask


def _occupancy(scene, n):
    """(N, N) 1 where a hidden point lies over a wall pixel."""
    occ = np.zeros((n, n))
    pts = scene.gt["points"]
    occ[np.floor((pts[:, 1] + 0.5) * n).astype(int), np.floor((pts[:, 0] + 0.5) * n).astype(int)] = 1
    return occ


def test_lct_puts_the_hidden_shapes_at_their_depths_and_agrees_with_fk(scene):
    vol = lct(scene.gt["clean"], scene.delta_t, 1.0)
    assert vol.shape == (256, 32, 32) and vol.dtype == np.float32 and vol.min() >= 0
    err, mask = _hidden_depth_errors(vol, scene.delta_t)
    assert mask[:, :16].sum() > 10 and mask[:, 16:].sum() > 30
    assert np.abs(err).max() <= 2.01 and abs(err.mean()) < 0.5                      # measured: within 2, mean 0.07
    m = mip(vol)
    assert ncc(m, mip(fk(scene.gt["clean"], scene.delta_t, 1.0))) > 0.72            # measured 0.760 (snr 0.1)
    assert ncc(m, _occupancy(scene, 32)) > 0.8                                      # measured 0.865 (f-k: 0.770)
    assert ncc(mip(lct(scene.H, scene.delta_t, 1.0)), m) > 0.99                     # measured 0.9999


def test_backprojection_puts_the_hidden_shapes_at_their_depths(scene):
    fbp = backproject(scene.gt["clean"], scene.delta_t, 1.0)
    assert fbp.shape == (256, 32, 32) and fbp.dtype == np.float32 and fbp.min() >= 0
    err, mask = _hidden_depth_errors(fbp, scene.delta_t)
    assert mask[:, :16].sum() > 10 and mask[:, 16:].sum() > 30
    assert np.abs(err).max() <= 2.01                                                # measured: within 1
    bp = reconstruct(scene.gt["clean"], scene.delta_t, 1.0, "bp")
    err, mask = _hidden_depth_errors(bp, scene.delta_t, threshold=0.7)              # plain BP is laterally wide
    assert mask[:, :16].sum() > 10 and np.abs(err).max() <= 2.01                    # measured: within 1
    occ = _occupancy(scene, 32)
    assert ncc(mip(fbp), occ) > ncc(mip(bp), occ) + 0.1                             # measured 0.867 vs 0.714


def _lct_reference(H, delta_t, wall, snr):
    """LCT from its definitions with dense numpy: t⁴ scaling, the paper's resampling matrix built by
    halving a (T², T) matrix log2(T) times, the light cone written voxel by voxel, and the Wiener
    filter as regularised least squares with the explicit circulant convolution matrix A:
    x = (AᵀA + I/snr)⁻¹ Aᵀ b on the (2T, 2N, 2N) grid (no FFT anywhere)."""
    T, N, _ = H.shape
    y = H.reshape(T, -1) * np.linspace(0, 1, T)[:, None] ** 4
    fine = np.zeros((T * T, T))
    for x in range(1, T * T + 1):
        fine[x - 1, int(np.ceil(np.sqrt(x))) - 1] = 1 / np.sqrt(x)
    while fine.shape[0] > T:
        fine = 0.5 * (fine[0::2] + fine[1::2])
    M = fine                                                                        # (T, T)
    slope = (wall / 2) / (T * delta_t)
    psf = np.zeros((2 * T, 2 * N, 2 * N))
    for i in range(2 * N):
        for j in range(2 * N):
            di, dj = (i if i < N else i - 2 * N), (j if j < N else j - 2 * N)
            v = int(np.round(T * (4 * slope) ** 2 * (di * di + dj * dj) / N ** 2))
            if v < 2 * T:
                psf[v, i, j] = 1.0
    psf /= np.linalg.norm(psf)
    b = np.zeros((2 * T, 2 * N, 2 * N))
    b[:T, :N, :N] = (M @ y).reshape(T, N, N)
    shape = np.array(psf.shape)
    idx = np.stack(np.unravel_index(np.arange(psf.size), psf.shape), 1)             # (P, 3)
    diff = (idx[:, None, :] - idx[None, :, :]) % shape                             # out - in, wrapped
    A = psf[diff[..., 0], diff[..., 1], diff[..., 2]]                               # (P, P): (A x)[o] = Σ psf[o-i] x[i]
    x = np.linalg.solve(A.T @ A + np.eye(len(A)) / snr, A.T @ b.ravel()).reshape(psf.shape)
    return np.maximum(M.T @ x[:T, :N, :N].reshape(T, -1), 0).reshape(T, N, N)


@pytest.mark.parametrize("delta_t,snr", [(0.1, 0.1), (0.05, 2.0)])
def test_lct_matches_a_dense_reference(delta_t, snr):
    H = np.random.default_rng(1).gamma(1.0, size=(16, 4, 4))
    ref = _lct_reference(H, delta_t, 1.0, snr)
    got = lct(H, delta_t, 1.0, snr=snr)
    assert ref.max() > 0
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6 * ref.max())


def test_lct_power_of_two_and_padding():
    H = np.random.default_rng(2).gamma(1.0, size=(24, 4, 4))
    with pytest.raises(InputError, match="power-of-two") as info:
        lct(H, 0.05, 1.0)
    assert "--pad" in str(info.value) and "32" in str(info.value)
    padded = np.concatenate([H, np.zeros((8, 4, 4))])
    np.testing.assert_array_equal(lct(H, 0.05, 1.0, pad=True), lct(padded, 0.05, 1.0)[:24])
    assert lct(H[:16], 0.05, 1.0, pad=True).shape == (16, 4, 4)
    with pytest.raises(InputError, match="SNR"):
        lct(H[:16], 0.05, 1.0, snr=0.0)
    with pytest.raises(InputError, match="square"):
        lct(np.zeros((16, 4, 5)), 0.05, 1.0)
    with pytest.raises(InputError, match="method"):
        reconstruct(H, 0.05, 1.0, "sart")


def _bp_reference(H, delta_t, wall, filtered):
    """Back-projection by brute force: every voxel, every scan point, linear interpolation by hand."""
    T, N, _ = H.shape
    pix = wall / N
    vol = np.zeros((T, N, N))
    for z in range(T):
        for y in range(N):
            for x in range(N):
                acc = 0.0
                for yy in range(N):
                    for xx in range(N):
                        f = 2 * np.sqrt(((x - xx) * pix) ** 2 + ((y - yy) * pix) ** 2 + (z * delta_t / 2) ** 2) / delta_t
                        lo = int(np.floor(f))
                        if lo < T:
                            hi = H[lo + 1, yy, xx] if lo + 1 < T else 0.0
                            acc += H[lo, yy, xx] * (1 - (f - lo)) + hi * (f - lo)
                vol[z, y, x] = acc
    if filtered:
        lap = np.zeros_like(vol)
        for z in range(1, T - 1):
            lap[z] = 2 * vol[z] - vol[z - 1] - vol[z + 1]
        vol = np.maximum(lap, 0)
    return vol


@pytest.mark.parametrize("filtered,bins", [(False, 16), (True, 16), (True, 40)])     # 40: two depth slabs
def test_backprojection_matches_brute_force(filtered, bins):
    H = np.random.default_rng(3).gamma(1.0, size=(bins, 4, 4))
    ref = _bp_reference(H, 0.05, 0.3, filtered)                                     # 3 bins per pixel of offset
    got = backproject(H, 0.05, 0.3, filtered=filtered)
    assert ref.max() > 0
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6 * ref.max())
