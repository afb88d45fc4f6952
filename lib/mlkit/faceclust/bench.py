"""``bench``: the paper's method beside its ablations and kNN-DBSCAN, in one run per seed, on the
synthetic hard-cluster data (train and test splits with disjoint identities)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np

from .baselines import best_eps_knn_dbscan
from .cluster import cluster_graph
from .knn import build_knn
from .metrics import evaluate

__all__ = ["run_seed", "scale_bench", "scale_data", "BENCH_METHODS", "PAPER_N"]

BENCH_METHODS = ("chen", "ndde-only", "tpdi-only", "sumsim", "knn-dbscan")


def _row(method: str, gt, pred, seconds: float, extra: dict | None = None) -> dict:
    ev = evaluate(gt, pred)
    return {"method": method, "pairwise_f": ev["pairwise_f"], "bcubed_f": ev["bcubed_f"], "nmi": ev["nmi"],
            "clusters": ev["n_clusters_pred"], "smallest_quintile_recall": ev["size_bins"][0]["recall"],
            "seconds": seconds, **(extra or {})}


def run_seed(seed: int, *, ids: int = 600, train_ids: int = 300, sim: str = "logistic", k: int = 80,
             methods: Iterable[str] = BENCH_METHODS, tau: float = 0.7, device: str = "cpu",
             tokens: str = "gram") -> list[dict]:
    """Rows per method on ``synth --ids ids --seed seed`` with the similarity fitted on a disjoint
    ``train_ids`` split: ``sim`` "logistic", or "transformer" (the tiny config with ``tokens``, trained
    by ``TrainConfig.tiny()``). ``seconds`` of the method rows count kNN + similarity + clustering."""
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

        model = fit_transformer(xt, tr.ids, gtt, SimConfig.tiny(xt.shape[1], tokens=tokens), TrainConfig.tiny(),
                                device=device)
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
        r.update(seed=seed, n=len(x), sim=sim if sim == "logistic" else f"{sim}/{tokens}", fit_s=fit_s)
    return rows



# ---------------------------------------------------------------- scale
PAPER_N = 5_210_000   # the paper's largest test set (MS1M part 1-9, 5.21M faces)


def scale_data(n: int, *, seed: int = 0, dim: int = 256) -> tuple:
    """Exactly ``n`` faces: a ``make_split`` with ~10% more identities than the mean size needs,
    cut to its first ``n`` (already shuffled) rows."""
    from .synth import make_split

    if n < 100:
        from mlkit.errors import InputError

        raise InputError("bench --n too small", expected=">= 100 faces", got=str(n))
    ids = max(2, int(1.1 * n / 20) + 1)   # capped power law, smin 5, alpha 2: mean size ~25
    x, y = make_split(ids, seed=seed, dim=dim)
    while len(x) < n:                     # rare: many small identities drawn
        ids = int(ids * 1.5) + 1
        x, y = make_split(ids, seed=seed, dim=dim)
    return np.ascontiguousarray(x[:n]), y[:n]


def scale_bench(n: int, *, seed: int = 0, k: int = 80, index: str = "ivf", nprobe: int = 32,
                recall_sample: int = 2000, tau: float = 0.7,
                progress: Callable[[str, int, int], None] | None = None) -> dict:
    """The whole pipeline on ``n`` synthetic faces: logistic similarity fitted on a disjoint
    300-identity split, ``index`` kNN, refinement, NDDe + TPDi + density peaks, evaluation.

    Returns times per stage, peak RSS of the process, kNN recall@k of ``recall_sample`` random
    queries against exact (flat) search over all ``n`` rows, the metrics, and the stage times
    extrapolated to the paper's 5.21M faces (``at_5.21M_*``: IVF search, nlist ~ sqrt(n) and fixed
    nprobe, grows as n^1.5; the rest is linear in n·k; memory is extrapolated linearly). One flat
    record, stage times under ``seconds_<stage>``."""
    import faiss

    from mlkit.tensors import Meter

    from .knn import knn_recall
    from .synth import make_split, train_seed
    from .train import fit_logistic, refine_distances

    step = progress or (lambda stage, done, total: None)
    out: dict = {"n": int(n), "k": k, "index": index, "nprobe": nprobe, "seed": seed}
    times: dict = {}
    with Meter() as meter:
        t0 = time.perf_counter()
        x, gt = scale_data(n, seed=seed)
        xt, gtt = make_split(300, seed=train_seed(seed))
        times["synth"] = time.perf_counter() - t0
        step("fit-sim", 0, 1)
        t0 = time.perf_counter()
        tr = build_knn(xt, k)
        model = fit_logistic(xt, tr.ids, tr.dists, gtt)
        times["fit_sim"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        g = build_knn(x, k, index=index, nprobe=nprobe, progress=lambda d, t: step("knn", d, t))
        times["knn"] = time.perf_counter() - t0
        rng = np.random.default_rng(seed)
        q = np.sort(rng.choice(n, size=min(recall_sample, n), replace=False))
        flat = faiss.IndexFlatIP(x.shape[1])
        flat.add(x)
        exact = flat.search(x[q], k)[1]
        del flat
        out["knn_recall_at_k"] = knn_recall(g.ids[q], exact)
        out["knn_missing"] = int((g.ids < 0).sum())
        step("refine", 0, 1)
        t0 = time.perf_counter()
        ids_r, d_r = refine_distances(model, x, g.ids, g.dists)
        times["refine"] = time.perf_counter() - t0
        del g
        t0 = time.perf_counter()
        res = cluster_graph(ids_r, d_r, "chen", tau=tau, progress=lambda d, t: step("cluster", d, t))
        times["cluster"] = time.perf_counter() - t0
        times.update({f"cluster_{k_}": v for k_, v in res.seconds.items()})
        t0 = time.perf_counter()
        ev = evaluate(gt, res.labels)
        times["eval"] = time.perf_counter() - t0
    peak = meter.rss_peak
    pipeline = times["knn"] + times["refine"] + times["cluster"]
    scale = PAPER_N / n
    est = times["knn"] * scale ** 1.5 + (times["refine"] + times["cluster"]) * scale
    out.update({"pairwise_f": ev["pairwise_f"], "bcubed_f": ev["bcubed_f"], "nmi": ev["nmi"],
                "clusters": ev["n_clusters_pred"], "true_clusters": ev["n_clusters_gt"],
                **{f"seconds_{k_}": round(v, 3) for k_, v in times.items()},
                "pipeline_seconds": round(pipeline, 3), "total_seconds": round(meter.seconds, 3),
                "peak_rss_gb": round(peak / 2**30, 3),
                "at_5.21M_hours": round(est / 3600, 2), "at_5.21M_rss_gb": round(peak / 2**30 * scale, 1)})
    return out
