"""HDF5-TAL and .npy transients: round trips, layouts, bad input."""

import h5py
import numpy as np
import pytest

from mlkit.errors import InputError
from mlkit.tofcompress.formats import Transient, read_transient, write_tal


def cube(T=64, Y=5, X=7, seed=0):
    return np.random.default_rng(seed).poisson(3.0, (T, Y, X)).astype(np.float32)


@pytest.mark.parametrize("gzip", [None, 4])
def test_tal_round_trip_with_ground_truth(tmp_path, gzip):
    c = cube()
    grid = np.random.default_rng(1).normal(size=(5, 7, 3))
    tr = Transient(c, 0.01, 0.5, True, grid, {"clean": c * 0.5, "depth": np.ones((5, 7))})
    n = write_tal(tr, tmp_path / "x.h5", compression=gzip)
    assert n == (tmp_path / "x.h5").stat().st_size
    back = read_transient(tmp_path / "x.h5")
    np.testing.assert_array_equal(back.H, c)
    assert (back.delta_t, back.t_start) == (0.01, 0.5)
    np.testing.assert_allclose(back.sensor_grid_xyz, grid, rtol=1e-6)
    np.testing.assert_array_equal(back.gt["clean"], c * 0.5)
    with h5py.File(tmp_path / "x.h5") as f:                      # the HDF5-TAL layout on disk
        assert f["H"].shape == (64, 7, 5) and int(f["H_format"][0]) == 1
        assert f["delta_t"].dtype == np.float64 and f["sensor_grid_xyz"].shape == (7, 5, 3)


def test_npy_layouts(tmp_path):
    c = cube()
    np.save(tmp_path / "thw.npy", c)
    np.save(tmp_path / "hwt.npy", np.moveaxis(c, 0, 2))
    np.testing.assert_array_equal(read_transient(tmp_path / "thw.npy").H, c)
    np.testing.assert_array_equal(read_transient(tmp_path / "hwt.npy").H, c)
    tr = read_transient(tmp_path / "thw.npy", delta_t=0.02, t_start=1.0)
    assert (tr.delta_t, tr.t_start) == (0.02, 1.0)
    np.save(tmp_path / "amb.npy", np.zeros((16, 16, 16), np.float32))
    with pytest.raises(InputError, match="ambiguous axis layout"):
        read_transient(tmp_path / "amb.npy")
    assert read_transient(tmp_path / "amb.npy", layout="HWT").H.shape == (16, 16, 16)
    np.save(tmp_path / "one.npy", np.arange(32, dtype=np.float32))
    assert read_transient(tmp_path / "one.npy").H.shape == (32, 1, 1)


def test_bad_files(tmp_path):
    (tmp_path / "e.npy").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_transient(tmp_path / "e.npy")
    (tmp_path / "t.txt").write_text("hello")
    with pytest.raises(InputError, match="not a transient"):
        read_transient(tmp_path / "t.txt")
    with h5py.File(tmp_path / "ex.h5", "w") as f:
        f["H"] = np.zeros((16, 2, 2, 3, 3), np.float32)
        f["H_format"] = np.array([2], np.int32)
    with pytest.raises(InputError, match="unsupported H_format"):
        read_transient(tmp_path / "ex.h5")
    with h5py.File(tmp_path / "noH.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(InputError, match="not an HDF5-TAL"):
        read_transient(tmp_path / "noH.h5")
    np.save(tmp_path / "c.npy", cube())
    with pytest.raises(InputError, match="delta_t"):
        read_transient(tmp_path / "c.npy", delta_t=-1)
    with pytest.raises(InputError, match="layout"):
        read_transient(tmp_path / "c.npy", layout="TXY")


def znlos(path, data, deltaT=0.003, t0=1.5, grid=None):
    with h5py.File(path, "w") as f:
        f["data"] = data
        f["deltaT"] = np.array([deltaT])
        f["t0"] = np.array([t0])
        f["cameraPosition"] = np.zeros(3)
        if grid is not None:
            f["cameraGridPositions"] = grid


@pytest.mark.parametrize("layout", ["c_t_b_sx_sy", "sy_sx_b_t_c", "t_b_sx_sy"])
def test_znlos_confocal_layouts_sum_colors_and_bounces(tmp_path, layout):
    """Every layout holds the same capture: want[t, y, x] = Σ_colors Σ_bounces."""
    rng = np.random.default_rng(5)
    T, B, SX, SY = 40, 6, 7, 5
    base = rng.poisson(2.0, (3, T, B, SX, SY)).astype(np.float32)       # (colors, T, bounces, Sx, Sy)
    want = np.zeros((T, SY, SX))
    for t in range(T):
        for y in range(SY):
            for x in range(SX):
                want[t, y, x] = base[:, t, :, x, y].sum()
    data = {"c_t_b_sx_sy": base, "sy_sx_b_t_c": np.transpose(base, (4, 3, 2, 1, 0)),
            "t_b_sx_sy": base.sum(0)}[layout]
    grid = rng.normal(size=(3, SX, SY)).astype(np.float32)
    znlos(tmp_path / "z.hdf5", data, grid=grid)
    tr = read_transient(tmp_path / "z.hdf5")
    np.testing.assert_allclose(tr.H, want, rtol=1e-6)
    assert (tr.delta_t, tr.t_start) == (0.003, 1.5)
    np.testing.assert_allclose(tr.sensor_grid_xyz[2, 4], grid[:, 4, 2])     # (y, x) -> position


def test_znlos_exhaustive_and_unknown_layouts_are_refused(tmp_path):
    znlos(tmp_path / "ex.hdf5", np.zeros((2, 3, 3, 16, 6, 3, 3), np.float32))
    with pytest.raises(InputError, match="exhaustive"):
        read_transient(tmp_path / "ex.hdf5")
    znlos(tmp_path / "odd.hdf5", np.zeros((8, 16, 6, 16, 8), np.float32))
    with pytest.raises(InputError, match="layout"):
        read_transient(tmp_path / "odd.hdf5")
