"""``eval``: the peak and per-step memory of an order, tensor lifetimes and the arena plan."""

from __future__ import annotations

from collections.abc import Sequence

from mlkit.arena import Buffer, plan_arena

from .graph import Graph, check_order, simulate

__all__ = ["evaluate", "lifetimes", "plot_profiles"]


def lifetimes(g: Graph, order: Sequence[int]) -> list[Buffer]:
    """One buffer per tensor (graph inputs from step 0, outputs to the end, an unread output at
    its producer's step only) and one per positive workspace, over steps 0..n-1."""
    step = {v: k for k, v in enumerate(order)}
    last_step = max(len(order) - 1, 0)
    bufs = []
    for t, ten in enumerate(g.tensors):
        first = 0 if g.prod[t] is None else step[g.prod[t]]
        if ten.output:
            last = last_step
        elif g.cons[t]:
            last = max(step[c] for c in g.cons[t])
        elif g.prod[t] is None:
            continue  # an unread graph input needs no memory
        else:
            last = first
        bufs.append(Buffer(ten.id, g.size[t], first, last))
    for v, op in enumerate(g.ops):
        if op.es > 0:
            bufs.append(Buffer(f"{op.id}#workspace", op.es, step[v], step[v]))
    return bufs


def evaluate(g: Graph, order: Sequence[str] | Sequence[int], *, arena: bool = False,
             alignment: int = 1) -> dict:
    """Peak and per-step profile of ``order``; with ``arena`` also best-fit offsets."""
    idx = check_order(g, order)
    peak, profile = simulate(g, idx)
    rec = {"graph": g.name, "ops": g.n, "peak": peak,
           "profile": [{"step": k, "op": g.ops[v].id, "bytes": b} for k, (v, b) in enumerate(zip(idx, profile,
                                                                                               strict=True))]}
    if arena:
        plan = plan_arena(lifetimes(g, idx), alignment=alignment)
        rec["arena"] = plan.to_dict()
        if any(op.es < 0 for op in g.ops):
            rec["arena"]["note"] = ("in-place/fused savings (negative workspace) are not applied to "
                                    "offsets; the arena plans every tensor separately")
    return rec


def plot_profiles(g: Graph, orders: dict[str, Sequence[int]], dst) -> None:
    """Memory over steps, one line per labelled order (e.g. definition order vs optimum)."""
    from mlkit import plots

    with plots.figure(dst=dst, width=7, height=3.6) as (fig, ax):
        for label, order in orders.items():
            peak, profile = simulate(g, check_order(g, order))
            ax.step(range(len(profile)), [b / 2**20 for b in profile], where="mid",
                    label=f"{label} (peak {peak / 2**20:.3g} MiB)")
        ax.set_xlabel("step")
        ax.set_ylabel("memory (MiB)")
        ax.set_title(f"{g.name}: activation memory per step")
        ax.legend(loc="best", fontsize=8)
