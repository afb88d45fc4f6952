#!/usr/bin/env python3
"""Measure every acceptance figure of the memsched issue and print one JSON line per check.

    .venv/bin/python tools/memsched_acceptance.py [--skip-slow]

The same checks run as tests (tests/memsched/test_schedule.py, test_acceptance.py; the long ones
are marked slow and run in `make bench`); this script prints the numbers for the record."""

import json
import sys
import time

from mlkit.memsched import synth
from mlkit.memsched.bench import real_onnx_graphs
from mlkit.memsched.config import ScheduleConfig
from mlkit.memsched.dp import dp_schedule
from mlkit.memsched.fuse import expand_order, fuse
from mlkit.memsched.graph import simulate
from mlkit.memsched.heuristics import definition_order
from mlkit.memsched.ilp import build_ilp, solve_ilp
from mlkit.memsched.schedule import schedule
from mlkit.memsched.verify import brute_force


def emit(**rec):
    print(json.dumps(rec), flush=True)


def main(skip_slow: bool) -> None:
    gs = synth.small_random_graphs(200, 9)
    agree = sum(dp_schedule(g).peak == brute_force(g)[0] for g in gs)
    emit(check=1, what="DP == brute force", graphs=len(gs), agree=agree, max_ops=max(g.n for g in gs))

    times, agree = [], 0
    for g in synth.chain_rich_graphs(100, seed0=7000, max_ops=20):
        f, _ = fuse(g)
        r = solve_ilp(f, time_limit=10)
        times.append(r.seconds)
        agree += bool(r.optimal and r.objective == dp_schedule(g).peak
                      and simulate(g, expand_order(f, r.order, g))[0] == r.objective)
    emit(check=2, what="fused+pruned ILP == DP, eval(order) == objective", graphs=len(times), agree=agree,
         max_s=round(max(times), 3), median_s=round(sorted(times)[len(times) // 2], 3))

    before = after = ok = 0
    gs = synth.chain_rich_graphs(300, seed0=5000)
    for g in gs:
        f, st = fuse(g)
        ok += dp_schedule(f).peak == dp_schedule(g).peak
        before, after = before + st.ops_before, after + st.ops_after
    emit(check=3, what="fusion keeps the optimum", graphs=len(gs), agree=ok, node_ratio=round(after / before, 3))

    for s in (0, 1, 2):
        (_, g), = synth.load_suite(names=[f"rw-ws-n32-s{s}"])
        t0 = time.perf_counter()
        r = schedule(g, ScheduleConfig(time_limit=30))
        d = simulate(g, definition_order(g))[0]
        emit(check=4, graph=g.name, definition=d, optimum=r["peak"], ratio=round(r["peak"] / d, 3),
             proven=r["optimal"], seconds=round(time.perf_counter() - t0, 2))

    (_, g), = synth.load_suite(names=["darts-cifar"])
    r = schedule(g)
    d = simulate(g, definition_order(g))[0]
    emit(check=5, graph=g.name, ops=g.n, fused=r["fused_ops"], fusion_removed=round(1 - r["fused_ops"] / g.n, 3),
         definition=d, optimum=r["peak"], ratio=round(r["peak"] / d, 3), proven=r["optimal"])

    fam: dict = {}
    for name, g in synth.load_suite():
        if not name.startswith("rw-"):
            continue
        f, _ = fuse(g)
        _, run, res, _, unpruned = build_ilp(f, prune=True)
        fam.setdefault(name[3:5], []).append((len(run) + len(res), unpruned, name))
    for k, rows in fam.items():
        fr = [1 - a / b for a, b, _ in rows]
        emit(check=6, family=k, graphs=len(rows), removed_total=round(1 - sum(a for a, _, _ in rows) /
             sum(b for _, b, _ in rows), 3), removed_min=round(min(fr), 3), removed_max=round(max(fr), 3),
             below_half=[n for (a, b, n) in rows if 1 - a / b < 0.5])

    (_, g), = synth.load_suite(names=["rw-ws-n12-s0"])
    f, _ = fuse(g)
    r = solve_ilp(f, time_limit=10)
    emit(check=7, variant="fused+pruned", ops=f.n, vars=r.variables, proven=r.optimal, seconds=round(r.seconds, 2))
    if not skip_slow:
        r = solve_ilp(g, prune=False, time_limit=120)
        emit(check=7, variant="plain (no fusion, no pruning)", ops=g.n, vars=r.variables, proven=r.optimal,
             status=r.status, seconds=round(r.seconds, 2))

    for name, g in real_onnx_graphs():
        t0 = time.perf_counter()
        r = schedule(g, ScheduleConfig(time_limit=60))
        d = simulate(g, definition_order(g))[0]
        emit(check=8, graph=name, ops=g.n, fused=r["fused_ops"], definition=d, optimum=r["peak"],
             proven=r["optimal"], seconds=round(time.perf_counter() - t0, 2))


if __name__ == "__main__":
    main("--skip-slow" in sys.argv)
