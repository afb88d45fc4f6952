"""Baselines of the benchmark: budgets respected, exact at full budget, sensible at low ratio."""

import numpy as np
import pytest

from mlkit.errors import InputError
from mlkit.tofcompress import baselines as B
from mlkit.tofcompress.fit import FitConfig
from mlkit.tofcompress.synth import confocal_scene


@pytest.fixture(scope="module")
def cube():
    return confocal_scene(size=8, bins=64, delta_t=0.04, photons=3000.0).H


@pytest.mark.parametrize("fn", [B.svd, B.dct, B.wavelet])
@pytest.mark.parametrize("ratio", [5, 25, 100])
def test_budget_is_met_and_rounded_up(cube, fn, ratio):
    rec, n = fn(cube, ratio)
    assert rec.shape == cube.shape and rec.dtype == np.float32
    T, P = cube.shape[0], cube.shape[1] * cube.shape[2]
    smallest = 4 * (P + T + 1) if fn is B.svd else 6 * P             # one rank / one coefficient per pixel
    assert n >= cube.size * 4 / ratio or n <= smallest                # at least the budget (rounded up)
    assert n <= cube.size * 4 / ratio + (4 * (P + T + 1) if fn is B.svd else 6 * P)


@pytest.mark.parametrize("fn", [B.dct, B.wavelet])
def test_full_budget_is_lossless(cube, fn):
    rec, _ = fn(cube, 4 / 6)                                          # k = T coefficients per pixel
    np.testing.assert_allclose(rec, cube, rtol=0, atol=1e-3)


def test_svd_full_rank_is_lossless_and_errors_grow_with_ratio(cube):
    rec, _ = B.svd(cube, 1e-3)
    np.testing.assert_allclose(rec, cube, rtol=0, atol=1e-2)
    errs = [np.linalg.norm(B.svd(cube, r)[0] - cube) for r in (2, 8, 32)]
    assert errs == sorted(errs)


def test_gzip_and_gaussian_config(cube):
    assert 0 < B.gzip_bytes(cube) < cube.size * 4
    g = B.gaussian_config(FitConfig(k_max=2))
    assert g.lam_min == g.lam_max == 1e3 and g.k_max == 2
    with pytest.raises(InputError, match="ratio"):
        B.dct(cube, 0)
