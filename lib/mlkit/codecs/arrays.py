"""Arrays: ``.npy``, ``.npz``, ``.safetensors``, raw ``.bin`` (dtype + shape given) and numeric
``.csv``/``.tsv``; ``-`` streams ``.npy``; any of them may be gzip-compressed (``x.npy.gz``).

``read`` returns one ``np.ndarray`` for single-array formats and a ``dict[str, np.ndarray]`` for
containers (``.npz``, ``.safetensors``) unless ``key=`` picks one entry.
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np

from ..errors import InputError
from ._io import PathLike, atomic_output, display_name, is_std, open_input, read_bytes, suffix_of

__all__ = ["FORMATS", "read", "write", "SAFETENSORS_DTYPES"]

FORMATS = ("npy", "npz", "safetensors", "bin", "csv", "tsv")

# numpy dtype name -> safetensors dtype tag
SAFETENSORS_DTYPES = {
    "bool": "BOOL", "uint8": "U8", "int8": "I8", "int16": "I16", "uint16": "U16",
    "float16": "F16", "int32": "I32", "uint32": "U32", "float32": "F32",
    "int64": "I64", "uint64": "U64", "float64": "F64",
}
_ST_TO_NP = {v: k for k, v in SAFETENSORS_DTYPES.items()}


def _fmt(src: PathLike, fmt: str | None, default: str = "npy") -> str:
    f = (fmt or ("" if is_std(src) else suffix_of(src)) or default).lower().lstrip(".")
    if f not in FORMATS:
        raise InputError(f"{src}: unknown array format '.{f}'", expected=", ".join(FORMATS),
                         hint="pass an explicit format")
    return f



def read(src: PathLike, *, fmt: str | None = None, dtype: str | np.dtype | None = None,
         shape: tuple[int, ...] | None = None, key: str | None = None, mmap: bool = False):
    """Read an array (or a dict of arrays). ``dtype``/``shape`` are required for ``.bin``
    (one dimension may be -1); ``mmap`` memory-maps plain ``.npy``/``.bin`` files."""
    f = _fmt(src, fmt)
    name = display_name(src)
    try:
        if f == "npy":
            out = _read_npy(src, mmap)
        elif f == "bin":
            out = _read_bin(src, dtype, shape, mmap)
        elif f in ("csv", "tsv"):
            out = _read_text(src, "," if f == "csv" else "\t", dtype)
        elif f == "npz":
            out = _read_npz(read_bytes(src))
        else:
            out = _read_safetensors(read_bytes(src))
    except InputError as exc:
        if exc.what.startswith(name):
            raise
        raise InputError(f"{name}: {exc.what}", expected=exc.expected, got=exc.got,
                         hint=exc.hint) from exc
    if isinstance(out, dict) and key is not None:
        if key not in out:
            raise InputError(f"{name}: no array '{key}'", expected=", ".join(sorted(out)) or "keys",
                             got=key)
        return out[key]
    return out


def _read_npy(src: PathLike, mmap: bool) -> np.ndarray:
    try:
        if mmap and _is_path(src) and not str(src).endswith(".gz"):
            return np.load(src, mmap_mode="r", allow_pickle=False)
        with open_input(src) as fh:
            return np.lib.format.read_array(fh, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError("not a valid .npy (truncated or corrupt)", got=_short(exc)) from exc


def _read_bin(src, dtype, shape, mmap: bool) -> np.ndarray:
    if dtype is None:
        raise InputError("raw .bin needs a dtype", hint="pass --dtype (e.g. float32)")
    dt = np.dtype(dtype)
    if mmap and _is_path(src) and not str(src).endswith(".gz"):
        nbytes = os.path.getsize(src)
        flat = None
    else:
        raw = read_bytes(src, allow_empty=not is_std(src))  # an empty array is a legal .bin
        nbytes = len(raw)
        flat = raw
    if nbytes % dt.itemsize:
        raise InputError("wrong .bin size", expected=f"a multiple of {dt.itemsize} bytes ({dt})",
                         got=f"{nbytes} bytes")
    count = nbytes // dt.itemsize
    shp = _resolve_shape(shape, count, dt)
    if flat is None:
        return np.memmap(src, dtype=dt, mode="r", shape=shp)
    return np.frombuffer(flat, dtype=dt).reshape(shp).copy()


def _resolve_shape(shape, count: int, dt: np.dtype) -> tuple[int, ...]:
    if shape is None:
        return (count,)
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise InputError("bad shape", expected="at most one -1", got=str(shape))
    known = int(np.prod([s for s in shape if s != -1], dtype=np.int64)) if shape else 1
    if -1 in shape:
        if known == 0 or count % known:
            raise InputError("wrong .bin size", expected=f"a multiple of {known * dt.itemsize} bytes "
                             f"for shape {shape}", got=f"{count * dt.itemsize} bytes")
        shape = tuple(count // known if s == -1 else s for s in shape)
    elif known != count:
        raise InputError("wrong .bin size", expected=f"{known * dt.itemsize} bytes for shape {shape} "
                         f"{dt}", got=f"{count * dt.itemsize} bytes")
    return shape


def _read_text(src, delim: str, dtype) -> np.ndarray:
    text = read_bytes(src).decode("utf-8", errors="strict")
    rows = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not rows:
        raise InputError("no numeric rows", expected="at least one row of numbers")
    try:
        arr = np.loadtxt(io.StringIO("\n".join(rows)), delimiter=delim, ndmin=2,
                         dtype=np.dtype(dtype) if dtype else np.float64)
    except ValueError as exc:
        raise InputError("not a numeric table", got=_short(exc),
                         hint="a header row is not allowed in an array CSV") from exc
    return arr


def _read_npz(raw: bytes) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise InputError("not a valid .npz", got=_short(exc)) from exc


def _read_safetensors(raw: bytes) -> dict[str, np.ndarray]:
    # Parsed here rather than through safetensors.numpy so every dtype tag maps to numpy and
    # corrupt headers give a clear message.
    if len(raw) < 8:
        raise InputError("not a valid .safetensors", expected="an 8-byte header length",
                         got=f"{len(raw)} bytes")
    n = int.from_bytes(raw[:8], "little")
    if n > len(raw) - 8:
        raise InputError("not a valid .safetensors (truncated header)", got=f"header of {n} bytes")
    try:
        header = json.loads(raw[8:8 + n])
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError("not a valid .safetensors (header is not JSON)") from exc
    body = memoryview(raw)[8 + n:]
    out = {}
    for k, info in header.items():
        if k == "__metadata__":
            continue
        tag = info.get("dtype")
        if tag not in _ST_TO_NP:
            raise InputError(f"tensor '{k}': unsupported dtype", expected="/".join(_ST_TO_NP), got=tag)
        dt = np.dtype(_ST_TO_NP[tag]).newbyteorder("<")
        a, b = info["data_offsets"]
        shape = tuple(info["shape"])
        if b > len(body) or (b - a) != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
            raise InputError(f"tensor '{k}': truncated or inconsistent data",
                             expected=f"{int(np.prod(shape, dtype=np.int64)) * dt.itemsize} bytes",
                             got=f"{max(0, min(b, len(body)) - a)} bytes")
        out[k] = np.frombuffer(body[a:b], dtype=dt).reshape(shape).astype(dt.newbyteorder("="))
    return out


def safetensors_metadata(src: PathLike) -> dict[str, str]:
    raw = read_bytes(src)
    n = int.from_bytes(raw[:8], "little")
    try:
        return dict(json.loads(raw[8:8 + n]).get("__metadata__") or {})
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{display_name(src)}: not a valid .safetensors") from exc


def write(obj, dst: PathLike, *, fmt: str | None = None, metadata: dict[str, str] | None = None) -> None:
    """Write an array (or a dict of arrays for ``.npz``/``.safetensors``) atomically."""
    f = _fmt(dst, fmt)
    if isinstance(obj, dict):
        arrays = {str(k): np.asarray(v) for k, v in obj.items()}
        if f not in ("npz", "safetensors"):
            if len(arrays) != 1:
                raise InputError(f"{display_name(dst)}: .{f} holds one array", got=f"{len(arrays)} arrays",
                                 hint="write .npz or .safetensors, or pick one with --key")
            obj = next(iter(arrays.values()))
    else:
        obj = np.asarray(obj)
        arrays = {"data": obj}
    with atomic_output(dst) as fh:
        if f == "npy":
            if obj.dtype.hasobject:
                raise InputError("object arrays cannot be written", got=str(obj.dtype))
            np.lib.format.write_array(fh, np.asarray(obj), allow_pickle=False)
        elif f == "bin":
            fh.write(np.ascontiguousarray(obj).tobytes())
        elif f in ("csv", "tsv"):
            fh.write(_text_bytes(obj, "," if f == "csv" else "\t"))
        elif f == "npz":
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            fh.write(buf.getvalue())
        else:
            fh.write(_safetensors_bytes(arrays, metadata))


def _text_bytes(arr: np.ndarray, delim: str) -> bytes:
    if arr.ndim > 2:
        raise InputError("CSV/TSV holds 1-D or 2-D arrays", got=f"{arr.ndim}-D {arr.shape}",
                         hint="write .npy for higher ranks")
    arr2 = np.atleast_2d(arr) if arr.ndim < 2 else arr
    if arr.ndim == 1:
        arr2 = arr.reshape(-1, 1)
    if arr2.dtype.kind in "iub":
        fmt = "%d"
    elif arr2.dtype.kind == "f":
        fmt = "%.17g"  # round-trips float64 exactly
    else:
        raise InputError("CSV/TSV holds numbers", got=str(arr2.dtype))
    buf = io.StringIO()
    np.savetxt(buf, arr2.astype(np.int64) if arr2.dtype.kind == "b" else arr2, fmt=fmt, delimiter=delim)
    return buf.getvalue().encode()


def _safetensors_bytes(arrays: dict[str, np.ndarray], metadata: dict[str, str] | None) -> bytes:
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks, offset = [], 0
    for k in sorted(arrays):
        a = np.asarray(arrays[k])  # (ascontiguousarray would turn 0-d into 1-d)
        name = a.dtype.name
        if name not in SAFETENSORS_DTYPES:
            raise InputError(f"array '{k}': dtype not storable in safetensors",
                             expected="/".join(SAFETENSORS_DTYPES), got=name)
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
        header[k] = {"dtype": SAFETENSORS_DTYPES[name], "shape": list(a.shape),
                     "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)  # the spec pads the header to 8 bytes
    return len(hb).to_bytes(8, "little") + hb + b"".join(chunks)


def _is_path(src) -> bool:
    return isinstance(src, (str, os.PathLike)) and not is_std(src)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
