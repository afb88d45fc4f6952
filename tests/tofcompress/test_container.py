"""The .tofz container, whole-cube encode/decode, and bad input."""

import io
import json
import zipfile

import numpy as np
import pytest
import torch

from mlkit.errors import InputError
from mlkit.tofcompress.container import MU_STEPS, read_tofz, write_tofz
from mlkit.tofcompress.emg import emg_pdf
from mlkit.tofcompress.encode import decode, encode
from mlkit.tofcompress.fit import FitConfig


def scene(H=12, W=10, T=128, photons=3000.0, seed=0):
    """Two returns per pixel (a direct one whose time varies smoothly, and a weaker later one)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    mu1 = 30 + 1.5 * yy + 0.8 * xx
    t = np.arange(T, dtype=np.float64)[:, None, None]
    g = lambda mu, s, lam: emg_pdf(torch.from_numpy(t), torch.tensor(mu), torch.tensor(s), torch.tensor(lam)).numpy()  # noqa: E731
    clean = 0.7 * photons * g(mu1, 0.6, 0.8) + 0.3 * photons * g(mu1 + 25, 1.2, 0.3) + 0.05
    return clean, rng.poisson(clean).astype(np.float32)


@pytest.fixture(scope="module")
def fitted():
    clean, noisy = scene()
    enc = encode(noisy, FitConfig(k_max=3), delta_t=0.01, t_start=0.5)
    return clean, noisy, enc


def test_decode_on_the_fitted_grid_is_close_to_the_clean_cube(fitted):
    clean, noisy, enc = fitted
    rec = decode(enc)
    assert rec.shape == clean.shape and rec.dtype == np.float32
    rel = np.linalg.norm(rec - clean) / np.linalg.norm(clean)
    raw = np.linalg.norm(noisy - clean) / np.linalg.norm(clean)
    assert rel < raw and rel < 0.1, (rel, raw)
    assert (enc.count == 2).mean() > 0.9


@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_round_trip_and_size(fitted, tmp_path, dtype):
    _, noisy, enc = fitted
    n = write_tofz(enc, tmp_path / "x.tofz", dtype)
    assert n == (tmp_path / "x.tofz").stat().st_size
    back = read_tofz(tmp_path / "x.tofz")
    assert back.shape == enc.shape and back.bins == enc.bins and back.delta_t == 0.01 and back.t_start == 0.5
    np.testing.assert_array_equal(back.count, enc.count)
    mu_tol = (enc.bins + 5) / MU_STEPS if dtype == "f16" else 1e-4 * enc.bins
    assert np.abs(back.comps[:, 1] - enc.comps[:, 1]).max() <= mu_tol
    rel = 1e-3 if dtype == "f16" else 1e-6
    np.testing.assert_allclose(back.comps[:, [0, 2, 3]], enc.comps[:, [0, 2, 3]], rtol=rel)
    ratio = noisy.size * 4 / n
    assert ratio > (6 if dtype == "f32" else 9)            # 128 bins, 2 components: small cube, zip overhead
    np.testing.assert_allclose(decode(back), decode(enc), rtol=0, atol=2e-3 * decode(enc).max())


def test_decode_on_another_grid_keeps_the_counts_and_the_times(fitted):
    _, _, enc = fitted
    base = decode(enc)
    fine = decode(enc, bins=2 * enc.bins, delta_t=enc.delta_t / 2)
    np.testing.assert_allclose(fine.sum(0), base.sum(0), rtol=0.02)
    # the peak moves to the same time in metres
    t_base = enc.t_start + base.argmax(0) * enc.delta_t
    t_fine = enc.t_start + fine.argmax(0) * enc.delta_t / 2
    assert np.abs(t_fine - t_base).max() <= enc.delta_t
    shifted = decode(enc, t_start=enc.t_start + 10 * enc.delta_t)
    np.testing.assert_allclose(shifted[:-10], base[10:], rtol=1e-4, atol=1e-3)


def test_version_mismatch_and_garbage(fitted, tmp_path):
    _, _, enc = fitted
    write_tofz(enc, tmp_path / "x.tofz")
    with zipfile.ZipFile(tmp_path / "x.tofz") as z:
        files = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(np.load(io.BytesIO(files["meta.npy"])).tobytes())
    meta["version"] = 99
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    files["meta.npy"] = buf.getvalue()
    with zipfile.ZipFile(tmp_path / "v99.tofz", "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    with pytest.raises(InputError, match="version mismatch"):
        read_tofz(tmp_path / "v99.tofz")
    (tmp_path / "junk.tofz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a .tofz"):
        read_tofz(tmp_path / "junk.tofz")
    with pytest.raises(InputError, match="dtype"):
        write_tofz(enc, tmp_path / "y.tofz", "f8")


def test_chunking_does_not_change_the_fit():
    _, noisy = scene(H=9, W=6, T=96, seed=1)
    a = encode(noisy, FitConfig(k_max=2, iters=15), chunk=12)          # two rows at a time
    b = encode(noisy, FitConfig(k_max=2, iters=15), chunk=10_000)
    np.testing.assert_array_equal(a.count, b.count)
    np.testing.assert_allclose(a.comps, b.comps, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("mutate,msg", [
    (lambda c: c.__setitem__((3, 1, 1), np.nan), "non-finite"),
    (lambda c: c.__setitem__((3, 1, 1), -1.0), "negative"),
])
def test_bad_cubes(mutate, msg):
    c = np.zeros((16, 3, 3), np.float32)
    mutate(c)
    with pytest.raises(InputError, match=msg):
        encode(c)


def test_bad_grids():
    with pytest.raises(InputError, match="too few time bins"):
        encode(np.zeros((7, 2, 2), np.float32))
    with pytest.raises(InputError, match="delta_t"):
        encode(np.zeros((16, 2, 2), np.float32), delta_t=0.0)
    enc = encode(np.zeros((16, 2, 2), np.float32))                     # all-zero pixels are legal
    assert (enc.count == 0).all() and decode(enc).max() < 1e-6


def test_every_kept_component_puts_photons_in_the_window(fitted):
    from mlkit.tofcompress.fit import in_window

    _, _, enc = fitted
    theta, active = enc.theta()
    K = active.shape[1]
    assert (in_window(theta, K, enc.bins)[active] >= 3.0).all()


def test_f16_holds_amplitudes_beyond_its_range(tmp_path):
    clean, noisy = scene(H=4, W=4, T=64, photons=4e5, seed=5)
    enc = encode(noisy, FitConfig(k_max=2), delta_t=0.01)
    assert enc.comps[:, 0].max() > 65504                     # float16's largest finite value
    write_tofz(enc, tmp_path / "big.tofz", "f16")
    back = read_tofz(tmp_path / "big.tofz")
    assert np.isfinite(back.comps).all()
    np.testing.assert_allclose(back.comps[:, 0], enc.comps[:, 0], rtol=1e-3)
