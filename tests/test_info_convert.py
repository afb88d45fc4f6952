"""`mlkit info` and `mlkit convert` across every kind the codecs know."""

import json

import networkx as nx
import numpy as np
import pytest

from helpers import write_label_video_frames
from mlkit.codecs import arrays, audio, graphs, images, masks, tables, video
from mlkit.convert import ConvertOptions, convert
from mlkit.fileinfo import describe


def test_info_arrays(tmp_path):
    a = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    a[1, 1] = np.nan
    arrays.write(a, tmp_path / "a.npy")
    d = describe(tmp_path / "a.npy")
    finite = a[np.isfinite(a)]
    assert d["kind"] == "array" and d["shape"] == [5, 3] and d["dtype"] == "float32"
    assert d["min"] == float(finite.min()) and d["max"] == float(finite.max()) and d["nonfinite"] == 1
    arrays.write({"w": np.ones(2, np.int8)}, tmp_path / "w.safetensors", metadata={"who": "me"})
    d = describe(tmp_path / "w.safetensors")
    assert d["arrays"]["w"]["dtype"] == "int8" and d["metadata"] == {"who": "me"}
    (tmp_path / "f.bin").write_bytes(np.arange(6, dtype=np.uint16).tobytes())
    assert describe(tmp_path / "f.bin", dtype="uint16", shape=(2, 3))["max"] == 5


def test_info_tables_graph_mask_image_audio_video(tmp_path):
    tables.write([{"a": 1, "b": "x"}, {"a": 2.5}], tmp_path / "t.jsonl")
    d = describe(tmp_path / "t.jsonl")
    assert d["rows"] == 2 and d["columns"] == {"a": "float|int", "b": "str"}

    g = nx.DiGraph()
    g.add_edge("a", "b", bytes=3)
    graphs.write(g, tmp_path / "g.json")
    d = describe(tmp_path / "g.json")
    assert (d["kind"], d["nodes"], d["edges"], d["dag"], d["edge_attrs"]) == ("graph", 2, 1, True, ["bytes"])

    masks.write(np.array([[0, 2], [5, 5]], np.uint8), tmp_path / "m.png")
    d = describe(tmp_path / "m.png")
    assert d["kind"] == "mask" and d["ids"] == [0, 2, 5]

    images.write(np.full((4, 6, 3), 7, np.uint8), tmp_path / "i.png")
    d = describe(tmp_path / "i.png")
    assert d["kind"] == "image" and d["shape"] == [4, 6, 3] and d["max"] == 7

    audio.write(np.zeros((800, 2), np.int16), 8000, tmp_path / "s.flac")
    d = describe(tmp_path / "s.flac")
    assert (d["sample_rate"], d["channels"], d["frames"]) == (8000, 2, 800)

    video.write(np.zeros((4, 8, 10), np.uint8), tmp_path / "v.mkv", fps=5)
    d = describe(tmp_path / "v.mkv")
    assert (d["kind"], d["frames"], d["width"], d["height"], d["fps"]) == ("video", 4, 10, 8, 5.0)


def test_convert_within_and_across_kinds(tmp_path):
    img = np.random.default_rng(0).integers(0, 65536, (6, 5), dtype=np.uint16)
    images.write(img, tmp_path / "d.tif")
    convert(tmp_path / "d.tif", tmp_path / "d.npy")
    np.testing.assert_array_equal(arrays.read(tmp_path / "d.npy"), img)
    convert(tmp_path / "d.npy", tmp_path / "d.png")
    np.testing.assert_array_equal(images.read(tmp_path / "d.png"), img)

    ids = np.array([[0, 1], [3, 3]], np.uint8)
    pal = np.array([[0, 0, 0], [10, 20, 30], [1, 2, 3], [200, 100, 0]], np.uint8)
    masks.write(ids, tmp_path / "m.png", palette=pal)
    convert(tmp_path / "m.png", tmp_path / "m2.png")
    ids2, pal2 = masks.read(tmp_path / "m2.png")
    np.testing.assert_array_equal(ids2, ids)
    np.testing.assert_array_equal(pal2[:4], pal)

    tables.write([{"k": "ä", "v": 1}], tmp_path / "t.jsonl")
    convert(tmp_path / "t.jsonl", tmp_path / "t.tsv")
    assert (tmp_path / "t.tsv").read_text() == "k\tv\nä\t1\n"


def test_convert_audio_keeps_pcm_exact(tmp_path):
    x = np.random.default_rng(0).integers(-2**15, 2**15, (1000, 2), dtype=np.int16)
    audio.write(x, 22050, tmp_path / "a.wav")
    convert(tmp_path / "a.wav", tmp_path / "a.flac")
    y, sr = audio.read(tmp_path / "a.flac", dtype="int16")
    assert sr == 22050
    np.testing.assert_array_equal(y, x)


def test_convert_frame_folder_to_ffv1_and_back(tmp_path):
    frames = write_label_video_frames(tmp_path / "masks", n=4)
    convert(tmp_path / "masks", tmp_path / "l.mkv", ConvertOptions(fps=10, pix_fmt="gray"))
    info = video.probe(tmp_path / "l.mkv")
    assert (info.frames, info.fps, info.codec) == (4, 10.0, "ffv1")
    convert(tmp_path / "l.mkv", tmp_path / "back")
    got = np.stack([images.read(p) for p in sorted((tmp_path / "back").iterdir())])
    np.testing.assert_array_equal(got, frames)


def test_cli_convert_video_and_info(sh, tmp_path):
    write_label_video_frames(tmp_path / "f", n=3)
    r = sh("mlkit convert f v.mkv --pix-fmt gray --fps 7 && mlkit info v.mkv --format json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)[0]
    assert d["frames"] == 3 and d["fps"] == 7.0


@pytest.mark.parametrize("src,dst", [("t.jsonl", "t.mkv"), ("a.wav", "a.npy")])
def test_impossible_conversions_are_65(cli, tmp_path, src, dst):
    tables.write([{"a": 1}], tmp_path / "t.jsonl")
    audio.write(np.zeros(10, np.int16), 8000, tmp_path / "a.wav")
    r = cli("convert", tmp_path / src, tmp_path / dst)
    assert r.exit_code == 65 and "cannot convert" in r.stderr
    assert not (tmp_path / dst).exists()
