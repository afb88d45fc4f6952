"""BERT from its definition in float64 numpy, the independent reference of the mcubert tests and
``tools/mcubert_acceptance.py``."""

import math

import numpy as np


def numpy_bert(sd: dict, cfg, ids: np.ndarray, mask: np.ndarray | None = None) -> tuple:
    """BERT from its definition in float64 numpy (no torch): post-LN, erf GELU, softmax over keys."""
    W = {k: v.detach().double().numpy() for k, v in sd.items()}
    erf = np.vectorize(math.erf)

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + cfg.layer_norm_eps) * W[p + ".weight"] + W[p + ".bias"]

    def lin(x, p):
        return x @ W[p + ".weight"].T + W[p + ".bias"]

    L = len(ids)
    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:L] \
        + W["embeddings.token_type_embeddings.weight"][0]
    x = ln(x, "embeddings.LayerNorm")
    H, dh = cfg.num_attention_heads, cfg.head_dim
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}."
        q, k, v = (lin(x, p + f"attention.self.{n}") for n in ("query", "key", "value"))
        ctx = np.zeros_like(x)
        for h in range(H):
            c = slice(h * dh, (h + 1) * dh)
            s = q[:, c] @ k[:, c].T / math.sqrt(dh)
            if mask is not None:
                s = np.where(mask[None, :] > 0, s, -np.inf)
            e = np.exp(s - s.max(1, keepdims=True))
            ctx[:, c] = (e / e.sum(1, keepdims=True)) @ v[:, c]
        x = ln(x + lin(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        f = lin(x, p + "intermediate.dense")
        f = 0.5 * f * (1 + erf(f / math.sqrt(2)))
        x = ln(x + lin(f, p + "output.dense"), p + "output.LayerNorm")
    pooled = np.tanh(lin(x[0], "pooler.dense"))
    return x, pooled
