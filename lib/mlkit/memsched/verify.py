"""``verify``: brute force over every topological order (small graphs) against DP and the ILP."""

from __future__ import annotations

from mlkit.errors import InputError

from .dp import _Tables, dp_schedule
from .graph import Graph
from .ilp import solve_ilp

__all__ = ["brute_force", "verify"]

MAX_BRUTE_OPS = 10


def brute_force(g: Graph) -> tuple[int, list[int], int]:
    """(optimal peak, an optimal order, number of topological orders enumerated)."""
    if g.n > MAX_BRUTE_OPS:
        raise InputError("too many ops for brute force", expected=f"<= {MAX_BRUTE_OPS}", got=str(g.n))
    tb = _Tables(g)
    best = [None, None]
    count = 0
    path: list[int] = []

    def walk(state: int, live: int, ready: int, peak: int) -> None:
        nonlocal count
        if len(path) == g.n:
            count += 1
            if best[0] is None or peak < best[0]:
                best[0], best[1] = peak, list(path)
            return
        for v in tb.ready_ops(ready):
            mem, ns, nl, nr = tb.step(state, live, ready, v)
            path.append(v)
            walk(ns, nl, nr, max(peak, mem))
            path.pop()

    walk(0, tb.live0, tb.ready0, 0)
    return (best[0] or 0), (best[1] or []), count


def verify(g: Graph, *, ilp: bool = True, solver: str = "highs", time_limit: float = 60.0) -> dict:
    peak, order, count = brute_force(g)
    rec = {"graph": g.name, "ops": g.n, "orders": count, "brute_force": peak, "dp": dp_schedule(g).peak}
    if ilp:
        r = solve_ilp(g, solver=solver, time_limit=time_limit)
        rec["ilp"] = r.objective
        rec["ilp_optimal"] = r.optimal
    rec["agree"] = rec["dp"] == peak and (not ilp or (rec["ilp_optimal"] and rec["ilp"] == peak))
    return rec
