"""Iterative graph fusion (paper: "iterative graph optimization"; rules F1/F2 reconstructed, see
README.md §Fusion).

An *exclusive edge* u -> v: u has one output t, t is not a graph output, t's only consumer is v,
and t is v's only activation input. With S_u = |t|, S_v = |out(v)|, In(u) = Σ|in(u)| and
X(u) = the bytes of u's inputs that only u consumes:

* F1 (pull v up to u): S_v <= S_u and S_v + ES_v <= X(u) + ES_u; ES_w = S_u + ES_u - S_v.
* F2 (push u down to v): every input of u is exclusive to u, In(u) <= S_u and
  In(u) + ES_u <= S_v + ES_v; ES_w = S_u + ES_v - In(u).

Moving the op next to its partner never raises any step of an optimal order, and one sub-step of
the merged node always dominates, so w's step memory is exact: the optimum of the fused graph
equals the optimum of the original, and fused orders expand to original orders one-to-one.
"""

from __future__ import annotations

from dataclasses import dataclass

from .graph import Graph, Op, Tensor

__all__ = ["FusionStats", "fuse", "expand_order"]


@dataclass
class FusionStats:
    ops_before: int
    ops_after: int
    f1: int = 0
    f2: int = 0

    @property
    def ratio(self) -> float:
        return self.ops_after / self.ops_before if self.ops_before else 1.0


def _find_merge(g: Graph) -> tuple[int, int, int, str] | None:
    """The first exclusive edge (in definition order) meeting F1 or F2: (u, v, es_w, rule)."""
    for u in range(g.n):
        if len(g.outs[u]) != 1:
            continue
        t = g.outs[u][0]
        if g.tensors[t].output or len(g.cons[t]) != 1:
            continue
        v = g.cons[t][0]
        if g.ins[v] != [t]:
            continue
        s_u, s_v = g.size[t], g.out_bytes(v)
        es_u, es_v = g.ops[u].es, g.ops[v].es
        in_u = sum(g.size[x] for x in g.ins[u])
        excl = [x for x in g.ins[u] if len(g.cons[x]) == 1 and not g.tensors[x].output]
        x_u = sum(g.size[x] for x in excl)
        if s_v <= s_u and s_v + es_v <= x_u + es_u:
            return u, v, s_u + es_u - s_v, "f1"
        if len(excl) == len(g.ins[u]) and in_u <= s_u and in_u + es_u <= s_v + es_v:
            return u, v, s_u + es_v - in_u, "f2"
    return None


def _merge(g: Graph, u: int, v: int, es_w: int, rule: str) -> Graph:
    ou, ov = g.ops[u], g.ops[v]
    members = (ou.members or [ou.id]) + (ov.members or [ov.id])
    wid = f"{members[0]}..{members[-1]}"
    while wid in g.op_index and wid not in (ou.id, ov.id):
        wid += "'"
    w = Op(id=wid, type="fused", es=es_w, members=members)
    keep_at = u if rule == "f1" else v  # F1 runs w where u ran, F2 where v ran
    ops = [w if i == keep_at else op for i, op in enumerate(g.ops) if i not in (u, v) or i == keep_at]
    t_gone = g.outs[u][0]
    tensors = []
    for ti, t in enumerate(g.tensors):
        if ti == t_gone:
            continue
        producer = wid if t.producer in (ou.id, ov.id) else t.producer
        consumers = [wid if c == ou.id else c for c in t.consumers]
        tensors.append(Tensor(t.id, t.size, producer, consumers, t.output, t.shape, t.dtype))
    return Graph(ops, tensors, name=g.name, meta=g.meta)


def fuse(g: Graph, *, max_rounds: int | None = None) -> tuple[Graph, FusionStats]:
    """Apply F1/F2 until nothing merges. Returns the fused graph (fused ops carry ``members``)."""
    stats = FusionStats(g.n, g.n)
    cur = g
    rounds = 0
    while max_rounds is None or rounds < max_rounds:
        m = _find_merge(cur)
        if m is None:
            break
        cur = _merge(cur, *m)
        setattr(stats, m[3], getattr(stats, m[3]) + 1)
        rounds += 1
    stats.ops_after = cur.n
    if cur is not g:
        cur.meta = {**g.meta, "fused_from": g.n}
    return cur, stats


def expand_order(fused: Graph, order: list[int], original: Graph) -> list[int]:
    """A fused order (indices into ``fused``) -> the original graph's op indices."""
    out = []
    for i in order:
        op = fused.ops[i]
        for m in op.members or [op.id]:
            out.append(original.op_index[m])
    return out
