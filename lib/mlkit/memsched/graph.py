"""The graph model: ops and the activation tensors between them, the peak-memory accounting
(paper notes §1.1), and the versioned JSON format ``mlkit.memsched.graph/v1``.

Memory at op k's step = bytes of every live tensor (k's inputs included) + the bytes of k's
outputs + ``es_k`` (extra workspace; negative for in-place ops and fused nodes). After the step
every tensor whose consumers have all run is freed. Weights are not tensors here (excluded);
graph inputs (``producer`` None) are live from the start; graph outputs live to the end.
Peak = the maximum over steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mlkit.errors import InputError

__all__ = ["SCHEMA", "Op", "Tensor", "Graph", "simulate", "check_order"]

SCHEMA = "mlkit.memsched.graph/v1"


@dataclass
class Op:
    id: str
    type: str = "op"
    es: int = 0                          # extra bytes during the op's step (workspace; may be < 0)
    members: list[str] | None = None     # for fused nodes: the original ops, in execution order


@dataclass
class Tensor:
    id: str
    size: int                            # bytes
    producer: str | None                 # None: a graph input
    consumers: list[str] = field(default_factory=list)
    output: bool = False                 # a graph output: live to the end
    shape: list[int] | None = None
    dtype: str | None = None


class Graph:
    """Ops in definition order plus tensors; index arrays are built once and validated.

    ``ins[i]`` / ``outs[i]``: tensor indices consumed / produced by op i; ``preds[i]`` /
    ``succs[i]``: op indices; ``size[t]`` bytes; ``cons[t]``: consumer op indices of tensor t."""

    def __init__(self, ops: Sequence[Op], tensors: Sequence[Tensor], *, name: str = "graph",
                 meta: dict | None = None):
        self.ops = list(ops)
        self.tensors = list(tensors)
        self.name = name
        self.meta = dict(meta or {})
        self._index()

    # ------------------------------------------------------------------ structure
    def _index(self) -> None:
        self.op_index: dict[str, int] = {}
        for i, op in enumerate(self.ops):
            if op.id in self.op_index:
                raise InputError(f"{self.name}: duplicate op id", got=repr(op.id))
            self.op_index[op.id] = i
        n = len(self.ops)
        self.ins: list[list[int]] = [[] for _ in range(n)]
        self.outs: list[list[int]] = [[] for _ in range(n)]
        self.size: list[int] = []
        self.prod: list[int | None] = []
        self.cons: list[list[int]] = []
        seen: set[str] = set()
        for t_i, t in enumerate(self.tensors):
            if t.id in seen:
                raise InputError(f"{self.name}: duplicate tensor id", got=repr(t.id))
            seen.add(t.id)
            if not isinstance(t.size, int) or t.size < 0:
                raise InputError(f"{self.name}: tensor {t.id!r} has a bad size", expected="bytes >= 0",
                                 got=repr(t.size))
            p = None
            if t.producer is not None:
                if t.producer not in self.op_index:
                    raise InputError(f"{self.name}: tensor {t.id!r} names an unknown producer",
                                     got=repr(t.producer))
                p = self.op_index[t.producer]
                self.outs[p].append(t_i)
            cs = []
            for c in dict.fromkeys(t.consumers):  # an op reading a tensor twice consumes it once
                if c not in self.op_index:
                    raise InputError(f"{self.name}: tensor {t.id!r} names an unknown consumer", got=repr(c))
                ci = self.op_index[c]
                if ci == p:
                    raise InputError(f"{self.name}: op {c!r} consumes its own output {t.id!r}",
                                     expected="a DAG")
                cs.append(ci)
                self.ins[ci].append(t_i)
            self.size.append(int(t.size))
            self.prod.append(p)
            self.cons.append(cs)
        for op in self.ops:
            if not isinstance(op.es, int):
                raise InputError(f"{self.name}: op {op.id!r} has a bad workspace", expected="integer bytes",
                                 got=repr(op.es))
        self.preds: list[set[int]] = [set() for _ in range(n)]
        self.succs: list[set[int]] = [set() for _ in range(n)]
        for t_i, p in enumerate(self.prod):
            if p is None:
                continue
            for c in self.cons[t_i]:
                self.preds[c].add(p)
                self.succs[p].add(c)
        self.topo = self._toposort()

    def _toposort(self) -> list[int]:
        """Kahn's algorithm, ties broken by definition order; a cycle names one op on it."""
        import heapq

        indeg = [len(p) for p in self.preds]
        heap = [i for i, d in enumerate(indeg) if d == 0]
        heapq.heapify(heap)
        order = []
        while heap:
            i = heapq.heappop(heap)
            order.append(i)
            for s in self.succs[i]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    heapq.heappush(heap, s)
        if len(order) != len(self.ops):
            left = {i for i, d in enumerate(indeg) if d > 0}
            # walk predecessors inside the leftover set until a node repeats: it lies on a cycle
            i = min(left)
            path: list[int] = []
            while i not in path:
                path.append(i)
                i = min(p for p in self.preds[i] if p in left)
            raise InputError(f"{self.name}: graph has a cycle", expected="a DAG",
                             got=f"cycle through op {self.ops[i].id!r}")
        return order

    @property
    def n(self) -> int:
        return len(self.ops)

    def out_bytes(self, i: int) -> int:
        return sum(self.size[t] for t in self.outs[i])

    def ancestors(self) -> list[int]:
        """Bitmask of ancestors of each op (transitive predecessors)."""
        anc = [0] * self.n
        for i in self.topo:
            m = 0
            for p in self.preds[i]:
                m |= anc[p] | (1 << p)
            anc[i] = m
        return anc

    def descendants(self) -> list[int]:
        des = [0] * self.n
        for i in reversed(self.topo):
            m = 0
            for s in self.succs[i]:
                m |= des[s] | (1 << s)
            des[i] = m
        return des

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        ops = []
        for op in self.ops:
            d = {"id": op.id, "type": op.type, "es": op.es}
            if op.members is not None:
                d["members"] = list(op.members)
            ops.append(d)
        tensors = []
        for t in self.tensors:
            d = {"id": t.id, "size": t.size, "producer": t.producer, "consumers": list(t.consumers),
                 "output": t.output}
            if t.shape is not None:
                d["shape"] = list(t.shape)
            if t.dtype is not None:
                d["dtype"] = t.dtype
            tensors.append(d)
        return {"schema": SCHEMA, "name": self.name, "meta": self.meta, "ops": ops, "tensors": tensors}

    @classmethod
    def from_dict(cls, obj, *, name: str = "graph") -> Graph:
        if not isinstance(obj, dict) or "ops" not in obj or "tensors" not in obj:
            raise InputError(f"{name}: not a memsched graph", expected=f'{{"schema": "{SCHEMA}", "ops": [...], '
                             '"tensors": [...]}')
        schema = obj.get("schema", SCHEMA)
        if schema != SCHEMA:
            raise InputError(f"{name}: unsupported graph schema", expected=SCHEMA, got=repr(schema))
        try:
            ops = [Op(id=str(o["id"]), type=str(o.get("type", "op")), es=_int(o.get("es", 0)),
                      members=[str(m) for m in o["members"]] if o.get("members") is not None else None)
                   for o in obj["ops"]]
            tensors = [Tensor(id=str(t["id"]), size=_int(t["size"]),
                              producer=None if t.get("producer") is None else str(t["producer"]),
                              consumers=[str(c) for c in t.get("consumers", [])], output=bool(t.get("output", False)),
                              shape=t.get("shape"), dtype=t.get("dtype"))
                       for t in obj["tensors"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{name}: malformed graph entry", got=f"{type(exc).__name__}: {exc}") from exc
        return cls(ops, tensors, name=str(obj.get("name", name)), meta=obj.get("meta") or {})

    def order_ids(self, order: Sequence[int]) -> list[str]:
        return [self.ops[i].id for i in order]


def _int(x) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != int(x):
        raise ValueError(f"not an integer: {x!r}")
    return int(x)


def check_order(g: Graph, order: Sequence[str] | Sequence[int]) -> list[int]:
    """Op ids (or indices) -> indices; a non-permutation or a dependency violation raises
    InputError naming the first offending op."""
    idx = []
    for o in order:
        if isinstance(o, int) and not isinstance(o, bool):
            if not 0 <= o < g.n:
                raise InputError("order names an unknown op", got=str(o))
            idx.append(o)
        else:
            if str(o) not in g.op_index:
                raise InputError("order names an unknown op", got=repr(o))
            idx.append(g.op_index[str(o)])
    seen: set[int] = set()
    for i in idx:
        if i in seen:
            raise InputError("order is not a permutation", got=f"op {g.ops[i].id!r} twice")
        missing = [p for p in g.preds[i] if p not in seen]
        if missing:
            raise InputError("order violates a dependency", expected=f"{g.ops[min(missing)].id!r} before "
                             f"{g.ops[i].id!r}", got=f"op {g.ops[i].id!r} first")
        seen.add(i)
    if len(idx) != g.n:
        absent = next(i for i in range(g.n) if i not in seen)
        raise InputError("order is not a permutation", expected=f"{g.n} ops", got=f"{len(idx)}; "
                         f"op {g.ops[absent].id!r} missing")
    return idx


def simulate(g: Graph, order: Sequence[int]) -> tuple[int, list[int]]:
    """Peak and per-step memory of a valid order (indices). The reference evaluator every
    scheduler's answer is checked against."""
    remaining = [len(c) for c in g.cons]
    live = sum(g.size[t] for t in range(len(g.tensors)) if g.prod[t] is None and (remaining[t] or
                                                                                g.tensors[t].output))
    profile = []
    for i in order:
        outs = g.out_bytes(i)
        profile.append(live + outs + g.ops[i].es)
        live += sum(g.size[t] for t in g.outs[i] if g.cons[t] or g.tensors[t].output)
        for t in g.ins[i]:
            remaining[t] -= 1
            if remaining[t] == 0 and not g.tensors[t].output:
                live -= g.size[t]
    peak = max(profile, default=0)
    return peak, profile
