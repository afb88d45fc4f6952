"""Shared pieces of the graph generators: a builder that records ops and tensors in construction
order (the definition order), and parameter checks that raise InputError."""

from __future__ import annotations

from mlkit.errors import InputError

from .graph import Graph, Op, Tensor

DTYPES = {1: "int8", 2: "float16", 4: "float32", 8: "float64"}


class _Builder:
    """Collects ops and tensors in construction order (which is then the definition order)."""

    def __init__(self, dtype_bytes: int | None = None):
        self.ops: list[Op] = []
        self.tensors: dict[str, Tensor] = {}
        self.bytes = dtype_bytes
        self.dtype = DTYPES.get(dtype_bytes) if dtype_bytes else None

    def act(self, c: int, hw: int) -> tuple[int, list[int]]:
        """An activation of c channels at hw×hw: (bytes, shape)."""
        return c * hw * hw * self.bytes, [1, c, hw, hw]

    def input(self, tid: str, size: int, shape: list[int] | None = None) -> str:
        self.tensors[tid] = Tensor(tid, size, None, [], shape=shape, dtype=self.dtype if shape else None)
        return tid

    def op(self, oid: str, kind: str, inputs: list[str], outs: list[tuple[int, list[int] | None]],
           es: int = 0) -> list[str]:
        self.ops.append(Op(oid, kind, es))
        for t in dict.fromkeys(inputs):
            self.tensors[t].consumers.append(oid)
        ids = []
        for k, (size, shape) in enumerate(outs):
            tid = f"{oid}:{k}"
            self.tensors[tid] = Tensor(tid, size, oid, [], shape=shape, dtype=self.dtype if shape else None)
            ids.append(tid)
        return ids

    def conv(self, oid: str, kind: str, x: str, c: int, hw: int) -> str:
        """A single-input op producing one c×hw×hw activation."""
        return self.op(oid, kind, [x], [self.act(c, hw)])[0]

    def graph(self, name: str, meta: dict, outputs: list[str]) -> Graph:
        for t in outputs:
            self.tensors[t].output = True
        return Graph(self.ops, list(self.tensors.values()), name=name, meta=meta)


def _need_int(name: str, value, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        span = f">= {lo}" if hi is None else f"{lo}..{hi}"
        raise InputError(f"bad generator parameter {name}", expected=f"an integer {span}", got=repr(value))
    return value


def _need_prob(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InputError(f"bad generator parameter {name}", expected="a probability in [0, 1]", got=repr(value))
    return float(value)


def _need_dtype(dtype_bytes) -> int:
    if dtype_bytes not in DTYPES or isinstance(dtype_bytes, bool):
        raise InputError("bad generator parameter dtype_bytes", expected=f"one of {sorted(DTYPES)}",
                         got=repr(dtype_bytes))
    return dtype_bytes
