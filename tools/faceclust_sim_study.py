#!/usr/bin/env python3
"""The study behind the faceclust README's "raw-feature tokens" paragraph: a tiny pair transformer
trained on a disjoint synthetic split, scored on seed 10's test split by pair AUC (over every kNN
pair) and by the full method's pairwise / BCubed F.

    .venv/bin/python tools/faceclust_sim_study.py VARIANT [--epochs N] [--batch B] [--lr LR]
        [--train-ids N] [--seed S]

VARIANT: logistic | features | features-scaled (inputs x sqrt(D)) | features-rotated (a random
orthogonal rotation per batch) | gram. Add --seen to train and test on alternate faces of the same
identities instead. A study loop (no validation split, no calibration), not the product's trainer."""

import argparse
import math

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from mlkit.faceclust.cluster import cluster_graph
from mlkit.faceclust.config import SimConfig
from mlkit.faceclust.knn import build_knn
from mlkit.faceclust.metrics import evaluate
from mlkit.faceclust.model import PairTransformer
from mlkit.faceclust.synth import make_split, train_seed
from mlkit.faceclust.train import fit_logistic, refine_distances


def score(name, gt, ids, d):
    same = (gt[ids[:, 1:]] == gt[:, None]).ravel()
    auc = roc_auc_score(same, -d[:, 1:].astype(np.float64).ravel())
    ev = evaluate(gt, cluster_graph(ids, d, "chen", tau=0.7).labels)
    print(f"{name}: pair AUC {auc:.4f}  F_P {ev['pairwise_f']:.4f}  F_B {ev['bcubed_f']:.4f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("variant", choices=["logistic", "features", "features-scaled", "features-rotated", "gram"])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--train-ids", type=int, default=300)
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--seen", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(42)
    x, gt = make_split(600, seed=a.seed)
    xt, yt = make_split(a.train_ids, seed=train_seed(a.seed))
    if a.seen:                                            # alternate faces of the same identities
        h = np.arange(len(xt)) % 2 == 0
        xt, yt, x, gt = xt[h], yt[h], xt[~h], yt[~h]
    tr, g = build_knn(xt, 80), build_knn(x, 80)
    if a.variant == "logistic":
        score("logistic", gt, *refine_distances(fit_logistic(xt, tr.ids, tr.dists, yt), x, g.ids, g.dists))
        return
    cfg = SimConfig.tiny(xt.shape[1], tokens="gram" if a.variant == "gram" else "features")
    net = PairTransformer(cfg)
    scale = math.sqrt(xt.shape[1]) if a.variant == "features-scaled" else 1.0
    feats, nbrs, lab = torch.tensor(xt * scale), torch.tensor(tr.ids[:, :cfg.k], dtype=torch.long), torch.tensor(yt)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr, weight_decay=5e-4)
    for epoch in range(a.epochs):
        net.train()
        perm, total = torch.randperm(len(xt)), []
        for s in range(0, len(xt), a.batch):
            anchor = perm[s:s + a.batch]
            nb = nbrs[anchor]
            tok = feats[nb]
            if a.variant == "features-rotated":
                q, r = torch.linalg.qr(torch.randn(tok.shape[-1], tok.shape[-1]))
                tok = tok @ (q * torch.sign(torch.diagonal(r)))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                net(tok)[:, 1:], (lab[nb[:, 1:]] == lab[anchor, None]).float())
            opt.zero_grad()
            loss.backward()
            opt.step()
            total.append(float(loss.detach()))
        net.eval()
        print(f"epoch {epoch + 1}: training loss {np.mean(total):.4f}", flush=True)
    score(a.variant + (" (seen identities)" if a.seen else ""), gt, *refine_distances(net, x * scale, g.ids, g.dists))


if __name__ == "__main__":
    main()
