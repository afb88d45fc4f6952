"""Baseline orders: definition order, reverse post-order, greedy."""

from __future__ import annotations

from .graph import Graph

__all__ = ["definition_order", "rpo_order", "greedy_order"]


def definition_order(g: Graph) -> list[int]:
    """The order the ops are written in, when it is topological; else Kahn's order with ties
    broken by definition order (what a framework executing the file would do)."""
    seen: set[int] = set()
    for i in range(g.n):
        if any(p not in seen for p in g.preds[i]):
            return list(g.topo)
        seen.add(i)
    return list(range(g.n))


def rpo_order(g: Graph) -> list[int]:
    """Reverse post-order of a depth-first search from the sources (TFLite/TVM's default)."""
    visited = [False] * g.n
    post: list[int] = []
    for root in range(g.n):
        if g.preds[root] or visited[root]:
            continue
        stack = [(root, iter(sorted(g.succs[root])))]
        visited[root] = True
        while stack:
            node, it = stack[-1]
            child = next((c for c in it if not visited[c]), None)
            if child is None:
                post.append(node)
                stack.pop()
            else:
                visited[child] = True
                stack.append((child, iter(sorted(g.succs[child]))))
    return post[::-1]


def greedy_order(g: Graph) -> list[int]:
    """At each step run the ready op with the smallest step memory, then the smallest live
    bytes after it (ties: definition order)."""
    from .dp import _Tables

    tb = _Tables(g)
    state, live, ready = 0, tb.live0, tb.ready0
    order = []
    for _ in range(g.n):
        best = None
        for v in tb.ready_ops(ready):
            mem, ns, nl, nr = tb.step(state, live, ready, v)
            key = (mem, nl, v)
            if best is None or key < best[0]:
                best = (key, v, ns, nl, nr)
        _, v, state, live, ready = best
        order.append(v)
    return order

