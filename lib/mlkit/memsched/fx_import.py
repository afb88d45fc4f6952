"""torch ``nn.Module`` -> memsched :class:`~mlkit.memsched.graph.Graph` through torch.fx
(paper notes §3 MODeL importer, §4).

``torch.fx.symbolic_trace`` gives the ops; ``ShapeProp`` runs the example inputs once (real
tensors, ``torch.no_grad()``) and records ``node.meta['tensor_meta']``: bytes = numel x element
size. Reconstructed, following the ONNX importer's conventions rather than MODeL's code:

- parameters and buffers are weights: ``get_attr`` nodes and module parameters are not tensors;
- a node with no activation input (arithmetic on weights, ``torch.zeros``) or with no tensor
  result (``x.size(0)``, ``x.shape``) is folded away: shape metadata, not memory;
- ``operator.getitem`` on a tuple/list/dict result is not an op: a multi-output op gets one
  tensor per leaf (``name.0``, ``name.1`` ...) and getitem selects one; getitem on a tensor
  (``x[0]``) is an ordinary op;
- torch's own in-place ops (``nn.ReLU(inplace=True)``, ``x.add_(y)``, ``operator.iadd``) write
  into their first input, so when that input has the output's byte size the op gets
  ``es = -size(out)`` (no new memory at its step; later steps still count both names, an
  over-estimate when the mutated input is read again).
"""

from __future__ import annotations

import contextlib
import io
import operator

from mlkit.errors import InputError
from mlkit.memsched.graph import Graph, Op, Tensor

__all__ = ["import_fx"]

_INPLACE_FUNCS = {operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.ifloordiv,
                  operator.imod, operator.ipow, operator.iand, operator.ior, operator.ixor}


def import_fx(module, example_inputs, *, name: str | None = None) -> Graph:
    """Trace ``module`` (an ``nn.Module`` or ``fx.GraphModule``) and run ``example_inputs`` (a
    tensor or a tuple of positional inputs) through it to size every activation tensor.

    Raises InputError when the module cannot be traced (data-dependent control flow) or the
    example inputs do not fit it."""
    import torch
    import torch.fx as fx
    from torch.fx.passes.shape_prop import ShapeProp

    args = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(example_inputs)
    try:
        gm = module if isinstance(module, fx.GraphModule) else fx.symbolic_trace(module)
    except Exception as exc:  # noqa: BLE001 - TraceError, TypeError, NotImplementedError ...
        raise InputError(f"cannot trace {type(module).__name__} with torch.fx", got=_one_line(exc),
                         hint="make control flow independent of tensor values, or export to ONNX") from exc
    try:
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):   # ShapeProp prints tracebacks
            ShapeProp(gm).propagate(*args)
    except Exception as exc:  # noqa: BLE001 - whatever the module raises on these inputs
        cause = exc.__cause__ or exc
        raise InputError(f"{type(module).__name__}: the example inputs do not run through the module",
                         got=_one_line(cause)) from exc
    return _to_graph(gm, name or type(module).__name__)


def _to_graph(gm, name: str) -> Graph:
    from torch.fx.passes.shape_prop import TensorMetadata

    tensors: dict[str, Tensor] = {}
    ops: list[Op] = []
    alias: dict[object, object] = {}     # fx node -> its tensor ids, in the shape of its result
    folded = 0

    def leaves(struct) -> list[str]:
        if isinstance(struct, str):
            return [struct]
        items = struct.values() if isinstance(struct, dict) else struct if isinstance(struct, (list, tuple)) else ()
        return [t for s in items for t in leaves(s)]

    def make(node, producer: str | None):
        """Tensors for every TensorMetadata leaf of the node's result; the same structure of ids."""
        def walk(meta, path: str):
            if isinstance(meta, TensorMetadata):
                tid = node.name + path
                numel = 1
                for d in meta.shape:
                    numel *= int(d)
                tensors[tid] = Tensor(id=tid, size=numel * meta.dtype.itemsize, producer=producer,
                                      shape=[int(d) for d in meta.shape],
                                      dtype=str(meta.dtype).removeprefix("torch."))
                return tid
            if isinstance(meta, dict):
                return {k: walk(v, f"{path}.{k}") for k, v in meta.items()}
            if isinstance(meta, (list, tuple)):
                return [walk(v, f"{path}.{i}") for i, v in enumerate(meta)]
            return None                    # an int, a torch.Size ...: shape metadata, not memory
        return walk(node.meta.get("tensor_meta"), "")

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            alias[node] = make(node, None)
        elif node.op == "get_attr":
            alias[node] = None                                   # a weight or buffer
        elif node.op == "output":
            for tid in leaves(_inputs(node, alias)):
                tensors[tid].output = True
        elif node.target is operator.getitem and isinstance(alias.get(node.args[0]), (list, dict)):
            alias[node] = alias[node.args[0]][node.args[1]]      # selects one result of a multi-output op
        else:
            ins = list(dict.fromkeys(leaves(_inputs(node, alias))))
            if not ins or node.meta.get("tensor_meta") is None:
                alias[node] = None                               # folded: constant or non-tensor
                folded += 1
                continue
            op = Op(id=node.name, type=_op_type(gm, node))
            ops.append(op)
            alias[node] = make(node, op.id)
            for tid in ins:
                tensors[tid].consumers.append(op.id)
            outs = leaves(alias[node])
            if _is_inplace(gm, node) and len(outs) == 1 and tensors[ins[0]].size == tensors[outs[0]].size:
                op.es = -tensors[outs[0]].size
    meta = {"source": "fx", "folded_ops": folded, "inplace": "torch"}
    return Graph(ops, list(tensors.values()), name=name, meta=meta)


def _inputs(node, alias) -> list:
    """The tensor-id structures of the fx nodes among ``node``'s args and kwargs, in order."""
    from torch.fx.node import map_arg

    found: list = []
    map_arg((node.args, node.kwargs), lambda n: found.append(alias.get(n)) or n)
    return [s for s in found if s is not None]


def _op_type(gm, node) -> str:
    if node.op == "call_module":
        return type(gm.get_submodule(node.target)).__name__
    if node.op == "call_method":
        return str(node.target)
    return getattr(node.target, "__name__", str(node.target))


def _is_inplace(gm, node) -> bool:
    if node.op == "call_module":
        return getattr(gm.get_submodule(node.target), "inplace", False) is True
    if node.kwargs.get("inplace") is True or node.target in _INPLACE_FUNCS:
        return True
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    return isinstance(name, str) and name.endswith("_") and not name.startswith("__")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
