"""The side-by-side benchmark rows (tiny sizes; the real run is `mlkit au-events bench`)."""

import pytest
from typer.testing import CliRunner

from mlkit.auevents import bench
from mlkit_cli.commands.au_events import app

TINY = {"n_seqs": 12, "epochs": 1,
        "config": {"d_model": 16, "heads": 2, "ff_dim": 32, "window": 64, "queries": 2},
        "synth_options": {"n_subjects": 6, "test_subjects": 2, "min_len": 120, "max_len": 160}}


def test_seed_rows_compare_all_methods_with_ratios_from_the_same_run():
    keep = {}
    rows = bench.seed_rows(3, keep=keep, **TINY)
    by = {r["method"]: r for r in rows}
    assert list(by) == ["raw", "tuned", "oracle", "eventformer"]
    assert all(r["seed"] == 3 for r in rows)
    assert by["oracle"]["map@0.5"] == 1.0 and by["oracle"]["average_map"] == 1.0
    ef = by["eventformer"]
    assert 0 <= ef["map@0.5"] <= 1 and ef["train_s"] > 0
    for key, base in (("vs_raw@0.5", "raw"), ("vs_tuned@0.5", "tuned")):
        if by[base]["map@0.5"] > 0:
            assert ef[key] == pytest.approx(ef["map@0.5"] / by[base]["map@0.5"])
    assert ef["vs_tuned_avg"] == pytest.approx(ef["average_map"] / by["tuned"]["average_map"])
    # the EventFormer row is what metrics.evaluate says of the kept detections
    from mlkit.auevents.metrics import evaluate

    ev = evaluate(keep["gt"], keep["results"], subset="test")
    assert ef["map@0.5"] == pytest.approx(ev["map"][2]) and ef["average_map"] == pytest.approx(ev["average_map"])


def test_run_in_worker_processes_equals_in_process():
    kw = dict(TINY)
    par = bench.run([6, 5], workers=2, **kw)
    seq = bench.run([5, 6], workers=1, **kw)
    assert [(r["seed"], r["method"]) for r in par] == [(s, m) for s in (5, 6)
                                                       for m in ("raw", "tuned", "oracle", "eventformer")]
    for a, b in zip(par, seq, strict=True):
        assert a["map@0.5"] == pytest.approx(b["map@0.5"]) and a["average_map"] == pytest.approx(b["average_map"])


@pytest.mark.parametrize("args", [["--seeds", "a,b"], ["--seeds", ","], ["--seqs", "2"], ["--epochs", "0"]])
def test_bench_rejects_bad_options_with_65(args):
    r = CliRunner().invoke(app, ["bench", *args], prog_name="mlkit au-events")
    assert r.exit_code == 65
    assert len(r.stderr.strip().splitlines()) == 1 and "error" in r.stderr
    assert r.stdout == ""


def test_demo_rows_add_event_f1_and_draw_the_timeline(tmp_path):
    from mlkit.auevents.demo import demo_rows

    rows = demo_rows(tmp_path, seed=2, plot=tmp_path / "t.png", **TINY)
    by = {r["method"]: r for r in rows}
    assert 0 <= by["eventformer"]["event_f1@0.5"] <= 1 and by["raw"]["event_f1@0.5"] is None
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
