"""Run a planned schedule inside one preallocated arena (paper notes §1b, §7 check 5).

:func:`simulate` allocates ONE byte array of ``plan.arena_bytes`` (or ``arena_bytes``, never less),
makes every buffer a numpy view of it at its planned offset (row-major ``rows x cols`` of the
buffer's dtype), writes the token ids into their int32 buffers and runs the steps in order: each
kernel reads its input views and writes its output view, in the arena. A wrong lifetime or offset
corrupts the result instead of going unnoticed. [R] The arena starts as 0xFF bytes (NaN in
float32), so a read of bytes that no step wrote shows up in the float path.

Two numeric paths, chosen by the schedule's ``elem_bytes``:

* float32 (4): the ops of ``schedule``'s docstring in float32 (erf GELU), weights float32.
* int8 (1), with ``quant`` from :func:`calibrate`: post-training quantisation with static scales
  and integer-only arithmetic at run time. Tables and multipliers are built from the scales before
  the first step (offline, "in flash"). Every kernel is row-local or per element with static
  scales, so a tiled schedule gives the same bits as the untiled baseline.

int8 scheme (all [R]; the paper gives none):

* Scales are keyed by *tags*, one per tensor kind per layer: ``emb`` (word + position + type sum),
  ``emb_ln``, and ``l{i}.<kind>`` for the kinds in :data:`TAG_KINDS`. The simulator tags each
  buffer row with what wrote it, so a scale follows its data through any schedule.
* Activations: int8 symmetric in [-128, 127], absmax/127 over a float32 baseline forward on the
  calibration ids. ``per_channel=False``: one scale per tag. ``per_channel=True`` (default): the
  residual stream and what feeds the linears (:data:`PER_CHANNEL_KINDS`) get one scale per column,
  a power of two times the tag's base (2^0..2^8; FQ-ViT's power-of-two factor), because real
  BERTs carry outlier channels (MiniLM-L6: column 99 of the FFN residual reaches 216 against a
  median column max of 1.8; one scale per tensor leaves the other columns 0-2 codes and the final
  cosine at ~0.45). q, k, v, scores, context and the GELU input stay per tensor (they meet another
  activation in a product, or index a table). Probabilities: TFLM's int8 softmax output, 1/256
  with zero point -128.
* Weights: int8 symmetric in [-127, 127], per output channel (per column for the embedding
  tables) with ``per_channel``, else per tensor. Linear biases int32/int64 at s_x·s_w; LayerNorm
  γ/s_out and β/s_out per channel in Q12.
* linear: the input, shifted left by its columns' exponents (int16: 127·2^8 < 2^15), times the int8
  weights. With no shift (every exponent 0) it is the int8 kernel: int32 accumulator and
  :func:`multiply_by_quantized_multiplier`; otherwise TFLM's 16x8 kernel: int64 accumulator and
  :func:`multiply_by_quantized_multiplier_64`. matmul_nt / matmul: int32 accumulators, 32-bit
  requantisation. Products are computed with float64 BLAS on integer values: every partial sum is an
  integer below 2^53, so the result is exactly the integer accumulator whatever the blocking.
* add (residual) and the embedding sum: TFLM's int8 ADD per channel: each input << 20, rescaled by
  its own multiplier to 2·max(scales), summed, requantised. The sum is symmetric in its inputs, so
  the baseline's ``add(attn_out, x)`` and the tiled ``add(x, attn_out)`` give the same bits.
* softmax per row: d = rowmax - s_q in [0, 255]; a 256-entry int32 table E[d] = round(2^15·exp(-d·s));
  p_q = round(E·256 / ΣE) - 128 by integer division (Cortex-M7 has SDIV), saturated to 127.
* LayerNorm per row: x' = q << e (common base scale), S1 = Σx', S2 = Σx'² (int64), D²·var =
  D·S2 - S1² (+ round(ε·D²/s²)), σ' = isqrt(D²·var·4^f) = D·σ·2^f by Newton's iteration
  (:func:`isqrt`; f = 8 or less so nothing overflows int64), then
  out = round(((D·x' - S1)·2^f·G + B·σ') / (σ'·2^12)), one int64 division per element.
* GELU / gelu_new / relu: a 256-entry int32 table indexed by the int8 input, at the output's base
  scale, then a rounding right shift by each column's exponent.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

import numpy as np

from mlkit.errors import InputError

from .config import BertConfig, expected_shapes
from .fixedpoint import (
    _I32,
    _multipliers,
    isqrt,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_64,
    quantize_multiplier,
    rounding_divide_by_pot,
    rounding_doubling_high_mul,
)
from .schedule import SchedulePlan, Step, baseline_schedule, plan

__all__ = ["simulate", "calibrate", "QuantParams", "quantize_multiplier", "rounding_doubling_high_mul",
           "rounding_divide_by_pot", "multiply_by_quantized_multiplier", "multiply_by_quantized_multiplier_64",
           "isqrt", "TAG_KINDS", "PER_CHANNEL_KINDS"]

TAG_KINDS = ("q", "k", "v", "scores", "probs", "context", "attn_out", "attn_res", "attn_ln", "ffn_in",
             "ffn_act", "ffn_out", "ffn_res", "out")
PER_CHANNEL_KINDS = ("emb", "emb_ln", "attn_out", "attn_res", "attn_ln", "ffn_act", "ffn_out", "ffn_res", "out")
PROBS_SCALE, PROBS_ZERO = 1 / 256, -128
MAX_EXP = 8                                     # per-column scale factors 2^0 .. 2^8
_ADD_SHIFT, _LN_FRAC, _EXP_FRAC = 20, 12, 15
_WEIGHT_TAG = {"attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
               "attention.output.dense": "attn_out", "attention.output.LayerNorm": "attn_ln",
               "intermediate.dense": "ffn_in", "output.dense": "ffn_out", "output.LayerNorm": "out"}


def _imatmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact integer a @ b (float64 BLAS; exact while partial sums stay below 2^53)."""
    return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)


def _sat8(x) -> np.ndarray:
    return np.clip(x, -128, 127).astype(np.int8)


def _quant(x: np.ndarray, s, lo: int = -128) -> np.ndarray:
    return np.clip(np.rint(np.asarray(x, np.float64) / s), lo, 127).astype(np.int64)


def _pot(s: np.ndarray) -> tuple[float, np.ndarray]:
    """A scale (scalar or per column) as base · 2^e with e in 0..MAX_EXP."""
    base = float(np.min(s))
    e = np.rint(np.log2(s / base)).astype(np.int64)
    if base <= 0 or (e > MAX_EXP).any() or not np.array_equal(base * 2.0 ** e, s):
        raise InputError("per-column activation scales must be a base times powers of two",
                         expected=f"base · 2^(0..{MAX_EXP})", got=f"{np.size(s)} scales in {np.min(s):.3g}..{np.max(s):.3g}")
    return base, e


# ---------------------------------------------------------------------------- tags and weights
def _tag_of(weight: str) -> str:
    if weight == "embeddings.LayerNorm":
        return "emb_ln"
    m = re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)", weight)
    if m is None or m[2] not in _WEIGHT_TAG:
        raise InputError("step names an unknown weight", got=weight)
    return f"l{m[1]}.{_WEIGHT_TAG[m[2]]}"


def _out_tag(st: Step, in_tags: list[str]) -> str:
    if st.op == "embed":
        return "emb"
    if st.op in ("linear", "layernorm"):
        return _tag_of(st.attrs["weight"])
    if st.op == "add":
        src = [t for t in in_tags if t.endswith((".attn_out", ".ffn_out"))]
        if len(src) != 1:
            raise InputError(f"step {st.name}: a residual add needs one projection output", got=str(in_tags))
        return src[0].replace("_out", "_res")
    kind = {"matmul_nt": "scores", "softmax_rows": "probs", "matmul": "context", "act": "ffn_act"}[st.op]
    return in_tags[0].split(".")[0] + "." + kind


class _Weights:
    """float32 numpy views of a state dict (torch tensors or arrays), converted on first use."""

    def __init__(self, sd, cfg: BertConfig):
        self.sd, self.shapes, self.cache = sd, expected_shapes(cfg), {}

    def __getitem__(self, k: str) -> np.ndarray:
        if k not in self.cache:
            if k not in self.sd:
                raise InputError("state dict lacks a weight", expected=k, got=f"{len(self.sd)} keys")
            v = self.sd[k]
            v = np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v, np.float32)
            if k in self.shapes and v.shape != self.shapes[k]:
                raise InputError(f"wrong shape for {k}", expected=str(self.shapes[k]), got=str(v.shape))
            self.cache[k] = v
        return self.cache[k]


def _act(x: np.ndarray, fn: str) -> np.ndarray:
    if fn == "relu":
        return np.maximum(x, 0)
    if fn == "gelu_new":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    from scipy.special import erf

    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


# ---------------------------------------------------------------------------- float32 kernels
class _Float32:
    def __init__(self, W: _Weights, record=None):
        self.W, self.record = W, record

    def __call__(self, st: Step, ins: list[np.ndarray], in_tags, tag) -> np.ndarray:
        W, at, f32 = self.W, st.attrs, np.float32
        if st.op == "embed":
            p, r0 = at["weight"], st.inputs[0].r0
            out = (W[p + ".word_embeddings.weight"][ins[0][:, 0]] + W[p + ".position_embeddings.weight"][r0:r0 + len(ins[0])]
                   + W[p + ".token_type_embeddings.weight"][ins[1][:, 0]])
        elif st.op == "linear":
            c0, c1 = at["cols"]
            out = ins[0] @ W[at["weight"] + ".weight"][c0:c1].T + W[at["weight"] + ".bias"][c0:c1]
        elif st.op == "matmul_nt":
            out = f32(at["scale"]) * (ins[0] @ ins[1].T)
        elif st.op == "matmul":
            out = ins[0] @ ins[1]
        elif st.op == "softmax_rows":
            e = np.exp(ins[0] - ins[0].max(1, keepdims=True))
            out = e / e.sum(1, keepdims=True)
        elif st.op == "add":
            out = ins[0] + ins[1]
        elif st.op == "layernorm":
            x = ins[0]
            mu = x.mean(1, keepdims=True)
            var = ((x - mu) ** 2).mean(1, keepdims=True)
            out = (x - mu) / np.sqrt(var + f32(at["eps"])) * W[at["weight"] + ".weight"] + W[at["weight"] + ".bias"]
        else:
            out = _act(ins[0], at["fn"]).astype(f32)
        if self.record is not None:
            self.record(tag, out)
        return out


# ---------------------------------------------------------------------------- int8 kernels
@dataclass(frozen=True)
class QuantParams:
    """Static scales of a post-training int8 quantisation (real = q · scale).

    ``act``: per tag (``emb``, ``emb_ln``, ``l{i}.<kind>``, kinds in :data:`TAG_KINDS`), a 0-d array
    (per tensor) or one scale per column, a base times powers of two; ``.probs`` is 1/256 with zero
    point -128. ``weight``: per weight tensor (linear weights, the three embedding tables), a 0-d
    array or one scale per output channel (per column for the tables)."""
    act: dict[str, np.ndarray]
    weight: dict[str, np.ndarray]


class _Int8:
    def __init__(self, W: _Weights, q: QuantParams):
        self.W, self.q, self.cache = W, q, {}

    def s(self, tag: str, scalar: bool = False) -> np.ndarray:
        if tag not in self.q.act:
            raise InputError("quantisation parameters lack a scale", expected=tag,
                             hint="calibrate() with the same config as the schedule")
        s = np.asarray(self.q.act[tag], np.float64)
        if scalar and s.ndim:
            raise InputError(f"{tag} must have one scale per tensor", got=f"{s.size} scales")
        return s

    def ws(self, name: str) -> np.ndarray:
        if name not in self.q.weight:
            raise InputError("quantisation parameters lack a weight scale", expected=name)
        return np.asarray(self.q.weight[name], np.float64)

    def memo(self, key, make):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def __call__(self, st: Step, ins: list[np.ndarray], in_tags, tag) -> np.ndarray:
        at, W = st.attrs, self.W
        if st.op == "embed":
            p, r0 = at["weight"], st.inputs[0].r0
            names = [p + n + "_embeddings.weight" for n in (".word", ".position", ".token_type")]
            rows = [W[names[0]][ins[0][:, 0]], W[names[1]][r0:r0 + len(ins[0])], W[names[2]][ins[1][:, 0]]]
            return self._sum([(_quant(r, self.ws(n), -127), self.ws(n)) for r, n in zip(rows, names, strict=True)], self.s(tag))
        if st.op == "add":
            return self._sum([(a.astype(np.int64), self.s(t)) for a, t in zip(ins, in_tags, strict=True)], self.s(tag))
        if st.op == "linear":
            return self._linear(ins[0], at["weight"], at["cols"], in_tags[0], tag)
        if st.op == "matmul_nt":
            real = self.s(in_tags[0], True) * self.s(in_tags[1], True) * at["scale"] / self.s(tag, True)
            return _sat8(multiply_by_quantized_multiplier(_imatmul(ins[0], ins[1].T), *_multipliers(real)))
        if st.op == "matmul":
            if not in_tags[0].endswith(".probs"):
                raise InputError(f"step {st.name}: matmul expects probabilities first", got=in_tags[0])
            acc = _imatmul(ins[0].astype(np.int64) - PROBS_ZERO, ins[1])
            real = PROBS_SCALE * self.s(in_tags[1], True) / self.s(tag, True)
            return _sat8(multiply_by_quantized_multiplier(acc, *_multipliers(real)))
        if st.op == "softmax_rows":
            table = self.memo(("exp", in_tags[0]), lambda: np.floor(
                (1 << _EXP_FRAC) * np.exp(-np.arange(256) * self.s(in_tags[0], True)) + 0.5).astype(np.int64))
            x = ins[0].astype(np.int64)
            e = table[x.max(1, keepdims=True) - x]
            tot = e.sum(1, keepdims=True)
            return _sat8((e * 512 + tot) // (2 * tot) + PROBS_ZERO)
        if st.op == "layernorm":
            return self._layernorm(ins[0], at["weight"], at["eps"], in_tags[0], tag)
        base, e = _pot(self.s(tag))
        table = self.memo(("act", at["fn"], in_tags[0], tag), lambda: np.rint(
            _act(np.arange(-128, 128) * self.s(in_tags[0], True), at["fn"]) / base).astype(np.int64))
        return _sat8(rounding_divide_by_pot(table[ins[0].astype(np.int64) + 128], e))

    def _linear(self, x8, w: str, cols, tin: str, tout: str) -> np.ndarray:
        (c0, c1), (base, e) = cols, _pot(self.s(tin))
        sw = np.broadcast_to(self.ws(w + ".weight"), self.W[w + ".bias"].shape)
        s_out = self.s(tout)
        wq = self.memo(("w", w), lambda: _quant(self.W[w + ".weight"], sw[:, None], -127).T.astype(np.float64))
        bq = self.memo(("b", w, tin), lambda: np.rint(self.W[w + ".bias"] / (base * sw)).astype(np.int64))
        acc = _imatmul(x8.astype(np.int64) << e, wq[:, c0:c1]) + bq[c0:c1]
        m, sh = self.memo(("m", w, tin, tout, c0), lambda: _multipliers(
            base * sw[c0:c1] / (s_out[c0:c1] if s_out.ndim else s_out)))
        if not e.any():          # int8 x int8: the int32 kernel
            return _sat8(multiply_by_quantized_multiplier(np.clip(acc, *_I32), m, sh))
        return _sat8(multiply_by_quantized_multiplier_64(acc, m, sh))

    def _sum(self, terms, s_out: np.ndarray) -> np.ndarray:
        """TFLM int8 ADD per channel, for n inputs (zero points 0)."""
        twice_max = 2 * functools.reduce(np.maximum, [s for _, s in terms])
        acc = sum(multiply_by_quantized_multiplier(x << _ADD_SHIFT, *_multipliers(s / twice_max)) for x, s in terms)
        return _sat8(multiply_by_quantized_multiplier(acc, *_multipliers(twice_max / ((1 << _ADD_SHIFT) * s_out))))

    def _layernorm(self, x8, w: str, eps: float, tin: str, tout: str) -> np.ndarray:
        D, (base, e) = x8.shape[1], _pot(self.s(tin))
        frac = int(min(8, (61 - 2 * math.log2(D) - 2 * (7 + int(e.max()))) // 2))

        def make():
            s_out = self.s(tout)
            g = np.rint(self.W[w + ".weight"] / s_out * (1 << _LN_FRAC)).astype(np.int64)
            b = np.rint(self.W[w + ".bias"] / s_out * (1 << _LN_FRAC)).astype(np.int64)
            top = D * 128 << int(e.max())               # bound of |Σx'|; |D·x' - S1| <= 2·top, σ' <= top·2^frac
            if 2 * top * (int(np.abs(g).max()) + int(np.abs(b).max())) << frac >= 1 << 62:
                raise InputError(f"{w}: LayerNorm fixed point would overflow int64", got=f"D {D}, exps {e.max()}")
            return g, b, int(round(eps / base ** 2 * D * D))

        G, B, eps_i = self.memo(("ln", w, tin, tout), make)
        x = x8.astype(np.int64) << e
        S1 = x.sum(1, keepdims=True)
        var = D * (x * x).sum(1, keepdims=True) - S1 * S1 + eps_i           # D² · var
        sd = np.maximum(isqrt(var << 2 * frac), 1)                           # D · σ · 2^frac (1: a flat row)
        num = (D * x - S1) * G << frac
        num += B * sd
        den = sd << _LN_FRAC
        return _sat8((2 * num + den) // (2 * den))

    def dequantise(self, q8: np.ndarray, tag: str) -> np.ndarray:
        return (q8.astype(np.float64) * self.s(tag)).astype(np.float32)


# ---------------------------------------------------------------------------- the arena machine
def _check_ids(ids, n: int, top: int, what: str) -> np.ndarray:
    a = np.asarray(ids)
    if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
        raise InputError(f"{what} must be a 1-D integer sequence", got=f"{a.dtype} of shape {a.shape}")
    if len(a) != n:
        raise InputError(f"{what}: length differs from the schedule's sequence length", expected=str(n),
                         got=str(len(a)), hint="build the schedule for this length")
    if a.size and (a.min() < 0 or a.max() >= top):
        bad = int(a.max()) if a.max() >= top else int(a.min())
        raise InputError(f"{what} outside the table", expected=f"0..{top - 1}", got=str(bad))
    return a.astype(np.int32)


def _run(sp: SchedulePlan, arena: np.ndarray, kernel, ids: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, str]:
    """Run every step on views of ``arena``; (output buffer's view, its tag)."""
    s = sp.schedule
    mem, tags = {}, {}
    for b in s.buffers.values():
        if b.id not in sp.offsets:
            continue
        off = sp.offsets[b.id]
        if off < 0 or off + b.size > len(arena):
            raise InputError(f"plan puts buffer {b.id} outside the arena", expected=f"<= {len(arena)} bytes",
                             got=f"{off}..{off + b.size}")
        mem[b.id] = arena[off:off + b.size].view(np.dtype(b.dtype)).reshape(b.rows, b.cols)
        tags[b.id] = [None] * b.rows
    mem[s.inputs[0]][:, 0], mem[s.inputs[1]][:, 0] = ids, types
    tags[s.inputs[0]] = tags[s.inputs[1]] = ["ids"] * s.seq_len
    for st in s.steps:
        in_tags = []
        for v in st.inputs:
            t = set(tags[v.buf][v.r0:v.r1])
            if len(t) != 1 or None in t:
                raise InputError(f"step {st.name}: reads rows of {v.buf} holding {sorted(map(str, t))}")
            in_tags.append(t.pop())
        tag = _out_tag(st, in_tags)
        out = kernel(st, [mem[v.buf][v.r0:v.r1, v.c0:v.c1] for v in st.inputs], in_tags, tag)
        (o,) = st.outputs
        mem[o.buf][o.r0:o.r1, o.c0:o.c1] = out
        tags[o.buf][o.r0:o.r1] = [tag] * (o.r1 - o.r0)
    return mem[s.output], tags[s.output][0]


def simulate(sched_plan: SchedulePlan, state_dict, ids, types=None, *, quant: QuantParams | None = None,
             arena_bytes: int | None = None) -> np.ndarray:
    """The last hidden state (L x D, float32; the int8 path dequantised) of the planned schedule run
    inside one arena of ``arena_bytes`` (default: the plan's; fewer is refused). float32 schedules
    (``elem_bytes=4``) take no ``quant``; int8 ones (``elem_bytes=1``) need :func:`calibrate`'s."""
    s = sched_plan.schedule
    cfg, need = s.cfg, sched_plan.arena_bytes
    n = need if arena_bytes is None else int(arena_bytes)
    if n < need:
        raise InputError("arena smaller than the plan", expected=f">= {need} bytes", got=f"{n} bytes")
    if s.elem_bytes not in (1, 4):
        raise InputError("unsupported activation type", expected="int8 or float32", got=f"{s.elem_bytes} bytes")
    if s.elem_bytes == 4 and quant is not None:
        raise InputError("float32 schedule given quantisation parameters", hint="plan an elem_bytes=1 schedule")
    if s.elem_bytes == 1 and quant is None:
        raise InputError("int8 schedule needs quantisation parameters", hint="pass quant=calibrate(...)")
    ids = _check_ids(ids, s.seq_len, cfg.vocab_size, "token ids")
    types = _check_ids(np.zeros(s.seq_len, np.int32) if types is None else types, s.seq_len,
                       cfg.type_vocab_size, "token types")
    s.validate()
    W = _Weights(state_dict, cfg)
    kernel = _Float32(W) if quant is None else _Int8(W, quant)
    out, tag = _run(sched_plan, np.full(n, 0xFF, np.uint8), kernel, ids, types)
    return out.astype(np.float32) if quant is None else kernel.dequantise(out, tag)


def calibrate(state_dict, cfg: BertConfig, ids_list, types_list=None, *, per_channel: bool = True) -> QuantParams:
    """Static int8 scales from float32 baseline forwards on ``ids_list`` (sequences of any lengths up
    to the position table): absmax/127 per tag, or per column as powers of two times a base for
    :data:`PER_CHANNEL_KINDS` with ``per_channel``; probabilities 1/256. Weights: absmax/127 per
    output channel (``per_channel``) or per tensor. [R] No clipping: saturation only beyond the
    calibration maxima; per-column maxima need more rows than one per tensor (8 x 128 tokens on
    random BERT-tiny give the same cosine as per tensor, 4 x 128 a slightly worse one)."""
    if len(ids_list) == 0:
        raise InputError("no calibration sequences", expected="at least one list of token ids")
    W = _Weights(state_dict, cfg)
    amax: dict[str, np.ndarray] = {}

    def record(tag, x):       # per column where a tag may get per-column scales (widths D or F)
        a = np.abs(x).max(0) if tag.split(".")[-1] in PER_CHANNEL_KINDS else np.abs(x).max()
        amax[tag] = np.maximum(amax.get(tag, 0.0), a.astype(np.float64))

    kernel = _Float32(W, record)
    for k, ids in enumerate(ids_list):
        ids = _check_ids(ids, len(ids), cfg.vocab_size, "token ids")
        t = np.zeros(len(ids), np.int32) if types_list is None else types_list[k]
        t = _check_ids(t, len(ids), cfg.type_vocab_size, "token types")
        sp = plan(baseline_schedule(cfg, len(ids), elem_bytes=4))
        _run(sp, np.full(sp.arena_bytes, 0xFF, np.uint8), kernel, ids, t)
    act = {}
    for tag, a in amax.items():
        s = np.maximum(a, 1e-8) / 127
        if tag.endswith(".probs"):
            act[tag] = np.array(PROBS_SCALE)
        elif per_channel and tag.split(".")[-1] in PER_CHANNEL_KINDS:
            base = s.max() / 2 ** MAX_EXP
            act[tag] = base * 2.0 ** np.clip(np.ceil(np.log2(s / base)), 0, MAX_EXP)
        else:
            act[tag] = np.array(s.max())
    names = [f"embeddings.{n}_embeddings.weight" for n in ("word", "position", "token_type")]
    weight = {n: np.maximum(np.abs(W[n]).max(0), 1e-8) / 127 for n in names}
    for k in expected_shapes(cfg):
        if k.startswith("encoder.") and k.endswith(".weight") and "LayerNorm" not in k:
            weight[k] = np.maximum(np.abs(W[k]).max(1), 1e-8) / 127
    if not per_channel:
        weight = {k: np.array(v.max()) for k, v in weight.items()}
    return QuantParams(act, weight)
