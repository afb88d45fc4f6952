"""``mlkit convert``: between the formats the codecs know, within a kind (``.bin`` -> ``.npy``,
JSONL -> CSV, frame folder -> FFV1 video, WAV -> FLAC) and across the array/image/mask border
(``.png`` <-> ``.npy``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import codecs
from .codecs import arrays, audio, graphs, images, masks, tables, video
from .codecs._io import PathLike, display_name, is_std, read_bytes, sniff, suffix_of
from .errors import InputError

__all__ = ["ConvertOptions", "convert"]


@dataclass
class ConvertOptions:
    src_fmt: str | None = None
    dst_fmt: str | None = None
    dtype: str | None = None          # .bin input dtype, or output dtype cast for arrays
    shape: tuple[int, ...] | None = None
    key: str | None = None            # pick one array of an .npz/.safetensors
    fps: float | None = None
    codec: str = "ffv1"
    crf: int | None = None
    pix_fmt: str | None = None        # rgb24 | gray | gray16le
    sr: int | None = None             # resample audio
    mono: bool = False


def _src_kinds(src: PathLike, raw: bytes | None, fmt: str | None) -> tuple[list[str], str]:
    if fmt:
        f = fmt.lower()
    elif video.is_frame_folder(src):
        return ["video"], "frames"
    else:
        f = ("" if is_std(src) else suffix_of(src)) or sniff(raw[:65536]) or ""
    kinds = codecs.kinds_for("x." + f) if f else []
    if f == "png" and raw is not None and len(raw) > 25 and raw[25] == 3:
        kinds = ["mask"] + [k for k in kinds if k != "mask"]
    if f == "json" and raw is not None and codecs.json_kind(raw) == "graph":
        kinds = ["graph"]
    if not kinds:
        raise InputError(f"{display_name(src)}: cannot tell the input format", got=f or "no extension",
                         hint="pass --from")
    return kinds, f


def convert(src: PathLike, dst: PathLike, opts: ConvertOptions | None = None) -> dict:
    """Convert ``src`` to ``dst``; returns a summary record."""
    o = opts or ConvertOptions()
    raw = None
    src_is_video = not is_std(src) and (video.is_frame_folder(src) or suffix_of(src) in video.FORMATS)
    if not src_is_video:
        raw = read_bytes(src)
    kinds, f_in = _src_kinds(src, raw, o.src_fmt)
    f_out = (o.dst_fmt or ("" if is_std(dst) else suffix_of(dst))).lower()
    out_kinds = codecs.kinds_for("x." + f_out) if f_out else (["video"] if not is_std(dst) else [])
    if is_std(dst) and not f_out:
        out_kinds = kinds[:1]  # stdout keeps the kind; format defaults per codec
    common = [k for k in kinds if k in out_kinds]
    rec = {"src": display_name(src), "dst": display_name(dst)}
    if common:
        kind = common[0]
        return {**rec, "kind": kind, **_same_kind(kind, src, raw, f_in, dst, f_out or None, o)}
    if set(kinds) & {"image", "mask"} and "array" in out_kinds:
        img = masks.read(raw)[0] if kinds[0] == "mask" else images.read(raw)
        arrays.write(img, dst, fmt=f_out or None)
        return {**rec, "kind": "image->array", "shape": list(img.shape), "dtype": str(img.dtype)}
    if "array" in kinds and set(out_kinds) & {"image", "mask"}:
        a = arrays.read(raw, fmt=f_in, dtype=o.dtype, shape=o.shape, key=o.key)
        if isinstance(a, dict):
            raise InputError(f"{display_name(src)}: holds several arrays", hint="pick one with --key")
        images.write(a, dst, fmt=f_out or None)
        return {**rec, "kind": "array->image", "shape": list(a.shape), "dtype": str(a.dtype)}
    raise InputError("cannot convert between these kinds", expected=f"an output for {kinds[0]} data",
                     got=f"{'/'.join(kinds)} -> {'/'.join(out_kinds) or 'unknown .' + f_out}")


def _same_kind(kind: str, src, raw, f_in: str, dst, f_out: str | None, o: ConvertOptions) -> dict:
    if kind == "array":
        a = arrays.read(raw, fmt=f_in, dtype=o.dtype if f_in == "bin" else None, shape=o.shape, key=o.key)
        if o.dtype and f_in != "bin":
            a = {k: v.astype(o.dtype) for k, v in a.items()} if isinstance(a, dict) else a.astype(o.dtype)
        arrays.write(a, dst, fmt=f_out)
        if isinstance(a, dict):
            return {"arrays": len(a)}
        return {"shape": list(a.shape), "dtype": str(a.dtype)}
    if kind == "table":
        n = tables.write(tables.iter_read(raw, fmt=f_in), dst, fmt=f_out)
        return {"rows": n}
    if kind == "image":
        img = images.read(raw)
        images.write(img, dst, fmt=f_out)
        return {"shape": list(img.shape), "dtype": str(img.dtype)}
    if kind == "mask":
        ids, pal = masks.read(raw)
        masks.write(ids, dst, palette=pal)
        return {"shape": list(ids.shape), "ids": int(len(np.unique(ids)))}
    if kind == "graph":
        g = graphs.read(raw)
        graphs.write(g, dst)
        return {"nodes": g.number_of_nodes(), "edges": g.number_of_edges()}
    if kind == "audio":
        return _audio(raw, dst, f_out, o)
    return _video(raw if raw is not None else src, dst, f_out, o)


def _audio(raw: bytes, dst, f_out: str | None, o: ConvertOptions) -> dict:
    import io

    import soundfile as sf

    info = sf.info(io.BytesIO(raw))
    # keep integer PCM exact: read the stored width, write the same subtype where allowed
    exact = {"PCM_16": "int16", "PCM_S8": "int16", "PCM_U8": "int16", "PCM_24": "int32", "PCM_32": "int32"}
    dtype = "float32" if (o.sr or o.mono or info.subtype not in exact) else exact[info.subtype]
    data, sr = audio.read(raw, dtype=dtype, mono=o.mono, sr=o.sr)
    fmt = f_out or "wav"
    subtype = info.subtype if (dtype != "float32" and sf.check_format(fmt.upper(), info.subtype)) else None
    audio.write(data, sr, dst, fmt=fmt, subtype=subtype)
    return {"sample_rate": sr, "samples": int(data.shape[0]), "channels": 1 if data.ndim == 1 else data.shape[1]}


def _video(src, dst, f_out: str | None, o: ConvertOptions) -> dict:
    info = video.probe(src, count=False)
    pix = o.pix_fmt or ("gray16le" if info.pix_fmt.startswith("gray16") else
                        "gray" if info.pix_fmt.startswith("gray") else "rgb24")
    fps = o.fps or info.fps or 25.0
    n = video.write(video.read_frames(src, pix_fmt=pix), dst, fps=fps, codec=o.codec, crf=o.crf, fmt=f_out)
    return {"frames": n, "width": info.width, "height": info.height, "fps": fps, "codec": o.codec}
