"""Defaults of `mlkit faceclust`, taken from the official code (echoanran/On-Mitigating-Hard-Clusters,
``config/config_train_ms1m.yaml``); the paper's own method section was not available to us.

Tokens. The official model feeds the raw L2-normalised neighbour features to the encoder with no
input projection (``tokens="features"``), so ``d_model`` is the feature dimension D.
``tokens="gram"`` is ours [R]: token r is the row of cosines between neighbour r and every
neighbour of the anchor, cos(x_r, x_{n_0}), ..., cos(x_r, x_{n_{k-1}}), zero-padded to d_model
(so k <= d_model; D is free). The same encoder and pair head, the same state-dict keys, but the
input no longer says *where* in feature space the neighbourhood lies, only how its members relate:
what a model trained on a few hundred identities can carry over to identities it never saw.

The "tiny" CPU/CI config shrinks what does not change the checkpoint layout's meaning: k (40
tokens instead of 80), heads (4) and the FFN (512); it uses gram tokens, and ``TrainConfig.tiny()``
sizes training for a few thousand anchors (batch 64, lr 3e-4, 8 epochs) where the official recipe
(batch 512, lr 1e-4, 10 epochs) is sized for MS1M's 576K. It also holds out 20% of the identities
[R]: the epoch with the lowest validation loss is kept, and p(same) = sigmoid(a·logit + b) is fitted
on those unseen identities, since TPDi's sigma and tau assume calibrated probabilities. At D = 256
the tiny model costs about 4x less per anchor than the full size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..errors import InputError

__all__ = ["SimConfig", "TrainConfig", "ClusterConfig", "DENSITIES", "TOKENS"]

DENSITIES = ("ndde", "ndde-full", "sumsim", "naive")
TOKENS = ("features", "gram")


def _from_dict(cls, d: dict, what: str):
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise InputError(f"unknown {what} field", expected=", ".join(sorted(names)), got=", ".join(unknown))
    return cls(**d)


def _positive(name: str, value, *, strict: bool = True) -> None:
    if value is None or (value <= 0 if strict else value < 0):
        raise InputError(f"{name} must be {'>' if strict else '>='} 0", got=str(value))


@dataclass
class SimConfig:
    """The learned similarity model (`networks/models.py` TransformerBased, one encoder layer)."""

    k: int = 80            # tokens per anchor: the anchor itself (rank 0) and its k-1 nearest neighbours
    d_model: int = 256     # token width: = feature dimension D for "features" tokens, >= k for "gram"
    heads: int = 8
    ffn: int = 2048
    dropout: float = 0.2
    max_len: int = 80      # rows of the sinusoidal position table; a graph may have at most this many columns
    tokens: str = "features"  # "features" (official) or "gram" (ours, see the module docstring)

    @classmethod
    def tiny(cls, dim: int = 256, tokens: str = "gram") -> SimConfig:
        """The CPU/CI size: k = 40, 4 heads, FFN 512, d_model = ``dim``, gram tokens."""
        return cls(k=40, d_model=dim, heads=4, ffn=512, tokens=tokens)

    def validate(self) -> SimConfig:
        for name in ("k", "d_model", "heads", "ffn", "max_len"):
            _positive(name, getattr(self, name))
        if self.k < 2:
            raise InputError("k too small", expected=">= 2 (the anchor and one neighbour)", got=str(self.k))
        if self.d_model % self.heads:
            raise InputError("d_model not divisible by heads", expected=f"a divisor of {self.d_model}",
                             got=str(self.heads))
        if self.k > self.max_len:
            raise InputError("k exceeds the position table", expected=f"<= max_len {self.max_len}",
                             got=str(self.k))
        if not 0 <= self.dropout < 1:
            raise InputError("dropout out of range", expected="0 <= dropout < 1", got=str(self.dropout))
        if self.tokens not in TOKENS:
            raise InputError("unknown tokens", expected=", ".join(TOKENS), got=str(self.tokens))
        if self.tokens == "gram" and self.k > self.d_model:
            raise InputError("gram tokens need k <= d_model", expected=f"k <= {self.d_model}", got=str(self.k))
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SimConfig:
        return _from_dict(cls, d, "similarity-model config").validate()


@dataclass
class TrainConfig:
    """Training of the similarity model. ``batch`` is the global batch of anchors (split over ranks
    under torchrun). Unlike the official loop, the last short batch is kept (drop_last=False)."""

    epochs: int = 10
    lr: float = 1e-4
    weight_decay: float = 5e-4
    batch: int = 512
    seed: int = 42         # the official config's seed
    val_fraction: float = 0.0   # [R] identities held out to pick the epoch and calibrate; 0 = official

    @classmethod
    def tiny(cls, **kw) -> TrainConfig:
        """Training sized for a few thousand anchors on a CPU: batch 64, lr 3e-4, 8 epochs, the best
        by validation loss on 20% held-out identities, then calibrated on them."""
        return cls(**{"epochs": 8, "lr": 3e-4, "batch": 64, "val_fraction": 0.2, **kw})

    def validate(self) -> TrainConfig:
        _positive("epochs", self.epochs)
        _positive("learning rate", self.lr)
        _positive("weight decay", self.weight_decay, strict=False)
        _positive("batch", self.batch)
        if not 0 <= self.val_fraction < 1:
            raise InputError("val_fraction out of range", expected="0 <= val_fraction < 1", got=str(self.val_fraction))
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return _from_dict(cls, d, "training config").validate()


@dataclass
class ClusterConfig:
    """Density (NDDe), distance (TPDi) and density-peak clustering settings."""

    k: int = 80
    ndde_k: int = 20
    ndde_sigma: float = 0.5
    damping: float = 0.1   # full NDDe power iteration: rho <- d*rho + (1-d)*L^T rho
    eps: float = 0.05      # full NDDe stops when ||delta||_1 < eps
    tpdi_sigma: float = 0.05
    tau: float = 0.7       # link i to its parent when TPDi < tau (a distance threshold)
    max_conn: int = 1
    density: str = "ndde"  # one of DENSITIES
    tpdi: bool = True

    def validate(self) -> ClusterConfig:
        for name in ("k", "ndde_k", "ndde_sigma", "eps", "tpdi_sigma", "tau", "max_conn"):
            _positive(name, getattr(self, name))
        if not 0 <= self.damping < 1:
            raise InputError("damping out of range", expected="0 <= damping < 1", got=str(self.damping))
        if self.ndde_k > self.k:
            raise InputError("ndde_k exceeds k", expected=f"<= {self.k}", got=str(self.ndde_k))
        if self.density not in DENSITIES:
            raise InputError("unknown density", expected=", ".join(DENSITIES), got=str(self.density))
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ClusterConfig:
        return _from_dict(cls, d, "clustering config").validate()
