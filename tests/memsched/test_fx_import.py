"""torch.fx import: hand-computed sizes and peaks, multi-output getitem, weights and shape
arithmetic folded, torch in-place ops, and agreement with the ONNX importer on the same network."""

from __future__ import annotations

import io
import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from mlkit.errors import InputError  # noqa: E402
from mlkit.memsched.fx_import import import_fx  # noqa: E402
from mlkit.memsched.graph import simulate  # noqa: E402


class SplitNet(nn.Module):
    """x[1,3,8,8] -> conv c[1,4,8,8] -> split (a[1,1,8,8], b[1,3,8,8]) -> b*2 -> ReLU(inplace)
    -> * scale (a Parameter) -> view(size(0), -1) -> + (scale*3); returns (sum, a)."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3, padding=1)
        self.r = nn.ReLU(inplace=True)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        a, b = torch.split(self.c(x), [1, 3], dim=1)
        y = self.r(b * 2) * self.scale
        z = y.view(y.size(0), -1)
        return z + self.scale * 3, a


def test_split_net_sizes_and_peak():
    g = import_fx(SplitNet(), torch.randn(1, 3, 8, 8))
    assert [op.type for op in g.ops] == ["Conv2d", "split", "mul", "ReLU", "mul", "view", "add"]
    assert g.meta["folded_ops"] == 2                                   # y.size(0) and scale * 3
    t = {x.id: x for x in g.tensors}
    assert set(t) == {"x", "c", "split.0", "split.1", "mul", "r", "mul_1", "view", "add"}
    assert (t["x"].size, t["c"].size, t["split.0"].size, t["split.1"].size) == (768, 1024, 256, 768)
    assert t["split.0"].output and t["add"].output and t["add"].shape == [1, 192]
    assert t["split.1"].consumers == ["mul"] and t["x"].producer is None
    assert {op.id: op.es for op in g.ops}["r"] == -768                 # ReLU(inplace=True)
    # hand: c 768+1024 | split 1024+1024 | mul 1024+768 | relu in place 1024 | mul_1, view, add 1024+768
    assert simulate(g, g.topo) == (2048, [1792, 2048, 1792, 1024, 1792, 1792, 1792])


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(4, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 4, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        h = torch.relu(self.c1(x))
        y = torch.relu(self.c2(h) + x)
        return torch.cat([self.pool(y), self.pool(x)], dim=1).flatten(1)


def test_matches_onnx_import():
    onnx_import = pytest.importorskip("mlkit.memsched.onnx_import")
    x = torch.randn(2, 4, 6, 6)
    g = import_fx(Residual(), (x,))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Residual(), (x,), buf, dynamo=False, input_names=["x"])
    o = onnx_import.import_onnx(buf.getvalue())
    assert [op.type for op in o.ops] == ["Conv", "Relu", "Conv", "Add", "Relu", "MaxPool", "MaxPool",
                                         "Concat", "Flatten"]
    assert len(g.ops) == len(o.ops)
    assert sorted(t.size for t in g.tensors) == sorted(t.size for t in o.tensors)
    assert simulate(g, g.topo) == simulate(o, o.topo)
    # by hand: x 1152 stays to the second pool; c1 out 2304
    assert simulate(g, g.topo)[0] == 1152 + 2304 + 2304


class Chunks(nn.Module):
    def forward(self, x):
        parts = x.chunk(3, dim=0)
        d = {"p": parts[0], "q": parts[2]}
        return d["p"] + d["q"], x[0]


def test_getitem_on_tuples_and_on_tensors():
    g = import_fx(Chunks(), torch.zeros(6, 5))
    assert [op.type for op in g.ops] == ["chunk", "add", "getitem"]  # x[0] is a real op
    t = {x.id: x for x in g.tensors}
    assert [t[f"chunk.{i}"].size for i in range(3)] == [40, 40, 40]
    assert t["chunk.1"].consumers == [] and t["chunk.0"].consumers == ["add"]
    assert t["getitem_2"].size == 20 and t["getitem_2"].output        # getitem, getitem_1 select chunks
    # chunk: x 120 + 3*40 | add: x + chunk.0 + chunk.2 (chunk.1 freed at once) + 40 | x[0]: x + add + 20
    assert simulate(g, g.topo) == (240, [240, 240, 180])


class Branchy(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x
        return -x


def test_errors():
    with pytest.raises(InputError, match="cannot trace Branchy"):
        import_fx(Branchy(), torch.ones(2))
    with pytest.raises(InputError, match="example inputs"):
        import_fx(SplitNet(), torch.randn(1, 5, 8, 8))              # wrong channel count
