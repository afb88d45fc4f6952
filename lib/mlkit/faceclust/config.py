"""Defaults of `mlkit faceclust`, taken from the official code (echoanran/On-Mitigating-Hard-Clusters,
``config/config_train_ms1m.yaml``); the paper's own method section was not available to us.

``SimConfig.d_model`` is always the feature dimension D: the official model feeds the raw
L2-normalised features to the encoder with no input projection, so there is no separate width to
choose. The "tiny" CI config therefore shrinks what does not change the checkpoint layout's meaning:
k (40 tokens instead of 80), heads (4) and the FFN (512). At D = 256 it costs about 4x less per
anchor than the full size (the 16x figure of the design notes assumed a 128-wide projection, which
would add keys the official checkpoint does not have).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..errors import InputError

__all__ = ["SimConfig", "TrainConfig", "ClusterConfig", "DENSITIES"]

DENSITIES = ("ndde", "ndde-full", "sumsim", "naive")


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
    d_model: int = 256     # = feature dimension D (no input projection)
    heads: int = 8
    ffn: int = 2048
    dropout: float = 0.2
    max_len: int = 80      # rows of the sinusoidal position table; a graph may have at most this many columns

    @classmethod
    def tiny(cls, dim: int = 256) -> SimConfig:
        """The CPU/CI size: k = 40, 4 heads, FFN 512, d_model = ``dim`` (the feature dimension)."""
        return cls(k=40, d_model=dim, heads=4, ffn=512)

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

    def validate(self) -> TrainConfig:
        _positive("epochs", self.epochs)
        _positive("learning rate", self.lr)
        _positive("weight decay", self.weight_decay, strict=False)
        _positive("batch", self.batch)
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
