"""ONNX import: hand-built models with hand-computed sizes and peaks, error paths, and the three
real PP-OCR models shipped in the rapidocr-onnxruntime wheel (paper notes §2, §7 check 9)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from mlkit.errors import InputError, MissingInputError  # noqa: E402
from mlkit.memsched.graph import simulate  # noqa: E402
from mlkit.memsched.onnx_import import import_onnx  # noqa: E402

F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, inits=(), opset=17) -> bytes:
    g = helper.make_graph(nodes, "t", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def _const(name, values):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(values, np.int64)))


def _conv_model(cast: bool = False, opset: int = 17) -> bytes:
    """x[1,3,8,8] -> Conv(W,B pads 1) c -> Relu r -> Add(r, c) a -> Reshape(a, [N, -1]) y.

    The Reshape target comes from Shape(a) -> [Cast int32] -> Slice -> [Cast int64] -> Concat with
    a Constant, all folded. At opset 11 ONNX data propagation does not follow this chain (as in the
    PP-OCR cls model), so the importer must compute the folded values to infer y's shape."""
    w = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "W")
    b = numpy_helper.from_array(np.zeros(4, np.float32), "B")
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Add", ["r", "c"], ["a"], name="add"),
             helper.make_node("Shape", ["a"], ["s"], name="shape"),
             _const("k0", [0]), _const("k1", [1]), _const("m1", [-1])]
    if cast:
        nodes += [helper.make_node("Cast", ["s"], ["s32"], to=TensorProto.INT32),
                  helper.make_node("Slice", ["s32", "k0", "k1"], ["n32"]),
                  helper.make_node("Cast", ["n32"], ["n"], to=TensorProto.INT64)]
    else:
        nodes += [helper.make_node("Slice", ["s", "k0", "k1"], ["n"])]
    nodes += [helper.make_node("Concat", ["n", "m1"], ["target"], axis=0),
              helper.make_node("Reshape", ["a", "target"], ["y"], name="reshape")]
    return _model(nodes, [helper.make_tensor_value_info("x", F, [1, 3, 8, 8])],
                  [helper.make_tensor_value_info("y", F, None)], [w, b], opset=opset)


@pytest.mark.parametrize(("cast", "opset"), [(False, 17), (True, 17), (True, 11)])
def test_conv_relu_add_sizes_and_peak(cast, opset):
    m = _conv_model(cast, opset)
    plain = onnx.shape_inference.infer_shapes(onnx.load_model_from_string(m), data_prop=True)
    assert plain.graph.output[0].type.tensor_type.HasField("shape") == (opset == 17)
    g = import_onnx(m)
    assert [op.id for op in g.ops] == ["conv", "relu", "add", "reshape"]   # Shape chain folded
    assert g.meta["folded_ops"] == (8 if cast else 6) and g.meta["opset"] == opset
    t = {x.id: x for x in g.tensors}
    assert set(t) == {"x", "c", "r", "a", "y"}                            # W, B are weights
    assert t["x"].size == 1 * 3 * 8 * 8 * 4 and t["x"].producer is None
    for name in "cra":
        assert t[name].size == 4 * 8 * 8 * 4 and t[name].shape == [1, 4, 8, 8]
    assert t["y"].shape == [1, 256] and t["y"].output and t["y"].dtype == "float32"
    assert t["c"].consumers == ["relu", "add"]
    # hand: conv 768+1024; relu 1024+1024; add 2048+1024; reshape 1024+1024
    peak, profile = simulate(g, g.topo)
    assert profile == [1792, 2048, 3072, 2048] and peak == 3072


def test_inplace_exclusive():
    g = import_onnx(_conv_model(), inplace="exclusive")
    es = {op.id: op.es for op in g.ops}
    # relu's input c has two consumers: no overlay; add overlays r; reshape overlays a
    assert es == {"conv": 0, "relu": 0, "add": -1024, "reshape": -1024}
    assert simulate(g, g.topo)[1] == [1792, 2048, 2048, 1024]
    assert g.meta["inplace"] == "exclusive"

    w = numpy_helper.from_array(np.zeros((2, 1, 1, 1), np.float32), "W")
    chain = _model([helper.make_node("Relu", ["x"], ["x1"], name="relu0"),   # reads a graph input
                    helper.make_node("Conv", ["x1", "W"], ["c"], name="conv"),
                    helper.make_node("Relu", ["c"], ["y"], name="relu")],
                   [helper.make_tensor_value_info("x", F, [1, 1, 4, 4])],
                   [helper.make_tensor_value_info("y", F, [1, 2, 4, 4])], [w])
    g = import_onnx(chain, inplace="exclusive")
    assert {op.id: op.es for op in g.ops} == {"relu0": 0, "conv": 0, "relu": -128}
    assert all(op.es == 0 for op in import_onnx(chain).ops)


def test_no_folding_keeps_shape_ops():
    g = import_onnx(_conv_model(), fold_constants=False)
    assert [op.type for op in g.ops] == ["Conv", "Relu", "Add", "Shape", "Slice", "Concat", "Reshape"]
    t = {x.id: x for x in g.tensors}
    assert (t["s"].size, t["n"].size, t["target"].size) == (32, 8, 16)
    assert t["s"].dtype == "int64" and "k0" not in t                     # Constant outputs stay weights
    assert g.meta["folded_ops"] == 3


def test_split_multi_output_and_unused_output():
    split = numpy_helper.from_array(np.array([2, 4], np.int64), "split")
    m = _model([helper.make_node("Split", ["x", "split"], ["s1", "s2"], name="split", axis=1),
                helper.make_node("Relu", ["s1"], ["y"], name="relu")],
               [helper.make_tensor_value_info("x", F, [1, 6, 4])],
               [helper.make_tensor_value_info("y", F, [1, 2, 4])], [split])
    g = import_onnx(m)
    t = {x.id: x for x in g.tensors}
    assert (t["x"].size, t["s1"].size, t["s2"].size, t["y"].size) == (96, 32, 64, 32)
    assert t["s2"].producer == "split" and t["s2"].consumers == []       # kept, freed at once
    # split: 96 + 32 + 64; then only s1 lives: relu 32 + 32
    assert simulate(g, g.topo) == (192, [192, 64])


def _dynamic_model(out_dims) -> bytes:
    return _model([helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Sigmoid", ["h"], ["y"])],
                  [helper.make_tensor_value_info("x", F, ["N", 3, 4, 4])],
                  [helper.make_tensor_value_info("y", F, out_dims)])


def test_dynamic_batch_needs_input_shape(tmp_path):
    with pytest.raises(InputError, match=r"'x'.*--input-shape x="):
        import_onnx(_dynamic_model(["N", 3, 4, 4]))
    path = tmp_path / "dyn.onnx"
    path.write_bytes(_dynamic_model([-1, 3, 4, 4]))                      # a -1 on the declared output
    g = import_onnx(path, input_shapes={"x": [2, 3, 4, 4]})
    assert [op.id for op in g.ops] == ["Relu_1", "Sigmoid_1"]
    assert [(x.id, x.size) for x in g.tensors] == [("x", 384), ("h", 384), ("y", 384)]
    assert g.meta["input_shapes"] == {"x": [2, 3, 4, 4]} and g.name == "dyn"
    with pytest.raises(InputError, match="unknown graph input"):
        import_onnx(path, input_shapes={"z": [1]})
    with pytest.raises(InputError, match="positive"):
        import_onnx(path, input_shapes={"x": [0, 3, 4, 4]})


def test_data_dependent_shape_names_the_tensor():
    m = _model([helper.make_node("NonZero", ["x"], ["nz"])],
               [helper.make_tensor_value_info("x", F, [4])],
               [helper.make_tensor_value_info("nz", TensorProto.INT64, None)])
    with pytest.raises(InputError, match=r"tensor 'nz' has an unknown shape.*--input-shape"):
        import_onnx(m)


def test_subgraph_op_rejected():
    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["o"])], "b", [],
                               [helper.make_tensor_value_info("o", F, [2])])
    m = _model([helper.make_node("If", ["c"], ["y"], name="cond", then_branch=branch, else_branch=branch)],
               [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                helper.make_tensor_value_info("x", F, [2])],
               [helper.make_tensor_value_info("y", F, [2])])
    with pytest.raises(InputError, match=r"unsupported ONNX subgraph op 'If' \(cond\)"):
        import_onnx(m)


@pytest.mark.parametrize("data", [b"", b"\x00\x01 this is not a protobuf \xff\xfe", b"hello world\n" * 3])
def test_garbage_is_input_error(data, tmp_path):
    with pytest.raises(InputError, match="not an ONNX model") as info:
        import_onnx(data)
    assert "\n" not in str(info.value)
    path = tmp_path / "bad.onnx"
    path.write_bytes(data)
    with pytest.raises(InputError):
        import_onnx(path)


def test_missing_file_and_bad_policy(tmp_path):
    with pytest.raises(MissingInputError):
        import_onnx(tmp_path / "absent.onnx")
    with pytest.raises(InputError, match="in-place"):
        import_onnx(_conv_model(), inplace="hmcos")


def test_bytes_and_path_agree(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(_conv_model())
    assert import_onnx(path).to_dict()["tensors"] == import_onnx(_conv_model()).to_dict()["tensors"]
    assert import_onnx(str(path), name="net").name == "net"


# ---------------------------------------------------------------- real models (rapidocr wheel)

def _rapidocr_models() -> Path | None:
    spec = importlib.util.find_spec("rapidocr_onnxruntime")   # located, never imported
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "models"
    return folder if folder.is_dir() else None


# (file, input shape, ops after folding, definition-order peak or None, graph output shape).
# The det/cls peaks are the prototype's (paper notes §2); the op counts are one less than the
# prototype's "331"/"235", which counted the graph input as a node. rec has no outside reference
# for its peak; its output shape [1, W/8, 6625] is fixed by the architecture.
REAL = [
    ("ch_PP-OCRv4_det_infer.onnx", [1, 3, 640, 640], 330, 39_321_600, [1, 1, 640, 640]),
    ("ch_ppocr_mobile_v2.0_cls_infer.onnx", [1, 3, 48, 192], 234, 485_376, [1, 2]),
    ("ch_PP-OCRv4_rec_infer.onnx", [1, 3, 48, 320], 403, None, [1, 40, 6625]),
]


@pytest.mark.parametrize(("fname", "shape", "n_ops", "peak", "out_shape"), REAL, ids=["det", "cls", "rec"])
def test_rapidocr_models(fname, shape, n_ops, peak, out_shape):
    folder = _rapidocr_models()
    if folder is None or not (folder / fname).is_file():
        pytest.skip("rapidocr-onnxruntime==1.4.4 wheel not installed (pip install --no-deps it)")
    start = time.perf_counter()
    g = import_onnx(folder / fname, input_shapes={"x": shape})
    assert time.perf_counter() - start < 5.0                           # paper notes §7 check 9
    assert g.n == n_ops and g.meta["folded_ops"] + g.n == len(onnx.load(folder / fname).graph.node)
    assert not any(op.type in ("Constant", "Shape") for op in g.ops)
    assert all(g.ins[i] for i in range(g.n))                              # no source-only op is left
    (out,) = [t for t in g.tensors if t.output]
    assert out.shape == out_shape
    x = next(t for t in g.tensors if t.producer is None)
    assert x.size == 4 * int(np.prod(shape))
    got, _ = simulate(g, g.topo)
    if peak is not None:
        assert got == peak
    ex = import_onnx(folder / fname, input_shapes={"x": shape}, inplace="exclusive")
    assert any(op.es < 0 for op in ex.ops) and simulate(ex, ex.topo)[0] <= got
