"""Embedding compression of a checkpoint: the word-embedding table replaced by a clustered
low-rank one (``embedding.py``) at a target ratio, the vocabulary remapped so clusters are
contiguous (the new ``vocab.txt`` goes with the checkpoint), everything else kept.

Methods: ``svd`` (global truncated SVD: one cluster), ``cluster-svd`` (k-means clusters of the
rows, per-cluster SVD, greedy ranks), ``random`` (random clusters: the control),
``groupreduce`` (frequency groups, frequency-weighted; token frequencies from ``freq``, else
uniform), ``nas`` (the paper's two-stage search, ``nas.py``: with a ``task`` its losses include
the frozen model's cross-entropy on the task data; token counts ``freq`` weight its
reconstruction term and set its per-cluster thresholds).

Budgets: ``ratio`` (embedding parameters V·D / ratio) or ``budget_bytes`` (int8 bytes of the
compressed table, ``ClusteredLowRank.int8_bytes``). Every method stays within the same budget,
so results at one budget are compared at equal bytes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from mlkit.errors import CheckFailed, InputError

from . import embedding as E
from . import nas
from .config import BertConfig, param_count

__all__ = ["METHODS", "compress_embedding", "flash_budget", "export_bytes"]

METHODS = ("svd", "cluster-svd", "random", "groupreduce", "nas")


def compress_embedding(cfg: BertConfig, sd: dict, *, method: str = "cluster-svd", ratio: float | None = 12.0,
                       budget_bytes: int | None = None, clusters: int = 16, seed: int = 0,
                       freq: np.ndarray | None = None, task=None, nas_options: dict | None = None,
                       progress=None):
    """(new config, new state dict, perm new_id -> old_id, report dict)."""
    if method not in METHODS:
        raise InputError("unknown compression method", expected=", ".join(METHODS), got=method)
    if budget_bytes is None and (ratio is None or not ratio > 1):
        raise InputError("--ratio must be > 1", got=str(ratio))
    if cfg.embedding_factors:
        raise InputError("the embedding is already compressed", hint="compress the dense checkpoint")
    table = sd["embeddings.word_embeddings.weight"].double().numpy()
    V, D = table.shape
    C = 1 if method == "svd" else clusters
    overhead = E.OFFSET_BYTES * (C + 1) + E.RANK_BYTES * C + 2 * E.SCALE_BYTES * C
    if budget_bytes is None:
        budget = V * D / ratio
        budget_bytes = int(budget + overhead)
    else:
        budget = budget_bytes - overhead
        floor = nas.table_bytes_floor(np.full(C, V // C) + (np.arange(C) < V % C), D)
        if budget < V + D or budget_bytes < floor:
            raise CheckFailed("the embedding budget is below the rank floor",
                              expected=f">= {max(floor, V + D + overhead)} bytes for the table",
                              got=f"{int(budget_bytes)} bytes")
    w = None if freq is None else np.asarray(freq, np.float64)
    if method == "svd":
        f = E.global_svd(table, budget)
    elif method == "cluster-svd":
        f = E.cluster_svd(table, E.kmeans_clusters(table, clusters, seed), budget)
    elif method == "random":
        f = E.cluster_svd(table, E.random_clusters(V, clusters, seed), budget)
    elif method == "groupreduce":
        f = E.groupreduce(table, w, clusters, budget)
    else:
        f = nas.search(table, clusters, budget_bytes, freq=w, weights=w, task=task, seed=seed, progress=progress,
                       **(nas_options or {})).table
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
              "embedding_int8_bytes": f.int8_bytes(), "budget_int8_bytes": int(budget_bytes), "relative_error": E.relative_error(table, f.reconstruct()),
              "params": [before, after], "total_ratio": before / after}
    return new_cfg, new_sd, rm.perm, report


_WORD = "embeddings.word_embeddings.weight"


def export_bytes(cfg: BertConfig, sd: dict, calib_ids=None, *, seq_len: int = 128, seed: int = 0) -> int:
    """Bytes of the C arrays ``export.export_c`` writes for this model (tiled plan, tile 16);
    ``calib_ids`` only set the scales (random ids without them)."""
    from .export import render_c, with_dense_embedding
    from .schedule import plan, tiled_schedule
    from .simulate import calibrate

    L = min(seq_len, cfg.max_position_embeddings)
    if calib_ids is None:
        rng = np.random.default_rng(seed)
        calib_ids = [rng.integers(0, cfg.vocab_size, min(32, L)) for _ in range(4)]
    q = calibrate(with_dense_embedding(sd, cfg), cfg, calib_ids)
    return render_c(sd, cfg, q, plan(tiled_schedule(cfg, L, min(16, L))))[1]["totals"]["flash_bytes"]


def flash_budget(cfg: BertConfig, sd: dict, flash: int, *, clusters: int = 16, seed: int = 0, calib_ids=None,
                 code_bytes: int | None = None, svd: bool = False) -> int:
    """The int8 byte budget for the word table with which the whole model plus ``code_bytes`` fits
    ``flash``, counted both ways: ``report.flash_bytes`` (int8 weights, one 8-byte scale per
    tensor, the TFLM convention) and the arrays ``export`` writes (per-channel requantisation,
    LayerNorm in Q12, lookup tables; no pooler or classifier), which run ~5% larger. Found with
    the fast cluster-SVD (C = ``clusters``; one cluster with ``svd``): start from the report's
    count, shrink by the overshoot until both fit. Any method's table at that budget is no larger,
    so it fits too. ``calib_ids`` (token-id sequences) only sets the export's scales; random ids
    are used without them. Budget below rank 1 per cluster: ``CheckFailed`` (exit 1) naming the
    least flash that works."""
    from .report import CODE_BYTES, flash_bytes, tensor_bytes

    code = CODE_BYTES if code_bytes is None else code_bytes
    V, D = cfg.vocab_size, cfg.hidden_size
    C = 1 if svd else clusters
    rest = flash_bytes(cfg) - tensor_bytes(_WORD, (V, D))
    floor = nas.table_bytes_floor(np.full(C, V // C) + (np.arange(C) < V % C), D)   # rank 1 per cluster
    # the report counts 8 bytes of scale per stored tensor (2 per cluster), the table's int8_bytes 4
    budget = flash - code - rest - 16 * C
    def need(b):
        new_cfg, new_sd, perm, _ = compress_embedding(cfg, sd, method="svd" if svd else "cluster-svd",
                                                      budget_bytes=b, clusters=C, seed=seed)
        inv = np.argsort(perm)
        ids = None if calib_ids is None else [inv[np.asarray(i)] for i in calib_ids]
        return max(flash_bytes(new_cfg), export_bytes(new_cfg, new_sd, ids, seed=seed)) + code

    for _ in range(12):
        if budget < floor:      # the least achievable: the model at the rank floor, both counts
            least = need(floor)
            if least <= flash:  # the last step overshot: the floor itself fits
                return int(floor)
            raise CheckFailed("the model cannot fit this flash even at rank 1 per cluster",
                              expected=f"flash >= {least} bytes ({least / 1024:,.1f} KiB) with {C} clusters",
                              got=f"{flash} bytes")
        over = need(budget) - flash
        if over <= 0:
            return int(budget)
        budget -= max(over, 1024)
    raise CheckFailed("no table budget found that fits the flash", got=f"{flash} bytes")  # pragma: no cover
