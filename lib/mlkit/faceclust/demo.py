"""``mlkit faceclust demo`` and the suite hooks: a small hard-cluster dataset written in the
learn-to-cluster layout, the paper's pipeline beside its ablations and kNN-DBSCAN."""

from __future__ import annotations

from pathlib import Path

from .bench import BENCH_METHODS, run_seed, scale_bench

__all__ = ["demo_rows", "run_demo", "run_bench", "BENCH_SEEDS", "CI_SCALE_N"]

BENCH_SEEDS = (10, 11, 12)   # the seeds of the acceptance checks
CI_SCALE_N = 20_000          # the scale run that `make bench` includes


def demo_rows(seed: int = 10, ids: int = 300, train_ids: int = 150) -> list[dict]:
    """One seed of ``run_seed`` at demo size (about 7,500 test faces), methods side by side."""
    return run_seed(seed, ids=ids, train_ids=train_ids, methods=BENCH_METHODS)


def run_demo(workdir: Path) -> dict:
    """Writes a dataset under ``workdir`` (the layout users bring), clusters its test split with the
    full method and reports pairwise F."""
    import numpy as np

    from .cluster import cluster_graph
    from .formats import read_features, read_meta
    from .knn import build_knn
    from .metrics import evaluate
    from .synth import make_dataset
    from .train import fit_logistic, refine_distances

    root = Path(workdir) / "faceclust"
    make_dataset(root, ids=300, train_ids=150, seed=10)
    xt = read_features(root / "features" / "train.bin", 256)
    yt = read_meta(root / "labels" / "train.meta", n=len(xt))
    x = read_features(root / "features" / "test.bin", 256)
    y = read_meta(root / "labels" / "test.meta", n=len(x))
    tr = build_knn(xt, 80)
    sim = fit_logistic(xt, tr.ids, tr.dists, yt)
    g = build_knn(x, 80)
    res = cluster_graph(*refine_distances(sim, x, g.ids, g.dists), "chen")
    ev = evaluate(y, res.labels)
    return {"what": f"faceclust: {len(x)} synthetic faces, {len(np.unique(y))} identities (NDDe+TPDi)",
            "metric": "pairwise F / BCubed F", "value": f"{ev['pairwise_f']:.3f} / {ev['bcubed_f']:.3f}"}


def run_bench(workdir: Path) -> list[dict]:
    rows = [r for s in BENCH_SEEDS for r in run_seed(s)]
    big = scale_bench(CI_SCALE_N)
    rows.append({"method": f"chen @ n={big['n']} (ivf)", "pairwise_f": big["pairwise_f"],
                 "bcubed_f": big["bcubed_f"], "nmi": big["nmi"], "clusters": big["clusters"],
                 "seconds": big["pipeline_seconds"], "knn_recall_at_k": big["knn_recall_at_k"],
                 "peak_rss_gb": big["peak_rss_gb"]})
    return rows
