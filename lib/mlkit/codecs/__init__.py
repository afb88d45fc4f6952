"""Codecs: one module per kind of data, each with ``read(src)`` / ``write(obj, dst)`` taking a
path or ``-`` (stdin/stdout), the format from the extension or an explicit ``fmt=``, transparent
``.gz``, and atomic writes.

==========  =====================================================  ==========================
kind        formats                                                module
==========  =====================================================  ==========================
array       npy npz safetensors bin csv tsv                        :mod:`.arrays`
table       jsonl json csv tsv (+ rendered ``table``)              :mod:`.tables`
image       png jpg tif bmp                                        :mod:`.images`
mask        indexed-palette png                                    :mod:`.masks`
video       mp4 mkv avi mov webm nut y4m, frame folders            :mod:`.video`
audio       wav flac ogg                                           :mod:`.audio`
graph       node-link json                                         :mod:`.graphs`
==========  =====================================================  ==========================

:func:`detect` tells the kind of a path (extension first, then content).
"""

from __future__ import annotations

import json

from ..errors import InputError
from . import arrays, audio, graphs, images, masks, tables, video
from ._io import PathLike, atomic_output, is_std, open_input, peek_file, read_bytes, sniff, suffix_of

__all__ = ["arrays", "tables", "images", "masks", "video", "audio", "graphs", "detect", "json_kind",
           "kinds_for", "KINDS", "atomic_output", "open_input", "read_bytes", "is_std"]

KINDS: dict[str, tuple[str, ...]] = {
    "array": arrays.FORMATS,
    "table": ("jsonl", "ndjson", "json", "csv", "tsv"),
    "image": images.FORMATS,
    "mask": ("png",),
    "video": video.FORMATS,
    "audio": audio.FORMATS,
    "graph": ("json",),
}


def kinds_for(path: PathLike) -> list[str]:
    """Kinds an extension may hold, most likely first (``.csv`` -> table, array)."""
    if video.is_frame_folder(path):
        return ["video"]
    ext = suffix_of(path)
    if not ext and not is_std(path):
        return ["video"]  # an extension-less output path is a frame folder
    order = ["table", "array", "image", "mask", "video", "audio", "graph"]
    return [k for k in order if ext in KINDS[k]]


def detect(src: PathLike, head: bytes | None = None) -> tuple[str, str]:
    """``(kind, fmt)`` of an input: by extension, refined by content where the extension is
    shared (png: mask if palette-indexed; json: graph if node-link), by content alone for stdin."""
    if video.is_frame_folder(src):
        return "video", "frames"
    if head is None:
        head = b"" if is_std(src) else peek_file(src, 64)
    ext = "" if is_std(src) else suffix_of(src)
    if not ext:
        ext = sniff(head) or ""
        if ext == "gz":
            ext = ""
    if not ext:
        raise InputError(f"{src}: cannot tell the format", hint="give the file a known extension")
    if ext == "png" and len(head) >= 26 and head[25] == 3:  # IHDR colour type 3: indexed
        return "mask", "png"
    kinds = kinds_for("x." + ext)
    if not kinds:
        raise InputError(f"{src}: unknown format '.{ext}'",
                         expected="one of " + ", ".join(sorted({f for v in KINDS.values() for f in v})))
    return kinds[0], ext


def json_kind(raw: bytes) -> str:
    """'graph' for node-link JSON, else 'table'."""
    try:
        obj = json.loads(raw)
    except ValueError:
        return "table"
    return "graph" if graphs.is_node_link(obj) else "table"
