"""The scheduling pipeline: ``auto`` = fuse -> exact DP under a state budget, else the pruned ILP
warm-started from the beam-DP order (which also bounds M from above); ``ilp`` skips the DP. Every answer is re-simulated on the original graph,
so the reported peak is always the true peak of the returned order."""

from __future__ import annotations

import math
import time

from mlkit.errors import InputError

from .config import METHODS, ScheduleConfig
from .dp import StateBudgetExceeded, beam_schedule, dp_schedule
from .fuse import expand_order, fuse
from .graph import Graph, simulate
from .heuristics import definition_order, greedy_order, rpo_order
from .ilp import solve_ilp

__all__ = ["schedule", "trivial_lower_bound"]


def trivial_lower_bound(g: Graph) -> int:
    """No order can go below any op's own step: its inputs + outputs + workspace."""
    return max((sum(g.size[t] for t in g.ins[v]) + g.out_bytes(v) + g.ops[v].es for v in range(g.n)),
               default=0)


def schedule(g: Graph, cfg: ScheduleConfig | None = None) -> dict:
    """Schedule ``g``; returns a record with the order (op ids of ``g``), its peak, whether it is
    proven optimal, a lower bound, timings and model sizes."""
    cfg = cfg or ScheduleConfig()
    if cfg.method not in METHODS:
        raise InputError("unknown method", expected=", ".join(METHODS), got=cfg.method)
    t0 = time.perf_counter()
    rec: dict = {"graph": g.name, "method": cfg.method, "ops": g.n}
    if cfg.method in ("topo", "rpo", "greedy"):
        order = {"topo": definition_order, "rpo": rpo_order, "greedy": greedy_order}[cfg.method](g)
        return _finish(g, rec, order, False, None, t0)
    work, stats = fuse(g) if cfg.fuse else (g, None)
    rec["fused_ops"] = work.n
    lb = trivial_lower_bound(g)
    if cfg.method == "beam":
        r = beam_schedule(work, width=cfg.beam)
        return _finish(g, rec, expand_order(work, r.order, g), False, lb, t0)
    if cfg.method in ("dp", "auto"):
        try:
            r = dp_schedule(work, max_states=cfg.max_states)
            rec["states"] = r.states
            return _finish(g, rec, expand_order(work, r.order, g), True, r.peak, t0, solver="dp")
        except StateBudgetExceeded as exc:
            if cfg.method == "dp":
                raise InputError("exact DP needs more states than allowed", expected=f"<= {cfg.max_states}",
                                 got=f"> {exc.args[0]}", hint="raise --max-states or use --method auto/ilp") from exc
            rec["states"] = f">{cfg.max_states}"
    # the ILP starts from the beam-DP order: an incumbent for HiGHS and an upper bound on M
    b = beam_schedule(work, width=cfg.beam)
    r = solve_ilp(work, solver=cfg.solver, time_limit=cfg.time_limit, prune=cfg.prune, upper_bound=b.peak,
                  threads=cfg.threads, warm_start=b.order)
    rec.update(ilp_vars=r.variables, ilp_vars_unpruned=r.variables_unpruned, ilp_status=r.status,
               ilp_objective=r.objective)
    if r.lower_bound is not None and math.isfinite(r.lower_bound):
        lb = max(lb, math.ceil(r.lower_bound - 1e-6))
    order = expand_order(work, b.order, g)  # the beam order stands unless the ILP found better
    if r.order is not None:
        ilp_order = expand_order(work, r.order, g)
        if simulate(g, ilp_order)[0] <= simulate(g, order)[0]:
            order = ilp_order
    return _finish(g, rec, order, r.optimal, lb, t0, solver=cfg.solver)


def _finish(g: Graph, rec: dict, order: list[int], optimal: bool, lb: int | None, t0: float,
            solver: str | None = None) -> dict:
    peak, _ = simulate(g, order)
    if optimal:
        lb = peak
    rec.update(order=g.order_ids(order), peak=peak, optimal=optimal, lower_bound=lb,
               solve_s=time.perf_counter() - t0)
    if solver:
        rec["solver"] = solver
    return rec
