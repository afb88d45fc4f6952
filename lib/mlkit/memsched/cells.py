"""NAS cell stacks (DARTS-V2, NASNet-A, AmoebaNet-A) as memsched graphs: the DARTS evaluation
network (``NetworkCIFAR``) with the genotypes of the DARTS repository (``cnn/genotypes.py``).
A reconstruction of the benchmark graphs of the paper's peers (HMCOS ``script/nas.py``); see
``synth`` for the conventions."""

from __future__ import annotations

from mlkit.errors import InputError

from ._build import _Builder, _need_dtype, _need_int
from .graph import Graph

__all__ = ["GENOTYPES", "cell_stack", "darts", "nasnet", "amoebanet"]


# node k of a cell = sum of two (op, input state) pairs; states 0, 1 are the two cell inputs,
# state k+2 is node k. concat: the states concatenated into the cell output.
GENOTYPES: dict[str, dict] = {
    "darts": {  # DARTS_V2
        "normal": [(("sep3", 0), ("sep3", 1)), (("sep3", 0), ("sep3", 1)), (("sep3", 1), ("skip", 0)),
                   (("skip", 0), ("dil3", 2))],
        "normal_concat": [2, 3, 4, 5],
        "reduce": [(("max3", 0), ("max3", 1)), (("skip", 2), ("max3", 1)), (("max3", 0), ("skip", 2)),
                   (("skip", 2), ("max3", 1))],
        "reduce_concat": [2, 3, 4, 5]},
    "nasnet": {  # NASNet-A
        "normal": [(("sep5", 1), ("sep3", 0)), (("sep5", 0), ("sep3", 0)), (("avg3", 1), ("skip", 0)),
                   (("avg3", 0), ("avg3", 0)), (("sep3", 1), ("skip", 1))],
        "normal_concat": [2, 3, 4, 5, 6],
        "reduce": [(("sep5", 1), ("sep7", 0)), (("max3", 1), ("sep7", 0)), (("avg3", 1), ("sep5", 0)),
                   (("skip", 3), ("avg3", 2)), (("sep3", 2), ("max3", 1))],
        "reduce_concat": [4, 5, 6]},
    "amoebanet": {  # AmoebaNet-A
        "normal": [(("avg3", 0), ("max3", 1)), (("sep3", 0), ("sep5", 2)), (("sep3", 0), ("avg3", 3)),
                   (("sep3", 1), ("skip", 1)), (("skip", 0), ("avg3", 1))],
        "normal_concat": [4, 5, 6],
        "reduce": [(("avg3", 0), ("sep3", 1)), (("max3", 0), ("sep7", 2)), (("sep7", 0), ("avg3", 1)),
                   (("max3", 0), ("max3", 1)), (("conv7x1_1x7", 0), ("sep3", 5))],
        "reduce_concat": [3, 4, 6]},
}


def _factorized_reduce(b: _Builder, oid: str, x: str, c: int, hw: int) -> str:
    """DARTS FactorizedReduce (hw -> hw/2): two strided 1×1 convs of c/2 channels, each with the
    ReLU and BN fused in, then a concat."""
    half = (hw + 1) // 2
    a = b.conv(f"{oid}.conv_a", "conv", x, c // 2, half)
    z = b.conv(f"{oid}.conv_b", "conv", x, c - c // 2, half)
    return b.op(f"{oid}.concat", "concat", [a, z], [b.act(c, half)])[0]


def _relu_conv(b: _Builder, oid: str, x: str, c: int, hw: int) -> str:
    """DARTS ReLUConvBN 1×1 as ONE op (ReLU and BN fused into the conv). With this choice the
    DARTS-V2 stack has the prototype's op counts (8 cells: 270, 14 cells: 510), definition-order
    peaks, and 8-cell optimum (paper notes §2). Separate ReLUs would add 2 ops per cell and raise
    the optimum from 9 to 10 activations."""
    return b.conv(f"{oid}.conv", "conv", x, c, hw)


def _cell_op(b: _Builder, oid: str, name: str, x: str, c: int, hw: int, stride: int) -> str:
    """One genotype op on state x (c channels, hw×hw). skip at stride 1 is an alias: no op, the
    consumer reads x itself. sep = (relu, dw, pw) twice; dil = relu, dw, pw; BN folded."""
    out = (hw + 1) // 2 if stride == 2 else hw
    if name == "skip":
        return x if stride == 1 else _factorized_reduce(b, oid, x, c, hw)
    if name in ("max3", "avg3"):
        return b.conv(oid, "maxpool" if name == "max3" else "avgpool", x, c, out)
    if name.startswith("sep"):
        x = b.conv(f"{oid}.relu1", "relu", x, c, hw)
        x = b.conv(f"{oid}.dw1", "dwconv", x, c, out)
        x = b.conv(f"{oid}.pw1", "pwconv", x, c, out)
        x = b.conv(f"{oid}.relu2", "relu", x, c, out)
        x = b.conv(f"{oid}.dw2", "dwconv", x, c, out)
        return b.conv(f"{oid}.pw2", "pwconv", x, c, out)
    if name.startswith("dil"):
        x = b.conv(f"{oid}.relu", "relu", x, c, hw)
        x = b.conv(f"{oid}.dw", "dwconv", x, c, out)
        return b.conv(f"{oid}.pw", "pwconv", x, c, out)
    if name == "conv7x1_1x7":
        x = b.conv(f"{oid}.relu", "relu", x, c, hw)
        x = b.conv(f"{oid}.conv1x7", "conv", x, c, out)
        return b.conv(f"{oid}.conv7x1", "conv", x, c, out)
    raise InputError("unknown cell op", expected="skip, max3, avg3, sep3/5/7, dil3/5, conv7x1_1x7",
                     got=repr(name))


def cell_stack(genotype: str = "darts", cells: int = 8, C: int = 16, hw: int = 32, *,
               stem_multiplier: int = 3, image_hw: int | None = None, dtype_bytes: int = 4) -> Graph:
    """DARTS ``NetworkCIFAR`` with a genotype from ``GENOTYPES``: a stem (3×image_hw² ->
    stem_multiplier·C×hw²) feeds both inputs of cell 0; cells ``cells//3`` and ``2*cells//3``
    are reduction cells (C doubles, hw halves; their ops on the two cell inputs have stride 2);
    each cell preprocesses its inputs (ReLUConvBN 1×1, or FactorizedReduce after a reduction
    cell), sums two ops per node, and concatenates the concat states. A global average pool
    ``gap`` ends the net; its 1×C×1×1 output is the graph output (no classifier)."""
    if genotype not in GENOTYPES:
        raise InputError("unknown genotype", expected=", ".join(GENOTYPES), got=repr(genotype))
    _need_int("cells", cells, 1)
    _need_int("C", C, 2)
    _need_int("hw", hw, 1)
    _need_int("stem_multiplier", stem_multiplier, 1)
    image_hw = hw if image_hw is None else _need_int("image_hw", image_hw, 1)
    geno = GENOTYPES[genotype]
    b = _Builder(_need_dtype(dtype_bytes))
    size, shape = b.act(3, image_hw)
    stem = b.conv("stem", "stem", b.input("input", size, shape), stem_multiplier * C, hw)
    s0 = s1 = stem
    c_cur, hw_cur, reduction_prev = C, hw, False
    for i in range(cells):
        reduction = i in (cells // 3, 2 * cells // 3)
        if reduction:
            c_cur *= 2
        p = f"c{i}"
        hw0 = b.tensors[s0].shape[2]
        states = [_factorized_reduce(b, f"{p}.pre0", s0, c_cur, hw0) if reduction_prev
                  else _relu_conv(b, f"{p}.pre0", s0, c_cur, hw0),
                  _relu_conv(b, f"{p}.pre1", s1, c_cur, hw_cur)]
        hw_out = (hw_cur + 1) // 2 if reduction else hw_cur
        nodes, concat = (geno["reduce"], geno["reduce_concat"]) if reduction else (geno["normal"],
                                                                                  geno["normal_concat"])
        for k, pair in enumerate(nodes):
            branch = [_cell_op(b, f"{p}.n{k}{side}.{name}", name, states[src], c_cur, hw_cur,
                               2 if reduction and src < 2 else 1)
                      for side, (name, src) in zip("ab", pair, strict=True)]
            states.append(b.op(f"{p}.n{k}.add", "add", branch, [b.act(c_cur, hw_out)])[0])
        out = b.op(f"{p}.concat", "concat", [states[j] for j in concat], [b.act(len(concat) * c_cur, hw_out)])
        s0, s1, hw_cur, reduction_prev = s1, out[0], hw_out, reduction
    gap = b.op("gap", "gap", [s1], [b.act(b.tensors[s1].shape[1], 1)])
    params = {"genotype": genotype, "cells": cells, "C": C, "hw": hw, "stem_multiplier": stem_multiplier,
              "image_hw": image_hw, "dtype_bytes": dtype_bytes}
    return b.graph(f"{genotype}-c{cells}-C{C}-hw{hw}", {"generator": "cell_stack", "params": params}, gap)


def darts(cells: int = 8, C: int = 16, hw: int = 32, **kw) -> Graph:
    """DARTS-V2 cells (Liu et al. 2019); see ``cell_stack``."""
    return cell_stack("darts", cells, C, hw, **kw)


def nasnet(cells: int = 8, C: int = 16, hw: int = 32, **kw) -> Graph:
    """NASNet-A cells (Zoph et al. 2018); see ``cell_stack``."""
    return cell_stack("nasnet", cells, C, hw, **kw)


def amoebanet(cells: int = 8, C: int = 16, hw: int = 32, **kw) -> Graph:
    """AmoebaNet-A cells (Real et al. 2019); see ``cell_stack``."""
    return cell_stack("amoebanet", cells, C, hw, **kw)
