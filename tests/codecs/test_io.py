import gzip
import os

import networkx as nx
import numpy as np
import pytest

from mlkit.codecs import _io, arrays, audio, detect, graphs, images, masks, tables, video
from mlkit.errors import InputError, MissingInputError, OutputError


def test_sniff_real_files(tmp_path):
    arrays.write(np.zeros(3), tmp_path / "a.npy")
    arrays.write({"a": np.zeros(3)}, tmp_path / "a.npz")
    arrays.write({"a": np.zeros(3)}, tmp_path / "a.safetensors")
    images.write(np.zeros((4, 4, 3), np.uint8), tmp_path / "i.png")
    images.write(np.zeros((4, 4, 3), np.uint8), tmp_path / "i.jpg")
    images.write(np.zeros((4, 4), np.float32), tmp_path / "i.tif")
    audio.write(np.zeros(10, np.int16), 8000, tmp_path / "s.wav")
    audio.write(np.zeros(10, np.int16), 8000, tmp_path / "s.flac")
    video.write(np.zeros((2, 8, 8), np.uint8), tmp_path / "v.mkv")
    video.write(np.zeros((2, 8, 8, 3), np.uint8), tmp_path / "v.mp4", codec="x264")
    tables.write([{"a": "x" * 200}, {"a": 2}], tmp_path / "t.jsonl")
    tables.write([{"a": 1}], tmp_path / "t.json")
    for name, fmt in [("a.npy", "npy"), ("a.npz", "npz"), ("a.safetensors", "safetensors"), ("i.png", "png"),
                      ("i.jpg", "jpg"), ("i.tif", "tif"), ("s.wav", "wav"), ("s.flac", "flac"),
                      ("v.mkv", "mkv"), ("v.mp4", "mp4"), ("t.jsonl", "jsonl"), ("t.json", "json")]:
        assert _io.sniff((tmp_path / name).read_bytes()[:4096]) == fmt, name


def test_detect_refines_shared_extensions(tmp_path):
    masks.write(np.zeros((2, 2), np.uint8), tmp_path / "m.png")
    images.write(np.zeros((2, 2, 3), np.uint8), tmp_path / "i.png")
    assert detect(tmp_path / "m.png") == ("mask", "png")
    assert detect(tmp_path / "i.png") == ("image", "png")
    graphs.write(nx.DiGraph([(1, 2)]), tmp_path / "g.json")
    from mlkit.codecs import json_kind

    assert json_kind((tmp_path / "g.json").read_bytes()) == "graph"


def test_gzip_by_content_not_name(tmp_path):
    raw = (tmp_path / "x.npy")
    arrays.write(np.arange(4), raw)
    (tmp_path / "y.npy").write_bytes(gzip.compress(raw.read_bytes()))
    np.testing.assert_array_equal(arrays.read(tmp_path / "y.npy"), np.arange(4))


def test_atomic_output_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "o.txt"
    _io.write_bytes(b"good", p)
    with pytest.raises(RuntimeError):
        with _io.atomic_output(p) as fh:
            fh.write(b"half")
            raise RuntimeError
    assert p.read_bytes() == b"good"
    assert os.listdir(tmp_path) == ["o.txt"]


def test_atomic_output_mode_follows_umask(tmp_path):
    old = os.umask(0o027)
    try:
        _io.write_bytes(b"x", tmp_path / "o.txt")
    finally:
        os.umask(old)
    assert (tmp_path / "o.txt").stat().st_mode & 0o777 == 0o640


def test_output_errors(tmp_path):
    with pytest.raises(OutputError, match="no folder"):
        _io.write_bytes(b"x", tmp_path / "missing" / "o.txt")
    with pytest.raises(OutputError, match="is a folder"):
        _io.write_bytes(b"x", tmp_path)


def test_input_errors(tmp_path):
    with pytest.raises(MissingInputError, match="no such file"):
        _io.read_bytes(tmp_path / "nope")
    with pytest.raises(InputError, match="is a folder"):
        _io.read_bytes(tmp_path)
    (tmp_path / "e").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        _io.read_bytes(tmp_path / "e")
    (tmp_path / "z.gz").write_bytes(b"\x1f\x8bjunk")
    with pytest.raises(InputError, match="corrupt gzip"):
        _io.read_bytes(tmp_path / "z.gz")


def test_atomic_dir_replaces_whole_folder(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "old.png").write_bytes(b"x")
    with _io.atomic_dir(tmp_path / "d") as tmp:
        (tmp / "new.png").write_bytes(b"y")
    assert os.listdir(tmp_path / "d") == ["new.png"]
    assert os.listdir(tmp_path) == ["d"]
