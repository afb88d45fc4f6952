"""Exact methods against brute force and each other, on random graphs (acceptance 1-3)."""

import time

import pytest

from mlkit.memsched import synth
from mlkit.memsched.config import ScheduleConfig
from mlkit.memsched.dp import beam_schedule, dp_schedule
from mlkit.memsched.fuse import expand_order, fuse
from mlkit.memsched.graph import simulate
from mlkit.memsched.ilp import solve_ilp
from mlkit.memsched.schedule import schedule
from mlkit.memsched.verify import brute_force


def test_dp_equals_brute_force_on_200_graphs():
    graphs = synth.small_random_graphs(200, 9)
    for g in graphs:
        peak, order, count = brute_force(g)
        r = dp_schedule(g)
        assert r.peak == peak, g.name
        assert simulate(g, r.order)[0] == peak and simulate(g, order)[0] == peak
    assert sum(g.n >= 8 for g in graphs) >= 20  # the hard end is represented


def test_beam_is_an_upper_bound_and_often_exact():
    hits = 0
    for g in synth.small_random_graphs(60, 9, seed0=1000):
        exact = dp_schedule(g).peak
        b = beam_schedule(g, width=3)
        assert b.peak >= exact and simulate(g, b.order)[0] == b.peak
        hits += b.peak == exact
    assert hits >= 30


def _fusion_check(graphs):
    before = after = 0
    for g in graphs:
        f, st = fuse(g)
        r = dp_schedule(f)
        assert r.peak == dp_schedule(g).peak, g.name
        assert simulate(g, expand_order(f, r.order, g))[0] == r.peak, g.name
        before, after = before + st.ops_before, after + st.ops_after
    return after / before


def test_fusion_keeps_the_optimum_quick():
    assert _fusion_check(synth.chain_rich_graphs(60)) <= 0.7


@pytest.mark.slow
def test_fusion_keeps_the_optimum_300():
    assert _fusion_check(synth.chain_rich_graphs(300, seed0=5000)) <= 0.7


def _ilp_check(graphs, limit=10.0):
    worst = 0.0
    for g in graphs:
        d = dp_schedule(g).peak
        f, _ = fuse(g)
        t0 = time.perf_counter()
        r = solve_ilp(f, time_limit=limit)
        worst = max(worst, time.perf_counter() - t0)
        assert r.optimal and r.objective == d, (g.name, r.status, r.objective, d)
        assert simulate(g, expand_order(f, r.order, g))[0] == r.objective
    return worst


def test_fused_pruned_ilp_equals_dp_quick():
    _ilp_check([g for g in synth.chain_rich_graphs(20, seed0=300, max_ops=14)])


@pytest.mark.slow
def test_fused_pruned_ilp_equals_dp_100():
    assert _ilp_check(synth.chain_rich_graphs(100, seed0=7000, max_ops=20)) <= 10.0


def test_every_method_returns_a_valid_order_with_its_true_peak():
    g = synth.random_chain_dag(n=8, p=0.3, seed=3)
    opt = dp_schedule(g).peak
    for m in ("topo", "rpo", "greedy", "beam", "dp", "ilp", "auto"):
        r = schedule(g, ScheduleConfig(method=m))
        idx = [g.op_index[o] for o in r["order"]]
        assert simulate(g, idx)[0] == r["peak"] >= opt
        assert r["optimal"] == (m in ("dp", "ilp", "auto"))
        if r["optimal"]:
            assert r["peak"] == opt == r["lower_bound"]


def test_auto_falls_back_to_ilp_and_says_so_honestly():
    g = synth.randwire(gen="ws", n=12, seed=0)
    r = schedule(g, ScheduleConfig(method="auto", max_states=5, time_limit=30))
    assert r["states"] == ">5" and r["solver"] == "highs"
    assert r["optimal"] and r["peak"] == dp_schedule(g).peak
    # a time limit too short to prove anything: a valid order, not called optimal
    big = synth.randwire(gen="ws", n=32, seed=1)
    r = schedule(big, ScheduleConfig(method="ilp", fuse=False, time_limit=0.5))
    assert not r["optimal"] and r["lower_bound"] <= r["peak"]
