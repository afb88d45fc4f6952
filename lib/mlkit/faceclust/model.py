"""The learned pair-similarity model of Chen et al. (ECCV 2022) and our 2-parameter stand-in.

``PairTransformer`` mirrors the official ``networks/models.py`` ``TransformerBased`` with
``num_encoder_layers=1, normalize_before=False``: one DETR-style post-norm encoder layer over the
k kNN features of an anchor (rank 0 = the anchor itself), sinusoidal positions added to queries and
keys only, ReLU FFN, no final LayerNorm, then a pair head on concat(out_0, out_r). State-dict keys
are the official ones, so a checkpoint from ``save/Ours/checkpoint.tar`` loads unchanged.

One deliberate difference: the official ``nn.MultiheadAttention`` is built without
``batch_first`` but fed (B, k, D), so it attends across the B anchors of a batch at the same rank,
and an anchor's scores depend on which other anchors share its batch. Here attention runs over the
k neighbours of each anchor (the evident intent), so per-anchor outputs are independent of batching.
Weights trained by the official code still load, but their scores will differ from the official run.

``SimConfig.tokens = "gram"`` (ours, [R]) feeds each anchor's k×k cosine matrix among its neighbours,
row r zero-padded to d_model, instead of the raw features: see ``config.py``.
"""

from __future__ import annotations

import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import InputError
from .config import SimConfig

__all__ = ["PairTransformer", "LogisticCalibration", "sinusoidal_encoding", "gram_tokens", "load_official"]


def sinusoidal_encoding(length: int, dim: int) -> torch.Tensor:
    """(length, dim): pe[p, 2i] = sin(p / 10000^(2i/dim)), pe[p, 2i+1] = cos(same)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]                       # (L, 1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : dim // 2]
    return pe


def gram_tokens(x: torch.Tensor, width: int) -> torch.Tensor:
    """(B, k, D) unit-row features -> (B, k, width): row r = cos(x_r, x_0 .. x_{k-1}), zero-padded."""
    g = x @ x.transpose(1, 2)                                                       # (B, k, k)
    return F.pad(g, (0, width - g.shape[-1]))


class EncoderLayer(nn.Module):
    """DETR ``TransformerEncoderLayer.forward_post``: attention (pos on q, k) -> add & norm ->
    FFN -> add & norm."""

    def __init__(self, cfg: SimConfig):
        super().__init__()
        d = cfg.d_model
        self.self_attn = nn.MultiheadAttention(d, cfg.heads, dropout=cfg.dropout, batch_first=True)
        self.linear1 = nn.Linear(d, cfg.ffn)
        self.dropout = nn.Dropout(cfg.dropout)
        self.linear2 = nn.Linear(cfg.ffn, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.dropout1 = nn.Dropout(cfg.dropout)
        self.dropout2 = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        qk = x + pos                                                                # (B, k, D)
        att = self.self_attn(qk, qk, value=x, need_weights=False)[0]                # (B, k, D)
        x = self.norm1(x + self.dropout1(att))
        ff = self.linear2(self.dropout(F.relu(self.linear1(x))))                   # (B, k, D)
        return self.norm2(x + self.dropout2(ff))


class Encoder(nn.Module):
    def __init__(self, cfg: SimConfig, num_layers: int = 1):
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer(cfg) for _ in range(num_layers)])

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, pos)
        return x                                                                    # no final LayerNorm


class PairTransformer(nn.Module):
    """forward(tokens (B, k, D)) -> logits (B, k): logit that rank r is the same identity as the
    anchor (rank 0). Rank 0 pairs the anchor with itself; training ignores it.

    Full size (D = 256): 1,479,425 parameters (encoder 1,315,072, clf 164,353). The pair head's
    widths follow the official code, (2D -> D -> D/2 -> 1), i.e. 512-256-128-1 at D = 256."""

    def __init__(self, cfg: SimConfig | None = None):
        super().__init__()
        self.cfg = cfg = (cfg or SimConfig()).validate()
        d = cfg.d_model
        self.encoder = Encoder(cfg)
        self.clf = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Linear(d, d // 2), nn.ReLU(),
                                 nn.Linear(d // 2, 1))
        self.register_buffer("pos", sinusoidal_encoding(cfg.max_len, d), persistent=False)
        # [R] logit calibration (a, b) fitted on held-out identities; (1, 0) = none. Not in the
        # state dict (the official keys stay as they are): checkpoints keep it in their metadata.
        self.register_buffer("calibration", torch.tensor([1.0, 0.0]), persistent=False)

    def set_calibration(self, a: float, b: float) -> None:
        self.calibration = torch.tensor([float(a), float(b)], dtype=self.calibration.dtype,
                                        device=self.calibration.device)

    def get_calibration(self) -> list[float]:
        return [float(v) for v in self.calibration]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (B, k, D) neighbour features, the anchor first (any D with gram tokens)."""
        B, k, D = tokens.shape
        d, gram = self.cfg.d_model, self.cfg.tokens == "gram"
        if (not gram and D != d) or k > min(self.cfg.max_len, d if gram else self.cfg.max_len):
            want = f"(B, <= {min(self.cfg.max_len, d)}, any D)" if gram else f"(B, <= {self.cfg.max_len}, {d})"
            raise InputError("tokens have the wrong shape", expected=want, got=str(tuple(tokens.shape)))
        if gram:
            tokens = gram_tokens(tokens, d)                                         # (B, k, d)
        out = self.encoder(tokens, self.pos[None, :k])                              # (B, k, d)
        anchor = out[:, :1].expand(B, k, d)                                         # (B, k, d)
        logits = self.clf(torch.cat([anchor, out], dim=-1)).squeeze(-1)             # (B, k)
        return logits * self.calibration[0] + self.calibration[1]


class LogisticCalibration(nn.Module):
    """Our CPU stand-in for the learned model: p(same identity) = sigmoid(a * cos + b)."""

    def __init__(self, a: float = 1.0, b: float = 0.0):
        super().__init__()
        # fitted by Newton steps (train.fit_logistic_pairs), not by autograd
        self.a = nn.Parameter(torch.tensor(float(a), dtype=torch.float64), requires_grad=False)
        self.b = nn.Parameter(torch.tensor(float(b), dtype=torch.float64), requires_grad=False)

    def forward(self, cos: torch.Tensor) -> torch.Tensor:
        """Logits a * cos + b, same shape as ``cos``."""
        return self.a.to(cos.dtype) * cos + self.b.to(cos.dtype)

    def prob(self, cos):
        """sigmoid(a * cos + b) for a numpy array (float64 inside), same shape."""
        import numpy as np

        z = float(self.a) * np.asarray(cos, dtype=np.float64) + float(self.b)
        return 0.5 * (1.0 + np.tanh(0.5 * z))                                       # overflow-free sigmoid


_PREFIXES = ("module.", "model.")


def _strip_prefix(key: str) -> str:
    for p in _PREFIXES:
        if key.startswith(p):
            return key[len(p):]
    return key


def load_official(path_or_state, cfg: SimConfig | None = None) -> PairTransformer:
    """A ``PairTransformer`` from the official checkpoint (``{'net', 'optimizer', 'epoch'}``, a
    ``.tar``/``.pt``/``.pth`` file or that dict already loaded) or from a plain state dict.

    Without ``cfg`` the shapes decide d_model and the FFN width; heads (not visible in the
    weights) and k default to the official 8 and 80, unless the file was written by ``save_sim``
    (its config is stored under ``'mlkit'``). Keys and shapes are checked: a wrong file raises
    InputError and never loads half-way. A ``module.`` (DataParallel) prefix is dropped."""
    from ..tensors import load_state_dict_checked, load_torch_file

    obj = load_torch_file(path_or_state) if not isinstance(path_or_state, dict) else path_or_state
    state = obj.get("net", obj) if isinstance(obj.get("net"), dict) else obj
    state = {_strip_prefix(k): v for k, v in state.items()}
    bad = [k for k, v in state.items() if not torch.is_tensor(v)]
    if bad:
        raise InputError("not a state dict of tensors", got=f"{len(bad)} non-tensor entries ({bad[0]!r})",
                         hint="give the checkpoint's 'net' dict or the checkpoint file")
    calibration = (1.0, 0.0)
    if isinstance(obj.get("mlkit"), str):                                           # written by save_sim
        try:
            meta = json.loads(obj["mlkit"])
            cfg = cfg or SimConfig.from_dict(meta["config"])
            a, b = (float(v) for v in meta.get("calibration") or (1.0, 0.0))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError("corrupt mlkit metadata in the checkpoint", got=str(exc)[:80]) from exc
        if not (math.isfinite(a) and math.isfinite(b)):
            raise InputError("non-finite calibration in the checkpoint", got=f"a={a}, b={b}")
        calibration = (a, b)
    if cfg is None:
        w_in = state.get("encoder.layers.0.self_attn.in_proj_weight")
        w_1 = state.get("encoder.layers.0.linear1.weight")
        if w_in is None or w_1 is None or w_in.ndim != 2 or w_1.ndim != 2:
            raise InputError("not a faceclust similarity checkpoint",
                             expected="keys encoder.layers.0.self_attn.in_proj_weight, encoder.layers.0.linear1.weight",
                             got=", ".join(sorted(state)[:4]) or "no keys")
        d = int(w_in.shape[1])
        cfg = SimConfig(d_model=d, ffn=int(w_1.shape[0]), heads=8 if d % 8 == 0 else 1)
    model = PairTransformer(cfg)
    load_state_dict_checked(model, {k: v.float() for k, v in state.items()})
    model.set_calibration(*calibration)
    return model.eval()
