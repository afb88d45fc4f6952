"""``bench``: the paper's method beside its ablations and kNN-DBSCAN, in one run per seed, on the
synthetic hard-cluster data (train and test splits with disjoint identities)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from .baselines import best_eps_knn_dbscan
from .cluster import cluster_graph
from .knn import build_knn
from .metrics import evaluate

__all__ = ["run_seed", "BENCH_METHODS"]

BENCH_METHODS = ("chen", "ndde-only", "tpdi-only", "sumsim", "knn-dbscan")


def _row(method: str, gt, pred, seconds: float, extra: dict | None = None) -> dict:
    ev = evaluate(gt, pred)
    return {"method": method, "pairwise_f": ev["pairwise_f"], "bcubed_f": ev["bcubed_f"], "nmi": ev["nmi"],
            "clusters": ev["n_clusters_pred"], "smallest_quintile_recall": ev["size_bins"][0]["recall"],
            "seconds": seconds, **(extra or {})}


def run_seed(seed: int, *, ids: int = 600, train_ids: int = 300, sim: str = "logistic", k: int = 80,
             methods: Iterable[str] = BENCH_METHODS, tau: float = 0.7, device: str = "cpu") -> list[dict]:
    """Rows per method on ``synth --ids ids --seed seed`` with the similarity fitted on a disjoint
    ``train_ids`` split. ``seconds`` of the method rows count kNN + similarity + clustering."""
    from .synth import make_split, train_seed
    from .train import fit_logistic, fit_transformer, refine_distances

    x, gt = make_split(ids, seed=seed)
    xt, gtt = make_split(train_ids, seed=train_seed(seed))
    t0 = time.perf_counter()
    tr = build_knn(xt, k)
    if sim == "logistic":
        model = fit_logistic(xt, tr.ids, tr.dists, gtt)
    else:
        from .config import SimConfig, TrainConfig

        model = fit_transformer(xt, tr.ids, gtt, SimConfig.tiny(xt.shape[1]), TrainConfig(), device=device)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    g = build_knn(x, k)
    knn_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ids_r, d_r = refine_distances(model, x, g.ids, g.dists)
    sim_s = time.perf_counter() - t0
    rows = []
    for m in methods:
        t0 = time.perf_counter()
        if m == "knn-dbscan":
            lab, eps, _ = best_eps_knn_dbscan(g.ids, g.dists, gt)
            rows.append(_row(m, gt, lab, knn_s + time.perf_counter() - t0, {"eps": eps}))
            continue
        res = cluster_graph(ids_r, d_r, m, tau=tau)
        rows.append(_row(m, gt, res.labels, knn_s + sim_s + time.perf_counter() - t0))
    for r in rows:
        r.update(seed=seed, n=len(x), sim=sim, fit_s=fit_s)
    return rows

