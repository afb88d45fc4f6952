"""Object masks as indexed-palette PNGs (Pillow), the DAVIS / YouTube-VOS layout: pixel value =
object id (0 = background, up to 255), colours in the PNG palette. Ids and the palette survive a
round trip exactly.
"""

from __future__ import annotations

import io

import numpy as np

from ..errors import InputError
from ._io import PathLike, atomic_output, display_name, read_bytes

__all__ = ["read", "write", "davis_palette"]


def davis_palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC / DAVIS colour map: id bits spread over the high bits of R, G, B.
    Returns ``(n, 3) uint8``; id 1 is (128, 0, 0), id 2 (0, 128, 0), id 3 (128, 128, 0)."""
    pal = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


def read(src: PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Returns ``(ids (H, W) uint8, palette (K, 3) uint8 or None)``. Grayscale PNGs are read as
    ids with no palette; RGB images are refused (their colours are not ids)."""
    from PIL import Image, UnidentifiedImageError

    name = display_name(src)
    raw = read_bytes(src)
    try:
        img = Image.open(io.BytesIO(raw))
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name}: not a readable mask image (corrupt or truncated)",
                         expected="an indexed or grayscale PNG") from exc
    if img.mode == "P":
        ids = np.array(img, dtype=np.uint8)
        pal = img.getpalette() or []
        palette = np.array(pal, dtype=np.uint8).reshape(-1, 3)
        return ids, palette
    if img.mode in ("L", "1"):
        return np.array(img.convert("L"), dtype=np.uint8), None
    raise InputError(f"{name}: not an index mask", expected="palette (P) or grayscale (L) PNG",
                     got=f"mode {img.mode}", hint="convert colours to ids first")


def write(ids: np.ndarray, dst: PathLike, *, palette: np.ndarray | None = None) -> None:
    """Write ``ids`` (H, W) with values 0..255 as an indexed PNG; ``palette`` (K<=256, 3) uint8,
    default the DAVIS colour map."""
    from PIL import Image

    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise InputError("mask must be 2-D", expected="(H, W)", got=str(ids.shape))
    if ids.size and (ids.min() < 0 or ids.max() > 255):
        raise InputError("mask ids out of range", expected="0..255",
                         got=f"{ids.min()}..{ids.max()}")
    if ids.size == 0:
        raise InputError("empty mask", got=str(ids.shape))
    pal = davis_palette() if palette is None else np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    if len(pal) > 256 or len(pal) == 0:
        raise InputError("bad palette", expected="1..256 colours", got=str(len(pal)))
    top = int(ids.max()) + 1
    if len(pal) < top:  # a PNG palette must cover every index used: pad with DAVIS colours
        pal = np.concatenate([pal, davis_palette()[len(pal):top]])
    h, w = ids.shape
    img = Image.frombytes("P", (w, h), np.ascontiguousarray(ids, dtype=np.uint8).tobytes())
    img.putpalette(pal.reshape(-1).tolist(), rawmode="RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", bits=8)
    with atomic_output(dst) as fh:
        fh.write(buf.getvalue())
