"""Fine-tuning / training a ``BertModel`` classifier on tokenised examples, and prediction.

AdamW with linear warm-up (10%) and linear decay, as BERT's ``run_classifier.py``; cross-entropy
(MSE for regression, one output). Batches are padded to their longest example."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .data import Examples
from .model import BertModel
from .tokenizer import WordPiece

__all__ = ["encode_examples", "fit", "predict"]


def encode_examples(tok: WordPiece, ex: Examples, max_len: int):
    ids, types, mask = tok.encode(ex.a, ex.b, max_len=max_len)
    return torch.from_numpy(ids), torch.from_numpy(types), torch.from_numpy(mask)


def _batches(n: int, batch: int, rng: np.random.Generator | None):
    idx = rng.permutation(n) if rng is not None else np.arange(n)
    for s in range(0, n, batch):
        yield torch.from_numpy(idx[s:s + batch])


def fit(model: BertModel, data, y: np.ndarray, *, epochs: int = 3, lr: float = 1e-3, batch: int = 64,
        weight_decay: float = 0.01, seed: int = 0, device: str = "cpu", regression: bool = False,
        progress: Callable[[int, int, float], None] | None = None) -> list[float]:
    """Train in place; returns the mean loss per epoch. ``data`` = (ids, types, mask)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    ids, types, mask = (t.to(device) for t in data)
    target = torch.as_tensor(y, dtype=torch.float32 if regression else torch.long, device=device)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * -(-len(target) // batch)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / (steps - warm + 1e-9))))
    losses, done = [], 0
    for _ in range(epochs):
        total, count = 0.0, 0
        for b in _batches(len(target), batch, rng):
            b = b.to(device)
            L = int(mask[b].sum(1).max())
            _, _, logits = model(ids[b, :L], types[b, :L], mask[b, :L])
            loss = (torch.nn.functional.mse_loss(logits[:, 0], target[b]) if regression
                    else torch.nn.functional.cross_entropy(logits, target[b]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(b)
            count += len(b)
            done += 1
            if progress:
                progress(done, steps, float(loss.detach()))
        losses.append(total / count)
    model.eval()
    return losses


@torch.no_grad()
def predict(model: BertModel, data, *, batch: int = 256, device: str = "cpu", regression: bool = False) -> np.ndarray:
    ids, types, mask = (t.to(device) for t in data)
    model.to(device).eval()
    out = []
    for b in _batches(len(ids), batch, None):
        b = b.to(device)
        L = int(mask[b].sum(1).max())
        logits = model(ids[b, :L], types[b, :L], mask[b, :L])[2]
        out.append(logits[:, 0].cpu().numpy() if regression else logits.argmax(1).cpu().numpy())
    return np.concatenate(out)
