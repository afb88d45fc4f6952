"""Images through OpenCV: PNG, JPEG, TIFF (8/16-bit, and 32-bit float TIFF for maps), BMP.

Pixel order is RGB(A) in and out (OpenCV's BGR is converted here, once), shapes are
``(H, W)`` for one channel and ``(H, W, C)`` otherwise, dtypes are kept (uint8, uint16, float32).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._io import PathLike, atomic_output, display_name, is_std, read_bytes, suffix_of

__all__ = ["FORMATS", "read", "write", "decode", "encode"]

FORMATS = ("png", "jpg", "jpeg", "tif", "tiff", "bmp")
_DTYPES = {
    "png": ("uint8", "uint16"),
    "jpg": ("uint8",),
    "jpeg": ("uint8",),
    "bmp": ("uint8",),
    "tif": ("uint8", "uint16", "float32"),
    "tiff": ("uint8", "uint16", "float32"),
}


def _fmt(path: PathLike, fmt: str | None) -> str:
    f = (fmt or ("png" if is_std(path) else suffix_of(path))).lower().lstrip(".")
    if f not in FORMATS:
        raise InputError(f"{path}: unknown image format '.{f}'", expected=", ".join(FORMATS))
    return f


def decode(raw: bytes, name: str = "image") -> np.ndarray:
    import cv2

    buf = np.frombuffer(raw, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if img is None:
        raise InputError(f"{name}: not a readable image (corrupt or truncated)",
                         expected="PNG, JPEG, TIFF or BMP data")
    return _swap(img)


def read(src: PathLike) -> np.ndarray:
    """Decode an image file (or stdin) into an RGB(A) array with its own dtype."""
    return decode(read_bytes(src), display_name(src))


def _swap(img: np.ndarray) -> np.ndarray:
    import cv2

    if img.ndim == 3 and img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return img


def encode(img: np.ndarray, fmt: str = "png", *, quality: int = 95) -> bytes:
    import cv2

    img = np.asarray(img)
    f = fmt.lower().lstrip(".")
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise InputError("not an image array", expected="(H, W), (H, W, 1|3|4)", got=str(img.shape))
    if img.dtype == np.float64 and f in ("tif", "tiff"):
        img = img.astype(np.float32)
    if img.dtype == np.bool_:
        img = img.astype(np.uint8) * 255
    if img.dtype.name not in _DTYPES[f]:
        raise InputError(f".{f} cannot store {img.dtype}", expected="/".join(_DTYPES[f]),
                         hint="use .tif for 16-bit or float maps")
    if img.size == 0:
        raise InputError("empty image", got=str(img.shape))
    bgr = img
    if img.ndim == 3 and img.shape[2] == 3:
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        bgr = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if f in ("jpg", "jpeg") else []
    ok, buf = cv2.imencode("." + f, np.ascontiguousarray(bgr), params)
    if not ok:
        raise InputError(f"cannot encode as .{f}", got=f"{img.dtype} {img.shape}")
    return buf.tobytes()


def write(img: np.ndarray, dst: PathLike, *, fmt: str | None = None, quality: int = 95) -> None:
    """Encode and write atomically; ``quality`` applies to JPEG."""
    data = encode(img, _fmt(dst, fmt), quality=quality)
    with atomic_output(dst) as fh:
        fh.write(data)
