import tempfile
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from helpers import write_label_video_frames
from mlkit.codecs import images, video
from mlkit.errors import InputError


def test_ffv1_label_video_is_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (7, 30, 41), dtype=np.uint8)  # odd sizes, every id value
    n = video.write(frames, tmp_path / "labels.mkv", fps=12, codec="ffv1")
    assert n == 7
    info = video.probe(tmp_path / "labels.mkv")
    assert (info.width, info.height, info.frames, info.fps, info.codec) == (41, 30, 7, 12.0, "ffv1")
    back = video.read_frames(tmp_path / "labels.mkv", pix_fmt="gray")
    assert isinstance(back, types.GeneratorType)  # streamed, one frame at a time
    np.testing.assert_array_equal(np.stack(list(back)), frames)


def test_ffv1_rgb_and_16bit_exact(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (3, 16, 20, 3), dtype=np.uint8)
    video.write(rgb, tmp_path / "rgb.mkv", codec="ffv1")
    np.testing.assert_array_equal(np.stack(list(video.read_frames(tmp_path / "rgb.mkv"))), rgb)
    g16 = rng.integers(0, 65536, (3, 10, 12), dtype=np.uint16)
    video.write(g16, tmp_path / "d.mkv", codec="ffv1")
    np.testing.assert_array_equal(np.stack(list(video.read_frames(tmp_path / "d.mkv", pix_fmt="gray16le"))), g16)


@pytest.mark.parametrize("codec,container", [("x264", "mp4"), ("x265", "mkv")])
def test_lossy_codecs_are_close(tmp_path, codec, container):
    y, x = np.mgrid[0:48, 0:64]
    frames = np.stack([np.stack([(x * 4 + t * 3) % 256, (y * 5) % 256, ((x + y) * 2) % 256], -1)
                       for t in range(5)]).astype(np.uint8)
    video.write(frames, tmp_path / f"v.{container}", fps=25, codec=codec, crf=12)
    back = np.stack(list(video.read_frames(tmp_path / f"v.{container}")))
    assert back.shape == frames.shape
    mse = np.mean((back.astype(float) - frames) ** 2)
    psnr = 10 * np.log10(255**2 / mse)
    assert psnr > 30, psnr


def test_frame_folder_to_video_and_back(tmp_path):
    frames = write_label_video_frames(tmp_path / "in", n=5)
    assert video.probe(tmp_path / "in").frames == 5
    video.write(video.read_frames(tmp_path / "in", pix_fmt="gray"), tmp_path / "l.mkv", codec="ffv1")
    video.write(video.read_frames(tmp_path / "l.mkv", pix_fmt="gray"), tmp_path / "out")
    outs = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in outs] == [f"{i:05d}.png" for i in range(5)]
    np.testing.assert_array_equal(np.stack([images.read(p) for p in outs]), frames)


def test_start_and_max_frames(tmp_path):
    frames = np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((1, 8, 8), np.uint8) * 20
    video.write(frames, tmp_path / "c.mkv")
    got = list(video.read_frames(tmp_path / "c.mkv", pix_fmt="gray", start=3, max_frames=4))
    assert [int(f[0, 0]) for f in got] == [60, 80, 100, 120]


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(InputError, match="frame size changed"):
        with video.VideoWriter(tmp_path / "x.mkv") as w:
            w.write(np.zeros((8, 8), np.uint8))
            w.write(np.zeros((9, 8), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_not_a_video(tmp_path):
    (tmp_path / "x.mp4").write_bytes(b"\0" * 1000)
    with pytest.raises(InputError, match="x.mp4: no video stream"):
        video.probe(tmp_path / "x.mp4")


def test_odd_size_x264_refused(tmp_path):
    with pytest.raises(InputError, match="even frame sizes"):
        video.write([np.zeros((9, 8, 3), np.uint8)], tmp_path / "x.mp4", codec="x264")


@settings(max_examples=8, deadline=None)
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 4), st.integers(2, 20), st.integers(2, 20))))
def test_ffv1_round_trip_property(frames):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "v.mkv"
        video.write(frames, p, codec="ffv1")
        np.testing.assert_array_equal(np.stack(list(video.read_frames(p, pix_fmt="gray"))), frames)


def test_video_through_a_pipe(sh, tmp_path):
    frames = write_label_video_frames(tmp_path / "f", n=4)
    r = sh("mlkit convert f - --to mkv --pix-fmt gray | mlkit convert - back && "
           "mlkit convert f - --to mp4 --codec x264 | mlkit info -", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = np.stack([images.read(p) for p in sorted((tmp_path / "back").iterdir())])
    np.testing.assert_array_equal(got, frames)
    assert '"codec": "h264"' in r.stdout.decode() and '"frames": 4' in r.stdout.decode()
