"""EventFormer: AU events as class-specific set prediction (Chen et al., BMVC 2023).

The paper's method section is not available to us (paper notes §1): everything below the
abstract's "multiple class-specific sets prediction" with global temporal context is a
DETR/TadTR-style reconstruction, marked [R], and every choice is a field of ``EventFormerConfig``.

- [R] Input: per-frame features F ∈ R^{W×d_in} of one window; a linear projection to d, a residual
  temporal conv stem (``stem_kernel``; without it the encoder's per-frame head generalised to unseen
  subjects worse than a per-frame logistic regression: test mAP@0.5 0.60 vs 0.84 after the same
  tuned post-processing, 0.85 with kernel 5), sinusoidal positions, a transformer encoder
  (``enc_layers``) for the global temporal context.
- Decoder: C×N class-specific learned queries (N = ``queries`` per AU; a query's AU is fixed by
  the set it belongs to) attending to the encoded window (``dec_layers``).
- [R] Heads per query and decoder layer: (centre, width) ∈ [0, 1]² of the window (sigmoid) and one
  event-ness logit (no class logits: the class is the query's set).
- [R] Matching (``match``): Hungarian (scipy ``linear_sum_assignment``) within each AU's set against
  that AU's events in the window, cost = w_focal·focal cost + w_l1·L1(c, w) − w_iou·tIoU (TadTR's
  6 / 5 / 2).
- [R] Loss (``set_loss``): w_focal·sigmoid focal (α .25, γ 2; every query, target 1 iff matched,
  normalised by the number of events) + w_l1·L1 + w_iou·(1 − tIoU) on matched pairs (TadTR's
  2 / 5 / 2), at every decoder layer (auxiliary losses).
- [R] Added for a CPU-sized budget, each a flag (off = plain DETR/TadTR): a per-frame AU head on the
  encoder (BCE, ``frame_loss``); two-stage query initialisation from runs of that head's
  probabilities (``proposals``); iterative (c, w) refinement with position queries from the current
  segment (``refine``, Deformable-/DAB-DETR; the refinement head starts at zero); temporal scales
  (``scales``: the same network also runs on k-frame means, so a long event fits one window).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from mlkit.errors import InputError

__all__ = ["EventFormerConfig", "EventFormer", "match", "set_loss", "segment_tiou", "cw_to_se", "se_to_cw"]


@dataclass(frozen=True)
class EventFormerConfig:
    in_dim: int
    num_aus: int = 12
    queries: int = 8                 # N per AU
    d_model: int = 64
    heads: int = 4
    enc_layers: int = 2
    dec_layers: int = 2
    ff_dim: int = 128
    dropout: float = 0.2
    window: int = 256
    # [R] matching costs and loss weights (TadTR opts.py defaults)
    cost_focal: float = 6.0
    cost_l1: float = 5.0
    cost_iou: float = 2.0
    loss_focal: float = 2.0
    loss_l1: float = 5.0
    loss_iou: float = 2.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    aux_loss: bool = True
    # [R] helpers for a CPU-sized training budget (not in the abstract; off = plain DETR/TadTR)
    frame_loss: float = 1.0          # weight of a per-frame AU BCE head on the encoder output
    anchors: bool = True             # query n of an AU starts at centre (n + 0.5) / N: predictions are offsets
    refine: bool = True              # each decoder layer refines the previous layer's (c, w); the query's
                                     # positional part is an embedding of its current (c, w) (Deformable-/DAB-DETR)
    init_width: float = 0.1          # the anchors' starting width (window units)
    proposals: bool = True           # two-stage: queries start from runs of the frame head's probabilities
                                     # (thresholds .3/.5/.7, best mean probability first); anchors fill the rest
    proposal_smooth: int = 5         # box filter (frames) on those probabilities before the runs
    scales: tuple[int, ...] = (1, 2, 4)  # temporal scales: windows also over features average-pooled by k
                                     # (targets /k), so events longer than a window fit one at a coarser scale
    stem_kernel: int = 5             # > 0: a residual temporal conv stem (two Conv1d of this kernel, GELU)
                                     # after the input projection (ActionFormer-style local prior)

    def __post_init__(self):
        if self.in_dim < 1 or self.num_aus < 1 or self.queries < 1 or self.window < 2:
            raise InputError("EventFormer config: sizes must be positive", got=str(asdict(self)))
        if not 0 <= self.dropout < 1:
            raise InputError("dropout must be in [0, 1)", got=str(self.dropout))
        object.__setattr__(self, "scales", tuple(int(k) for k in self.scales))
        if not self.scales or min(self.scales) < 1 or len(set(self.scales)) != len(self.scales):
            raise InputError("scales must be distinct integers >= 1", got=str(self.scales))
        for name in ("stem_kernel", "proposal_smooth"):
            k = getattr(self, name)
            if k < 0 or (k and k % 2 == 0):
                raise InputError(f"{name} must be 0 or odd", got=str(k))
        if self.d_model % self.heads:
            raise InputError("d_model must be a multiple of heads", got=f"{self.d_model} % {self.heads}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EventFormerConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise InputError("unknown EventFormer config keys", got=", ".join(sorted(unknown)))
        return cls(**d)


def sinusoid(n: int, d: int) -> torch.Tensor:
    """(n, d) sinusoidal positions (Vaswani et al.)."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    i = torch.arange(0, d, 2, dtype=torch.float32)
    ang = pos / (10000 ** (i / d))
    out = torch.zeros(n, d)
    out[:, 0::2] = torch.sin(ang)
    out[:, 1::2] = torch.cos(ang[:, : d // 2])
    return out


class EventFormer(nn.Module):
    def __init__(self, cfg: EventFormerConfig):
        super().__init__()
        self.config = cfg
        d = cfg.d_model
        self.input_proj = nn.Linear(cfg.in_dim, d)
        self.register_buffer("pos", sinusoid(cfg.window, d), persistent=False)
        if cfg.stem_kernel:
            k = cfg.stem_kernel
            self.stem = nn.Sequential(nn.Conv1d(d, d, k, padding=k // 2), nn.GELU(),
                                      nn.Conv1d(d, d, k, padding=k // 2))
        enc = nn.TransformerEncoderLayer(d, cfg.heads, cfg.ff_dim, cfg.dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(enc, cfg.enc_layers, enable_nested_tensor=False)
        self.decoder_layers = nn.ModuleList(
            nn.TransformerDecoderLayer(d, cfg.heads, cfg.ff_dim, cfg.dropout, batch_first=True)
            for _ in range(cfg.dec_layers))
        self.query_embed = nn.Parameter(torch.randn(cfg.num_aus * cfg.queries, d) * 0.1)
        self.norm = nn.LayerNorm(d)
        self.segment_head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 2))
        self.score_head = nn.Linear(d, 1)
        self.frame_head = nn.Linear(d, cfg.num_aus)
        ref = (torch.arange(cfg.queries, dtype=torch.float32) + 0.5) / cfg.queries
        self.register_buffer("ref_centre", torch.logit(ref).repeat(cfg.num_aus).view(cfg.num_aus, cfg.queries),
                             persistent=False)
        self.ref_pos = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        if cfg.refine:                  # refinements start at 0: the first prediction is the reference itself
            nn.init.zeros_(self.segment_head[-1].weight)
            nn.init.zeros_(self.segment_head[-1].bias)
        prior = 0.01                                            # focal-loss prior on event-ness (RetinaNet)
        nn.init.constant_(self.score_head.bias, -math.log((1 - prior) / prior))

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None):
        """x (B, W, in_dim), pad (B, W) True on padding -> list over decoder layers of
        (segments (B, C, N, 2) as (centre, width) in [0, 1], logits (B, C, N)); ``self.frame_logits``
        keeps the per-frame AU logits (B, W, C) of the last call."""
        B, W, _ = x.shape
        if W > self.config.window:
            raise InputError("window longer than the model's", expected=f"<= {self.config.window}", got=str(W))
        h = self.input_proj(x)
        if self.config.stem_kernel:
            keep = 1.0 if pad is None else (~pad)[..., None].to(h.dtype)
            h = h + self.stem((h * keep).transpose(1, 2)).transpose(1, 2)
        mem = self.encoder(h + self.pos[:W], src_key_padding_mask=pad)
        self.frame_logits = self.frame_head(mem)
        mem_k = mem + self.pos[:W]
        q = self.query_embed[None].expand(B, -1, -1)
        tgt = torch.zeros_like(q)
        outs = []
        C, N = self.config.num_aus, self.config.queries
        ref = None
        if self.config.refine:
            w0 = torch.full_like(self.ref_centre, math.log(self.config.init_width / (1 - self.config.init_width)))
            ref = torch.stack([self.ref_centre, w0], -1)[None].expand(B, -1, -1, -1).clone()     # logit space
            if self.config.proposals:
                ref = _proposal_refs(torch.sigmoid(self.frame_logits.detach()), pad, ref,
                                     smooth=self.config.proposal_smooth)
        for layer in self.decoder_layers:
            pq = q
            if ref is not None:
                pq = q + self.ref_pos(_sine(torch.sigmoid(ref).reshape(B, C * N, 2), self.config.d_model, W))
            tgt = layer(tgt + pq, mem_k, memory_key_padding_mask=pad) - pq
            o = self.norm(tgt)
            raw = self.segment_head(o).view(B, C, N, 2)
            if ref is not None:
                raw = ref + raw
                ref = raw.detach()
            elif self.config.anchors:
                raw = torch.stack([raw[..., 0] + self.ref_centre, raw[..., 1]], -1)
            seg = torch.sigmoid(raw)
            logit = self.score_head(o).view(B, C, N)
            outs.append((seg, logit))
        return outs


def _proposal_refs(p: torch.Tensor, pad: torch.Tensor | None, ref: torch.Tensor,
                   thresholds=(0.3, 0.5, 0.7), smooth: int = 5) -> torch.Tensor:
    """[R] Two-stage query initialisation: per window and AU, the runs of p > θ (θ in
    ``thresholds``; p box-smoothed over ``smooth`` frames), best mean probability first, become the
    first queries' (c, w) (logit space); the remaining queries keep their anchors."""
    B, W, C = p.shape
    N = ref.shape[2]
    k = max(1, smooth)                                     # box smoothing against fragmented runs
    sm = nn.functional.avg_pool1d(p.transpose(1, 2), k, stride=1, padding=k // 2, count_include_pad=False)
    pn = sm.transpose(1, 2).cpu().numpy()
    valid = np.ones((B, W), bool) if pad is None else ~pad.cpu().numpy()
    out = ref.clone()
    for b in range(B):
        L = int(valid[b].sum())
        for c in range(C):
            cands = {}
            for th in thresholds:
                on = np.concatenate([[False], pn[b, :L, c] > th, [False]])
                d = np.diff(on.astype(np.int8))
                for s0, e0 in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
                    cands[(int(s0), int(e0))] = float(pn[b, s0:e0, c].mean())
            best = sorted(cands.items(), key=lambda kv: -kv[1])[:N]
            for n, ((s0, e0), _) in enumerate(best):
                cw = torch.tensor([(s0 + e0) / 2 / W, (e0 - s0) / W]).clamp(1e-3, 1 - 1e-3)
                out[b, c, n] = torch.logit(cw)
    return out


def _sine(v: torch.Tensor, d: int, scale: float) -> torch.Tensor:
    """(…, 2) centre/width in [0, 1] -> (…, d): sinusoids of c·scale and w·scale, d/2 each."""
    half = d // 2
    i = torch.arange(0, half, 2, dtype=v.dtype, device=v.device)
    freq = 1.0 / (10000 ** (i / half))
    parts = []
    for k in range(2):
        a = v[..., k:k + 1] * scale * freq
        parts += [torch.sin(a), torch.cos(a)]
    out = torch.cat(parts, -1)
    return nn.functional.pad(out, (0, d - out.shape[-1]))


# ---------------------------------------------------------------- geometry
def cw_to_se(cw: torch.Tensor) -> torch.Tensor:
    c, w = cw[..., 0], cw[..., 1]
    return torch.stack([c - w / 2, c + w / 2], -1)


def se_to_cw(se: torch.Tensor) -> torch.Tensor:
    s, e = se[..., 0], se[..., 1]
    return torch.stack([(s + e) / 2, e - s], -1)


def segment_tiou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise tIoU of (…, P, 2) and (…, G, 2) [s, e] segments -> (…, P, G)."""
    s = torch.maximum(a[..., :, None, 0], b[..., None, :, 0])
    e = torch.minimum(a[..., :, None, 1], b[..., None, :, 1])
    inter = (e - s).clamp(min=0)
    union = (a[..., :, None, 1] - a[..., :, None, 0]) + (b[..., None, :, 1] - b[..., None, :, 0]) - inter
    return inter / union.clamp(min=1e-9)


# ---------------------------------------------------------------- matching and loss
def _pad_targets(targets: list[list[torch.Tensor]], device) -> tuple[torch.Tensor, torch.Tensor]:
    """targets[b][c] (G, 2) -> (B, C, Gmax, 2) padded with [0, 1] and a (B, C, Gmax) validity mask."""
    B, C = len(targets), len(targets[0]) if targets else 0
    G = max([len(t) for per in targets for t in per] + [1])
    out = torch.zeros(B, C, G, 2, device=device)
    out[..., 1] = 1.0
    valid = torch.zeros(B, C, G, dtype=torch.bool, device=device)
    for b, per in enumerate(targets):
        for c, t in enumerate(per):
            if len(t):
                out[b, c, :len(t)] = t
                valid[b, c, :len(t)] = True
    return out, valid


@torch.no_grad()
def match(seg: torch.Tensor, logit: torch.Tensor, targets: list[list[torch.Tensor]], cfg: EventFormerConfig,
          padded: tuple[torch.Tensor, torch.Tensor] | None = None):
    """Hungarian matching within each AU's set. ``seg`` (B, C, N, 2) centre/width, ``logit``
    (B, C, N), ``targets[b][c]`` (G, 2) [s, e] in window units. Returns a list of
    (b, c, query indices, target indices). The costs of every (b, c) come from one batched
    computation; only the assignment runs per set. ``padded``: ``_pad_targets(targets)`` if the
    caller has it already."""
    from scipy.optimize import linear_sum_assignment

    p = torch.sigmoid(logit)
    a, g = cfg.focal_alpha, cfg.focal_gamma
    pos = a * (1 - p) ** g * -torch.log(p.clamp(min=1e-8))
    neg = (1 - a) * p ** g * -torch.log((1 - p).clamp(min=1e-8))
    focal = pos - neg                                           # (B, C, N), DETR's focal cost
    tp, valid = padded if padded is not None else _pad_targets(targets, seg.device)     # (B, C, G, 2)
    l1 = (seg[..., :, None, :] - se_to_cw(tp)[..., None, :, :]).abs().sum(-1)          # (B, C, N, G)
    iou = segment_tiou(cw_to_se(seg), tp)
    cost = (cfg.cost_focal * focal[..., None] + cfg.cost_l1 * l1 - cfg.cost_iou * iou).cpu().numpy()
    counts = valid.sum(-1).cpu().numpy()
    out = []
    for b, c in zip(*np.nonzero(counts), strict=True):
        qi, ti = linear_sum_assignment(cost[b, c, :, :counts[b, c]])
        out.append((int(b), int(c), torch.as_tensor(qi, device=seg.device), torch.as_tensor(ti, device=seg.device)))
    return out


def set_loss(outputs, targets: list[list[torch.Tensor]], cfg: EventFormerConfig) -> tuple[torch.Tensor, dict]:
    """Focal + L1 + (1 − tIoU), at the last decoder layer and (``aux_loss``) every other one."""
    layers = outputs if cfg.aux_loss else outputs[-1:]
    n_events = max(1, sum(len(t) for per in targets for t in per))
    total, parts = 0.0, {"focal": 0.0, "l1": 0.0, "iou": 0.0}
    padded = _pad_targets(targets, layers[0][0].device) if layers else None
    tp = padded[0] if padded else None
    for seg, logit in layers:
        m = match(seg, logit, targets, cfg, padded)
        target = torch.zeros_like(logit)
        if m:
            bi = torch.cat([torch.full_like(qi, b) for b, _, qi, _ in m])
            ci = torch.cat([torch.full_like(qi, c) for _, c, qi, _ in m])
            qi = torch.cat([q for _, _, q, _ in m])
            ti = torch.cat([t for _, _, _, t in m])
            target[bi, ci, qi] = 1.0
            ps, ts = seg[bi, ci, qi], tp[bi, ci, ti]             # (M, 2) matched pairs
            l1 = (ps - se_to_cw(ts)).abs().sum()
            pse = cw_to_se(ps)
            inter = (torch.minimum(pse[:, 1], ts[:, 1]) - torch.maximum(pse[:, 0], ts[:, 0])).clamp(min=0)
            union = (pse[:, 1] - pse[:, 0]) + (ts[:, 1] - ts[:, 0]) - inter
            iou = (1 - inter / union.clamp(min=1e-9)).sum()
        else:
            l1 = iou = seg.new_zeros(())
        p = torch.sigmoid(logit)
        ce = nn.functional.binary_cross_entropy_with_logits(logit, target, reduction="none")
        pt = p * target + (1 - p) * (1 - target)
        at = cfg.focal_alpha * target + (1 - cfg.focal_alpha) * (1 - target)
        focal = (at * (1 - pt) ** cfg.focal_gamma * ce).sum() / n_events
        l1, iou = l1 / n_events, iou / n_events
        total = total + cfg.loss_focal * focal + cfg.loss_l1 * l1 + cfg.loss_iou * iou
        parts["focal"] += float(focal.detach())
        parts["l1"] += float(l1.detach())
        parts["iou"] += float(iou.detach())
    return total, parts


def window_targets(events_frames: list[tuple[int, int, int]], start: int, W: int, C: int) -> list[torch.Tensor]:
    """Events (au index, s, e) in frames -> per AU (G, 2) [s, e] clipped to the window
    [start, start + W) in window units (0..1); events outside the window are dropped."""
    per = [[] for _ in range(C)]
    for c, s, e in events_frames:
        s2, e2 = max(s, start), min(e, start + W)
        if e2 > s2:
            per[c].append(((s2 - start) / W, (e2 - start) / W))
    return [torch.tensor(p, dtype=torch.float32).reshape(-1, 2) for p in per]


def window_starts(T: int, W: int, stride: int) -> list[int]:
    """Window starts covering [0, T): stride apart, the last one flush with the end."""
    if T <= W:
        return [0]
    starts = list(range(0, T - W + 1, stride))
    if starts[-1] != T - W:
        starts.append(T - W)
    return starts


def nms(segs: np.ndarray, scores: np.ndarray, thr: float) -> np.ndarray:
    """Greedy 1-D NMS: indices kept (by descending score), dropping tIoU > thr with a kept one."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    for i in order:
        s, e = segs[i]
        ok = True
        for j in keep:
            inter = max(0.0, min(e, segs[j, 1]) - max(s, segs[j, 0]))
            union = (e - s) + (segs[j, 1] - segs[j, 0]) - inter
            if union > 0 and inter / union > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return np.asarray(keep, np.int64)
