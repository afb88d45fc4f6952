"""ONNX model -> memsched :class:`~mlkit.memsched.graph.Graph` (paper notes §1.1, §4).

Tensor sizes come from ``onnx.shape_inference.infer_shapes(model, data_prop=True)``: bytes =
prod(dims) x itemsize of the element type. Weights (initializers and the outputs of ``Constant``
nodes) are not tensors. Reconstructed rather than taken from the paper (its method section is not
available to us):

- constant folding: every op whose inputs are all constants (none, initializers, or outputs of
  folded ops), and every ``Shape``/``Size`` op whose input has a static inferred shape, is dropped
  and its outputs become constants, iterated to a fixpoint. Their values are computed (onnx's
  reference evaluator) only when shape inference leaves a kept tensor's shape unknown: data
  propagation does not follow Shape->Cast->Slice chains at opset 11 (PP-OCR cls, rec). With
  ``fold_constants=False`` only ``Constant`` nodes are dropped (they are weights) and the other
  folded ops stay as ops with their (tiny) outputs as tensors;
- ``inplace="exclusive"``: HMCOS's overlay rule (``src/sched/life.cpp``) made static. A
  single-output elementwise op (HMCOS's 52 ONNX ops) or Reshape/Flatten/Squeeze/Unsqueeze whose
  first activation input of the output's byte size is consumed by this op only (and is neither a
  graph input nor a graph output) gets ``es = -size(out)``.

Node outputs nobody reads are kept as tensors: they count at the producing step and are freed
right after it (see :func:`mlkit.memsched.graph.simulate`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from mlkit.errors import InputError, MissingInputError
from mlkit.memsched.graph import Graph, Op, Tensor

__all__ = ["import_onnx", "ELEMENTWISE_OPS", "VIEW_OPS"]

#: HMCOS ``src/util/op.cpp`` ``ewOps``: the ops whose output may overlay an input.
ELEMENTWISE_OPS = frozenset("""
    Abs Add And Neg Mul Exp Div Ceil Not LeakyRelu Elu Equal Floor Greater HardSigmoid Selu Less
    PRelu Log Or Reciprocal Pow Relu Sigmoid Softplus Softsign Sqrt Sub Tanh Xor Acos Asin Atan Cos
    Sin Tan Sinh Cosh Asinh Acosh Atanh Sign Erf Mod ThresholdedRelu BitShift Round Celu LessOrEqual
    GreaterOrEqual HardSwish Clip""".split())
VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze"})
SUBGRAPH_OPS = frozenset({"If", "Loop", "Scan"})
_SUB_BYTE_BITS = {"UINT4": 4, "INT4": 4, "FLOAT4E2M1": 4, "UINT2": 2, "INT2": 2}
_HINT = ("pass --input-shape NAME=D0,D1,... for each dynamic graph input (shapes that depend on "
         "data, e.g. NonZero, cannot be resolved)")


def import_onnx(src: str | os.PathLike | bytes, *, input_shapes: dict[str, list[int]] | None = None,
                inplace: str = "none", fold_constants: bool = True, name: str | None = None) -> Graph:
    """Read an ONNX model (a path, or the file's bytes) into a memsched graph.

    ``input_shapes`` replaces the declared dims of the named graph inputs (needed for
    ``dim_param``/-1/0 dims). Raises MissingInputError for a missing file and InputError for a
    non-ONNX file, a subgraph op (If/Loop/Scan), or a tensor whose shape stays unknown.
    """
    if inplace not in ("none", "exclusive"):
        raise InputError("unknown in-place policy", expected="none or exclusive", got=repr(inplace))
    model, label = _load(src)
    graph = model.graph
    _reject_subgraphs(graph)
    init = {t.name for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in init]
    resolved = _apply_input_shapes(inputs, input_shapes or {})
    for v in graph.output:                      # declared outputs can carry -1: let inference decide
        v.type.tensor_type.ClearField("shape")
    del graph.value_info[:]
    nodes = list(graph.node)
    work, done = model, 0
    for _ in range(8):      # infer; if shapes stay unknown, evaluate the folded values and retry
        types = _infer(work, label)
        folded, consts = _fold(nodes, init, types)
        kept = [n for n in nodes if id(n) not in folded]
        graph_ops = kept if fold_constants else [n for n in nodes if n.op_type != "Constant"]
        unknown = any(_static_shape(types.get(o)) is None for n in graph_ops for o in n.output if o)
        if not unknown or len(folded) == done:
            break
        done = len(folded)
        work = _with_folded_values(model, nodes, folded, types) or work
    if not fold_constants:                      # only Constant nodes (weights) stay out
        consts = init | {o for n in nodes if n.op_type == "Constant" for o in n.output}
    ops, tensors = _build(graph_ops, inputs, graph.output, consts, types, label)
    if inplace == "exclusive":
        _mark_inplace(ops, tensors, graph_ops)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    meta = {"source": "onnx", "opset": opset, "input_shapes": resolved,
            "folded_ops": len(nodes) - len(graph_ops), "inplace": inplace}
    default = graph.name or "onnx" if isinstance(src, (bytes, bytearray, memoryview)) else label
    return Graph(ops, tensors, name=name or default, meta=meta)


def _infer(model, label: str) -> dict:
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - onnx raises several unrelated types
        raise InputError(f"{label}: ONNX shape inference failed", got=_one_line(exc)) from exc
    g = inferred.graph
    return {v.name: v.type.tensor_type for v in [*g.input, *g.value_info, *g.output]
            if v.type.HasField("tensor_type")}


def _load(src):
    import onnx
    from google.protobuf.message import DecodeError

    if isinstance(src, (bytes, bytearray, memoryview)):
        data, label = bytes(src), "<stdin>"
    else:
        path = Path(src)
        label = path.stem
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise MissingInputError("ONNX model not found", got=str(path)) from exc
        except OSError as exc:
            raise MissingInputError("cannot read ONNX model", got=f"{path}: {exc.strerror}") from exc
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise InputError(f"{label}: not an ONNX model", expected="an ONNX protobuf (.onnx)",
                         got=_one_line(exc)) from exc
    if not model.HasField("graph") or not model.ir_version:
        raise InputError(f"{label}: not an ONNX model", expected="an ONNX ModelProto with a graph",
                         got=f"{len(data)} bytes without one")
    return model, label


def _reject_subgraphs(graph) -> None:
    from onnx import AttributeProto

    for node in graph.node:
        if node.op_type in SUBGRAPH_OPS or any(
                a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for a in node.attribute):
            raise InputError(f"unsupported ONNX subgraph op {node.op_type!r} ({node.name or 'unnamed'})",
                             hint="memsched needs a flat graph; unroll or export without control flow")


def _apply_input_shapes(inputs, overrides: dict[str, list[int]]) -> dict[str, list[int]]:
    """Write the overrides into the graph inputs; every input must end up fully static."""
    names = {v.name for v in inputs}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise InputError("--input-shape names an unknown graph input", expected=", ".join(sorted(names)),
                         got=", ".join(unknown))
    resolved = {}
    for v in inputs:
        tt = v.type.tensor_type
        if v.name in overrides:
            dims = [int(d) for d in overrides[v.name]]
            if any(d <= 0 for d in dims):
                raise InputError(f"--input-shape {v.name}: bad dims", expected="positive integers",
                                 got=",".join(map(str, dims)))
            tt.ClearField("shape")
            for d in dims:
                tt.shape.dim.add().dim_value = d
        declared = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or "?")
                    for d in tt.shape.dim]
        if not tt.HasField("shape") or any(not isinstance(d, int) for d in declared):
            got = "unknown rank" if not tt.HasField("shape") else str(declared)
            raise InputError(f"graph input {v.name!r} has dynamic dims", expected="static dims", got=got,
                             hint=f"pass --input-shape {v.name}=D0,D1,...")
        resolved[v.name] = declared
    return resolved


def _fold(nodes, init: set[str], types) -> tuple[dict[int, object], set[str]]:
    """The folded nodes (id -> node, in an order where inputs come first) and the constant names.

    A node folds when every input is a constant, or when it is a Shape/Size op with a static
    input; Constant nodes always fold. Passes repeat over file order until nothing changes, so
    files whose nodes are not topologically sorted fold the same way."""
    consts, folded = set(init), {}
    changed = True
    while changed:
        changed = False
        for node in nodes:
            if id(node) in folded:
                continue
            ins = [i for i in node.input if i]
            if (all(i in consts for i in ins) or node.op_type in ("Shape", "Size")
                    and _static_shape(types.get(ins[0])) is not None):
                folded[id(node)] = node
                consts.update(o for o in node.output if o)
                changed = True
    return folded, consts


def _with_folded_values(model, nodes, folded, types):
    """A copy of ``model`` whose folded non-Constant nodes are replaced by Constant nodes holding
    their values (computed with onnx's reference evaluator), so that shape inference can see
    through shape arithmetic that ``data_prop`` does not follow (e.g. Cast, Slice on int32).
    None when the values cannot be computed."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    sub, names = [], []
    for node in folded.values():
        if node.op_type != "Constant":
            names += [o for o in node.output if o]
        if node.op_type in ("Shape", "Size"):
            dims = _static_shape(types[node.input[0]])
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            value = (np.array(dims[attrs.get("start", 0):attrs.get("end", len(dims))], np.int64)
                     if node.op_type == "Shape" else np.array(math.prod(dims), np.int64))
            node = helper.make_node("Constant", [], [node.output[0]], value=numpy_helper.from_array(value))
        sub.append(node)
    try:
        g = helper.make_graph(sub, "folded", [], [helper.make_empty_tensor_value_info(n) for n in names],
                              initializer=model.graph.initializer)
        sub_model = helper.make_model(g, opset_imports=model.opset_import, ir_version=model.ir_version)
        values = dict(zip(names, ReferenceEvaluator(sub_model).run(None, {}), strict=True))
    except Exception:  # noqa: BLE001 - unsupported op or bad constant: keep the shapes unknown
        return None
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    for node in nodes:
        if id(node) in folded and node.op_type != "Constant":
            out.graph.node.extend(
                helper.make_node("Constant", [], [o], value=numpy_helper.from_array(np.asarray(values[o]), o))
                for o in node.output if o)
        else:
            out.graph.node.append(node)
    return out


def _static_shape(tt) -> list[int] | None:
    if tt is None or not tt.HasField("shape"):
        return None
    dims = []
    for d in tt.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:
            return None
        dims.append(d.dim_value)
    return dims


def _build(nodes, inputs, outputs, consts, types, label):
    from onnx import TensorProto, helper

    out_names = {v.name for v in outputs}
    ops, tensors = [], {}
    taken: set[str] = set()
    counts: dict[str, int] = {}
    for node in nodes:
        oid = node.name
        while not oid or oid in taken:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
            oid = f"{node.op_type}_{counts[node.op_type]}"
        taken.add(oid)
        ops.append(Op(id=oid, type=node.op_type, es=0))

    def tensor(tname: str, prod: str | None) -> Tensor:
        tt = types.get(tname)
        dims = _static_shape(tt)
        if dims is None or not tt.elem_type:
            raise InputError(f"{label}: tensor {tname!r} has an unknown shape after shape inference",
                             expected="static dims", got=_describe(tt), hint=_HINT)
        dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type)
        bits = _SUB_BYTE_BITS.get(TensorProto.DataType.Name(tt.elem_type))
        n = math.prod(dims)
        size = (n * bits + 7) // 8 if bits else n * dtype.itemsize
        return Tensor(id=tname, size=int(size), producer=prod, consumers=[], output=tname in out_names,
                      shape=dims, dtype=str(dtype))

    for v in inputs:
        tensors[v.name] = tensor(v.name, None)
    for node, op in zip(nodes, ops, strict=True):
        for o in node.output:
            if o and o not in tensors:
                tensors[o] = tensor(o, op.id)
    for node, op in zip(nodes, ops, strict=True):
        for i in dict.fromkeys(i for i in node.input if i and i not in consts):
            if i not in tensors:
                raise InputError(f"{label}: node {op.id!r} reads an undefined value", got=repr(i))
            tensors[i].consumers.append(op.id)
    return ops, list(tensors.values())


def _mark_inplace(ops: list[Op], tensors: list[Tensor], nodes) -> None:
    by_id = {t.id: t for t in tensors}
    outs: dict[str, list[Tensor]] = {}
    for t in tensors:
        if t.producer is not None:
            outs.setdefault(t.producer, []).append(t)
    for op, node in zip(ops, nodes, strict=True):
        if op.type not in ELEMENTWISE_OPS and op.type not in VIEW_OPS or len(outs.get(op.id, [])) != 1:
            continue
        out = outs[op.id][0]
        first = next((by_id[i] for i in node.input if i in by_id and by_id[i].size == out.size), None)
        if (first is not None and first.consumers == [op.id] and not first.output
                and first.producer is not None):
            op.es = -out.size


def _describe(tt) -> str:
    if tt is None or not tt.HasField("shape"):
        return "no inferred shape"
    return "[" + ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
                           for d in tt.shape.dim) + "]"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
