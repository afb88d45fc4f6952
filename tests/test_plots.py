import numpy as np
from PIL import Image

from mlkit import plots


def test_figure_writes_png_atomically(tmp_path):
    with plots.figure(dst=tmp_path / "p.png", width=4, height=3, dpi=50) as (fig, ax):
        ax.plot(np.arange(10), np.arange(10) ** 2, label="y")
        ax.legend()
    img = Image.open(tmp_path / "p.png")
    assert img.format == "PNG" and img.size == (200, 150)
    assert np.asarray(img.convert("L")).std() > 0  # something was drawn
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]


def test_failed_plot_leaves_nothing(tmp_path):
    try:
        with plots.figure(dst=tmp_path / "p.png") as (fig, ax):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []
