"""Real subprocess pipelines: stdin/stdout streaming, broken pipes, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from mlkit.codecs import arrays, audio, tables


def test_npy_through_a_pipe(sh, tmp_path):
    a = np.random.default_rng(0).normal(size=(50, 7)).astype(np.float32)
    arrays.write(a, tmp_path / "a.npy")
    r = sh("mlkit convert a.npy - --to npy | mlkit convert - b.npy && mlkit info - < b.npy", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(arrays.read(tmp_path / "b.npy"), a)
    rec = json.loads(r.stdout)
    assert rec["shape"] == [50, 7] and rec["dtype"] == "float32" and rec["path"] == "stdin"


def test_bin_to_npy_to_csv_pipeline(sh, tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    a.tofile(tmp_path / "f.bin")
    r = sh("mlkit convert f.bin - --to npy --dtype float32 --shape 3,4 | mlkit convert - f.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "f.csv", delimiter=","), a)


def test_jsonl_table_pipeline_and_gzip(sh, tmp_path):
    recs = [{"id": i, "name": f"ü{i}", "score": i / 3} for i in range(20)]
    tables.write(recs, tmp_path / "r.jsonl.gz")
    r = sh("mlkit convert r.jsonl.gz - --to jsonl | mlkit convert - r.csv --from jsonl && cat r.csv | "
           "mlkit convert - - --from csv --to json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == recs


def test_audio_pipeline_resample(sh, tmp_path):
    sr = 44100
    t = np.arange(sr // 10) / sr
    audio.write((np.sin(2 * np.pi * 440 * t) * 2e4).astype(np.int16), sr, tmp_path / "a.wav")
    r = sh("cat a.wav | mlkit convert - - --from wav --to flac --sr 16000 --mono > b.flac && mlkit info b.flac",
           cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["sample_rate"] == 16000 and rec["channels"] == 1 and rec["frames"] == 1600


def test_broken_pipe_is_quiet(sh, tmp_path):
    tables.write(({"i": i, "pad": "x" * 200} for i in range(200_000)), tmp_path / "big.jsonl")
    r = sh("mlkit convert big.jsonl - --to jsonl | head -n 2", cwd=tmp_path)
    assert r.stdout.decode().count("\n") == 2
    assert r.stderr == b"", r.stderr.decode()


def test_ctrl_c_exits_130_and_leaves_nothing(tmp_path):
    bin_ = os.path.join(os.path.dirname(sys.executable), "mlkit")
    # convert waits on stdin, which we keep open: a long-running job to interrupt
    p = subprocess.Popen([bin_, "convert", "-", str(tmp_path / "out.npy")], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(b"\x93NUMPY")
    p.stdin.flush()
    time.sleep(3)  # well past start-up, so the signal lands while it waits on stdin
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert err.decode().strip() == "mlkit convert: error: interrupted"
    assert list(tmp_path.iterdir()) == []


def test_progress_and_notes_never_reach_stdout(sh, tmp_path):
    arrays.write(np.zeros(3), tmp_path / "a.npy")
    r = sh("mlkit -v convert a.npy b.csv", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == b"" and b"shape=[3]" in r.stderr
    r = sh("mlkit convert a.npy c.csv -q -v", cwd=tmp_path)
    assert r.stderr == b""
