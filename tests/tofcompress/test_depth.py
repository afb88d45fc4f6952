"""Depth from the fitted EMG locations on the line-of-sight two-plane scene."""

import numpy as np
import pytest

from mlkit.errors import InputError
from mlkit.tofcompress.depth import depth_map, histogram_peak_depth
from mlkit.tofcompress.encode import encode
from mlkit.tofcompress.fit import FitConfig
from mlkit.tofcompress.synth import los_scene


@pytest.fixture(scope="module")
def scene_fit():
    tr = los_scene(size=16, photons=1000.0, seed=2)
    enc = encode(tr.H, FitConfig(k_max=2, sigma0=0.4, tau0=1.2), delta_t=tr.delta_t)
    return tr, enc


def test_emg_depth_beats_the_histogram_peak(scene_fit):
    """16x16 two planes at 1000 photons/px, 10 mm of depth per bin. Measured: 0.4 mm MAE, histogram
    peak 6.3 mm."""
    tr, enc = scene_fit
    gt = tr.gt["depth"]
    first = np.abs(depth_map(enc, "first") - gt).mean()
    strongest = np.abs(depth_map(enc, "strongest") - gt).mean()
    peak = np.abs(histogram_peak_depth(tr.H, tr.delta_t) - gt).mean()
    assert first <= 0.002 and strongest <= 0.002
    assert first < peak and strongest < peak


def test_first_ignores_stray_early_photons():
    """A pixel that keeps a weak component (5 photons) before the surface (1000 photons)."""
    import torch

    from mlkit.tofcompress.container import pack

    theta = torch.tensor([[5.0, 1000.0, 40.0, 100.0, 0.5, 0.5, 1.0, 1.0, 0.0]], dtype=torch.float64)
    enc = pack(theta, torch.tensor([[True, True]]), shape=(1, 1), bins=256, delta_t=0.02, t_start=0.0,
               k_max=2, loss="poisson")
    surface = (100 + 0.5) * 0.02 / 2
    assert depth_map(enc, "first")[0, 0] == pytest.approx(surface)
    assert depth_map(enc, "strongest")[0, 0] == pytest.approx(surface)
    assert depth_map(enc, "first", min_fraction=0.0)[0, 0] == pytest.approx((40 + 0.5) * 0.02 / 2)
    with pytest.raises(InputError, match="component"):
        depth_map(enc, "last")


def test_empty_pixels_are_nan():
    enc = encode(np.zeros((16, 2, 3), np.float32))
    assert np.isnan(depth_map(enc)).all()
