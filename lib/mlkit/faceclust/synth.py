"""Synthetic "hard-cluster" face embeddings in the learn-to-cluster on-disk layout.

The generator of the paper notes §5 (a reconstruction of ours; the paper has no synthetic set):

- identity sizes follow a capped power law, s = min(floor(smin·(1−u)^(−1/(α−1))), smax), u ~ U(0,1)
  (α = 2: median 9–10, mean about 25), so most identities are small;
- identities come in families of ``family`` (the last family may be smaller). A family direction
  F ~ N(0, I) is normalised; each identity centre is c = normalize(F + t·g/√D), g ~ N(0, I), t =
  ``family_spread``, so sibling centres have cosine ≈ 1/(1+t²) = 0.5 at t = 1;
- each identity has its own spread σ_c = exp(U(ln a, ln b)), ``spread = (a, b)``, so some are
  tight and some sparse;
- samples are x = normalize(c + σ_c·h/√D), h ~ N(0, I), and the rows are shuffled.

Sparsity (Springer text): Sparsity(C) = 1 − Σ_{i≠j∈C} cos(x_i, x_j) / (|C|(|C|−1)); for unit rows
Σ_{i≠j} cos = ‖Σ_i x_i‖² − Σ_i ‖x_i‖², so it costs one pass over the features.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from mlkit.codecs._io import atomic_dir, write_bytes
from mlkit.errors import InputError, OutputError

from .formats import write_meta

__all__ = ["make_split", "make_dataset", "sample_sizes", "identity_centres", "identity_sparsity",
           "train_seed"]

FORMAT = "mlkit.faceclust.synth/1"


def _check(ok: bool, what: str, expected: str, got) -> None:
    if not ok:
        raise InputError(what, expected=expected, got=str(got))


def _check_params(n_ids, dim, alpha, smin, smax, family, family_spread, spread) -> tuple[float, float]:
    _check(int(n_ids) == n_ids and n_ids >= 1, "bad number of identities", "an integer >= 1", n_ids)
    _check(int(dim) == dim and dim >= 2, "bad feature dimension", "an integer >= 2", dim)
    _check(alpha > 1, "bad power-law exponent alpha", "alpha > 1", alpha)
    _check(int(smin) == smin and smin >= 1, "bad smallest identity size smin", "an integer >= 1", smin)
    _check(int(smax) == smax and smax >= smin, "bad largest identity size smax", f"an integer >= smin = {smin}",
           smax)
    _check(int(family) == family and family >= 1, "bad family size", "an integer >= 1", family)
    _check(family_spread >= 0, "bad family spread", "t >= 0", family_spread)
    try:
        a, b = (float(v) for v in spread)
    except (TypeError, ValueError) as exc:
        raise InputError("bad spread range", expected="two numbers a:b", got=repr(spread)) from exc
    _check(0 < a <= b, "bad spread range", "0 < a <= b", f"{a}:{b}")
    return a, b


def sample_sizes(rng: np.random.Generator, n_ids: int, *, alpha: float = 2.0, smin: int = 5,
                 smax: int = 300) -> np.ndarray:
    """(n_ids,) int64 identity sizes, min(floor(smin·(1−u)^(−1/(α−1))), smax), all in [smin, smax]."""
    u = rng.random(n_ids)
    s = np.minimum(smin * (1.0 - u) ** (-1.0 / (alpha - 1.0)), smax)  # 1−u in (0, 1]: never 0
    return np.floor(s).astype(np.int64)


def identity_centres(rng: np.random.Generator, n_ids: int, *, dim: int = 256, family: int = 10,
                     family_spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(centres (n_ids, dim) float64 unit rows, family index (n_ids,) int64); identity i belongs
    to family i // family."""
    fam = np.arange(n_ids, dtype=np.int64) // family
    f = rng.standard_normal((int(fam[-1]) + 1, dim))
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    c = f[fam] + family_spread * rng.standard_normal((n_ids, dim)) / math.sqrt(dim)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    return c, fam


def make_split(n_ids: int, *, dim: int = 256, alpha: float = 2.0, smin: int = 5, smax: int = 300,
               family: int = 10, family_spread: float = 1.0, spread: tuple[float, float] = (0.6, 1.4),
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One split: (features (N, dim) float32 unit rows, labels (N,) int64 in 0..n_ids−1).

    Draws, in this order, from ``np.random.default_rng(seed)``: sizes, family directions, centre
    offsets, spreads, sample noise, row permutation. The same arguments give the same bytes."""
    a, b = _check_params(n_ids, dim, alpha, smin, smax, family, family_spread, spread)
    n_ids, dim = int(n_ids), int(dim)
    rng = np.random.default_rng(seed)
    sizes = sample_sizes(rng, n_ids, alpha=alpha, smin=int(smin), smax=int(smax))
    centres, _ = identity_centres(rng, n_ids, dim=dim, family=int(family), family_spread=family_spread)
    sigma = np.exp(rng.uniform(math.log(a), math.log(b), n_ids))
    labels = np.repeat(np.arange(n_ids, dtype=np.int64), sizes)               # (N,)
    x = rng.standard_normal((labels.size, dim), dtype=np.float32)              # (N, D) h
    x *= (sigma / math.sqrt(dim)).astype(np.float32)[labels, None]
    x += centres.astype(np.float32)[labels]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    perm = rng.permutation(labels.size)
    return np.ascontiguousarray(x[perm]), labels[perm]


def identity_sparsity(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Sparsity of each identity with at least two samples, 1 − mean off-diagonal cosine, in the
    order of ``np.unique(labels)`` (NaN for singletons). ``features`` must have unit rows."""
    uniq, inv, counts = np.unique(labels, return_inverse=True, return_counts=True)
    order = np.argsort(inv, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    xs = features[order].astype(np.float64)
    sums = np.add.reduceat(xs, starts, axis=0)                                # (C, D)
    diag = np.add.reduceat(np.einsum("ij,ij->i", xs, xs), starts)             # Σ‖x_i‖² (= |C|)
    n = counts.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 1.0 - (np.einsum("ij,ij->i", sums, sums) - diag) / (n * (n - 1.0))
    out[counts < 2] = np.nan
    return out


def train_seed(seed: int) -> int:
    """The train split's seed for dataset seed ``seed`` (the test split uses ``seed`` itself)."""
    return int(np.random.SeedSequence([int(seed), 1]).generate_state(1, np.uint32)[0])


def _summary(x: np.ndarray, y: np.ndarray, n_ids: int, seed: int, offset: int) -> dict:
    sizes = np.bincount(y - offset, minlength=n_ids)
    sp = identity_sparsity(x, y)
    q = np.nanquantile(sp, [0.05, 0.5, 0.95]) if np.isfinite(sp).any() else [float("nan")] * 3
    return {"seed": seed, "ids": n_ids, "n": int(y.size), "labels": [offset, offset + n_ids - 1],
            "size": {"min": int(sizes.min()), "median": float(np.median(sizes)),
                     "mean": round(float(sizes.mean()), 3), "max": int(sizes.max())},
            "sparsity": {k: round(float(v), 4) for k, v in zip(("q05", "q50", "q95"), q, strict=True)}}


def make_dataset(folder, *, ids: int = 600, train_ids: int = 300, seed: int = 0, dim: int = 256,
                 alpha: float = 2.0, smin: int = 5, smax: int = 300, family: int = 10,
                 family_spread: float = 1.0, spread: tuple[float, float] = (0.6, 1.4)) -> dict:
    """Write ``folder/features/{train,test}.bin`` (raw little-endian float32, N×dim),
    ``folder/labels/{train,test}.meta`` (one int per line) and ``folder/synth.json``; return the
    JSON content.

    The test split is ``make_split(ids, seed=seed)``; the train split uses ``train_seed(seed)``,
    so its families (and so its identities) are independent of the test ones, and its labels are
    shifted to ``ids .. ids+train_ids−1`` so the two label sets are disjoint too. The folder is
    built beside ``folder`` and renamed into place; an existing folder is replaced only when it
    holds a ``synth.json`` (never some other non-empty folder)."""
    _check(int(train_ids) == train_ids and train_ids >= 1, "bad number of train identities",
           "an integer >= 1", train_ids)
    params = {"ids": int(ids), "train_ids": int(train_ids), "seed": int(seed), "dim": int(dim),
              "alpha": float(alpha), "smin": int(smin), "smax": int(smax), "family": int(family),
              "family_spread": float(family_spread), "spread": [float(v) for v in spread]}
    kw = {k: params[k] for k in ("dim", "alpha", "smin", "smax", "family", "family_spread")}
    kw["spread"] = tuple(params["spread"])
    path = Path(folder)
    if path.is_dir() and any(path.iterdir()) and not (path / "synth.json").is_file():
        raise OutputError(f"{path}: folder exists and is not a synth dataset",
                          expected="a new or empty folder, or an earlier synth output",
                          hint="choose another folder")
    splits = {"test": (int(ids), int(seed), 0), "train": (int(train_ids), train_seed(seed), int(ids))}
    info = {"format": FORMAT, "params": params, "splits": {}}
    with atomic_dir(path) as tmp:
        (tmp / "features").mkdir()
        (tmp / "labels").mkdir()
        for name, (n_ids, s, offset) in splits.items():
            x, y = make_split(n_ids, seed=s, **kw)
            y += offset
            write_bytes(x.astype("<f4", copy=False).tobytes(), tmp / "features" / f"{name}.bin")
            write_meta(y, tmp / "labels" / f"{name}.meta")
            info["splits"][name] = _summary(x, y, n_ids, s, offset)
        write_bytes((json.dumps(info, indent=2) + "\n").encode(), tmp / "synth.json")
    return info
