"""Plots for ``--plot FILE.png``: matplotlib on the Agg backend (no display needed), saved
atomically."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

from .codecs._io import PathLike, write_bytes

__all__ = ["figure", "save"]


@contextlib.contextmanager
def figure(*, width: float = 6.4, height: float = 4.0, nrows: int = 1, ncols: int = 1,
           dst: PathLike | None = None, dpi: int = 120) -> Iterator[tuple]:
    """``with figure(dst="out.png") as (fig, ax): ax.plot(...)`` -> the PNG is written on exit."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=nrows * ncols == 1)
    try:
        yield fig, ax
        if dst is not None:
            save(fig, dst, dpi=dpi)
    finally:
        plt.close(fig)


def save(fig, dst: PathLike, *, dpi: int = 120) -> None:
    """Render ``fig`` to PNG (or PDF/SVG by extension) and write it atomically."""
    fmt = str(dst).rsplit(".", 1)[-1].lower() if "." in str(dst) else "png"
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format=fmt, dpi=dpi)
    write_bytes(buf.getvalue(), dst)
