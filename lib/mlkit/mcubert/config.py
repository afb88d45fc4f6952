"""BERT configurations and the target boards.

``BertConfig`` follows Hugging Face's ``BertConfig`` field names, so a checkpoint's
``config.json`` loads as is; ``TINY`` and ``MINI`` are Google's BERT-tiny (L2/H128/A2/FF512) and
BERT-mini (L4/H256/A4/FF1024), ``MINILM_L6`` the all-MiniLM-L6-v2 layout (L6/H384/A12/FF1536).

Boards (paper notes §1; SRAM/flash from ST's datasheets): NUCLEO-F746ZG 320 KB / 1 MB, NUCLEO-F767ZI
512 KB / 2 MB, NUCLEO-H7A3ZI-Q 1.4 MB / 2 MB (KB = 1024 bytes here, as in the datasheets' memory maps).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields

from mlkit.errors import InputError

__all__ = ["BertConfig", "TINY", "MINI", "MINILM_L6", "PRESETS", "Board", "BOARDS", "expected_shapes",
           "param_count", "module_params"]


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 512
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    num_labels: int = 0           # 0 = no classifier head
    # clustered low-rank word embedding: (tokens, rank) per cluster, the vocabulary remapped so that
    # cluster c holds the ids after the previous clusters' (``embedding.py``); () = a dense table
    embedding_factors: tuple[tuple[int, int], ...] = ()

    def __post_init__(self):
        for f in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                  "max_position_embeddings", "type_vocab_size"):
            if int(getattr(self, f)) < 1:
                raise InputError(f"bad BERT config: {f} must be >= 1", got=str(getattr(self, f)))
        if self.hidden_size % self.num_attention_heads:
            raise InputError("bad BERT config: hidden size not divisible by the number of heads",
                             got=f"hidden {self.hidden_size}, heads {self.num_attention_heads}")
        object.__setattr__(self, "embedding_factors", tuple((int(n), int(r)) for n, r in self.embedding_factors))
        if self.embedding_factors and (sum(n for n, _ in self.embedding_factors) != self.vocab_size
                                       or min(min(n, r) for n, r in self.embedding_factors) < 0):
            raise InputError("bad BERT config: embedding factors must cover the vocabulary",
                             expected=f"cluster sizes summing to {self.vocab_size}, ranks >= 0",
                             got=str(self.embedding_factors[:4]))
        if self.hidden_act not in ("gelu", "gelu_new", "relu"):
            raise InputError("unsupported hidden_act", expected="gelu, gelu_new or relu", got=self.hidden_act)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, d: dict) -> BertConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_json(cls, text: str) -> BertConfig:
        try:
            return cls.from_dict(json.loads(text))
        except (json.JSONDecodeError, TypeError) as exc:
            raise InputError("unreadable BERT config.json", got=str(exc)[:80]) from exc

    def to_dict(self) -> dict:
        return asdict(self)


TINY = BertConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512)
MINI = BertConfig(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)
MINILM_L6 = BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
PRESETS = {"tiny": TINY, "mini": MINI, "minilm-l6": MINILM_L6}


@dataclass(frozen=True)
class Board:
    name: str
    sram: int      # bytes
    flash: int     # bytes
    mhz: int


BOARDS = {b.name: b for b in (Board("nucleo-f746zg", 320 * 1024, 1024 * 1024, 216),
                              Board("nucleo-f767zi", 512 * 1024, 2048 * 1024, 216),
                              Board("nucleo-h7a3zi-q", 1400 * 1024, 2048 * 1024, 280))}


# ---------------------------------------------------------------------------- parameters
def expected_shapes(cfg: BertConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter key of ``BertModel(cfg)`` and its shape, in module order."""
    D, F, V = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    if cfg.embedding_factors:
        out = {}
        for c, (n, r) in enumerate(cfg.embedding_factors):
            out[f"embeddings.word_embeddings.tables.{c}"] = (n, r)
            out[f"embeddings.word_embeddings.projections.{c}"] = (r, D)
    else:
        out = {"embeddings.word_embeddings.weight": (V, D)}
    out |= {"embeddings.position_embeddings.weight": (cfg.max_position_embeddings, D),
           "embeddings.token_type_embeddings.weight": (cfg.type_vocab_size, D),
           "embeddings.LayerNorm.weight": (D,), "embeddings.LayerNorm.bias": (D,)}
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}."
        for n in ("query", "key", "value"):
            out[f"{p}attention.self.{n}.weight"] = (D, D)
            out[f"{p}attention.self.{n}.bias"] = (D,)
        out.update({f"{p}attention.output.dense.weight": (D, D), f"{p}attention.output.dense.bias": (D,),
                    f"{p}attention.output.LayerNorm.weight": (D,), f"{p}attention.output.LayerNorm.bias": (D,),
                    f"{p}intermediate.dense.weight": (F, D), f"{p}intermediate.dense.bias": (F,),
                    f"{p}output.dense.weight": (D, F), f"{p}output.dense.bias": (D,),
                    f"{p}output.LayerNorm.weight": (D,), f"{p}output.LayerNorm.bias": (D,)})
    out.update({"pooler.dense.weight": (D, D), "pooler.dense.bias": (D,)})
    if cfg.num_labels:
        out.update({"classifier.weight": (cfg.num_labels, D), "classifier.bias": (cfg.num_labels,)})
    return out


def param_count(cfg: BertConfig) -> int:
    return sum(math.prod(s) for s in expected_shapes(cfg).values())


def module_params(cfg: BertConfig) -> dict[str, int]:
    """Parameters per top-level module: word embedding, other embeddings, each encoder layer,
    pooler, classifier."""
    out: dict[str, int] = {}
    for k, s in expected_shapes(cfg).items():
        if k.startswith("embeddings.word_embeddings."):
            group = "embeddings.word"
        elif k.startswith("embeddings."):
            group = "embeddings.other"
        elif k.startswith("encoder.layer."):
            group = "encoder.layer." + k.split(".")[2]
        else:
            group = k.split(".")[0]
        out[group] = out.get(group, 0) + math.prod(s)
    return out
