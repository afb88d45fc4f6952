"""The faceclust verbs end to end: through their Typer on files (synth -> knn -> fit-sim -> cluster
-> eval), as a real shell pipeline of `mlkit` processes, the bench and demo verbs, and bad input."""

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


def test_real_pipeline_through_pipes(sh, tmp_path):
    """Acceptance 6: synth, then knn | cluster | eval as separate processes over stdin/stdout."""
    r = sh("mlkit faceclust synth -o D --ids 80 --train-ids 40 && "
           "mlkit faceclust fit-sim D/features/train.bin --dim 256 --labels D/labels/train.meta -o sim.json && "
           "mlkit faceclust knn D/features/test.bin --dim 256 "
           "| mlkit faceclust cluster --sim sim.json --features D/features/test.bin --dim 256 "
           "| mlkit faceclust eval --gt D/labels/test.meta", cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    rec = json.loads(r.stdout)
    assert rec["n_samples"] == len(read_meta(tmp_path / "D/labels/test.meta"))
    assert rec["pairwise_f"] > 0.9 and rec["bcubed_f"] > 0.85
    # without --sim it still runs, and says the defaults expect a fitted similarity
    r = sh("mlkit faceclust knn D/features/test.bin --dim 256 | mlkit faceclust cluster | wc -l", cwd=tmp_path)
    assert r.returncode == 0 and b"fit-sim" in r.stderr
    assert int(r.stdout) == rec["n_samples"]


def test_eval_table_and_csv_are_flat(run, tmp_path):
    gt = np.repeat(np.arange(20), 5)
    (tmp_path / "gt.meta").write_text("\n".join(map(str, gt)) + "\n")
    r = run("eval", tmp_path / "gt.meta", "--gt", tmp_path / "gt.meta", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    head, row = r.stdout.splitlines()
    rec = dict(zip(head.split(","), row.split(","), strict=True))
    assert float(rec["pairwise_f"]) == 1.0 and float(rec["size_q1_recall"]) == 1.0 and "size_bins" not in rec
    r = run("eval", tmp_path / "gt.meta", "--gt", tmp_path / "gt.meta", "--format", "table")
    assert r.exit_code == 0 and "size_bins" not in r.stdout


def test_bench_scale_row(run):
    r = run("bench", "--n", 3000)
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["n"] == 3000 and 0.9 <= rec["knn_recall_at_k"] <= 1.0
    assert rec["peak_rss_gb"] > 0 and rec["at_5.21M_hours"] > 0
    assert {"seconds_knn", "seconds_refine", "seconds_cluster", "seconds_cluster_distance"} <= set(rec)
    assert rec["pairwise_f"] > 0.8


def test_bench_methods_side_by_side(run):
    r = run("bench", "--seeds", "3", "--ids", 80, "--train-ids", 40, "--methods", "chen,knn-dbscan")
    assert r.exit_code == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["method"] for x in rows] == ["chen", "knn-dbscan"] and all(x["seed"] == 3 for x in rows)
    assert "eps" in rows[1]
    r = run("bench", "--methods", "nope")
    assert r.exit_code == 65 and "nope" in r.stderr


def test_registered_in_root_help(cli):
    r = cli("--help")
    assert r.exit_code == 0 and "faceclust" in r.stdout


def test_eval_several_predictions_one_plot(run, tmp_path):
    rng = np.random.default_rng(0)
    gt = np.repeat(np.arange(30), rng.integers(2, 12, 30))
    (tmp_path / "gt.meta").write_text("\n".join(map(str, gt)) + "\n")
    singles = np.arange(len(gt))
    (tmp_path / "singles.meta").write_text("\n".join(map(str, singles)) + "\n")
    r = run("eval", tmp_path / "gt.meta", tmp_path / "singles.meta", "--gt", tmp_path / "gt.meta",
            "--plot", tmp_path / "bins.png")
    assert r.exit_code == 0, r.stderr
    a, b = (json.loads(line) for line in r.stdout.splitlines())
    assert a["pred"].endswith("gt.meta") and a["pairwise_f"] == 1.0
    assert b["pred"].endswith("singles.meta") and b["pairwise_recall"] == 0.0
    assert (tmp_path / "bins.png").stat().st_size > 1000
    r = run("eval", "-", "-", "--gt", tmp_path / "gt.meta")
    assert r.exit_code == 65 and "stdin given twice" in r.stderr


def test_suite_demo_runs_faceclust(cli):
    r = cli("demo", "faceclust", "--format", "jsonl")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["ok"] and rec["tool"] == "faceclust"
    fp, fb = (float(v) for v in rec["value"].split("/"))
    assert fp > 0.9 and fb > 0.9


def test_faceclust_demo_table(run):
    r = run("demo", "--format", "jsonl")
    assert r.exit_code == 0, r.stderr
    rows = {x["method"]: x for x in map(json.loads, r.stdout.splitlines())}
    assert set(rows) == {"chen", "ndde-only", "tpdi-only", "sumsim", "knn-dbscan"}
    assert rows["chen"]["pairwise_f"] > rows["ndde-only"]["pairwise_f"]


def test_transformer_fit_sim_and_cluster_with_it(run, tmp_path):
    d = tmp_path / "D"
    assert run("synth", "-o", d, "--ids", 30, "--train-ids", 20, "--smax", 40, "--seed", 1).exit_code == 0
    r = run("fit-sim", d / "features/train.bin", "--dim", 256, "--labels", d / "labels/train.meta",
            "--model", "transformer", "--tiny", "--epochs", 1, "--batch", 64, "--device", "cpu",
            "-o", tmp_path / "sim.safetensors")
    assert r.exit_code == 0, r.stderr
    assert run("knn", d / "features/test.bin", "--dim", 256, "--k", 40, "-o", tmp_path / "g.npz").exit_code == 0
    r = run("cluster", tmp_path / "g.npz", "--sim", tmp_path / "sim.safetensors", "--features",
            d / "features/test.bin", "--dim", 256, "-o", tmp_path / "pred.meta")
    assert r.exit_code == 0, r.stderr
    assert len(read_labels(tmp_path / "pred.meta")) == len(read_meta(d / "labels/test.meta"))


def test_synth_options_and_bad_spread(run, tmp_path):
    r = run("synth", "-o", tmp_path / "D", "--ids", 20, "--train-ids", 10, "--smin", 2, "--smax", 3,
            "--family", 1, "--spread", "1:1")
    assert r.exit_code == 0, r.stderr
    info = json.loads((tmp_path / "D/synth.json").read_text())
    assert info["params"]["spread"] == [1.0, 1.0] and info["splits"]["test"]["size"]["max"] <= 3
    r = run("synth", "-o", tmp_path / "E", "--spread", "wide")
    assert r.exit_code == 65 and "--spread" in r.stderr and not (tmp_path / "E").exists()
