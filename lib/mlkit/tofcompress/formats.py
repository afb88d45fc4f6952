"""Transient inputs and outputs (paper notes §4).

* **HDF5-TAL** (y-tal's ``read_capture``/``write_capture`` layout): ``H`` float32 with the layout
  enum ``H_format`` (1 = T_Sx_Sy, 2 = T_Lx_Ly_Sx_Sy, 3 = T_Si, 4 = T_Li_Si), ``delta_t`` and
  ``t_start`` in metres of optical path, ``t_accounts_first_and_last_bounces``, sensor/laser grids
  (``*_grid_xyz`` (Sx, Sy, 3), ``*_grid_normals``, ``*_grid_format`` 2 = X_Y_3, ``*_xyz`` (3,)),
  ``scene_info`` (YAML text). Confocal and single-pixel captures are read; exhaustive ones
  (T_Lx_Ly_Sx_Sy) are refused with a message. Our synthetic files add ``/gt/*`` ground truth.
* **Z-NLOS** (the Zaragoza NLOS dataset's HDF5, as h5py reads it): ``data`` with a bounce axis,
  confocal (colors, T, bounces, Sx, Sy), (Sy, Sx, bounces, T, colors), or (T, bounces, Sx, Sy) with
  no color axis; colors and bounces are summed (as y-tal does); ``deltaT`` and ``t0`` in metres of
  optical path, ``cameraGridPositions``. Exhaustive (7-D) captures are refused with a message.
* **.npy** cubes with an explicit ``layout`` ("THW" or "HWT"); a cube whose layout cannot be told
  apart (no axis clearly the time axis) needs ``layout``.

Everything is returned as a ``Transient``: ``H`` (T, Y, X) float32 counts plus the time grid and
the grid geometry where the file has it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

from mlkit.codecs._io import display_name, is_std, read_bytes, sniff, write_bytes
from mlkit.errors import InputError

__all__ = ["Transient", "read_transient", "write_tal", "H_FORMATS", "C_LIGHT"]

C_LIGHT = 299_792_458.0          # y-tal's speed of light; nlos-fk uses 3e8
H_FORMATS = {1: "T_Sx_Sy", 2: "T_Lx_Ly_Sx_Sy", 3: "T_Si", 4: "T_Li_Si"}


@dataclass
class Transient:
    H: np.ndarray                     # (T, Y, X) float32
    delta_t: float = 1.0              # metres of optical path per bin (1.0 = unknown: bins)
    t_start: float = 0.0
    confocal: bool = True
    sensor_grid_xyz: np.ndarray | None = None     # (Y, X, 3)
    gt: dict = field(default_factory=dict)        # synthetic ground truth, when present
    extra: dict = field(default_factory=dict)


def _layout_of(shape: tuple[int, ...], layout: str | None, name: str) -> str:
    if layout:
        lay = layout.upper()
        if lay not in ("THW", "HWT"):
            raise InputError("unknown layout", expected="THW or HWT", got=layout)
        return lay
    T0, T2 = shape[0], shape[2]
    if T0 >= 8 and T0 > 2 * max(shape[1], shape[2]):
        return "THW"
    if T2 >= 8 and T2 > 2 * max(shape[0], shape[1]):
        return "HWT"
    raise InputError(f"{name}: ambiguous axis layout", got=f"shape {shape}",
                     hint="say which axis is time with --layout THW or --layout HWT")


def _from_array(a: np.ndarray, layout: str | None, name: str) -> np.ndarray:
    if a.ndim == 1:
        a = a[:, None, None]
        layout = "THW"
    if a.ndim != 3:
        raise InputError(f"{name}: transient cube must be 3-D", expected="(T, H, W) or (H, W, T)", got=str(a.shape))
    lay = _layout_of(a.shape, layout, name)
    cube = a if lay == "THW" else np.moveaxis(a, 2, 0)
    return np.ascontiguousarray(cube, dtype=np.float32)


def read_transient(src, *, layout: str | None = None, delta_t: float | None = None,
                   t_start: float | None = None) -> Transient:
    """An HDF5-TAL file or a 1-D/3-D ``.npy`` (also on stdin as ``-``). ``delta_t``/``t_start``
    override the file's (an .npy has none: 1 bin and 0 unless given)."""
    name = display_name(src)
    raw = read_bytes(src)
    if not raw:
        raise InputError(f"{name}: empty input", expected="an .h5 (HDF5-TAL) or .npy transient")
    if raw[:8] == b"\x89HDF\r\n\x1a\n":
        tr = _read_tal(raw, name)
    elif raw[:6] == b"\x93NUMPY":
        try:
            a = np.load(io.BytesIO(raw), allow_pickle=False)
        except ValueError as exc:
            raise InputError(f"{name}: unreadable .npy", got=str(exc)[:80]) from exc
        tr = Transient(_from_array(np.asarray(a), layout, name))
    else:
        kind = sniff(raw) if not is_std(src) else None
        raise InputError(f"{name}: not a transient", expected="HDF5-TAL (.h5/.hdf5) or .npy", got=str(kind or "unknown bytes"))
    if delta_t is not None:
        tr.delta_t = float(delta_t)
    if t_start is not None:
        tr.t_start = float(t_start)
    if not np.isfinite(tr.delta_t) or tr.delta_t <= 0:
        raise InputError(f"{name}: delta_t must be > 0", got=str(tr.delta_t))
    return tr


def _read_tal(raw: bytes, name: str) -> Transient:
    import h5py

    try:
        f = h5py.File(io.BytesIO(raw), "r")
    except OSError as exc:
        raise InputError(f"{name}: unreadable HDF5", got=str(exc)[:80]) from exc
    with f:
        if "H" not in f and "data" in f and "deltaT" in f:
            return _read_znlos(f, name)
        if "H" not in f:
            raise InputError(f"{name}: not an HDF5-TAL or Z-NLOS capture", expected="a dataset 'H' (or 'data' + 'deltaT')",
                             got=", ".join(list(f)[:5]))
        H = np.asarray(f["H"])
        fmt = int(np.asarray(f["H_format"]).ravel()[0]) if "H_format" in f else (1 if H.ndim == 3 else 0)
        if fmt == 1:
            cube = H
        elif fmt == 3:
            cube = H.reshape(H.shape[0], 1, -1)
        else:
            raise InputError(f"{name}: unsupported H_format", expected="1 (T_Sx_Sy) or 3 (T_Si), confocal/single",
                             got=f"{fmt} ({H_FORMATS.get(fmt, '?')})", hint="exhaustive captures: sum or pick a laser point first")
        # HDF5-TAL is (T, Sx, Sy); we work in (T, Y, X) = (T, Sy, Sx) so images come out upright
        cube = np.ascontiguousarray(np.swapaxes(cube, 1, 2), dtype=np.float32) if fmt == 1 else cube.astype(np.float32)
        scalar = lambda k, d: float(np.asarray(f[k]).ravel()[0]) if k in f else d  # noqa: E731
        grid = np.asarray(f["sensor_grid_xyz"]) if "sensor_grid_xyz" in f else None
        if grid is not None and grid.ndim == 3:
            grid = np.swapaxes(grid, 0, 1)
        gt = {k: np.asarray(v) for k, v in f["gt"].items()} if "gt" in f else {}
        tr = Transient(cube, scalar("delta_t", 1.0), scalar("t_start", 0.0), True, grid, gt)
        if "t_accounts_first_and_last_bounces" in f:
            tr.extra["t_accounts_first_and_last_bounces"] = bool(np.asarray(f["t_accounts_first_and_last_bounces"]).ravel()[0])
        return tr


def _read_znlos(f, name: str) -> Transient:
    """A Z-NLOS confocal capture -> (T, Sy, Sx), colors and bounces summed."""
    d = f["data"]
    shape = tuple(d.shape)
    if len(shape) == 7:
        raise InputError(f"{name}: exhaustive Z-NLOS capture", expected="a confocal capture (5-D data)",
                         got=str(shape), hint="exhaustive captures: sum or pick a laser point first")
    a = np.asarray(d, dtype=np.float64)
    if len(shape) == 4:                                     # (T, bounces, Sx, Sy)
        cube = a.sum(1)
    elif len(shape) == 5 and shape[0] <= 4 < shape[-1]:     # (colors, T, bounces, Sx, Sy)
        cube = a.sum((0, 2))
    elif len(shape) == 5 and shape[-1] <= 4 < shape[0]:     # (Sy, Sx, bounces, T, colors)
        cube = np.transpose(a.sum((2, 4)), (2, 1, 0))       # -> (T, Sx, Sy)
    else:
        raise InputError(f"{name}: unrecognised Z-NLOS data layout",
                         expected="(colors, T, bounces, Sx, Sy), (Sy, Sx, bounces, T, colors) or (T, bounces, Sx, Sy)",
                         got=str(shape))
    scalar = lambda k, dflt: float(np.asarray(f[k]).ravel()[0]) if k in f else dflt  # noqa: E731
    cube = np.ascontiguousarray(np.swapaxes(cube, 1, 2), dtype=np.float32)          # (T, Sy, Sx)
    grid = None
    if "cameraGridPositions" in f:
        g = np.asarray(f["cameraGridPositions"], dtype=np.float32)
        if g.ndim == 3 and g.shape[0] == 3:                                          # (3, Sx, Sy)
            g = np.moveaxis(g, 0, -1)
        if g.ndim == 3 and g.shape[:2] == (cube.shape[2], cube.shape[1]):
            grid = np.swapaxes(g, 0, 1)                                              # (Sy, Sx, 3)
    tr = Transient(cube, scalar("deltaT", 1.0), scalar("t0", 0.0), True, grid, {})
    tr.extra["source_format"] = "Z-NLOS"
    return tr


def write_tal(tr: Transient, dst, *, compression: int | None = None) -> int:
    """HDF5-TAL (H_format 1, confocal grid) with our ``/gt`` group; atomic. ``compression`` = gzip
    level 1-9 (the lossless baseline). Returns bytes written."""
    import h5py

    T, Y, X = tr.H.shape
    buf = io.BytesIO()
    kw = {"compression": "gzip", "compression_opts": int(compression)} if compression else {}
    with h5py.File(buf, "w") as f:
        f.create_dataset("H", data=np.swapaxes(tr.H, 1, 2).astype(np.float32), **kw)
        f["H_format"] = np.array([1], dtype=np.int32)
        f["delta_t"] = np.float64(tr.delta_t)
        f["t_start"] = np.float64(tr.t_start)
        f["t_accounts_first_and_last_bounces"] = bool(tr.extra.get("t_accounts_first_and_last_bounces", True))
        grid = tr.sensor_grid_xyz if tr.sensor_grid_xyz is not None else np.zeros((Y, X, 3))
        for who in ("sensor", "laser"):
            f[f"{who}_grid_xyz"] = np.swapaxes(grid, 0, 1).astype(np.float32)
            normals = np.zeros((X, Y, 3), np.float32)
            normals[..., 2] = 1.0
            f[f"{who}_grid_normals"] = normals
            f[f"{who}_grid_format"] = np.array([2], dtype=np.int32)
            f[f"{who}_xyz"] = np.zeros(3, np.float32)
        f["scene_info"] = str(tr.extra.get("scene_info", "generator: mlkit tof-compress"))
        f["volume_format"] = h5py.Empty("i")
        if tr.gt:
            g = f.create_group("gt")
            for k, v in tr.gt.items():
                g.create_dataset(k, data=np.asarray(v), **kw)
    data = buf.getvalue()
    write_bytes(data, dst)
    return len(data)
