"""The issue's acceptance figures 4-9, on the committed suite fixtures (1-3 are in
test_schedule.py). The long ones are marked slow and run in `make bench`."""

import time

import pytest

from mlkit.memsched.bench import bench_graph, real_onnx_graphs
from mlkit.memsched.config import ScheduleConfig
from mlkit.memsched.dp import dp_schedule
from mlkit.memsched.fuse import fuse
from mlkit.memsched.graph import simulate
from mlkit.memsched.heuristics import definition_order, rpo_order
from mlkit.memsched.ilp import build_ilp, solve_ilp
from mlkit.memsched.schedule import schedule
from mlkit.memsched.synth import load_suite


def _def_peak(g):
    return simulate(g, definition_order(g))[0]


def test_randwire_ws32_matches_the_prototype_and_beats_definition_order():
    want_def = {0: 4_892_160, 1: 4_158_336, 2: 4_402_944}      # paper notes §2 (prototype)
    want_rpo = {0: 4_892_160, 1: 3_913_728, 2: 4_402_944}
    for s in (0, 1, 2):
        (_, g), = load_suite(names=[f"rw-ws-n32-s{s}"])
        assert _def_peak(g) == want_def[s] and simulate(g, rpo_order(g))[0] == want_rpo[s]
        t0 = time.perf_counter()
        r = schedule(g, ScheduleConfig(time_limit=30))
        assert r["optimal"] and time.perf_counter() - t0 <= 30
        assert r["peak"] <= 0.85 * want_def[s]


def test_darts_8_cells():
    (_, g), = load_suite(names=["darts-cifar"])
    r = schedule(g)
    assert r["optimal"] and r["peak"] <= 0.80 * _def_peak(g)
    assert 1 - r["fused_ops"] / g.n >= 0.40


def _pruning(names):
    kept = total = 0
    for _, g in load_suite(names=names):
        f, _ = fuse(g)
        _, run, res, _, unpruned = build_ilp(f, prune=True)
        kept, total = kept + len(run) + len(res), total + unpruned
    return 1 - kept / total


def test_pruning_per_randwire_family():
    # Totals over each family of the suite (n in {12,16,24,32} x seeds 0-2): WS 54.7%, BA 61.4%,
    # ER 44.2%. Sparse ER graphs leave wide [|anc|, n-1-|des|] windows, so the issue's ">= 50% on
    # RandWire" holds for WS and BA in total, not for ER nor for every single graph (README).
    names = [n for n, _ in load_suite() if n.startswith("rw-")]
    assert len(names) == 36
    assert _pruning([n for n in names if n.startswith("rw-ws")]) >= 0.5
    assert _pruning([n for n in names if n.startswith("rw-ba")]) >= 0.5
    assert _pruning([n for n in names if n.startswith("rw-er")]) >= 0.4


def test_fused_pruned_ilp_proves_rw12_fast():
    (_, g), = load_suite(names=["rw-ws-n12-s0"])
    f, _ = fuse(g)
    r = solve_ilp(f, time_limit=10)
    assert r.optimal and r.seconds <= 10


@pytest.mark.slow
def test_plain_ilp_does_not_prove_rw12_in_120s():
    (_, g), = load_suite(names=["rw-ws-n12-s0"])
    r = solve_ilp(g, prune=False, time_limit=120)
    assert not r.optimal


def test_real_onnx_models_import_fast_and_never_lose_to_definition_order():
    t0 = time.perf_counter()
    graphs = real_onnx_graphs()
    if not graphs:
        pytest.fail("rapidocr-onnxruntime is a test dependency (make test installs it)")
    assert len(graphs) == 3 and time.perf_counter() - t0 < 15
    for name, g in graphs:
        r = schedule(g, ScheduleConfig(time_limit=60))
        assert r["peak"] <= _def_peak(g), name
    det = dict(graphs)["ppocr-det"]
    assert _def_peak(det) == 39_321_600


def test_bench_rows_have_every_method_and_ratios():
    from mlkit.memsched.synth import random_chain_dag

    g = random_chain_dag(n=6, p=0.4, chain=2, seed=11)
    assert g.n <= 16
    row = bench_graph("small", g, time_limit=20)
    for m in ("topo", "rpo", "greedy", "beam", "dp", "ilp", "ilp-nofuse", "ilp-noprune"):
        assert f"{m}_peak" in row, m
    assert row["proven"] and row["optimum"] == dp_schedule(g).peak
    for m in ("dp", "ilp", "ilp-nofuse", "ilp-noprune"):
        assert row[f"{m}_ratio"] == 1.0 and row[f"{m}_optimal"], m
    assert row["topo_ratio"] >= 1.0 and row["topo_s"] >= 0
