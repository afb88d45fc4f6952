"""Graphs: directed graphs (DAGs) as node-link JSON with node, edge and graph attributes.

On disk::

    {"directed": true, "multigraph": false, "graph": {...},
     "nodes": [{"id": "conv1", ...attrs}], "links": [{"source": "a", "target": "b", ...attrs}]}

``edges`` is accepted in place of ``links`` (networkx >= 3.4 spells it so). Node order and edge
order are kept.
"""

from __future__ import annotations

import json

from ..errors import InputError
from ._io import PathLike, atomic_output, display_name, read_bytes
from .tables import to_jsonable

__all__ = ["read", "write", "from_dict", "to_dict", "is_node_link"]


def is_node_link(obj) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("nodes"), list) and (
        isinstance(obj.get("links"), list) or isinstance(obj.get("edges"), list))


def from_dict(obj, *, name: str = "graph", require_dag: bool = False):
    import networkx as nx

    if not is_node_link(obj):
        raise InputError(f"{name}: not a node-link graph", expected='{"nodes": [...], "links": [...]}',
                         got=type(obj).__name__ if not isinstance(obj, dict) else f"keys {sorted(obj)[:6]}")
    g = nx.DiGraph() if obj.get("directed", True) else nx.Graph()
    g.graph.update(obj.get("graph") or {})
    for i, node in enumerate(obj["nodes"]):
        if not isinstance(node, dict) or "id" not in node:
            raise InputError(f"{name}: node #{i} has no id")
        nid = _hashable(node["id"])
        if nid in g:
            raise InputError(f"{name}: duplicate node id", got=repr(nid))
        g.add_node(nid, **{k: v for k, v in node.items() if k != "id"})
    links = obj.get("links") if isinstance(obj.get("links"), list) else obj["edges"]
    for i, e in enumerate(links):
        if not isinstance(e, dict) or "source" not in e or "target" not in e:
            raise InputError(f"{name}: link #{i} needs source and target")
        s, t = _hashable(e["source"]), _hashable(e["target"])
        for end in (s, t):
            if end not in g:
                raise InputError(f"{name}: link #{i} names an unknown node", got=repr(end),
                                 hint="every source/target must be a node id")
        if g.has_edge(s, t):
            raise InputError(f"{name}: duplicate link", got=f"{s!r} -> {t!r}")
        g.add_edge(s, t, **{k: v for k, v in e.items() if k not in ("source", "target")})
    if require_dag and g.is_directed():
        try:
            cycle = nx.find_cycle(g)
        except nx.NetworkXNoCycle:
            cycle = None
        if cycle:
            raise InputError(f"{name}: graph has a cycle", expected="a DAG",
                             got=f"cycle through node {cycle[0][0]!r}")
    return g


def _hashable(x):
    return tuple(x) if isinstance(x, list) else x


def to_dict(g) -> dict:
    return {
        "directed": g.is_directed(),
        "multigraph": False,
        "graph": to_jsonable(dict(g.graph)),
        "nodes": [{"id": to_jsonable(n), **to_jsonable(dict(a))} for n, a in g.nodes(data=True)],
        "links": [{"source": to_jsonable(s), "target": to_jsonable(t), **to_jsonable(dict(a))}
                  for s, t, a in g.edges(data=True)],
    }


def read(src: PathLike, *, require_dag: bool = False):
    """A ``networkx.DiGraph`` from node-link JSON; ``require_dag`` names a node on any cycle."""
    name = display_name(src)
    try:
        obj = json.loads(read_bytes(src))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{name}: not valid JSON", got=str(exc)[:120]) from exc
    return from_dict(obj, name=name, require_dag=require_dag)


def write(g, dst: PathLike) -> None:
    data = json.dumps(to_dict(g), ensure_ascii=False, indent=1, allow_nan=False) + "\n"
    with atomic_output(dst) as fh:
        fh.write(data.encode())
