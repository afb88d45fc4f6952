"""Issue 6, check 7: accuracy of BERT-tiny on ``synth sentiment`` before and after >= 5x total
compression, every embedding method at the same int8 byte budget, each fine-tuned the same way.

    .venv/bin/python tools/mcubert_accuracy.py --seeds 0 1 --out acc.json

Per seed: train the BERT-tiny config from scratch (``--epochs``); then (a) the dense model trained
``--ft-epochs`` more (the fair reference: the same total epochs), (b) each compression method at
one shared budget (the int8 bytes that ``--ratio`` allows the table), fine-tuned ``--ft-epochs``.
NAS runs with the task (frozen model's cross-entropy) and train-set token counts. Results are
written after every model (atomically), so a killed run keeps what it finished.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from mlkit.codecs._io import write_bytes  # noqa: E402
from mlkit.mcubert import embedding as E  # noqa: E402
from mlkit.mcubert.bench import dense_table  # noqa: E402
from mlkit.mcubert.compress import compress_embedding  # noqa: E402
from mlkit.mcubert.config import TINY, param_count  # noqa: E402
from mlkit.mcubert.data import Examples  # noqa: E402
from mlkit.mcubert.model import BertModel  # noqa: E402
from mlkit.mcubert.nas import Task  # noqa: E402
from mlkit.mcubert.synth import make_vocab, sentiment, write_vocab  # noqa: E402
from mlkit.mcubert.tokenizer import WordPiece  # noqa: E402
from mlkit.mcubert.train import encode_examples, fit, predict  # noqa: E402


def examples(rows) -> Examples:
    return Examples([r["text"] for r in rows], None, np.array([r["label"] for r in rows]), None)


def accuracy(model, enc, y) -> float:
    return float((predict(model, enc) == y).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--ft-epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--ratio", type=float, default=10.0, help="embedding ratio that sets the shared budget")
    ap.add_argument("--clusters", type=int, default=16)
    ap.add_argument("--max-len", type=int, default=48)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--methods", default="svd,groupreduce,cluster-svd,nas")
    ap.add_argument("--out", default="mcubert_accuracy.json")
    a = ap.parse_args()

    lines, _ = make_vocab()
    tmp = Path(tempfile.mkdtemp())
    write_vocab(lines, tmp / "vocab.txt")
    tok = WordPiece(tmp / "vocab.txt")
    tr, dv = examples(sentiment(a.n, seed=0)), examples(sentiment(max(200, a.n // 10), seed=10_000))
    enc_tr, enc_dv = encode_examples(tok, tr, a.max_len), encode_examples(tok, dv, a.max_len)
    counts = np.bincount(enc_tr[0][enc_tr[2].bool()].numpy(), minlength=tok.vocab_size).astype(float)
    cfg = replace(TINY, vocab_size=tok.vocab_size, num_labels=2)
    V, D = tok.vocab_size, cfg.hidden_size
    C = a.clusters
    budget = int(V * D / a.ratio + E.OFFSET_BYTES * (C + 1) + E.RANK_BYTES * C + 2 * E.SCALE_BYTES * C)
    out = {"args": vars(a), "budget_int8_bytes": budget, "params_dense": param_count(cfg), "runs": []}

    def save():
        write_bytes(json.dumps(out, indent=1).encode(), Path(a.out))

    for seed in a.seeds:
        torch.manual_seed(seed)
        base = BertModel(cfg)
        t = time.time()
        fit(base, enc_tr, tr.y, epochs=a.epochs, lr=a.lr, seed=seed)
        acc0 = accuracy(base, enc_dv, dv.y)
        out["runs"].append({"seed": seed, "model": "dense", "epochs": a.epochs, "dev_acc": acc0,
                            "params": param_count(cfg), "seconds": time.time() - t})
        print(out["runs"][-1], flush=True)
        save()
        dense = copy.deepcopy(base)
        t = time.time()
        fit(dense, enc_tr, tr.y, epochs=a.ft_epochs, lr=a.lr, seed=seed + 1)
        out["runs"].append({"seed": seed, "model": "dense", "epochs": a.epochs + a.ft_epochs,
                            "dev_acc": accuracy(dense, enc_dv, dv.y), "params": param_count(cfg),
                            "seconds": time.time() - t})
        print(out["runs"][-1], flush=True)
        save()
        for method in a.methods.split(","):
            t = time.time()
            sd = {k: v.detach().clone() for k, v in base.state_dict().items()}
            task = Task(copy.deepcopy(base), enc_tr, tr.y, _rng=np.random.default_rng(seed)) if method == "nas" else None
            new_cfg, new_sd, perm, rep = compress_embedding(cfg, sd, method=method, budget_bytes=budget, clusters=C,
                                                            seed=seed, freq=counts + 1.0, task=task)
            t_compress = time.time() - t
            m = BertModel(new_cfg)
            m.load_state_dict(new_sd, strict=True)
            inv = torch.from_numpy(np.argsort(perm))
            tr_new = (inv[enc_tr[0]], enc_tr[1], enc_tr[2])
            dv_new = (inv[enc_dv[0]], enc_dv[1], enc_dv[2])
            before = accuracy(m, dv_new, dv.y)
            fit(m, tr_new, tr.y, epochs=a.ft_epochs, lr=a.lr, seed=seed + 1)
            w = counts + 1.0
            tab = sd["embeddings.word_embeddings.weight"].double().numpy()
            out["runs"].append({
                "seed": seed, "model": method, "epochs": a.epochs + a.ft_epochs, "dev_acc": accuracy(m, dv_new, dv.y),
                "dev_acc_before_ft": before, "params": param_count(new_cfg), "total_ratio": rep["total_ratio"],
                "embedding_int8_bytes": rep["embedding_int8_bytes"], "relative_error": rep["relative_error"],
                "weighted_relative_error": E.relative_error(tab, dense_table(new_sd, new_cfg, perm), weights=w),
                "ranks": rep["ranks"], "seconds_compress": t_compress, "seconds": time.time() - t})
            print(out["runs"][-1], flush=True)
            save()


if __name__ == "__main__":
    main()
