"""Bad input through the CLI: the documented exit code, one line on stderr, no traceback, and no
output file left behind (nor the previous good one clobbered)."""

import numpy as np
import pytest

from mlkit.codecs import arrays, images, tables


def _one_line_error(r, code, *needles):
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("mlkit ") and ": error: " in lines[0]
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert r.stdout == ""


def _only(tmp_path, *names):
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


@pytest.fixture
def good(tmp_path):
    arrays.write(np.arange(100.0), tmp_path / "good.npy")
    return tmp_path / "good.npy"


def test_missing_file_is_66(cli, tmp_path):
    r = cli("convert", tmp_path / "nope.npy", tmp_path / "out.csv")
    _one_line_error(r, 66, "mlkit convert: error:", "nope.npy: no such file")
    _only(tmp_path)


def test_truncated_npy_is_65(cli, tmp_path, good):
    (tmp_path / "t.npy").write_bytes(good.read_bytes()[:90])
    r = cli("convert", tmp_path / "t.npy", tmp_path / "out.csv")
    _one_line_error(r, 65, "t.npy", "truncated or corrupt")
    _only(tmp_path, "good.npy", "t.npy")


def test_wrong_bin_size_is_65(cli, tmp_path):
    (tmp_path / "f.bin").write_bytes(b"\0" * 30)
    r = cli("convert", tmp_path / "f.bin", tmp_path / "f.npy", "--dtype", "float32", "--shape", "-1,2")
    _one_line_error(r, 65, "f.bin", "wrong .bin size")
    _only(tmp_path, "f.bin")


def test_corrupt_png_is_65(cli, tmp_path):
    images.write(np.zeros((16, 16, 3), np.uint8), tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes((tmp_path / "ok.png").read_bytes()[:40])
    r = cli("convert", tmp_path / "bad.png", tmp_path / "bad.npy")
    _one_line_error(r, 65, "bad.png")
    _only(tmp_path, "ok.png", "bad.png")


def test_non_json_line_is_65_and_keeps_old_output(cli, tmp_path):
    (tmp_path / "t.jsonl").write_text('{"a": 1}\n{"a": 2}\n{oops\n')
    tables.write([{"old": True}], tmp_path / "out.csv")
    before = (tmp_path / "out.csv").read_bytes()
    r = cli("convert", tmp_path / "t.jsonl", tmp_path / "out.csv")
    _one_line_error(r, 65, "line 3 is not JSON")
    assert (tmp_path / "out.csv").read_bytes() == before
    _only(tmp_path, "t.jsonl", "out.csv")


@pytest.mark.parametrize("verb", [["info", "-"], ["convert", "-", "OUT"]])
def test_empty_stdin_is_65(cli, tmp_path, verb):
    args = [str(tmp_path / "o.npy") if a == "OUT" else a for a in verb]
    r = cli(*args, input=b"")
    _one_line_error(r, 65, "empty stdin")
    _only(tmp_path)


def test_output_folder_missing_is_73(cli, tmp_path, good):
    r = cli("convert", good, tmp_path / "no" / "where.csv")
    _one_line_error(r, 73, "cannot create output")


def test_unknown_extension_is_65(cli, tmp_path, good):
    r = cli("convert", good, tmp_path / "x.xyz")
    _one_line_error(r, 65, "cannot convert")
    _only(tmp_path, "good.npy")


def test_bad_format_choice_is_usage_error(cli, tmp_path, good):
    r = cli("info", good, "--format", "yaml")
    assert r.exit_code == 2
