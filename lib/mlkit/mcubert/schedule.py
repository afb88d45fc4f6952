"""Activation-memory schedules for one BERT encoder forward on a microcontroller (paper notes §1b).

A schedule is data: a list of :class:`Step` (one kernel call each) over named 2-D activation
buffers (:class:`BufferSpec`, row-major ``rows x cols``, ``elem_bytes`` per element). Every step
names the regions it reads and writes as :class:`View` rectangles, so a simulator can run the steps
inside one preallocated arena at the offsets that :func:`plan` gives. Weights live in flash and
are never in the arena. Batch 1, no padding mask (the sequence is exactly ``L`` tokens).

Op vocabulary (``inputs`` / ``outputs`` are views, in this order; ``W[a:b]`` are the rows a:b of a
Hugging Face ``nn.Linear`` weight, i.e. output features a:b; ``i`` is a row of the view):

* ``embed(ids, types) -> out``: ``out[i] = word[ids[i]] + pos[r0 + i] + type[types[i]]`` with ``r0``
  the first row of ``ids``' view (the token's position); weights ``attrs["weight"]`` + ``.word_embeddings``,
  ``.position_embeddings``, ``.token_type_embeddings``. ``ids``/``types`` are int32 buffers (L x 1).
* ``linear(x) -> out``: ``out = x @ W[c0:c1].T + b[c0:c1]``, ``(c0, c1) = attrs["cols"]``, W and b are
  ``attrs["weight"] + ".weight"/".bias"``. Never in place.
* ``matmul_nt(a, b) -> out``: ``out = attrs["scale"] * a @ b.T`` (the "nt" kernel: no transpose of b).
* ``matmul(a, b) -> out``: ``out = a @ b``.
* ``softmax_rows(s) -> out``: softmax over each row. May run in place (``out == s``).
* ``add(a, b) -> out``: ``out = a + b`` (the residual). May run in place on ``a`` (``out == a``).
* ``layernorm(x) -> out``: per row ``(x - mean) / sqrt(var + attrs["eps"]) * g + beta`` (biased
  variance), g/beta = ``attrs["weight"] + ".weight"/".bias"``. May run in place.
* ``act(x) -> out``: ``attrs["fn"]``: ``gelu`` = 0.5·x·(1 + erf(x/√2)), ``gelu_new`` (tanh form), or
  ``relu``. May run in place.

"May run in place" means the output view is either identical to the first input's view (each
element is read before it is written: row-wise kernels) or disjoint from every input; any other
overlap is invalid (:meth:`Schedule.validate`). int32 accumulators are not buffers: the int8
kernels (CMSIS-NN style) accumulate each output element in a register and requantize it, softmax
and LayerNorm keep per-row statistics in registers, and GELU is a 256-entry table in flash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral

from mlkit.arena import Buffer, plan_arena
from mlkit.errors import InputError

from .config import BertConfig

__all__ = ["View", "BufferSpec", "Step", "Schedule", "OPS", "INPLACE_OPS", "baseline_schedule",
           "tiled_schedule", "search_tile", "TileChoice", "SchedulePlan", "plan", "step_macs",
           "ORDERS"]

OPS = ("embed", "linear", "matmul_nt", "matmul", "softmax_rows", "add", "layernorm", "act")
INPLACE_OPS = ("softmax_rows", "add", "layernorm", "act")
ORDERS = ("head-outer", "tile-outer")
_DTYPE = {1: "int8", 2: "int16", 4: "float32"}


@dataclass(frozen=True)
class View:
    """Rows r0:r1, columns c0:c1 of buffer ``buf``."""
    buf: str
    r0: int
    r1: int
    c0: int
    c1: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.r1 - self.r0, self.c1 - self.c0

    def overlaps(self, o: View) -> bool:
        return self.buf == o.buf and self.r0 < o.r1 and o.r0 < self.r1 and self.c0 < o.c1 and o.c0 < self.c1


@dataclass(frozen=True)
class BufferSpec:
    id: str
    rows: int
    cols: int
    elem_bytes: int
    dtype: str          # "int32" for the token ids, else the activation type ("int8", "float32", ...)

    @property
    def size(self) -> int:
        return self.rows * self.cols * self.elem_bytes

    def full(self) -> View:
        return View(self.id, 0, self.rows, 0, self.cols)


@dataclass(frozen=True)
class Step:
    name: str
    op: str
    inputs: tuple[View, ...]
    outputs: tuple[View, ...]
    attrs: dict = field(default_factory=dict)


@dataclass
class Schedule:
    cfg: BertConfig
    seq_len: int
    kind: str                     # "baseline" | "tiled"
    tile: int | None
    order: str | None
    elem_bytes: int
    buffers: dict[str, BufferSpec]
    steps: list[Step]
    inputs: tuple[str, str]       # buffer ids the host fills before step 0: token ids, token types
    output: str                   # buffer id holding the last hidden state after the last step

    @property
    def label(self) -> str:
        return self.kind if self.kind == "baseline" else f"tiled ({self.order}, tile {self.tile})"

    def lifetimes(self) -> list[Buffer]:
        """(first, last) step each buffer must hold data: first and last step that touches it; the
        host's inputs from step 0, the output up to the last step."""
        first: dict[str, int] = {b: 0 for b in self.inputs}
        last: dict[str, int] = {self.output: len(self.steps) - 1}
        for i, s in enumerate(self.steps):
            for v in s.inputs + s.outputs:
                first.setdefault(v.buf, i)
                last[v.buf] = max(last.get(v.buf, i), i)
        return [Buffer(b.id, b.size, first[b.id], last[b.id]) for b in self.buffers.values() if b.id in first]

    def validate(self) -> None:
        """Check views against buffers, shapes against ops, aliasing and write-before-read."""
        written = set(self.inputs)
        for s in self.steps:
            if s.op not in OPS:
                raise InputError(f"step {s.name}: unknown op", expected=", ".join(OPS), got=s.op)
            for v in s.inputs + s.outputs:
                b = self.buffers.get(v.buf)
                if b is None or not (0 <= v.r0 < v.r1 <= b.rows and 0 <= v.c0 < v.c1 <= b.cols):
                    raise InputError(f"step {s.name}: view outside its buffer", got=str(v))
            for v in s.inputs:
                if v.buf not in written:
                    raise InputError(f"step {s.name}: reads {v.buf} before any step writes it")
            (o,) = s.outputs
            for k, v in enumerate(s.inputs):
                if o.overlaps(v) and not (k == 0 and o == v and s.op in INPLACE_OPS):
                    raise InputError(f"step {s.name}: output overlaps an input", got=f"{o} vs {v}")
            _check_shapes(s, self.cfg)
            written.add(o.buf)


def _check_shapes(s: Step, cfg: BertConfig) -> None:
    (o,) = s.outputs
    shapes = [v.shape for v in s.inputs]
    if s.op == "embed":
        want = (o.shape[0], cfg.hidden_size)
        ok = shapes == [(o.shape[0], 1)] * 2
    elif s.op == "linear":
        c0, c1 = s.attrs["cols"]
        w = s.attrs["weight"]
        k = cfg.intermediate_size if w.endswith(".output.dense") and ".attention." not in w else cfg.hidden_size
        want = (shapes[0][0], c1 - c0)
        ok = len(shapes) == 1 and shapes[0][1] == k
    elif s.op == "matmul_nt":
        (m, k), (n, k2) = shapes
        want, ok = (m, n), k == k2
    elif s.op == "matmul":
        (m, k), (k2, n) = shapes
        want, ok = (m, n), k == k2
    else:
        want = shapes[0]
        ok = all(sh == want for sh in shapes)
    if not ok or o.shape != want:
        raise InputError(f"step {s.name}: shapes do not fit {s.op}", got=f"in {shapes}, out {o.shape}")


def step_macs(s: Step) -> int:
    """Multiply-accumulates of a step (matrix products only; element-wise ops count 0)."""
    if s.op == "linear":
        (m, k), (_, n) = s.inputs[0].shape, s.outputs[0].shape
        return m * k * n
    if s.op in ("matmul_nt", "matmul"):
        (m, k), (_, n) = s.inputs[0].shape, s.outputs[0].shape
        return m * k * n
    return 0


# ---------------------------------------------------------------------------- building
def _check_args(cfg: BertConfig, L: int, tile: int | None, order: str | None, elem_bytes: int) -> None:
    if not isinstance(L, Integral) or L < 1:
        raise InputError("bad sequence length", expected="an integer >= 1", got=str(L))
    if L > cfg.max_position_embeddings:
        raise InputError("sequence length over the model's max_position_embeddings",
                         expected=f"<= {cfg.max_position_embeddings}", got=str(L))
    if tile is not None and (not isinstance(tile, Integral) or not 1 <= tile <= L):
        raise InputError("bad tile (query rows per tile)", expected=f"an integer in 1..{L} (the sequence length)",
                         got=str(tile))
    if order is not None and order not in ORDERS:
        raise InputError("unknown loop order", expected=" or ".join(ORDERS), got=str(order))
    if elem_bytes not in _DTYPE:
        raise InputError("bad activation element size", expected="1 (int8), 2 (int16) or 4 (float32)",
                         got=str(elem_bytes))


class _Builder:
    def __init__(self, cfg: BertConfig, L: int, elem_bytes: int):
        self.cfg, self.L, self.eb = cfg, L, elem_bytes
        self.buffers: dict[str, BufferSpec] = {}
        self.steps: list[Step] = []

    def buf(self, id: str, rows: int, cols: int) -> BufferSpec:
        b = self.buffers[id] = BufferSpec(id, rows, cols, self.eb, _DTYPE[self.eb])
        return b

    def step(self, name: str, op: str, inputs, output: View, **attrs) -> None:
        self.steps.append(Step(name, op, tuple(inputs), (output,), attrs))

    def embeddings(self, out: View, norm_out: View) -> tuple[str, str]:
        ids = self.buffers["input_ids"] = BufferSpec("input_ids", self.L, 1, 4, "int32")
        types = self.buffers["token_type_ids"] = BufferSpec("token_type_ids", self.L, 1, 4, "int32")
        self.step("embed", "embed", [ids.full(), types.full()], out, weight="embeddings")
        self.step("embed.ln", "layernorm", [out], norm_out, weight="embeddings.LayerNorm",
                  eps=self.cfg.layer_norm_eps)
        return ids.id, types.id

    def schedule(self, kind, tile, order, inputs, output) -> Schedule:
        return Schedule(self.cfg, self.L, kind, tile, order, self.eb, self.buffers, self.steps, inputs, output)


def baseline_schedule(cfg: BertConfig, L: int, *, elem_bytes: int = 1, inplace_act: bool = False) -> Schedule:
    """The TFLM-style graph: every op writes a fresh tensor (TFLM's planner does not alias), Q, K, V
    (L x D), scores and probabilities for all heads (H·L x L each), context, attention output,
    residual, LayerNorm, FFN intermediate and its GELU (L x F each; GELU not in place, as TFLite's
    GELU op has its own output tensor, unless ``inplace_act``, which the notes' analytic table
    assumes), FFN output, residual, LayerNorm. [R] No transposes: heads are column blocks of Q, K, V."""
    _check_args(cfg, L, None, None, elem_bytes)
    D, H, F, dh = cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size, cfg.head_dim
    b = _Builder(cfg, L, elem_bytes)
    x = b.buf("embed.out", L, D).full()
    x_next = b.buf("embed.ln.out", L, D).full()
    ins = b.embeddings(x, x_next)
    x = x_next
    for i in range(cfg.num_hidden_layers):
        p, n = f"encoder.layer.{i}.", f"l{i}."
        qkv = []
        for part in ("query", "key", "value"):
            out = b.buf(n + part, L, D).full()
            b.step(n + part, "linear", [x], out, weight=p + "attention.self." + part, cols=(0, D))
            qkv.append(out)
        q, k, v = qkv
        S, P = b.buf(n + "scores", H * L, L), b.buf(n + "probs", H * L, L)
        C = b.buf(n + "context", L, D)
        for h in range(H):
            cols = (h * dh, (h + 1) * dh)
            b.step(f"{n}h{h}.scores", "matmul_nt", [View(q.buf, 0, L, *cols), View(k.buf, 0, L, *cols)],
                   View(S.id, h * L, (h + 1) * L, 0, L), scale=1 / math.sqrt(dh))
        b.step(n + "softmax", "softmax_rows", [S.full()], P.full())
        for h in range(H):
            cols = (h * dh, (h + 1) * dh)
            b.step(f"{n}h{h}.context", "matmul", [View(P.id, h * L, (h + 1) * L, 0, L), View(v.buf, 0, L, *cols)],
                   View(C.id, 0, L, *cols))
        a = b.buf(n + "attn_out", L, D).full()
        b.step(n + "attn_out", "linear", [C.full()], a, weight=p + "attention.output.dense", cols=(0, D))
        r = b.buf(n + "attn_res", L, D).full()
        b.step(n + "attn_res", "add", [a, x], r)
        y = b.buf(n + "attn_ln", L, D).full()
        b.step(n + "attn_ln", "layernorm", [r], y, weight=p + "attention.output.LayerNorm", eps=cfg.layer_norm_eps)
        h1 = b.buf(n + "ffn_in", L, F).full()
        b.step(n + "ffn_in", "linear", [y], h1, weight=p + "intermediate.dense", cols=(0, F))
        g = h1 if inplace_act else b.buf(n + "ffn_act", L, F).full()
        b.step(n + "ffn_act", "act", [h1], g, fn=cfg.hidden_act)
        o = b.buf(n + "ffn_out", L, D).full()
        b.step(n + "ffn_out", "linear", [g], o, weight=p + "output.dense", cols=(0, D))
        r2 = b.buf(n + "ffn_res", L, D).full()
        b.step(n + "ffn_res", "add", [o, y], r2)
        x = b.buf(n + "out", L, D).full()
        b.step(n + "out", "layernorm", [r2], x, weight=p + "output.LayerNorm", eps=cfg.layer_norm_eps)
    return b.schedule("baseline", None, None, ins, x.buf)


def _tiles(L: int, T: int) -> list[tuple[int, int]]:
    return [(r0, min(r0 + T, L)) for r0 in range(0, L, T)]


def tiled_schedule(cfg: BertConfig, L: int, tile: int = 16, order: str = "head-outer", *,
                   elem_bytes: int = 1) -> Schedule:
    """One hidden-state buffer ``x`` (L x D), updated in place; attention tiled over heads and
    query rows, FFN over rows (tiles of ``tile`` rows; the last may be shorter).

    ``head-outer`` (paper notes §1b): per head, K_h and V_h (L x D/H) once; per query tile Q_t
    (T x D/H), S_t = Q_t K_hᵀ (T x L), softmax in place, S_t V_h into the context buffer (L x D) at
    the head's columns. Then per row tile: out = C_t W_o, x_t += out, LN(x_t) in place.

    ``tile-outer`` [R]: K and V (L x D) for all heads first; per query tile, heads inside, into a
    T x D context tile; then that tile's output projection, residual and LN straight into x's rows.
    This is safe: the other tiles need x only for their own Q rows (not yet overwritten), K and V
    are already computed, and the residual reads x_t before the in-place add overwrites it.

    FFN, both orders: per row tile, h_t = x_t W_1 (T x F), activation in place, o_t = h_t W_2
    (T x D), x_t += o_t, LN(x_t) in place. [R] Per-role scratch buffers (Q_t, S_t, ...) are reused
    by every tile of their loop, as static buffers on an MCU are, so each stays allocated for its
    whole loop. In tile-outer, Q_t and S_t thus also span each tile's output projection, which
    is then the peak, 3LD + T·(D/H + L + 2D), against max(3LD + T·(D/H + L + D), 3LD + 2TD)
    with per-tile lifetimes (T·D = 128 bytes more at T = 1 for BERT-tiny)."""
    _check_args(cfg, L, tile, order, elem_bytes)
    D, H, F, dh = cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size, cfg.head_dim
    T, eps, scale = tile, cfg.layer_norm_eps, 1 / math.sqrt(dh)
    b = _Builder(cfg, L, elem_bytes)
    X = b.buf("x", L, D)
    ins = b.embeddings(X.full(), X.full())
    tiles = _tiles(L, T)

    def xr(r0, r1, c0=0, c1=D):
        return View("x", r0, r1, c0, c1)

    def attention_tile(n, p, h, r0, r1, Q, S, K, V, out: View):
        m, cols = r1 - r0, (h * dh, (h + 1) * dh)
        q, s = View(Q.id, 0, m, 0, dh), View(S.id, 0, m, 0, L)
        b.step(f"{n}.q", "linear", [xr(r0, r1)], q, weight=p + "attention.self.query", cols=cols)
        b.step(f"{n}.scores", "matmul_nt", [q, K], s, scale=scale)
        b.step(f"{n}.softmax", "softmax_rows", [s], s)
        b.step(f"{n}.context", "matmul", [s, V], out)

    def residual_ln(n, r0, r1, src: View, ln: str):
        b.step(f"{n}.res", "add", [xr(r0, r1), src], xr(r0, r1))
        b.step(f"{n}.ln", "layernorm", [xr(r0, r1)], xr(r0, r1), weight=ln, eps=eps)

    def out_proj(n, p, r0, r1, C: View, Ob):
        o = View(Ob.id, 0, r1 - r0, 0, D)
        b.step(f"{n}.attn_out", "linear", [C], o, weight=p + "attention.output.dense", cols=(0, D))
        residual_ln(f"{n}.attn", r0, r1, o, p + "attention.output.LayerNorm")

    for i in range(cfg.num_hidden_layers):
        p, n = f"encoder.layer.{i}.", f"l{i}"
        Ob = b.buf(f"{n}.attn_out_t", T, D)
        if order == "head-outer":
            C = b.buf(f"{n}.context", L, D)
            for h in range(H):
                cols = (h * dh, (h + 1) * dh)
                K, V = b.buf(f"{n}.h{h}.key", L, dh).full(), b.buf(f"{n}.h{h}.value", L, dh).full()
                b.step(f"{n}.h{h}.key", "linear", [X.full()], K, weight=p + "attention.self.key", cols=cols)
                b.step(f"{n}.h{h}.value", "linear", [X.full()], V, weight=p + "attention.self.value", cols=cols)
                Q, S = b.buf(f"{n}.h{h}.q_t", T, dh), b.buf(f"{n}.h{h}.scores_t", T, L)
                for t, (r0, r1) in enumerate(tiles):
                    attention_tile(f"{n}.h{h}.t{t}", p, h, r0, r1, Q, S, K, V, View(C.id, r0, r1, *cols))
            for t, (r0, r1) in enumerate(tiles):
                out_proj(f"{n}.t{t}", p, r0, r1, View(C.id, r0, r1, 0, D), Ob)
        else:
            K, V = b.buf(f"{n}.key", L, D), b.buf(f"{n}.value", L, D)
            b.step(f"{n}.key", "linear", [X.full()], K.full(), weight=p + "attention.self.key", cols=(0, D))
            b.step(f"{n}.value", "linear", [X.full()], V.full(), weight=p + "attention.self.value", cols=(0, D))
            Q, S, C = b.buf(f"{n}.q_t", T, dh), b.buf(f"{n}.scores_t", T, L), b.buf(f"{n}.context_t", T, D)
            for t, (r0, r1) in enumerate(tiles):
                for h in range(H):
                    cols = (h * dh, (h + 1) * dh)
                    attention_tile(f"{n}.t{t}.h{h}", p, h, r0, r1, Q, S, View(K.id, 0, L, *cols),
                                   View(V.id, 0, L, *cols), View(C.id, 0, r1 - r0, *cols))
                out_proj(f"{n}.t{t}", p, r0, r1, View(C.id, 0, r1 - r0, 0, D), Ob)
        Hb, O2 = b.buf(f"{n}.ffn_in_t", T, F), b.buf(f"{n}.ffn_out_t", T, D)
        for t, (r0, r1) in enumerate(tiles):
            m = r1 - r0
            hv, ov = View(Hb.id, 0, m, 0, F), View(O2.id, 0, m, 0, D)
            b.step(f"{n}.t{t}.ffn_in", "linear", [xr(r0, r1)], hv, weight=p + "intermediate.dense", cols=(0, F))
            b.step(f"{n}.t{t}.ffn_act", "act", [hv], hv, fn=cfg.hidden_act)
            b.step(f"{n}.t{t}.ffn_out", "linear", [hv], ov, weight=p + "output.dense", cols=(0, D))
            residual_ln(f"{n}.t{t}.ffn", r0, r1, ov, p + "output.LayerNorm")
    return b.schedule("tiled", tile, order, ins, "x")


# ---------------------------------------------------------------------------- planning
@dataclass
class SchedulePlan:
    schedule: Schedule
    offsets: dict[str, int]
    arena_bytes: int
    peak_live_bytes: int
    peak_step: str
    live_bytes: list[int]         # bytes alive at each step (unaligned sizes), for a plot
    macs: list[int]               # multiply-accumulates of each step
    alignment: int

    @property
    def fragmentation(self) -> float:
        return self.arena_bytes / self.peak_live_bytes - 1 if self.peak_live_bytes else 0.0

    @property
    def total_macs(self) -> int:
        return sum(self.macs)

    def to_dict(self, *, per_step: bool = False) -> dict:
        s = self.schedule
        d = {"schedule": s.kind, "order": s.order, "tile": s.tile, "seq_len": s.seq_len,
             "dtype": _DTYPE[s.elem_bytes], "steps": len(s.steps), "arena_bytes": self.arena_bytes,
             "peak_live_bytes": self.peak_live_bytes, "peak_step": self.peak_step,
             "fragmentation": round(self.fragmentation, 6), "alignment": self.alignment, "macs": self.total_macs,
             "offsets": self.offsets}
        if per_step:
            d["per_step"] = [{"step": st.name, "op": st.op, "live_bytes": lb, "macs": m}
                             for st, lb, m in zip(s.steps, self.live_bytes, self.macs, strict=True)]
        return d


def plan(schedule: Schedule, alignment: int = 16) -> SchedulePlan:
    """Arena offsets (``mlkit.arena.plan_arena``, greedy by size), arena and peak bytes, the step
    at the peak, and live bytes and MACs per step."""
    lives = schedule.lifetimes()
    ap = plan_arena(lives, alignment=alignment)
    delta = [0] * (len(schedule.steps) + 1)
    for b in lives:
        delta[b.first] += b.size
        delta[b.last + 1] -= b.size
    live, cur = [], 0
    for d in delta[:-1]:
        cur += d
        live.append(cur)
    peak_at = max(range(len(live)), key=live.__getitem__)
    return SchedulePlan(schedule, ap.offsets, ap.arena_bytes, ap.peak_live_bytes, schedule.steps[peak_at].name,
                        live, [step_macs(s) for s in schedule.steps], alignment)


@dataclass(frozen=True)
class TileChoice:
    tile: int
    order: str
    arena_bytes: int
    peak_live_bytes: int


def search_tile(cfg: BertConfig, L: int, *, orders=ORDERS, tiles=None, elem_bytes: int = 1,
                alignment: int = 16, budget: int | None = None) -> TileChoice:
    """Try each (tile, order); tiles default to 1, 2, 4, ... below L, and L. Without ``budget``:
    the smallest arena (ties: the larger tile, i.e. fewer, larger kernel calls). With ``budget``
    (bytes) [R]: the largest tile whose arena fits (ties: the smaller arena); if none fits, the
    smallest arena, which the caller then reports as over budget."""
    _check_args(cfg, L, None, None, elem_bytes)
    tiles = sorted(set(tiles)) if tiles is not None else sorted({1 << k for k in range(L.bit_length()) if 1 << k < L} | {L})
    found = []
    for order in orders:
        for t in tiles:
            p = plan(tiled_schedule(cfg, L, t, order, elem_bytes=elem_bytes), alignment)
            found.append(TileChoice(t, order, p.arena_bytes, p.peak_live_bytes))
    fits = [c for c in found if budget is not None and c.arena_bytes <= budget]
    if fits:
        return min(fits, key=lambda c: (-c.tile, c.arena_bytes, ORDERS.index(c.order)))
    return min(found, key=lambda c: (c.arena_bytes, -c.tile, ORDERS.index(c.order)))
