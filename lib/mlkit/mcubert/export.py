"""C arrays of an int8 BERT for a microcontroller runtime (``mlkit mcubert export``).

:func:`export_c` writes one folder, atomically (``atomic_dir``): ``model_data.h`` (include guard,
sizes, the arena plan, ``extern`` declarations), ``model_data.c`` (the initialised ``const`` arrays,
each ``<P>_ALIGN``: 16 bytes under GCC/Clang, overridable) and ``manifest.json`` (per array: C name,
source, role, dtype, shape, bytes, scales; totals; the plan; the config). Same input, same bytes.

Every constant is computed with the formulas and helpers of ``simulate``'s int8 path (``_Int8``),
so a runtime implementing those kernels on these arrays gives the simulator's bits (the tests run
an integer forward on the parsed arrays alone and match ``simulate``):

* int8 weights under their state-dict keys, ``[out][in]`` row-major as in the state dict; linear
  biases at s_x·s_w (int32, int64 where a value does not fit); LayerNorm γ, β in Q12 with the
  LayerNorm's ``frac`` and integer ε; per layer a 256-entry Q15 exp table (softmax) and a
  256-entry activation table (GELU/ReLU), both int32;
* requantisation as int32 ``mult`` + int32 ``shift`` (real ≈ mult · 2^(shift − 31), TFLM
  ``QuantizeMultiplier``): per output channel for the linears; per channel (or one, per tensor)
  for the embedding sum and the residual ADDs, one per input and one for the output; one for each
  attention product;
* ``<tag>_exp`` (int8): per-column exponents of an activation whose scale is base · 2^exp
  (the linears' and LayerNorms' inputs, the activation table's output);
* ``<P>_output_scale`` (float): the last hidden state is ``q · scale`` per column.

Names: ``<prefix>_`` + the state-dict key (or the simulator's activation tag) with every
character outside ``[A-Za-z0-9_]`` replaced by ``_``, made unique by a numeric suffix.

[R] A compressed (clustered low-rank) word embedding has no integer path in ``simulate``: it reads
``embeddings.word_embeddings.weight``. Calibrate on :func:`with_dense_embedding`'s state dict; the
export then stores, as ``ClusteredLowRank.int8_arrays`` quantises them, per-cluster int8 tables
T_c and projections P_c (one scale each), C+1 ``uint32`` offsets and C ``uint16`` ranks, and a
(C, D) mult/shift that requantises the int32 T_c[row]·P_c to the word table's int8 scale (clip to
±127, as the dense table's codes), which then enters the same embedding ADD. That word term is
within a code or two of the simulator's; everything after it is the same integer pipeline.
Not exported: the pooler and classifier (no int8 path in ``simulate``) and the step list (the
runtime runs the same loops as ``schedule``'s tiled or baseline builder).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from dataclasses import replace

import numpy as np

from mlkit.errors import InputError, OutputError

from .config import BertConfig, expected_shapes
from .fixedpoint import _multipliers
from .report import flash_bytes, tensor_bytes
from .schedule import SchedulePlan
from .simulate import (
    _ADD_SHIFT,
    _EXP_FRAC,
    _LN_FRAC,
    PROBS_SCALE,
    PROBS_ZERO,
    QuantParams,
    _act,
    _Int8,
    _pot,
    _quant,
    _Weights,
)

__all__ = ["export_c", "render_c", "with_dense_embedding", "FORMAT", "FORMAT_VERSION", "FILES"]

FORMAT, FORMAT_VERSION = "mlkit-mcubert-c", 1
FILES = ("model_data.h", "model_data.c", "manifest.json")
_WORD = "embeddings.word_embeddings"
_CTYPE = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
          "uint16": "uint16_t", "uint32": "uint32_t", "float32": "float"}
# int32/int64 ranges leave out the minimum: its decimal literal is not a C constant of that type
_RANGE = {"int8": (-128, 127), "int16": (-(1 << 15), (1 << 15) - 1), "int32": (1 - (1 << 31), (1 << 31) - 1),
          "int64": (1 - (1 << 63), (1 << 63) - 1), "uint16": (0, (1 << 16) - 1), "uint32": (0, (1 << 32) - 1)}
_PER_LINE = 24


def _ident(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


class _Arrays:
    """The exported arrays, in emission order, with unique C names."""

    def __init__(self, prefix: str):
        self.prefix, self.items, self.names = prefix, [], set()

    def add(self, base: str, values, dtype: str, *, source: str, role: str, **info) -> str:
        name = stem = _ident(f"{self.prefix}_{base}")
        k = 2
        while name in self.names:
            name, k = f"{stem}_{k}", k + 1
        self.names.add(name)
        a = np.asarray(values)
        if dtype == "float32":
            a = a.astype(np.float32)
        else:
            a = a.astype(np.int64)
            if dtype == "int":       # int32 where every value fits, else int64
                dtype = "int32" if not a.size or (a.min() >= _RANGE["int32"][0] and a.max() <= _RANGE["int32"][1]) else "int64"
            lo, hi = _RANGE[dtype]
            if a.size and (a.min() < lo or a.max() > hi):
                raise InputError(f"{source}: values do not fit the C type", expected=f"{dtype} in {lo}..{hi}",
                                 got=f"{int(a.min())}..{int(a.max())}")
        self.items.append({"c_name": name, "source": source, "role": role, "dtype": dtype, "shape": list(a.shape),
                           "bytes": int(max(a.size, 1) * np.dtype(dtype).itemsize), **info, "_values": a})
        return name


def _floats(x) -> float | list[float]:
    x = np.asarray(x, np.float64)
    return float(x) if x.ndim == 0 else [float(v) for v in x.ravel()]


# ---------------------------------------------------------------------------- checks
def _check(state_dict, cfg: BertConfig, quant, sp: SchedulePlan, prefix: str) -> None:
    if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
        raise InputError("bad C prefix", expected="a C identifier ([A-Za-z_][A-Za-z0-9_]*)", got=repr(prefix))
    if not isinstance(quant, QuantParams):
        raise InputError("export needs int8 quantisation parameters", got=type(quant).__name__,
                         hint="pass quant=calibrate(...)")
    s = sp.schedule
    if replace(s.cfg, num_labels=0) != replace(cfg, num_labels=0):
        diff = [f"{k} {a} != {b}" for k, a in cfg.to_dict().items() if k != "num_labels"
                for b in [s.cfg.to_dict()[k]] if a != b]
        raise InputError("the schedule plan is for another config", expected="a plan of this checkpoint's config",
                         got="; ".join(diff)[:200], hint="plan the schedule with the checkpoint's config")
    if s.elem_bytes != 1:
        raise InputError("export needs an int8 schedule", expected="elem_bytes 1", got=f"{s.elem_bytes} bytes")
    ends = [sp.offsets[b.id] + b.size for b in s.buffers.values() if b.id in sp.offsets]
    if not set(s.inputs) | {s.output} <= set(sp.offsets) or sp.arena_bytes < max(ends, default=0):
        raise InputError("the plan does not place its buffers inside its arena", expected=f"<= {sp.arena_bytes} bytes",
                         got=f"{max(ends, default=0)} bytes")
    s.validate()
    shapes = expected_shapes(cfg)
    for k in shapes:
        if k.startswith(("pooler.", "classifier.")):
            continue
        if k not in state_dict:
            raise InputError("state dict lacks a weight", expected=k, got=f"{len(state_dict)} keys")
        v = state_dict[k]
        v = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
        if tuple(v.shape) != shapes[k]:
            raise InputError(f"wrong shape for {k}", expected=str(shapes[k]), got=str(tuple(v.shape)))
        if not np.isfinite(v).all():
            raise InputError(f"non-finite weight in {k}", expected="finite values", got="NaN or Inf")


def _weight_scale(k: _Int8, name: str, n: int) -> np.ndarray:
    s = k.ws(name)
    if s.shape not in ((), (n,)) or not np.isfinite(s).all() or (s <= 0).any():
        raise InputError(f"bad weight scale for {name}", expected=f"one or {n} positive scales", got=str(s.shape))
    return s


# ---------------------------------------------------------------------------- the arrays
class _Builder:
    def __init__(self, state_dict, cfg: BertConfig, quant: QuantParams, sp: SchedulePlan, prefix: str):
        self.cfg, self.sp = cfg, sp
        self.W = _Weights(state_dict, cfg)
        self.k = _Int8(self.W, quant)
        self.out = _Arrays(prefix)
        self.exps: dict[str, str] = {}

    def mult(self, base: str, real, source: str, **info) -> dict:
        m, sh = _multipliers(real)
        return {"mult": self.out.add(base + "_mult", m, "int32", source=source, role="requant", real=_floats(real), **info),
                "shift": self.out.add(base + "_shift", sh, "int32", source=source, role="requant")}

    def exp(self, tag: str) -> str | None:
        """The int8 exponents of a per-column activation scale (None for one scale per tensor)."""
        base, e = _pot(self.k.s(tag))
        if e.ndim == 0:
            return None
        if tag not in self.exps:
            self.exps[tag] = self.out.add(tag + "_exp", e, "int8", source=f"activation {tag}", role="act_exp",
                                          base_scale=base, note="scale = base_scale * 2^exp per column")
        return self.exps[tag]

    def table(self, key: str, dim: int) -> np.ndarray:
        s = _weight_scale(self.k, key, dim)
        self.out.add(key, _quant(self.W[key], s, -127), "int8", source=key, role="weight", scale=_floats(s),
                     granularity="per column" if s.ndim else "per tensor")
        return s

    def add_op(self, base: str, inputs: dict[str, np.ndarray], s_out: np.ndarray, source: str) -> dict:
        """TFLM int8 ADD per channel (``_Int8._sum``): one multiplier per input, one for the sum."""
        twice_max = 2 * functools.reduce(np.maximum, list(inputs.values()))
        info = {f"in_{n}": self.mult(f"{base}_{n}", s / twice_max, source) for n, s in inputs.items()}
        info["out"] = self.mult(f"{base}_out", twice_max / ((1 << _ADD_SHIFT) * s_out), source)
        return info

    def linear(self, w: str, tin: str, tout: str) -> dict:
        bias = self.W[w + ".bias"]
        n = len(bias)
        base, e = _pot(self.k.s(tin))
        sw = np.broadcast_to(_weight_scale(self.k, w + ".weight", n), bias.shape)
        s_out = self.k.s(tout)
        wq = _quant(self.W[w + ".weight"], sw[:, None], -127)                       # (out, in)
        kernel = "int8" if not e.any() else "16x8"
        rec = {"in_tag": tin, "out_tag": tout, "kernel": kernel, "in_exp": self.exp(tin),
               "weight": self.out.add(w + ".weight", wq, "int8", source=w + ".weight", role="weight",
                                      scale=_floats(self.k.ws(w + ".weight")), layout="[out][in]",
                                      granularity="per output channel" if self.k.ws(w + ".weight").ndim else "per tensor"),
               "bias": self.out.add(w + ".bias", np.rint(bias / (base * sw)), "int", source=w + ".bias", role="bias",
                                    scale="input base scale x weight scale")}
        rec.update(self.mult(w, base * sw / s_out, f"{w}: {tin} -> {tout}", kernel=kernel))
        return rec

    def layernorm(self, w: str, tin: str, tout: str) -> dict:
        D, eps = self.cfg.hidden_size, self.cfg.layer_norm_eps
        base, e = _pot(self.k.s(tin))
        frac = int(min(8, (61 - 2 * math.log2(D) - 2 * (7 + int(e.max()))) // 2))
        s_out = self.k.s(tout)
        g = np.rint(self.W[w + ".weight"] / s_out * (1 << _LN_FRAC)).astype(np.int64)
        b = np.rint(self.W[w + ".bias"] / s_out * (1 << _LN_FRAC)).astype(np.int64)
        top = D * 128 << int(e.max())
        if frac < 0 or 2 * top * (int(np.abs(g).max()) + int(np.abs(b).max())) << frac >= 1 << 62:
            raise InputError(f"{w}: LayerNorm fixed point would overflow int64", got=f"D {D}, exps {e.max()}")
        src = f"{w}: {tin} -> {tout}"
        return {"in_tag": tin, "out_tag": tout, "in_exp": self.exp(tin),
                "gamma": self.out.add(w + ".weight", g, "int", source=w + ".weight", role="layernorm", q_frac=_LN_FRAC),
                "beta": self.out.add(w + ".bias", b, "int", source=w + ".bias", role="layernorm", q_frac=_LN_FRAC),
                "frac": self.out.add(w + "_frac", frac, "int32", source=src, role="layernorm"),
                "eps": self.out.add(w + "_eps", int(round(eps / base ** 2 * D * D)), "int64", source=src, role="layernorm")}

    def compressed_word(self) -> dict:
        cfg, D = self.cfg, self.cfg.hidden_size
        s_word = np.broadcast_to(_weight_scale(self.k, _WORD + ".weight", D), (D,))
        sizes = [n for n, _ in cfg.embedding_factors]
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        mults, shifts, tables, projs = [], [], [], []
        for c, (n, r) in enumerate(cfg.embedding_factors):
            tname, pname = f"{_WORD}.tables.{c}", f"{_WORD}.projections.{c}"
            if n * r == 0:
                mults.append(np.zeros(D, np.int64))
                shifts.append(np.zeros(D, np.int64))
                tables.append(None)
                projs.append(None)
                continue
            scales = []
            for key, out in ((tname, tables), (pname, projs)):
                x = self.W[key].astype(np.float64)
                s = float(np.abs(x).max()) / 127 or 1.0                     # as ClusteredLowRank.int8_arrays
                out.append(self.out.add(key, np.clip(np.rint(x / s), -127, 127), "int8", source=key,
                                        role="weight", scale=s, granularity="per tensor"))
                scales.append(s)
            m, sh = _multipliers(scales[0] * scales[1] / s_word)
            mults.append(m)
            shifts.append(sh)
        src = f"{_WORD}: int32 T_c[row] . P_c -> int8 at the word table's scale"
        return {"offsets": self.out.add("word_offsets", offsets, "uint32", source=_WORD, role="embedding_index"),
                "ranks": self.out.add("word_ranks", [r for _, r in cfg.embedding_factors], "uint16", source=_WORD,
                                      role="embedding_index"),
                "mult": self.out.add("word_mult", np.stack(mults), "int32", source=src, role="requant"),
                "shift": self.out.add("word_shift", np.stack(shifts), "int32", source=src, role="requant"),
                "tables": tables, "projections": projs}

    def build(self) -> dict:
        cfg, k, sp = self.cfg, self.k, self.sp
        D = cfg.hidden_size
        scales = {st.attrs["scale"] for st in sp.schedule.steps if st.op == "matmul_nt"}
        if len(scales) != 1:
            raise InputError("the plan's attention products disagree on their scale", got=str(sorted(scales)))
        (qk_scale,) = scales
        ops: dict = {"embeddings": {}}
        emb = ops["embeddings"]
        names = {n: f"embeddings.{n}_embeddings.weight" for n in ("word", "position", "token_type")}
        if cfg.embedding_factors:
            if names["word"] not in k.q.weight:
                raise InputError("quantisation parameters lack the word table's scale", expected=names["word"],
                                 hint="calibrate a compressed checkpoint on with_dense_embedding(state_dict, cfg)")
            _weight_scale(k, names["word"], D)
            emb["word"] = self.compressed_word()
        else:
            self.table(names["word"], D)
        for n in ("position", "token_type"):
            self.table(names[n], D)
        emb["add"] = self.add_op("emb", {n: k.ws(key) for n, key in names.items()}, k.s("emb"), "embedding sum -> emb")
        emb["layernorm"] = self.layernorm("embeddings.LayerNorm", "emb", "emb_ln")
        x = "emb_ln"
        ops["layers"] = []
        for i in range(cfg.num_hidden_layers):
            p, t = f"encoder.layer.{i}.", f"l{i}."
            lay = {n: self.linear(p + "attention.self." + n, x, t + n[0]) for n in ("query", "key", "value")}
            lay["scores"] = self.mult(t + "scores", k.s(t + "q", True) * k.s(t + "k", True) * qk_scale / k.s(t + "scores", True),
                                      f"{t}q . {t}k^T * {qk_scale!r} -> {t}scores", qk_scale=qk_scale)
            lay["softmax_exp"] = self.out.add(t + "softmax_exp", np.floor(
                (1 << _EXP_FRAC) * np.exp(-np.arange(256) * k.s(t + "scores", True)) + 0.5), "int32",
                source=f"softmax of {t}scores", role="table", q_frac=_EXP_FRAC, note="E[rowmax - s], s in scores codes")
            lay["context"] = self.mult(t + "context", PROBS_SCALE * k.s(t + "v", True) / k.s(t + "context", True),
                                       f"({t}probs + 128) . {t}v -> {t}context")
            lay["attn_out"] = self.linear(p + "attention.output.dense", t + "context", t + "attn_out")
            lay["attn_res"] = self.add_op(t + "attn_res", {"proj": k.s(t + "attn_out"), "res": k.s(x)},
                                          k.s(t + "attn_res"), f"{t}attn_out + {x} -> {t}attn_res")
            lay["attn_ln"] = self.layernorm(p + "attention.output.LayerNorm", t + "attn_res", t + "attn_ln")
            lay["ffn_in"] = self.linear(p + "intermediate.dense", t + "attn_ln", t + "ffn_in")
            base, _ = _pot(k.s(t + "ffn_act"))
            lay["ffn_act"] = {"table": self.out.add(t + "ffn_act_table", np.rint(
                _act(np.arange(-128, 128) * k.s(t + "ffn_in", True), cfg.hidden_act) / base), "int32",
                source=f"{cfg.hidden_act} of {t}ffn_in", role="table", note="T[q + 128], then >> out exp (rounding)"),
                "out_exp": self.exp(t + "ffn_act")}
            lay["ffn_out"] = self.linear(p + "output.dense", t + "ffn_act", t + "ffn_out")
            lay["ffn_res"] = self.add_op(t + "ffn_res", {"proj": k.s(t + "ffn_out"), "res": k.s(t + "attn_ln")},
                                         k.s(t + "ffn_res"), f"{t}ffn_out + {t}attn_ln -> {t}ffn_res")
            lay["out"] = self.layernorm(p + "output.LayerNorm", t + "ffn_res", t + "out")
            ops["layers"].append(lay)
            x = t + "out"
        ops["output_scale"] = self.out.add("output_scale", np.broadcast_to(k.s(x), (D,)) if k.s(x).ndim else k.s(x),
                                           "float32", source=f"activation {x}", role="output", scale=_floats(k.s(x)))
        ops["output_tag"] = x
        return ops


# ---------------------------------------------------------------------------- rendering
def _literal(a: np.ndarray, dtype: str) -> list[str]:
    if dtype == "float32":
        return [np.format_float_scientific(v, unique=True) + "f" for v in a.ravel()]
    vals = a.ravel().tolist()
    if dtype == "int64":
        return [f"{v}LL" if abs(v) > 2147483647 else str(v) for v in vals]
    if dtype == "uint32":
        return [f"{v}u" for v in vals]
    return list(map(str, vals))


def _render(arrays: list[dict], header: dict, buffers: list[dict], pointers: list[tuple[str, str, list]],
            prefix: str) -> tuple[str, str]:
    P = prefix.upper()
    guard = f"{P}_MODEL_DATA_H"
    h = [f"/* model_data.h: generated by mlkit mcubert export ({FORMAT} {FORMAT_VERSION}); do not edit.",
         f" * {header['summary']}",
         " * Integer semantics: mlkit.mcubert.simulate (int8 path); every array is described in manifest.json. */",
         f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
         f"#ifndef {P}_ALIGN", "#if defined(__GNUC__) || defined(__clang__)",
         f"#define {P}_ALIGN __attribute__((aligned(16)))", "#else", f"#define {P}_ALIGN", "#endif", "#endif", ""]
    h += [f"#define {P}_{k} {v}" for k, v in header["defines"].items()]
    h += ["", f"/* activation arena: offsets in bytes from a {header['defines']['ARENA_ALIGN']}-byte aligned base */",
          f"enum {prefix}_arena_offset {{"]
    h += [f"    {b['macro']} = {b['offset']}," for b in buffers] + ["};", ""]
    h += [f"typedef struct {{ const char *name; uint32_t offset; uint32_t rows; uint32_t cols; uint32_t elem_bytes; }} "
          f"{prefix}_buffer_t;", f"#define {P}_NUM_BUFFERS {len(buffers)}",
          f"extern const {prefix}_buffer_t {prefix}_buffers[{P}_NUM_BUFFERS];", ""]
    c = [f"/* model_data.c: generated by mlkit mcubert export ({FORMAT} {FORMAT_VERSION}); do not edit. */",
         '#include "model_data.h"', "", f"const {prefix}_buffer_t {prefix}_buffers[{P}_NUM_BUFFERS] = {{"]
    c += [f'    {{"{b["name"]}", {b["offset"]}u, {b["rows"]}u, {b["cols"]}u, {b["elem_bytes"]}u}},' for b in buffers]
    c += ["};", ""]
    for a in arrays:
        vals = a["_values"]
        ct, n = _CTYPE[a["dtype"]], max(vals.size, 1)
        shape = "x".join(map(str, a["shape"])) or "scalar"
        h.append(f"extern const {ct} {a['c_name']}[{n}];  /* {a['source']}: {a['dtype']} {shape} */")
        lit = _literal(vals, a["dtype"])
        body = ",\n".join("    " + ", ".join(lit[i:i + _PER_LINE]) for i in range(0, len(lit), _PER_LINE))
        c += [f"const {ct} {a['c_name']}[{n}] {P}_ALIGN = {{", body, "};", ""]
    for name, ct, items in pointers:
        h.append(f"extern const {ct} *const {name}[{len(items)}];  /* per cluster; NULL for rank 0 */")
        c += [f"const {ct} *const {name}[{len(items)}] = {{", "    " + ", ".join(i or "0" for i in items), "};", ""]
    h += ["", f"#endif /* {guard} */", ""]
    return "\n".join(h), "\n".join(c)


def render_c(state_dict, cfg: BertConfig, quant: QuantParams, sched_plan: SchedulePlan, *,
             prefix: str = "mcubert") -> tuple[dict[str, bytes], dict]:
    """({file name: bytes} for :data:`FILES`, the manifest dict) without touching the disk."""
    _check(state_dict, cfg, quant, sched_plan, prefix)
    b = _Builder(state_dict, cfg, quant, sched_plan, prefix)
    ops = b.build()
    s, sp, P = sched_plan.schedule, sched_plan, prefix.upper()
    bufs, seen = [], set()
    for buf in s.buffers.values():
        if buf.id not in sp.offsets:        # never touched by a step: no place in the arena
            continue
        macro = stem = f"{P}_BUF_{_ident(buf.id).upper()}"
        k = 2
        while macro in seen:
            macro, k = f"{stem}_{k}", k + 1
        seen.add(macro)
        bufs.append({"name": buf.id, "macro": macro, "offset": sp.offsets[buf.id], "rows": buf.rows, "cols": buf.cols,
                     "elem_bytes": buf.elem_bytes, "dtype": buf.dtype, "bytes": buf.size})
    macro_of = {x["name"]: x["macro"] for x in bufs}
    D = cfg.hidden_size
    defines = {"SEQ_LEN": s.seq_len, "HIDDEN_SIZE": D, "NUM_HEADS": cfg.num_attention_heads, "HEAD_DIM": cfg.head_dim,
               "NUM_LAYERS": cfg.num_hidden_layers, "INTERMEDIATE_SIZE": cfg.intermediate_size,
               "VOCAB_SIZE": cfg.vocab_size, "TYPE_VOCAB_SIZE": cfg.type_vocab_size,
               "MAX_POSITIONS": cfg.max_position_embeddings, "NUM_CLUSTERS": len(cfg.embedding_factors),
               "ARENA_SIZE": sp.arena_bytes, "ARENA_ALIGN": sp.alignment, "SCHEDULE_TILED": int(s.kind == "tiled"),
               "TILE": s.tile or 0, "ORDER_TILE_OUTER": int(s.order == "tile-outer"),
               "PER_CHANNEL": int(any(np.ndim(v) for v in quant.act.values())),
               "ADD_SHIFT": _ADD_SHIFT, "LN_FRAC": _LN_FRAC, "EXP_FRAC": _EXP_FRAC, "PROBS_ZERO": f"({PROBS_ZERO})",
               "INPUT_IDS": macro_of[s.inputs[0]], "TOKEN_TYPE_IDS": macro_of[s.inputs[1]], "OUTPUT": macro_of[s.output]}
    pointers = []
    if cfg.embedding_factors:
        w = ops["embeddings"]["word"]
        pointers = [(f"{prefix}_word_tables", "int8_t", w["tables"]),
                    (f"{prefix}_word_projections", "int8_t", w["projections"])]
    clusters = f" (clustered low-rank, {len(cfg.embedding_factors)} clusters)" if cfg.embedding_factors else ""
    summary = (f"BERT L{cfg.num_hidden_layers}/H{D}/A{cfg.num_attention_heads}/FF{cfg.intermediate_size}, vocab "
               f"{cfg.vocab_size}{clusters}, seq len {s.seq_len}, {s.label}, arena {sp.arena_bytes} bytes")
    hdr, src = _render(b.out.items, {"summary": summary, "defines": defines}, bufs, pointers, prefix)
    arrays = [{k: v for k, v in a.items() if k != "_values"} for a in b.out.items]
    by_role: dict[str, int] = {}
    for a in arrays:
        by_role[a["role"]] = by_role.get(a["role"], 0) + a["bytes"]
    total = sum(by_role.values())
    shapes = expected_shapes(cfg)
    left_out = {k: tensor_bytes(k, v) for k, v in shapes.items() if k.startswith(("pooler.", "classifier."))}
    files = {"model_data.h": hdr.encode(), "model_data.c": src.encode()}
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "prefix": prefix,
        "files": {n: {"bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in files.items()},
        "config": cfg.to_dict(), "seq_len": s.seq_len,
        "schedule": {"kind": s.kind, "order": s.order, "tile": s.tile, "label": s.label, "arena_bytes": sp.arena_bytes,
                     "peak_live_bytes": sp.peak_live_bytes, "alignment": sp.alignment, "steps": len(s.steps),
                     "inputs": list(s.inputs), "output": s.output, "buffers": bufs},
        "defines": {f"{P}_{k}": v for k, v in defines.items()},
        "quant": {"per_channel": bool(defines["PER_CHANNEL"]), "output_tag": ops["output_tag"],
                  "activation_scales": {t: _floats(v) for t, v in sorted(quant.act.items())}},
        "ops": ops,
        "arrays": arrays,
        "totals": {"flash_bytes": total, "flash_bytes_by_role": dict(sorted(by_role.items())), "arrays": len(arrays),
                   "report_flash_bytes": flash_bytes(cfg), "report_flash_bytes_not_exported": left_out,
                   "report_note": "report.flash_bytes counts every parameter (pooler and classifier too, not exported "
                                  "here) at int8 + one 8-byte scale per matrix, int32 biases, int16 LayerNorm; the "
                                  "export stores per-channel mult/shift, LayerNorm in Q12 int32/int64, and per layer "
                                  "the exp and activation tables and the exponent arrays the integer kernels need"},
    }
    files["manifest.json"] = (json.dumps(manifest, indent=1) + "\n").encode()
    return files, manifest


def export_c(state_dict, cfg: BertConfig, quant: QuantParams, sched_plan: SchedulePlan, dst_dir, *,
             prefix: str = "mcubert") -> dict:
    """Write ``model_data.h``, ``model_data.c`` and ``manifest.json`` into the folder ``dst_dir``,
    all or nothing (an existing folder is replaced only once all three are written). ``quant`` from
    ``simulate.calibrate`` (for a compressed embedding, on :func:`with_dense_embedding`'s state
    dict), ``sched_plan`` an int8 plan of ``cfg``. Returns the manifest. Bad input: ``InputError``
    (nothing written); a folder that cannot be created or written: ``OutputError``."""
    from mlkit.codecs._io import atomic_dir

    files, manifest = render_c(state_dict, cfg, quant, sched_plan, prefix=prefix)
    try:
        with atomic_dir(dst_dir) as tmp:
            for name in FILES:
                (tmp / name).write_bytes(files[name])
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"{dst_dir}: cannot write the export", got=exc.strerror or str(exc)) from exc
    return manifest


def with_dense_embedding(state_dict, cfg: BertConfig) -> dict:
    """The state dict plus ``embeddings.word_embeddings.weight`` (V x D float32) rebuilt from a
    clustered low-rank embedding's tables and projections, so ``calibrate`` and ``simulate`` run on
    a compressed checkpoint. A dense config returns the state dict unchanged."""
    if not cfg.embedding_factors:
        return state_dict
    W = _Weights(state_dict, cfg)
    rows = [W[f"{_WORD}.tables.{c}"].astype(np.float64) @ W[f"{_WORD}.projections.{c}"].astype(np.float64)
            if n * r else np.zeros((n, cfg.hidden_size)) for c, (n, r) in enumerate(cfg.embedding_factors)]
    return {**state_dict, _WORD + ".weight": np.concatenate(rows).astype(np.float32)}
