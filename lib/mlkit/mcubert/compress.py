"""Embedding compression of a checkpoint: the word-embedding table replaced by a clustered
low-rank one (``embedding.py``) at a target ratio, the vocabulary remapped so clusters are
contiguous (the new ``vocab.txt`` goes with the checkpoint), everything else kept.

Methods: ``svd`` (global truncated SVD: one cluster), ``cluster-svd`` (k-means clusters of the
rows, per-cluster SVD, greedy ranks), ``random`` (random clusters: the control),
``groupreduce`` (frequency groups, frequency-weighted; token frequencies from ``freq``, else a
Zipf proxy over the vocabulary order). The two-stage NAS of the paper is not built yet.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from mlkit.errors import InputError

from . import embedding as E
from .config import BertConfig, param_count

__all__ = ["METHODS", "compress_embedding"]

METHODS = ("svd", "cluster-svd", "random", "groupreduce")


def compress_embedding(cfg: BertConfig, sd: dict, *, method: str = "cluster-svd", ratio: float = 12.0,
                       clusters: int = 16, seed: int = 0, freq: np.ndarray | None = None):
    """(new config, new state dict, perm new_id -> old_id, report dict)."""
    if method not in METHODS:
        raise InputError("unknown compression method", expected=", ".join(METHODS), got=method)
    if not ratio > 1:
        raise InputError("--ratio must be > 1", got=str(ratio))
    if cfg.embedding_factors:
        raise InputError("the embedding is already compressed", hint="compress the dense checkpoint")
    table = sd["embeddings.word_embeddings.weight"].double().numpy()
    V, D = table.shape
    budget = V * D / ratio
    if method == "svd":
        f = E.global_svd(table, budget)
    elif method == "cluster-svd":
        f = E.cluster_svd(table, E.kmeans_clusters(table, clusters, seed), budget)
    elif method == "random":
        f = E.cluster_svd(table, E.random_clusters(V, clusters, seed), budget)
    else:
        f = E.groupreduce(table, freq, clusters, budget)
    rm = f.remap()
    t = rm.table
    new_cfg = replace(cfg, embedding_factors=tuple((int(n), int(r)) for n, r in zip(t.sizes, t.ranks, strict=True)))
    new_sd = {k: v for k, v in sd.items() if k != "embeddings.word_embeddings.weight"}
    for c in range(t.n_clusters):
        new_sd[f"embeddings.word_embeddings.tables.{c}"] = torch.from_numpy(np.ascontiguousarray(t.tables[c])).float()
        new_sd[f"embeddings.word_embeddings.projections.{c}"] = torch.from_numpy(
            np.ascontiguousarray(t.projections[c])).float()
    before, after = param_count(cfg), param_count(new_cfg)
    report = {"method": method, "target_ratio": ratio, "clusters": int(t.n_clusters), "ranks": t.ranks.tolist(),
              "embedding_params": [V * D, f.params()], "embedding_ratio": V * D / max(f.params(), 1),
              "embedding_int8_bytes": f.int8_bytes(), "relative_error": E.relative_error(table, f.reconstruct()),
              "params": [before, after], "total_ratio": before / after}
    return new_cfg, new_sd, rm.perm, report
