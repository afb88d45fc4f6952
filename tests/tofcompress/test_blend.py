"""Spatial coupling of the fit (``blend_cube``) and its choice by Poisson thinning (``choose_blend``)."""

import numpy as np
import pytest

from mlkit.errors import InputError
from mlkit.tofcompress.encode import blend_cube, choose_blend, decode, encode
from mlkit.tofcompress.fit import FitConfig
from mlkit.tofcompress.synth import confocal_scene


def brute_blend(y, w, smooth):
    """The definition, pixel by pixel: similarity = cosine of the smoothed, median-removed, clipped
    returns; neighbours beyond the border are the border pixel (edge replication)."""
    from scipy.ndimage import gaussian_filter1d

    T, H, W = y.shape
    s = np.clip(gaussian_filter1d(y, smooth, axis=0, mode="nearest") - np.median(
        gaussian_filter1d(y, smooth, axis=0, mode="nearest"), axis=0), 0, None)
    out = np.empty_like(y)
    for i in range(H):
        for j in range(W):
            num, den = y[:, i, j].copy(), 1.0
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    if dy == dx == 0:
                        continue
                    q = (min(max(i + dy, 0), H - 1), min(max(j + dx, 0), W - 1))
                    a, b = s[:, i, j], s[:, q[0], q[1]]
                    na, nb = np.linalg.norm(a), np.linalg.norm(b)
                    c = w * min(max(a @ b / (na * nb), 0.0), 1.0) if na > 0 and nb > 0 else 0.0
                    num += c * y[:, q[0], q[1]]
                    den += c
            out[:, i, j] = num / den
    return out


@pytest.mark.parametrize("w", [0.0, 0.1, 0.5, 1.0])
def test_blend_cube_equals_the_definition(w):
    rng = np.random.default_rng(0)
    y = rng.poisson(0.5, (40, 5, 7)).astype(np.float64)
    y[10:14, :, :4] += rng.poisson(20.0, (4, 5, 4))              # two "surfaces": returns at other times
    y[25:29, :, 4:] += rng.poisson(20.0, (4, 5, 3))
    y[:, 2, 2] = 0.0                                             # an empty pixel is legal
    assert np.abs(blend_cube(y, w, smooth=1.5) - brute_blend(y, w, 1.5)).max() < 1e-9


def test_blend_does_not_mix_across_a_depth_edge():
    y = np.zeros((64, 4, 4))
    y[10, :, :2] = 100.0
    y[40, :, 2:] = 100.0
    out = blend_cube(y, 0.5)
    assert out[40, :, :2].max() < 1e-9 and out[10, :, 2:].max() < 1e-9
    assert np.allclose(out.sum(0), 100.0)


def test_thinning_prefers_blending_in_low_light_and_none_in_bright_light():
    cfg = FitConfig(k_max=2, sigma0=0.4, tau0=1.2, iters=12)
    dim = confocal_scene(size=16, bins=128, delta_t=0.02, photons=60.0, seed=1)
    bright = confocal_scene(size=16, bins=128, delta_t=0.02, photons=20000.0, seed=1)
    w_dim, s_dim = choose_blend(dim.H, cfg)
    w_bright, s_bright = choose_blend(bright.H, cfg)
    assert w_dim > 0 and w_bright == 0.0, (s_dim, s_bright)
    assert set(s_dim) == {0.0, 0.05, 0.1, 0.25, 0.5}
    # the held-out score ranks like the error against the clean cube it stands in for
    clean = dim.gt["clean"].astype(np.float64)
    err = {w: np.linalg.norm(decode(encode(dim.H, cfg, blend=w)) - clean) for w in (0.0, w_dim)}
    assert err[w_dim] < err[0.0]


def test_non_integer_cubes_are_not_blended_and_weights_are_checked():
    tr = confocal_scene(size=8, bins=64, delta_t=0.04, photons=500.0)
    clean = tr.gt["clean"]
    assert choose_blend(clean, FitConfig(k_max=1)) == (0.0, {})
    assert encode(clean, FitConfig(k_max=1)).meta["blend"] == 0.0
    with pytest.raises(InputError, match="blend"):
        encode(tr.H, FitConfig(k_max=1), blend=1.5)


def test_cli_blend_option(tmp_path):
    import json

    from typer.testing import CliRunner

    from mlkit_cli.commands.tof_compress import app

    def run(*a):
        return CliRunner().invoke(app, [str(x) for x in a], prog_name="mlkit tof-compress")

    assert run("synth", "-o", tmp_path / "c.h5", "--size", 8, "--bins", 64, "--delta-t", 0.04,
               "--photons", 200).exit_code == 0
    r = run("fit", tmp_path / "c.h5", "-o", tmp_path / "c.tofz", "--k-max", 1, "--blend", 0.25, "--irf-known",
            "--irf-sigma", 0.4, "--irf-tau", 1.2)
    assert r.exit_code == 0, r.stderr
    assert json.loads(run("info", tmp_path / "c.tofz").stdout)["blend"] == 0.25
    for bad in ("1.5", "-0.1", "x"):
        r = run("fit", tmp_path / "c.h5", "-o", tmp_path / "d.tofz", "--blend", bad)
        assert r.exit_code == 65 and "--blend" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "d.tofz").exists()
