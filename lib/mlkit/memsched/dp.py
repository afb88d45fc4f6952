"""Exact dynamic programming over executed-op sets (SERENITY-style) and its beam variant.

A state is the set S of ops already run (a downset, as a bitmask). ``live(S)`` is fixed by S, so
the best peak to reach S is a function of S alone:

    f(S ∪ {v}) = min over ready v of max(f(S), live(S) + out(v) + es(v))

Level k holds the states with |S| = k. The exact DP keeps them all (up to a state budget); the
beam keeps the ``width`` best by (peak so far, live bytes). Both return an order and its peak.
"""

from __future__ import annotations

from dataclasses import dataclass

from .graph import Graph

__all__ = ["StateBudgetExceeded", "ScheduleResult", "dp_schedule", "beam_schedule"]


class StateBudgetExceeded(Exception):
    """The exact DP would need more states than allowed."""


@dataclass
class ScheduleResult:
    order: list[int]
    peak: int
    optimal: bool
    method: str
    states: int = 0
    lower_bound: int | None = None


class _Tables:
    """Per-op bitmasks and byte deltas used by every transition."""

    def __init__(self, g: Graph):
        n = g.n
        self.n = n
        self.pred_mask = [0] * n
        for i in range(n):
            for p in g.preds[i]:
                self.pred_mask[i] |= 1 << p
        self.succs = [sorted(s) for s in g.succs]
        self.step_extra = [g.out_bytes(i) + g.ops[i].es for i in range(n)]
        self.kept_out = [sum(g.size[t] for t in g.outs[i] if g.cons[t] or g.tensors[t].output)
                         for i in range(n)]
        cons_mask = []
        for t in range(len(g.tensors)):
            m = 0
            for c in g.cons[t]:
                m |= 1 << c
            cons_mask.append(m)
        # inputs of v that may die at v: (consumer mask, size), graph outputs never die
        self.freeable = [[(cons_mask[t], g.size[t]) for t in g.ins[i] if not g.tensors[t].output]
                         for i in range(n)]
        self.live0 = sum(g.size[t] for t in range(len(g.tensors))
                         if g.prod[t] is None and (g.cons[t] or g.tensors[t].output))
        self.ready0 = 0
        for i in range(n):
            if self.pred_mask[i] == 0:
                self.ready0 |= 1 << i

    @staticmethod
    def ready_ops(ready: int):
        """The op indices set in a ready bitmask, lowest first."""
        while ready:
            low = ready & -ready
            yield low.bit_length() - 1
            ready ^= low

    def step(self, state: int, live: int, ready: int, v: int) -> tuple[int, int, int, int]:
        """Run v from (state, live, ready): returns (step memory, new state, new live, new ready)."""
        mem = live + self.step_extra[v]
        bit = 1 << v
        new_state = state | bit
        new_live = live + self.kept_out[v]
        for cmask, size in self.freeable[v]:
            if cmask & ~new_state == 0:
                new_live -= size
        new_ready = ready & ~bit
        for s in self.succs[v]:
            if self.pred_mask[s] & ~new_state == 0:
                new_ready |= 1 << s
        return mem, new_state, new_live, new_ready


def _search(g: Graph, width: int | None, max_states: int | None) -> ScheduleResult:
    tb = _Tables(g)
    # state -> (peak so far, live, ready, parent state, op)
    level: dict[int, tuple[int, int, int, int, int]] = {0: (0, tb.live0, tb.ready0, -1, -1)}
    history: list[dict] = [level]
    total = 1
    for _ in range(g.n):
        nxt: dict[int, tuple[int, int, int, int, int]] = {}
        for state, (peak, live, ready, _, _) in level.items():
            for v in tb.ready_ops(ready):
                mem, ns, nl, nr = tb.step(state, live, ready, v)
                np_ = peak if peak >= mem else mem
                old = nxt.get(ns)
                if old is None or np_ < old[0]:
                    nxt[ns] = (np_, nl, nr, state, v)
        total += len(nxt)
        if max_states is not None and width is None and total > max_states:
            raise StateBudgetExceeded(total)
        if width is not None and len(nxt) > width:
            keep = sorted(nxt.items(), key=lambda kv: (kv[1][0], kv[1][1]))[:width]
            nxt = dict(keep)
        history.append(nxt)
        level = nxt
    if g.n == 0:
        return ScheduleResult([], 0, True, "dp" if width is None else "beam", 1)
    (final_state, (peak, *_)), = level.items()
    order = []
    state = final_state
    for k in range(g.n, 0, -1):
        entry = history[k][state]
        order.append(entry[4])
        state = entry[3]
    order.reverse()
    exact = width is None
    return ScheduleResult(order, peak, exact, "dp" if exact else "beam", total, peak if exact else None)


def dp_schedule(g: Graph, *, max_states: int | None = 2_000_000) -> ScheduleResult:
    """Exact optimum; raises StateBudgetExceeded past ``max_states`` states."""
    return _search(g, None, max_states)


def beam_schedule(g: Graph, *, width: int = 100) -> ScheduleResult:
    """Best ``width`` states per level: an upper bound, often the optimum."""
    return _search(g, width, None)
