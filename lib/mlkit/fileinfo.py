"""``mlkit info``: what a file holds (format, shapes, dtypes, value ranges, metadata) for every
format the codecs read."""

from __future__ import annotations

import io
import json

import numpy as np

from . import codecs
from .codecs import arrays, audio, graphs, images, masks, tables, video
from .codecs._io import PathLike, display_name, is_std, read_bytes, sniff
from .errors import InputError

__all__ = ["describe", "array_summary"]


def array_summary(a: np.ndarray) -> dict:
    """Shape, dtype, and min/max/mean over finite values (count of non-finite for floats)."""
    a = np.asarray(a)
    out = {"shape": list(a.shape), "dtype": str(a.dtype)}
    if a.size and a.dtype.kind in "biuf":
        finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
        out["min"] = finite.min().item() if finite.size else None
        out["max"] = finite.max().item() if finite.size else None
        out["mean"] = float(finite.astype(np.float64).mean()) if finite.size else None
        if a.dtype.kind == "f":
            out["nonfinite"] = int(a.size - finite.size)
    return out


def describe(src: PathLike, *, fmt: str | None = None, dtype: str | None = None,
             shape: tuple[int, ...] | None = None) -> dict:
    """A JSON-able description of ``src`` (a path, a frame folder or ``-``)."""
    name = display_name(src)
    if is_std(src):
        raw = read_bytes(src)
        fmt = fmt or sniff(raw[:65536])
        if fmt is None:
            raise InputError("stdin: cannot tell the format", hint="pass --fmt")
        if fmt.lower() in video.FORMATS:
            return {"path": name, "kind": "video", "format": fmt, **video.probe(raw, count=True).to_dict()}
        return {"path": name, **_describe_bytes(raw, fmt.lower(), dtype, shape)}
    if fmt:
        fmt = fmt.lower()
        kind = "video" if fmt in video.FORMATS else None
    else:
        kind, fmt = codecs.detect(src)
    if kind == "video":
        return {"path": name, "kind": "video", "format": fmt, **video.probe(src, count=True).to_dict()}
    return {"path": name, **_describe_bytes(read_bytes(src), fmt, dtype, shape)}


def _describe_bytes(raw: bytes, fmt: str, dtype, shape) -> dict:
    if fmt in ("npy", "bin"):
        a = arrays.read(raw, fmt=fmt, dtype=dtype, shape=shape)
        return {"kind": "array", "format": fmt, **array_summary(a)}
    if fmt in ("npz", "safetensors"):
        d = arrays.read(raw, fmt=fmt)
        out = {"kind": "array", "format": fmt, "arrays": {k: array_summary(v) for k, v in d.items()}}
        if fmt == "safetensors":
            meta = arrays.safetensors_metadata(raw)
            if meta:
                out["metadata"] = meta
        return out
    if fmt == "json" and codecs.json_kind(raw) == "graph":
        return _describe_graph(graphs.read(raw))
    if fmt in ("jsonl", "ndjson", "json", "csv", "tsv"):
        return _describe_table(raw, fmt)
    if fmt == "png" and len(raw) > 25 and raw[25] == 3:  # IHDR colour type 3: palette
        ids, pal = masks.read(raw)
        return {"kind": "mask", "format": "png", "shape": list(ids.shape),
                "ids": np.unique(ids).tolist(), "palette_size": None if pal is None else int(len(pal))}
    if fmt in images.FORMATS:
        return {"kind": "image", "format": fmt, **array_summary(images.read(raw))}
    if fmt in audio.FORMATS:
        return _describe_audio(raw, fmt)
    raise InputError(f"unknown format '{fmt}'", expected="a format the codecs read (see mlkit convert --help)")


def _describe_graph(g) -> dict:
    import networkx as nx

    return {"kind": "graph", "format": "json", "nodes": g.number_of_nodes(),
            "edges": g.number_of_edges(), "dag": nx.is_directed_acyclic_graph(g),
            "node_attrs": sorted({k for _, a in g.nodes(data=True) for k in a}),
            "edge_attrs": sorted({k for _, _, a in g.edges(data=True) for k in a}),
            "graph": json.loads(json.dumps(dict(g.graph), default=str))}


def _describe_table(raw: bytes, fmt: str) -> dict:
    recs = tables.read(raw, fmt=fmt)
    cols: dict[str, set] = {}
    for r in recs:
        for k, v in r.items():
            cols.setdefault(k, set()).add(type(v).__name__)
    return {"kind": "table", "format": fmt, "rows": len(recs),
            "columns": {k: "|".join(sorted(v)) for k, v in cols.items()}}


def _describe_audio(raw: bytes, fmt: str) -> dict:
    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(raw))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise InputError("not readable audio", got=str(exc)[:120]) from exc
    return {"kind": "audio", "format": fmt, "sample_rate": info.samplerate, "channels": info.channels,
            "frames": info.frames, "seconds": info.duration, "subtype": info.subtype}
