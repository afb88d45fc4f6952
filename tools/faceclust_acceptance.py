#!/usr/bin/env python3
"""Measure the numeric-agreement figures of the faceclust issue (checks 1 and 2) and print one
JSON line each; the clustering figures come from the bench verbs:

    .venv/bin/python tools/faceclust_acceptance.py
    mlkit faceclust bench                                  # check 3 (logistic similarity)
    mlkit faceclust bench --sim transformer                # check 4 (tiny transformer, gram tokens)
    mlkit faceclust bench --sim transformer --tokens features
    mlkit faceclust bench --n 200000                       # check 5

The same agreements run as tests (tests/faceclust/test_metrics.py, test_core.py); this script
prints the worst deviations for the record."""

import json

import numpy as np
from sklearn.metrics import normalized_mutual_info_score
from sklearn.metrics.cluster import pair_confusion_matrix

from mlkit.faceclust import metrics
from mlkit.faceclust.density import ndde, ndde_dense_reference
from mlkit.faceclust.knn import build_knn
from mlkit.faceclust.synth import make_split
from mlkit.faceclust.tpdi import tpdi, tpdi_dense_reference


def ref_pairwise(gt, pred):
    c = pair_confusion_matrix(gt, pred)
    tp, fp, fn = c[1, 1], c[0, 1], c[1, 0]
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return np.array([p, r, 2 * p * r / (p + r) if p + r else 0.0])


def ref_bcubed(gt, pred):
    same_g, same_p = gt[:, None] == gt[None, :], pred[:, None] == pred[None, :]
    both = (same_g & same_p).sum(1)
    p, r = np.mean(both / same_p.sum(1)), np.mean(both / same_g.sum(1))
    return np.array([p, r, 2 * p * r / (p + r)])


def main() -> None:
    worst = {"pairwise": 0.0, "bcubed": 0.0, "nmi": 0.0}
    for seed in range(200):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(2, 1500))
        gt = rng.integers(0, int(rng.integers(1, n + 1)), n)
        pred = np.where(rng.random(n) < rng.random(), rng.integers(0, int(rng.integers(1, n + 1)), n), gt)
        pw, bc = metrics.pairwise(gt, pred), metrics.bcubed(gt, pred)
        worst["pairwise"] = max(worst["pairwise"], float(np.abs(
            np.array([pw["precision"], pw["recall"], pw["f"]]) - ref_pairwise(gt, pred)).max()))
        worst["bcubed"] = max(worst["bcubed"], float(np.abs(
            np.array([bc["precision"], bc["recall"], bc["f"]]) - ref_bcubed(gt, pred)).max()))
        worst["nmi"] = max(worst["nmi"], abs(metrics.nmi(gt, pred) - normalized_mutual_info_score(gt, pred)))
    print(json.dumps({"check": 1, "labelings": 200, "max_abs_diff": worst, "tolerance": 1e-9,
                      "ok": max(worst.values()) <= 1e-9}), flush=True)
    x, _ = make_split(120, seed=5)
    x = x[:3000]
    g = build_knn(x, 80)
    d_ndde = float(np.abs(ndde(g.ids, g.dists, 20, 0.5) - ndde_dense_reference(g.ids, g.dists, 20, 0.5)).max())
    d_tpdi = float(np.abs(tpdi(g.ids, g.dists, 0.05) - tpdi_dense_reference(g.ids, g.dists, 0.05)).max())
    print(json.dumps({"check": 2, "n": len(x), "k": 80, "ndde_max_abs_diff": d_ndde, "tpdi_max_abs_diff": d_tpdi,
                      "ok": d_ndde <= 1e-12 and d_tpdi <= 1e-9}), flush=True)


if __name__ == "__main__":
    main()
