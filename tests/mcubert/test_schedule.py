"""Activation schedules (paper notes §1b, §7 check 6): peaks against hand counts, the notes' table,
the paper's claims, arena validity, and a float64 interpreter that pins every op's semantics."""

import math
from dataclasses import replace
from functools import cache

import numpy as np
import pytest

from mlkit.errors import InputError
from mlkit.mcubert.config import BOARDS, MINI, MINILM_L6, TINY, BertConfig
from mlkit.mcubert.report import summary
from mlkit.mcubert.schedule import (
    Step,
    View,
    baseline_schedule,
    plan,
    search_tile,
    tiled_schedule,
)

KiB = 1024
SMALL = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                   intermediate_size=16, max_position_embeddings=64)


# ---------------------------------------------------------------------------- 1. hand counts
def baseline_peak_by_hand(cfg, L, e=1):
    """Live set of each baseline step, from the op list (units: bytes; ids are int32)."""
    D, F, H = cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads
    LD, LF, S = e * L * D, e * L * F, e * H * L * L
    return max(8 * L + LD,        # embed: ids, types, e
               2 * LD,            # embeddings LN: e, x
               4 * LD + S,        # scores: x, q, k, v, S
               2 * LD + 2 * S,    # softmax: x, v, S, P
               3 * LD + S,        # context: x, v, P, C
               3 * LD,            # attn_out (x, C, A) and residual (x, A, r), ffn residual
               LD + 2 * LF,       # GELU: y, h, g
               2 * LD + LF)       # ffn_out: y, g, o


def head_outer_peak_by_hand(cfg, L, T, e=1):
    """x, context, K_h, V_h, Q_t, S_t in the attention loop; x, context, out_t at the projection;
    x, h_t, o_t in the FFN."""
    D, F, dh = cfg.hidden_size, cfg.intermediate_size, cfg.head_dim
    return max(8 * L + e * L * D,
               e * max(2 * L * D + 2 * L * dh + T * dh + T * L, 2 * L * D + T * D, L * D + T * F + T * D))


@pytest.mark.parametrize("cfg,L", [(SMALL, 4), (SMALL, 12), (SMALL, 40), (TINY, 64), (TINY, 128),
                                   (TINY, 512), (MINI, 256), (MINILM_L6, 96)])
@pytest.mark.parametrize("e", [1, 4])
def test_baseline_peak_equals_hand_count(cfg, L, e):
    p = plan(baseline_schedule(cfg, L, elem_bytes=e), alignment=1)
    assert p.peak_live_bytes == max(p.live_bytes) == baseline_peak_by_hand(cfg, L, e)


def tile_outer_peak_by_hand(cfg, L, T):
    """x, K, V (L x D) all through attention; at a tile's output projection also Q_t, S_t (static
    per-layer scratch), the context tile and out_t; the FFN as head-outer."""
    D, F, dh = cfg.hidden_size, cfg.intermediate_size, cfg.head_dim
    return max(8 * L + L * D, 3 * L * D + T * (dh + L + 2 * D), L * D + T * F + T * D)


@pytest.mark.parametrize("cfg,L,T", [(SMALL, 12, 4), (SMALL, 12, 5), (SMALL, 40, 1), (TINY, 128, 16),
                                     (MINI, 512, 16), (MINI, 100, 7)])
def test_tiled_peaks_equal_hand_count(cfg, L, T):
    assert plan(tiled_schedule(cfg, L, T), alignment=1).peak_live_bytes == head_outer_peak_by_hand(cfg, L, T)
    p = plan(tiled_schedule(cfg, L, T, "tile-outer"), alignment=1)
    assert p.peak_live_bytes == tile_outer_peak_by_hand(cfg, L, T)


# ---------------------------------------------------------------------------- 2. notes' table, paper claims
NOTES = {("tiny", 128): (96, 51), ("tiny", 256): (320, 101), ("tiny", 512): (1152, 201),
         ("mini", 128): (192, 83), ("mini", 256): (640, 165), ("mini", 512): (2304, 329)}


@pytest.mark.parametrize("name,L", sorted(NOTES))
def test_notes_table(name, L):
    cfg = {"tiny": TINY, "mini": MINI}[name]
    base_kib, tiled_kib = NOTES[name, L]
    tiled = plan(tiled_schedule(cfg, L, 16, "head-outer"))
    assert tiled.arena_bytes == tiled.peak_live_bytes == tiled_kib * KiB
    # The notes' model keeps GELU in place; TFLite's GELU writes a new L x F tensor, which sets the
    # baseline peak at L = 128 (L·D + 2·L·F = 9·L·D: 144 KiB tiny, 288 KiB mini), not attention.
    assert plan(baseline_schedule(cfg, L, inplace_act=True)).arena_bytes == base_kib * KiB
    base = plan(baseline_schedule(cfg, L)).arena_bytes
    assert base == (base_kib if L > 128 else 9 * L * cfg.hidden_size // KiB) * KiB


@cache
def best(name, L, order):
    cfg = {"tiny": TINY, "mini": MINI}[name]
    return search_tile(cfg, L, orders=(order,))


def test_paper_claims_at_512():
    for name, cfg, claim in (("tiny", TINY, 3.5), ("mini", MINI, 4.3)):
        c = min((best(name, 512, o) for o in ("head-outer", "tile-outer")), key=lambda c: c.arena_bytes)
        p = plan(tiled_schedule(cfg, 512, c.tile, c.order))
        assert (p.arena_bytes, p.peak_live_bytes) == (c.arena_bytes, c.peak_live_bytes)
        if name == "tiny":
            assert p.arena_bytes < 256 * KiB
        base = plan(baseline_schedule(cfg, 512))
        assert base.arena_bytes / c.arena_bytes >= claim
        assert base.peak_live_bytes / c.peak_live_bytes >= claim


def test_search_tile_budget_and_ties():
    each = [search_tile(TINY, 64, orders=(o,)) for o in ("head-outer", "tile-outer")]
    assert search_tile(TINY, 64) == min(each, key=lambda c: (c.arena_bytes, -c.tile))
    c = search_tile(TINY, 128, tiles=[4, 16, 128])
    assert (c.tile, c.order) == (4, "head-outer")
    big = search_tile(TINY, 128, tiles=[4, 16, 128], budget=60 * KiB)
    assert big.tile == 16 and big.arena_bytes <= 60 * KiB
    assert search_tile(TINY, 128, tiles=[4, 16], budget=1).tile == 4   # nothing fits: smallest arena


def test_macs_are_the_same_work():
    for cfg, L in ((TINY, 128), (SMALL, 12)):
        D, F = cfg.hidden_size, cfg.intermediate_size
        want = cfg.num_hidden_layers * (4 * L * D * D + 2 * L * L * D + 2 * L * D * F)
        assert plan(baseline_schedule(cfg, L)).total_macs == want
        for T, order in ((5, "head-outer"), (5, "tile-outer"), (L, "head-outer")):
            assert plan(tiled_schedule(cfg, L, T, order)).total_macs == want


# ---------------------------------------------------------------------------- 3. arena validity
def assert_arena_valid(p):
    lives = sorted(p.schedule.lifetimes(), key=lambda b: b.first)
    for b in lives:
        assert p.offsets[b.id] % p.alignment == 0 and p.offsets[b.id] + b.size <= p.arena_bytes
    for i, a in enumerate(lives):
        for b in lives[i + 1:]:
            if b.first > a.last:
                break
            lo_a, lo_b = p.offsets[a.id], p.offsets[b.id]
            assert lo_a + a.size <= lo_b or lo_b + b.size <= lo_a, (a, b)


@pytest.mark.parametrize("name", ["tiny", "mini"])
@pytest.mark.parametrize("L", [64, 128, 256, 512])
def test_every_plan_is_a_valid_arena(name, L):
    cfg = {"tiny": TINY, "mini": MINI}[name]
    scheds = [baseline_schedule(cfg, L), tiled_schedule(cfg, L, L),
              tiled_schedule(cfg, L, best(name, L, "head-outer").tile, "head-outer"),
              tiled_schedule(cfg, L, best(name, L, "tile-outer").tile, "tile-outer"),
              tiled_schedule(cfg, L, 16, "tile-outer")]
    for s in scheds:
        s.validate()
        for align in (1, 16):
            assert_arena_valid(plan(s, align))


# ---------------------------------------------------------------------------- 4. semantics
def _gelu(x, fn):
    if fn == "relu":
        return np.maximum(x, 0)
    if fn == "gelu_new":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def _ln(x, W, name, eps):
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * W[name + ".weight"] + W[name + ".bias"]


def _softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def interpret(sched, W, ids, types):
    """Run the step list on a dict of float64 buffers. Buffers are NaN before their first step and
    after their last (as if the arena handed their bytes to someone else), so a wrong lifetime
    shows up as NaN in the output."""
    bufs = {b.id: np.full((b.rows, b.cols), np.nan) for b in sched.buffers.values()}
    bufs["input_ids"][:, 0], bufs["token_type_ids"][:, 0] = ids, types
    lives = sched.lifetimes()
    dies = {}
    for b in lives:
        dies.setdefault(b.last, []).append(b.id)

    def get(v):
        return bufs[v.buf][v.r0:v.r1, v.c0:v.c1].copy()

    for i, s in enumerate(sched.steps):
        a, at = [get(v) for v in s.inputs], s.attrs
        if s.op == "embed":
            r0 = s.inputs[0].r0
            p = at["weight"]
            out = (W[p + ".word_embeddings.weight"][a[0][:, 0].astype(int)]
                   + W[p + ".position_embeddings.weight"][r0:r0 + len(a[0])]
                   + W[p + ".token_type_embeddings.weight"][a[1][:, 0].astype(int)])
        elif s.op == "linear":
            c0, c1 = at["cols"]
            out = a[0] @ W[at["weight"] + ".weight"][c0:c1].T + W[at["weight"] + ".bias"][c0:c1]
        elif s.op == "matmul_nt":
            out = at["scale"] * a[0] @ a[1].T
        elif s.op == "matmul":
            out = a[0] @ a[1]
        elif s.op == "softmax_rows":
            out = _softmax(a[0])
        elif s.op == "add":
            out = a[0] + a[1]
        elif s.op == "layernorm":
            out = _ln(a[0], W, at["weight"], at["eps"])
        elif s.op == "act":
            out = _gelu(a[0], at["fn"])
        else:
            raise AssertionError(s.op)
        (o,) = s.outputs
        bufs[o.buf][o.r0:o.r1, o.c0:o.c1] = out
        for b in dies.get(i, []):
            if b != sched.output:
                bufs[b][:] = np.nan
    return bufs[sched.output]


def reference_forward(cfg, W, ids, types):
    """Post-LN BERT encoder written directly (no tiling)."""
    L, H, dh = len(ids), cfg.num_attention_heads, cfg.head_dim
    lin = lambda x, n: x @ W[n + ".weight"].T + W[n + ".bias"]   # noqa: E731
    x = (W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:L]
         + W["embeddings.token_type_embeddings.weight"][types])
    x = _ln(x, W, "embeddings.LayerNorm", cfg.layer_norm_eps)
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}."
        q, k, v = (lin(x, p + "attention.self." + n).reshape(L, H, dh).transpose(1, 0, 2)
                   for n in ("query", "key", "value"))
        ctx = (_softmax(q @ k.transpose(0, 2, 1) / math.sqrt(dh)) @ v).transpose(1, 0, 2).reshape(L, -1)
        x = _ln(x + lin(ctx, p + "attention.output.dense"), W, p + "attention.output.LayerNorm", cfg.layer_norm_eps)
        hid = _gelu(lin(x, p + "intermediate.dense"), cfg.hidden_act)
        x = _ln(x + lin(hid, p + "output.dense"), W, p + "output.LayerNorm", cfg.layer_norm_eps)
    return x


def random_weights(cfg, rng):
    D, F = cfg.hidden_size, cfg.intermediate_size
    W = {"embeddings.word_embeddings.weight": rng.normal(size=(cfg.vocab_size, D)),
         "embeddings.position_embeddings.weight": rng.normal(size=(cfg.max_position_embeddings, D)),
         "embeddings.token_type_embeddings.weight": rng.normal(size=(cfg.type_vocab_size, D))}
    shapes = {"attention.self.query": (D, D), "attention.self.key": (D, D), "attention.self.value": (D, D),
              "attention.output.dense": (D, D), "intermediate.dense": (F, D), "output.dense": (D, F)}
    for ln in ["embeddings.LayerNorm"] + [f"encoder.layer.{i}.{n}" for i in range(cfg.num_hidden_layers)
                                         for n in ("attention.output.LayerNorm", "output.LayerNorm")]:
        W[ln + ".weight"], W[ln + ".bias"] = 1 + 0.1 * rng.normal(size=D), 0.1 * rng.normal(size=D)
    for i in range(cfg.num_hidden_layers):
        for n, (o, k) in shapes.items():
            W[f"encoder.layer.{i}.{n}.weight"] = rng.normal(size=(o, k)) / math.sqrt(k)
            W[f"encoder.layer.{i}.{n}.bias"] = 0.1 * rng.normal(size=o)
    return W


@pytest.mark.parametrize("act", ["gelu", "gelu_new", "relu"])
def test_schedules_compute_bert(act):
    cfg = replace(SMALL, hidden_act=act)
    rng = np.random.default_rng(0)
    W, L = random_weights(cfg, rng), 12
    ids, types = rng.integers(0, cfg.vocab_size, L), rng.integers(0, 2, L)
    ref = reference_forward(cfg, W, ids, types)
    scheds = [baseline_schedule(cfg, L), baseline_schedule(cfg, L, inplace_act=True)]
    scheds += [tiled_schedule(cfg, L, T, order) for T in (1, 4, 5, 12) for order in ("head-outer", "tile-outer")]
    for s in scheds:
        s.validate()
        out = interpret(s, W, ids, types)
        assert np.abs(out - ref).max() < 1e-12, s.label


# ---------------------------------------------------------------------------- bad input, validation, summary
@pytest.mark.parametrize("call", [lambda: tiled_schedule(TINY, 128, 0), lambda: tiled_schedule(TINY, 128, 129),
                                  lambda: tiled_schedule(TINY, 128, -3), lambda: baseline_schedule(TINY, 513),
                                  lambda: baseline_schedule(TINY, 0), lambda: tiled_schedule(TINY, 16, 4, "rows"),
                                  lambda: baseline_schedule(TINY, 16, elem_bytes=3),
                                  lambda: search_tile(TINY, 600)])
def test_bad_input_is_one_clear_line(call):
    with pytest.raises(InputError) as e:
        call()
    msg = str(e.value)
    assert "\n" not in msg and "expected" in msg and "got" in msg


def test_validate_refuses_partial_aliasing_and_unwritten_reads():
    s = tiled_schedule(SMALL, 12, 4)
    s.validate()
    x = View("x", 0, 4, 0, 8)
    bad = [Step("bad", "add", (x, View("x", 2, 6, 0, 8)), (View("x", 2, 6, 0, 8),)),
           Step("bad", "linear", (x,), (View("x", 0, 4, 0, 8),), {"weight": "encoder.layer.0.attention.self.query",
                                                                   "cols": (0, 8)}),
           Step("bad", "matmul", (View("l1.context", 0, 4, 0, 8), x), (View("l0.attn_out_t", 0, 4, 0, 8),))]
    for st in bad:
        s.steps.insert(3, st)
        with pytest.raises(InputError):
            s.validate()
        s.steps.pop(3)


def test_plan_reports_and_summary():
    p = plan(tiled_schedule(TINY, 512, 16))
    assert p.peak_step.endswith(".context") and max(p.live_bytes) == p.peak_live_bytes
    assert len(p.live_bytes) == len(p.macs) == len(p.schedule.steps)
    d = p.to_dict(per_step=True)
    assert d["arena_bytes"] == 201 * KiB and len(d["per_step"]) == len(p.schedule.steps)
    text = summary(p, board=BOARDS["nucleo-f746zg"])
    assert "RAM activations  : 205,824 B (201.0 KiB)" in text and "MACCs" in text
    assert "flash 4,291.6 + 100 code / 1,024 KiB DOES NOT FIT" in text and "RAM 201.0 / 320 KiB fits" in text
