"""Synthetic scenes: photon budget, arrival times, ground truth, determinism."""

import numpy as np
import pytest

from mlkit.errors import InputError
from mlkit.tofcompress.synth import confocal_scene, emg_bins, los_scene


def test_emg_bins_are_a_unit_area_response():
    r = emg_bins(200, np.array([50.3, 120.0]), 0.4, 1.2)
    np.testing.assert_allclose(r.sum(0), 1.0, atol=1e-9)
    assert r.argmax(0).tolist() == [50, 120]


def test_los_scene_ground_truth_and_budget():
    tr = los_scene(size=16, bins=512, photons=1000.0, seed=1)
    T, Y, X = tr.H.shape
    assert (T, Y, X) == (512, 16, 16) and tr.delta_t == 0.02
    d = tr.gt["depth"]
    assert np.allclose(d[:, :8].min(), 1.2, atol=0.05) and d[:, 8:].min() > 1.95
    # the direct return's bin is where 2d falls (bin i covers [i·δ, (i+1)·δ))
    peak = tr.gt["clean"].argmax(0)
    assert np.abs(peak - np.floor(2 * d / tr.delta_t)).max() <= 1
    signal = tr.gt["clean"].sum(0) - 0.05 * 1000
    np.testing.assert_allclose(signal, 1000.0, rtol=1e-3)
    assert abs(tr.H.sum(0).mean() - (1000 * 1.05 + 0.01 * 512)) < 0.05 * 1000
    assert tr.gt["params"].shape == (16, 16, 2, 4)
    np.testing.assert_array_equal(los_scene(size=16, seed=1).H, tr.H)


def test_confocal_scene():
    tr = confocal_scene(size=16, bins=256, photons=3000.0)
    assert tr.H.shape == (256, 16, 16) and tr.sensor_grid_xyz.shape == (16, 16, 3)
    np.testing.assert_allclose(tr.gt["clean"].sum(0).mean(), 3000.0, rtol=1e-6)
    # the first arrival is no earlier than the closest hidden point allows: OPL 2·0.5 m = 100 bins
    first = (tr.gt["clean"] > 1e-3 * tr.gt["clean"].max()).argmax(0)
    assert first.min() >= 95 and tr.gt["points"].shape[1] == 3
    assert tr.extra["t_accounts_first_and_last_bounces"] is False


@pytest.mark.parametrize("kw,msg", [({"photons": 0}, "photons"), ({"bins": 4}, "bins"), ({"jitter": (0, 1)}, "jitter")])
def test_bad_parameters(kw, msg):
    with pytest.raises(InputError, match=msg):
        los_scene(size=4, **kw)
