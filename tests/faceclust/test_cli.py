"""The faceclust verbs end to end through their Typer (the tool is not registered in `mlkit --help`
until issue 4 is done): synth -> knn -> fit-sim -> cluster -> eval on files, and bad input."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mlkit.faceclust.evaluate import read_labels
from mlkit.faceclust.formats import read_knn, read_meta
from mlkit.faceclust.metrics import pairwise
from mlkit_cli.commands.faceclust import app


@pytest.fixture
def run():
    runner = CliRunner()
    return lambda *a: runner.invoke(app, [str(x) for x in a], prog_name="mlkit faceclust")


def test_pipeline_on_files(run, tmp_path):
    d = tmp_path / "D"
    assert run("synth", "-o", d, "--ids", 60, "--train-ids", 40, "--dim", 256, "--seed", 3).exit_code == 0
    r = run("knn", d / "features/test.bin", "--dim", 256, "--k", 80, "-o", tmp_path / "g.npz")
    assert r.exit_code == 0, r.stderr
    g = read_knn(tmp_path / "g.npz")
    n = len(read_meta(d / "labels/test.meta"))
    assert g.ids.shape == (n, 80)
    r = run("fit-sim", d / "features/train.bin", "--dim", 256, "--labels", d / "labels/train.meta", "--k", 80,
            "-o", tmp_path / "sim.json")
    assert r.exit_code == 0, r.stderr
    assert json.loads((tmp_path / "sim.json").read_text())["model"] == "logistic"
    r = run("cluster", tmp_path / "g.npz", "--features", d / "features/test.bin", "--dim", 256,
            "--sim", tmp_path / "sim.json", "--dump", tmp_path / "dump", "-o", tmp_path / "pred.meta")
    assert r.exit_code == 0, r.stderr
    assert {p.name for p in (tmp_path / "dump").iterdir()} >= {"density.npy", "distance.npy", "nbrs.npy"}
    gt = read_meta(d / "labels/test.meta")
    pred = read_labels(tmp_path / "pred.meta")
    r = run("eval", tmp_path / "pred.meta", "--gt", d / "labels/test.meta", "--features", d / "features/test.bin",
            "--dim", 256, "--plot", tmp_path / "bins.png")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert abs(rec["pairwise_f"] - pairwise(gt, pred)["f"]) < 1e-12
    assert rec["pairwise_f"] > 0.9 and len(rec["sparsity_bins"]) == 5
    assert (tmp_path / "bins.png").stat().st_size > 1000


def test_bad_inputs_exit_65(run, tmp_path):
    (tmp_path / "f.bin").write_bytes(np.zeros(10, np.float32).tobytes())
    r = run("knn", tmp_path / "f.bin", "--dim", 4)
    assert r.exit_code == 65 and "multiple of" in r.stderr and r.stdout == ""
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    x[3] = np.nan
    np.save(tmp_path / "x.npy", x)
    r = run("knn", tmp_path / "x.npy", "--k", 3)
    assert r.exit_code == 65 and "row 3" in r.stderr
    np.save(tmp_path / "y.npy", np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32))
    r = run("knn", tmp_path / "y.npy", "--k", 10)
    assert r.exit_code == 65 and "bad k" in r.stderr
    r = run("knn", tmp_path / "y.npy", "--k", 3, "-o", tmp_path / "g.npz")
    assert r.exit_code == 0
    r = run("cluster", tmp_path / "g.npz", "--tau", 0)
    assert r.exit_code == 65 and "tau must be > 0" in r.stderr
    (tmp_path / "p.meta").write_text("1\n2\n")
    r = run("eval", tmp_path / "p.meta", "--gt", tmp_path / "p.meta")
    assert r.exit_code == 0
    (tmp_path / "q.meta").write_text("1\n2\nx\n")
    r = run("eval", tmp_path / "q.meta", "--gt", tmp_path / "p.meta")
    assert r.exit_code == 65 and "line 3" in r.stderr
