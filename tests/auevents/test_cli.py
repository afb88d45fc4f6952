"""mlkit au-events verbs through the CLI."""

import json

import pytest
from typer.testing import CliRunner

from mlkit_cli.commands.au_events import app


@pytest.fixture
def run():
    runner = CliRunner()
    return lambda *a, input=None: runner.invoke(app, [str(x) for x in a], input=input, prog_name="mlkit au-events")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("au") / "d"
    r = CliRunner().invoke(app, ["synth", "-o", str(d), "--seqs", "12", "--subjects", "6", "--test-subjects", "2"])
    assert r.exit_code == 0, r.stderr
    return d


def test_synth_writes_the_four_files(data):
    from mlkit.auevents import formats

    assert {p.name for p in data.iterdir()} == {"feats.npz", "frames.csv", "probs.csv", "gt.json"}
    gt = formats.read_gt(data / "gt.json")
    feats = formats.read_features(data / "feats.npz")
    assert set(gt.db) == set(feats) and {v["subset"] for v in gt.db.values()} == {"train", "test"}


def test_from_frames_on_labels_is_the_oracle(run, data):
    r = run("from-frames", data / "frames.csv")
    assert r.exit_code == 0, r.stderr
    (data / "oracle.json").write_text(r.stdout)
    ev = json.loads(run("eval", data / "oracle.json", "--gt", data / "gt.json").stdout)
    assert ev["map@0.5"] == 1.0 and ev["average_map"] == 1.0 and ev["frame_f1"] == 1.0


def test_tune_then_from_frames_beats_raw(run, data, tmp_path):
    r = run("tune", data / "probs.csv", "--gt", data / "gt.json", "-o", tmp_path / "p.json")
    assert r.exit_code == 0, r.stderr
    p = json.loads((tmp_path / "p.json").read_text())
    assert p["subset"] == "train" and {"thr", "median", "min_dur", "merge_gap"} <= set(p)
    raw = run("from-frames", data / "probs.csv").stdout
    tuned = run("from-frames", data / "probs.csv", "--params", tmp_path / "p.json").stdout
    m_raw = json.loads(run("eval", "-", "--gt", data / "gt.json", "--subset", "test", input=raw).stdout)
    m_tuned = json.loads(run("eval", "-", "--gt", data / "gt.json", "--subset", "test", input=tuned).stdout)
    assert m_tuned["map@0.5"] > m_raw["map@0.5"]


def test_train_detect_eval_pipeline(run, data, tmp_path):
    ck = tmp_path / "m.safetensors"
    r = run("train", data / "feats.npz", "--gt", data / "gt.json", "-m", ck, "--epochs", 1, "--window", 64,
            "--queries", 2, "--d-model", 16)
    assert r.exit_code == 0, r.stderr
    r = run("detect", data / "feats.npz", "-m", ck, "--plot", tmp_path / "t.png", "--gt", data / "gt.json")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "t.png").stat().st_size > 1000
    ev = json.loads(run("eval", "-", "--gt", data / "gt.json", input=r.stdout).stdout)
    assert 0 <= ev["map@0.5"] <= 1


def test_bad_input(run, data, tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"results": {"nope": []}}))
    r = run("eval", tmp_path / "bad.json", "--gt", data / "gt.json")
    assert r.exit_code == 65 and len(r.stderr.strip().splitlines()) == 1
    r = run("eval", data / "oracle.json" if (data / "oracle.json").exists() else tmp_path / "bad.json",
            "--gt", data / "gt.json", "--tiou", "0,2")
    assert r.exit_code == 65
    (tmp_path / "m.safetensors").write_bytes(b"garbage")
    r = run("detect", data / "feats.npz", "-m", tmp_path / "m.safetensors")
    assert r.exit_code == 65
    (tmp_path / "ragged.csv").write_text("seq,frame,AU1,AU2\ns,0,1,0\ns,1,1\n")
    r = run("from-frames", tmp_path / "ragged.csv")
    assert r.exit_code == 65 and "line 3" in r.stderr


@pytest.mark.parametrize("event, what", [
    ({"label": "AU1", "segment": [2.0, 1.0], "score": 0.5}, "end"),
    ({"label": "AU1", "segment": [0.0, 9999.0], "score": 0.5}, "outside"),
    ({"label": "AU99", "segment": [0.0, 1.0], "score": 0.5}, "AU99"),
    ({"label": "AU1", "segment": [0.0, 1.0], "score": 1.5}, "score"),
])
def test_eval_refuses_each_bad_event_with_one_line_and_65(run, data, tmp_path, event, what):
    from mlkit.auevents import formats

    seq = next(iter(formats.read_gt(data / "gt.json").db))
    (tmp_path / "r.json").write_text(json.dumps({"results": {seq: [event]}}))
    out = tmp_path / "ev.json"
    r = run("eval", tmp_path / "r.json", "--gt", data / "gt.json", "-o", out)
    assert r.exit_code == 65, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and what.lower() in r.stderr.lower()
    assert not out.exists()


def test_train_refuses_a_sequence_missing_from_the_features(run, data, tmp_path):
    import numpy as np

    f = dict(np.load(data / "feats.npz"))
    gone = sorted(f)[0]
    del f[gone]
    np.savez(tmp_path / "f.npz", **f)
    subset = json.loads((data / "gt.json").read_text())["database"][gone]["subset"]
    r = run("train", tmp_path / "f.npz", "--gt", data / "gt.json", "-m", tmp_path / "m.safetensors", "--epochs", "1",
            "--subset", subset)
    assert r.exit_code == 65 and gone in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.safetensors").exists()
