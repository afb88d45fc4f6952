"""f-k migration on synthetic confocal captures."""

import numpy as np
import pytest

from mlkit.errors import InputError
from mlkit.tofcompress.recon import depth_of_max, fk, mip, ncc
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
