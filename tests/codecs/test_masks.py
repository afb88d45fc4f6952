import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from mlkit.codecs import masks
from mlkit.errors import InputError


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 20), st.integers(1, 20))),
       st.one_of(st.none(), st.integers(1, 256).flatmap(
           lambda k: hnp.arrays(np.uint8, (k, 3)))))
def test_ids_and_palette_round_trip(ids, palette):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.png"
        masks.write(ids, p, palette=palette)
        back, pal = masks.read(p)
        np.testing.assert_array_equal(back, ids)
        want = masks.davis_palette() if palette is None else palette
        np.testing.assert_array_equal(pal[: len(want)], want)
        # Pillow, read independently, sees the same indices
        np.testing.assert_array_equal(np.array(Image.open(p)), ids)


def test_all_255_ids_with_custom_palette(tmp_path):
    ids = np.arange(256, dtype=np.uint8).reshape(16, 16)
    pal = np.random.default_rng(1).integers(0, 256, (256, 3), dtype=np.uint8)
    masks.write(ids, tmp_path / "m.png", palette=pal)
    back, pal2 = masks.read(tmp_path / "m.png")
    np.testing.assert_array_equal(back, ids)
    np.testing.assert_array_equal(pal2, pal)


def test_davis_palette_known_colours():
    pal = masks.davis_palette()
    assert pal[0].tolist() == [0, 0, 0]
    assert pal[1].tolist() == [128, 0, 0]
    assert pal[2].tolist() == [0, 128, 0]
    assert pal[3].tolist() == [128, 128, 0]
    assert pal[255].tolist() == [224, 224, 192]


def test_grayscale_png_reads_as_ids(tmp_path):
    Image.fromarray(np.array([[0, 3], [7, 1]], np.uint8), "L").save(tmp_path / "g.png")
    ids, pal = masks.read(tmp_path / "g.png")
    assert ids.tolist() == [[0, 3], [7, 1]] and pal is None


def test_rgb_png_refused(tmp_path):
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "c.png")
    with pytest.raises(InputError, match="not an index mask"):
        masks.read(tmp_path / "c.png")


def test_out_of_range_ids(tmp_path):
    with pytest.raises(InputError, match="out of range"):
        masks.write(np.array([[300]]), tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()
