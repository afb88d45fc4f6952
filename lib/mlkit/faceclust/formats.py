"""On-disk formats of face clustering (learn-to-cluster layout, paper notes §4) with validation.

- features: ``.bin`` raw little-endian float32 N×dim (no header; needs ``dim``) or ``.npy``
  (2-D float; also on stdin ``-``). Returned float32, L2-normalised, C-contiguous.
- labels: ``.meta``, one integer per line.
- kNN graphs: our compact ``.npz`` (``ids`` int32 (N, k), ``dists`` float32 (N, k), optional
  ``k`` and ``metric``) or learn-to-cluster's ``faiss_k_80.npz`` (key ``data``, (N, 2, k) float64:
  [:, 0] ids, [:, 1] distance 1 − cos). Both read into a ``KnnGraph``.

Missing neighbours (faiss IVF returns id −1 when the probed lists are short) keep id −1 and get
distance +inf whatever the file says, so they sort last and every consumer masks ``ids < 0``.
Rows are returned in ascending distance (stable sort; self moved first among exact ties).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlkit.codecs import arrays
from mlkit.codecs._io import (
    GZIP_MAGIC,
    atomic_output,
    display_name,
    is_bytes,
    is_std,
    peek_file,
    read_bytes,
    sniff,
    suffix_of,
)
from mlkit.errors import InputError

__all__ = ["KnnGraph", "read_features", "normalize_rows", "read_meta", "write_meta", "read_knn",
           "write_knn", "check_knn", "DIST_RANGE"]

DIST_RANGE = (-1e-5, 2.0 + 1e-5)  # 1 − cos lies in [0, 2]; float rounding gets this much slack
_CHUNK = 16384                     # rows per block in the streaming passes
_LTC_BLOCK_BYTES = 8 << 20         # file bytes per block when converting a learn-to-cluster array


def normalize_rows(x: np.ndarray, name: str = "features") -> np.ndarray:
    """Float32 L2-normalised C-contiguous copy of a 2-D array, in blocks (one output copy even
    for a memory map). NaN/Inf rows and zero rows raise ``InputError`` naming the first one."""
    n, d = x.shape
    if n == 0 or d == 0:
        raise InputError(f"{name}: no features", expected="at least one row and one column",
                         got=f"shape {tuple(x.shape)}")
    out = np.empty((n, d), dtype=np.float32)
    for lo in range(0, n, _CHUNK):
        b = np.asarray(x[lo:lo + _CHUNK], dtype=np.float64)
        bad = ~np.isfinite(b).all(axis=1)
        if bad.any():
            r = lo + int(np.argmax(bad))
            raise InputError(f"{name}: row {r} is not finite", expected="finite values",
                             got="NaN or Inf", hint="drop or repair the rows with missing values")
        norm = np.sqrt(np.einsum("ij,ij->i", b, b))
        if (norm == 0).any():
            r = lo + int(np.argmax(norm == 0))
            raise InputError(f"{name}: row {r} has zero norm", expected="non-zero feature rows",
                             got="all zeros", hint="drop the empty rows")
        out[lo:lo + _CHUNK] = b / norm[:, None]
    return out


def _plain_file(src) -> bool:
    """A readable path (not ``-``, not bytes) that is not gzip-compressed: safe to mmap or seek."""
    if is_bytes(src) or is_std(src):
        return False
    peek_file(src, 1)  # raises MissingInputError / InputError for missing files and folders
    with open(src, "rb") as fh:
        return fh.read(2) != GZIP_MAGIC


def _features_fmt(src, fmt: str | None, dim: int | None) -> str:
    if fmt:
        return fmt.lower().lstrip(".")
    if is_std(src):
        return "npy"
    if is_bytes(src):
        return sniff(bytes(src[:8])) or ("bin" if dim else "npy")
    return suffix_of(src) or "npy"


def read_features(src, dim: int | None = None, *, fmt: str | None = None) -> np.ndarray:
    """(N, dim) float32 unit rows from a ``.bin`` (``dim`` required), ``.npy``, stdin ``-`` (.npy)
    or bytes. ``dim`` also checks the width of a ``.npy``."""
    name = display_name(src)
    f = _features_fmt(src, fmt, dim)
    if f == "bin":
        if not dim or dim < 1:
            raise InputError(f"{name}: raw .bin features need their dimension", expected="dim >= 1",
                             got=str(dim), hint="pass --dim (256 for the learn-to-cluster features)")
        mmap = _plain_file(src)
        if mmap:
            nbytes = Path(src).stat().st_size
        else:
            src = read_bytes(src, allow_empty=True)
            nbytes = len(src)
        if nbytes == 0:
            raise InputError(f"{name}: no features", expected="N×dim float32 values", got="0 bytes")
        if nbytes % (4 * dim):
            raise InputError(f"{name}: size is not a whole number of rows",
                             expected=f"a multiple of 4·dim = {4 * dim} bytes (float32 × dim {dim})",
                             got=f"{nbytes} bytes", hint="check --dim")
        x = arrays.read(src, fmt="bin", dtype="<f4", shape=(-1, dim), mmap=mmap)
    elif f == "npy":
        x = arrays.read(src, fmt="npy", mmap=not is_std(src) and not is_bytes(src))
        if x.ndim != 2 or x.dtype.kind != "f":
            raise InputError(f"{name}: not a feature matrix", expected="a 2-D float array (N, dim)",
                             got=f"{x.ndim}-D {x.dtype} {tuple(x.shape)}")
        if dim and x.shape[1] != dim:
            raise InputError(f"{name}: wrong feature dimension", expected=f"{dim} columns",
                             got=f"{x.shape[1]}", hint="check --dim")
    else:
        raise InputError(f"{name}: unknown feature format '.{f}'", expected=".bin (with dim) or .npy")
    return normalize_rows(x, name)


def read_meta(src, n: int | None = None) -> np.ndarray:
    """(N,) int64 labels from a ``.meta`` file (one integer per line, parsed by
    :func:`mlkit.faceclust.evaluate.read_labels`); ``n`` checks the count."""
    from .evaluate import read_labels

    labels = read_labels(src, fmt="meta")
    if n is not None and labels.size != n:
        raise InputError(f"{display_name(src)}: wrong number of labels", expected=f"{n} (one per feature row)",
                         got=f"{labels.size}", hint="the .meta and the features must come from the same split")
    return labels


def write_meta(labels, dst) -> None:
    """Write integer labels as a ``.meta`` file (one per line), atomically; ``-`` is stdout."""
    from .evaluate import write_labels

    y = np.asarray(labels)
    if y.ndim != 1 or y.dtype.kind not in "iub":
        raise InputError("labels", expected="a 1-D integer array", got=f"{y.ndim}-D {y.dtype}")
    write_labels(y.astype(np.int64), dst, fmt="meta")


@dataclass
class KnnGraph:
    """A kNN graph: row i lists point i's neighbours. ``ids`` (N, k) int32 (−1 = missing),
    ``dists`` (N, k) float32 in ascending order per row (+inf where missing)."""

    ids: np.ndarray
    dists: np.ndarray
    metric: str = "cosine"

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids)
        self.ids = np.ascontiguousarray(ids if ids.dtype == np.int32 else _id_block(ids, 0, "kNN graph"))
        self.dists = np.ascontiguousarray(self.dists, dtype=np.float32)
        if self.ids.ndim != 2 or self.ids.shape != self.dists.shape:
            raise InputError("kNN graph: ids and dists disagree", expected="two (N, k) arrays",
                             got=f"ids {self.ids.shape}, dists {self.dists.shape}")

    @property
    def n(self) -> int:
        return self.ids.shape[0]

    @property
    def k(self) -> int:
        return self.ids.shape[1]

    @property
    def valid(self) -> np.ndarray:
        """(N, k) bool: True where a neighbour exists (id ≥ 0)."""
        return self.ids >= 0


def _id_block(a: np.ndarray, lo: int, name: str) -> np.ndarray:
    """int32 ids from any real array (rows start at ``lo``): integral, finite, >= −1, < 2³¹."""
    if a.dtype.kind not in "iuf":
        raise InputError(f"{name}: neighbour ids are not numbers", expected="integers", got=str(a.dtype))
    with np.errstate(invalid="ignore"):
        bad = (a < -1) | (a >= 2**31 - 1)
        if a.dtype.kind == "f":
            bad |= ~np.isfinite(a) | (a != np.floor(a))
    if bad.any():
        r, c = np.unravel_index(int(np.argmax(bad)), a.shape)
        raise InputError(f"{name}: row {lo + r} has a bad neighbour id", expected="integers in [-1, N)",
                         got=f"{a[r, c].item()!r} at column {c}")
    return a.astype(np.int32)


def check_knn(graph: KnnGraph, n: int | None = None, name: str = "kNN graph") -> KnnGraph:
    """Validate ``graph`` in place and return it: N rows (``n`` if given), 1 <= k < N, ids in
    [−1, N), no duplicate id in a row, distances of real neighbours in ``DIST_RANGE``. Missing
    neighbours get distance +inf, rows are stably sorted by distance when they are not, and self is
    moved first when it ties with the nearest neighbour. Errors name the first bad row."""
    ids, d = graph.ids, graph.dists
    big_n, k = ids.shape
    if n is not None and big_n != n:
        raise InputError(f"{name}: wrong number of rows", expected=f"{n} (one per feature row)",
                         got=str(big_n), hint="the graph and the features must come from the same split")
    if not 1 <= k < big_n:
        raise InputError(f"{name}: bad k", expected=f"1 <= k < N = {big_n}", got=f"k = {k}",
                         hint="use fewer neighbours than points")
    lo_d, hi_d = DIST_RANGE
    for lo in range(0, big_n, _CHUNK):
        i, b = ids[lo:lo + _CHUNK], d[lo:lo + _CHUNK]
        _first_bad((i < -1) | (i >= big_n), lo, name, "has a neighbour id out of range", f"ids in [-1, {big_n})")
        s = np.sort(i, axis=1)
        _first_bad(((s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)), lo, name,
                   "lists a neighbour twice", "distinct ids in each row")
        valid = i >= 0
        with np.errstate(invalid="ignore"):
            _first_bad(valid & ~((b >= lo_d) & (b <= hi_d)), lo, name, "has a distance out of range",
                       f"1 - cos in [{lo_d:g}, {hi_d:g}]")
        b[~valid] = np.inf
        with np.errstate(invalid="ignore"):
            unsorted = (np.diff(b, axis=1) < 0).any(axis=1)
        if unsorted.any():
            order = np.argsort(b[unsorted], axis=1, kind="stable")
            b[unsorted] = np.take_along_axis(b[unsorted], order, axis=1)
            i[unsorted] = np.take_along_axis(i[unsorted], order, axis=1)
        rows = np.arange(lo, lo + len(i))[:, None]
        is_self = i == rows
        pos = np.argmax(is_self, axis=1)
        for r in np.flatnonzero((pos > 0) & (b[np.arange(len(i)), pos] <= b[:, 0])):
            p = pos[r]
            i[r, :p + 1] = np.roll(i[r, :p + 1], 1)  # distances tie: only the ids move
    return graph


def _first_bad(bad: np.ndarray, lo: int, name: str, what: str, expected: str) -> None:
    rows = bad.reshape(len(bad), -1).any(axis=1)
    if rows.any():
        r = int(np.argmax(rows))
        raise InputError(f"{name}: row {lo + r} {what}", expected=expected,
                         got=f"{int(rows.sum())} bad row(s), first {lo + r}")


def _open_zip(src) -> zipfile.ZipFile:
    name = display_name(src)
    try:
        if _plain_file(src):
            return zipfile.ZipFile(src)
        return zipfile.ZipFile(io.BytesIO(read_bytes(src)))
    except (zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{name}: not a valid .npz", expected="a kNN graph .npz", got=str(exc)) from exc


def read_knn(src, n: int | None = None) -> KnnGraph:
    """A validated ``KnnGraph`` from a compact or a learn-to-cluster ``.npz`` (path, ``-`` or
    bytes). The learn-to-cluster (N, 2, k) float64 array is converted in blocks of rows, so only
    the int32/float32 result is held in full. See ``check_knn`` for the checks."""
    name = display_name(src)
    with _open_zip(src) as zf:
        members = {m[:-4]: m for m in zf.namelist() if m.endswith(".npy")}
        try:
            if "ids" in members and "dists" in members:
                get = {key: np.lib.format.read_array(zf.open(m), allow_pickle=False)
                       for key, m in members.items() if key in ("ids", "dists", "k", "metric")}
                ids, dists = get["ids"], get["dists"]
                if ids.ndim != 2 or ids.shape != dists.shape or dists.dtype.kind not in "iuf":
                    raise InputError(f"{name}: ids and dists disagree", expected="two (N, k) numeric arrays",
                                     got=f"ids {ids.shape} {ids.dtype}, dists {dists.shape} {dists.dtype}")
                if "k" in get and int(get["k"]) != ids.shape[1]:
                    raise InputError(f"{name}: k disagrees with the arrays", expected=str(ids.shape[1]),
                                     got=str(int(get["k"])))
                ids = np.concatenate([_id_block(ids[lo:lo + _CHUNK], lo, name)
                                      for lo in range(0, len(ids), _CHUNK)] or [ids.astype(np.int32)])
                with np.errstate(over="ignore"):  # float64 +-huge (faiss misses) -> float32 inf
                    graph = KnnGraph(ids, dists, str(get.get("metric", "cosine")))
            elif "data" in members:
                with zf.open(members["data"]) as fp:
                    graph = _read_ltc(fp, name)
            else:
                raise InputError(f"{name}: not a kNN graph", expected="keys ids+dists (compact) or data "
                                 "(learn-to-cluster)", got=", ".join(sorted(members)) or "no arrays")
        except (ValueError, EOFError, OSError, zipfile.BadZipFile) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"{name}: corrupt kNN graph .npz", got=str(exc).splitlines()[0][:200]) from exc
    return check_knn(graph, n, name)


def _read_ltc(fp, name: str) -> KnnGraph:
    version = np.lib.format.read_magic(fp)
    reader = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    shape, fortran, dtype = reader.get(version, np.lib.format.read_array_header_2_0)(fp)
    if len(shape) != 3 or shape[1] != 2 or dtype.kind not in "iuf":
        raise InputError(f"{name}: not a learn-to-cluster kNN array", expected="data of shape (N, 2, k), "
                         "float", got=f"{shape} {dtype}")
    big_n, _, k = shape
    rowbytes = 2 * k * dtype.itemsize
    if fortran:  # column-major (numpy never writes one from a C array): read it whole
        raw = fp.read(big_n * rowbytes)
        full = len(raw) == big_n * rowbytes
        blocks = [(0, np.frombuffer(raw, dtype).reshape(shape, order="F") if full else np.empty(0))]
    else:
        blocks = _row_blocks(fp, big_n, rowbytes, dtype, k)
    ids = np.empty((big_n, k), np.int32)
    dists = np.empty((big_n, k), np.float32)
    for lo, block in blocks:
        if block.ndim != 3:
            raise InputError(f"{name}: truncated kNN array", expected=f"{big_n} rows of {rowbytes} bytes",
                             got=f"fewer from row {lo}")
        ids[lo:lo + len(block)] = _id_block(block[:, 0], lo, name)
        with np.errstate(over="ignore"):
            dists[lo:lo + len(block)] = block[:, 1]
    return KnnGraph(ids, dists)


def _row_blocks(fp, big_n: int, rowbytes: int, dtype, k: int):
    step = max(1, _LTC_BLOCK_BYTES // max(1, rowbytes))
    for lo in range(0, big_n, step):
        m = min(step, big_n - lo)
        raw = fp.read(m * rowbytes)
        if len(raw) != m * rowbytes:
            yield lo, np.empty(0)  # truncated: the caller reports it
            return
        yield lo, np.frombuffer(raw, dtype).reshape(m, 2, k)


def write_knn(graph: KnnGraph, dst, fmt: str = "compact") -> None:
    """Write ``graph`` atomically (``-`` is stdout): ``compact`` (``ids`` int32, ``dists`` float32,
    ``k``, ``metric``; np.savez) or ``ltc`` (learn-to-cluster ``data`` (N, 2, k) float64,
    compressed, written in blocks of rows)."""
    if fmt not in ("compact", "ltc"):
        raise InputError("unknown kNN format", expected="compact or ltc", got=str(fmt))
    direct = not is_std(dst) and not str(dst).lower().endswith(".gz")
    with atomic_output(dst) as fh:
        target = fh if direct else io.BytesIO()
        if fmt == "compact":
            np.savez(target, ids=graph.ids, dists=graph.dists, k=np.int64(graph.k),
                     metric=np.str_(graph.metric))
        else:
            _write_ltc(graph, target)
        if not direct:
            fh.write(target.getvalue())


def _write_ltc(graph: KnnGraph, target) -> None:
    big_n, k = graph.ids.shape
    header = {"descr": "<f8", "fortran_order": False, "shape": (big_n, 2, k)}
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("data.npy", "w", force_zip64=True) as out:
            np.lib.format.write_array_header_1_0(out, header)
            for lo in range(0, big_n, _CHUNK):
                block = np.empty((len(graph.ids[lo:lo + _CHUNK]), 2, k), "<f8")
                block[:, 0] = graph.ids[lo:lo + _CHUNK]
                block[:, 1] = graph.dists[lo:lo + _CHUNK]
                out.write(block.tobytes())
