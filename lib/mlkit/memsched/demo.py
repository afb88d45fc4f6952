"""``mlkit memsched demo``: RandWire WS(32,4,0.75) and a DARTS-style stack, scheduled by the
pipeline and compared with definition order, reverse post-order and greedy, in well under a
minute on a laptop CPU."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from .config import ScheduleConfig
from .graph import simulate
from .heuristics import definition_order, greedy_order, rpo_order
from .schedule import schedule

__all__ = ["demo_rows", "run_demo"]


def demo_rows() -> Iterator[dict]:
    from . import synth

    for name, g in (("randwire-ws32-s0", synth.randwire(gen="ws", n=32, k=4, p=0.75, seed=0)),
                    ("darts-8cells", synth.darts(cells=8, C=16, hw=32))):
        t0 = time.perf_counter()
        r = schedule(g, ScheduleConfig(method="auto", time_limit=30))
        base = simulate(g, definition_order(g))[0]
        yield {"graph": name, "ops": g.n, "fused_ops": r.get("fused_ops"),
               "definition_MiB": base / 2**20, "rpo_MiB": simulate(g, rpo_order(g))[0] / 2**20,
               "greedy_MiB": simulate(g, greedy_order(g))[0] / 2**20, "optimum_MiB": r["peak"] / 2**20,
               "opt/def": r["peak"] / base, "optimal": r["optimal"], "seconds": time.perf_counter() - t0}


def run_demo(workdir: Path) -> dict:
    rows = list(demo_rows())
    worst = max(r["opt/def"] for r in rows)
    return {"what": "memsched: RandWire-32 + DARTS-8 scheduled (fuse + DP/ILP)",
            "metric": "optimum / definition-order peak (worst)", "value": round(worst, 3)}


def run_bench(workdir: Path) -> list[dict]:
    from .bench import bench, bench_suite

    return list(bench(bench_suite(), time_limit=10.0))
