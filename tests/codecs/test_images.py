import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mlkit.codecs import images
from mlkit.errors import InputError

img_shapes = st.tuples(st.integers(1, 12), st.integers(1, 12), st.sampled_from([0, 1, 3, 4])).map(
    lambda t: t[:2] if t[2] == 0 else t[:2] + (t[2],))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([("png", "uint8"), ("png", "uint16"), ("tif", "uint8"), ("tif", "uint16"),
                        ("tif", "float32"), ("bmp", "uint8")]).flatmap(
    lambda fd: st.tuples(st.just(fd[0]), hnp.arrays(np.dtype(fd[1]), img_shapes,
                                                    elements=st.floats(-1e6, 1e6, width=32)
                                                    if fd[1] == "float32" else None))))
def test_lossless_round_trip(case):
    fmt, img = case
    if fmt == "bmp" and img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"x.{fmt}"
        images.write(img, p)
        back = images.read(p)
    want = img[:, :, 0] if img.ndim == 3 and img.shape[2] == 1 else img
    assert back.dtype == img.dtype
    np.testing.assert_array_equal(back, want)


def test_rgb_order_is_kept(tmp_path):
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 0] = 255  # pure red
    images.write(img, tmp_path / "r.png")
    import cv2

    bgr = cv2.imread(str(tmp_path / "r.png"))
    assert bgr[0, 0].tolist() == [0, 0, 255]  # OpenCV stores it as BGR on its side
    assert images.read(tmp_path / "r.png")[0, 0].tolist() == [255, 0, 0]


def test_jpeg_is_close(tmp_path):
    rng = np.random.default_rng(0)
    img = (np.linspace(0, 255, 64 * 64 * 3).reshape(64, 64, 3) + rng.normal(0, 2, (64, 64, 3))).clip(0, 255)
    img = img.astype(np.uint8)
    images.write(img, tmp_path / "x.jpg", quality=95)
    back = images.read(tmp_path / "x.jpg")
    assert np.abs(back.astype(int) - img).mean() < 3


def test_corrupt_png(tmp_path):
    images.write(np.zeros((8, 8), np.uint8), tmp_path / "x.png")
    raw = (tmp_path / "x.png").read_bytes()
    (tmp_path / "c.png").write_bytes(raw[:20])
    with pytest.raises(InputError, match="c.png: not a readable image"):
        images.read(tmp_path / "c.png")


def test_dtype_not_storable(tmp_path):
    with pytest.raises(InputError, match="cannot store float32"):
        images.write(np.zeros((4, 4), np.float32), tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []
