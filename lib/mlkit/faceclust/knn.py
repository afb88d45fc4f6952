"""kNN graphs with faiss (cosine on L2-normalised rows): exact (flat), IVF or HNSW, searched in
chunks so memory stays at the size of the graph. Distances are 1 - cos, rows ascending.

IVF can return id -1 when a query's probed lists hold fewer than k points: those slots keep
id -1 and distance +inf ("missing"), and every consumer masks them."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlkit.errors import BackendUnavailable, InputError

__all__ = ["KnnResult", "build_knn", "knn_recall"]


@dataclass
class KnnResult:
    ids: np.ndarray      # (N, k) int32, -1 = missing
    dists: np.ndarray    # (N, k) float32, 1 - cos, ascending; +inf where missing
    index: str
    seconds_build: float = 0.0
    seconds_search: float = 0.0


def _faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency
        raise BackendUnavailable("faiss is not installed", hint="pip install faiss-cpu") from exc
    return faiss


def build_knn(x: np.ndarray, k: int = 80, *, index: str = "flat", nprobe: int = 32, nlist: int | None = None,
              hnsw_m: int = 32, ef_search: int = 128, ef_construction: int = 100, chunk: int = 16384,
              threads: int | None = None, seed: int = 0,
              progress: Callable[[int, int], None] | None = None) -> KnnResult:
    """k nearest neighbours of every row of ``x`` (float32, L2-normalised) among all rows, self
    included (normally at rank 0)."""
    import time

    faiss = _faiss()
    n, d = x.shape
    if not 1 <= k < n:
        raise InputError("bad k", expected=f"1 <= k < N = {n}", got=str(k))
    if threads:
        faiss.omp_set_num_threads(int(threads))
    x = np.ascontiguousarray(x, dtype=np.float32)
    t0 = time.perf_counter()
    if index == "flat":
        idx = faiss.IndexFlatIP(d)
    elif index == "ivf":
        nlist = nlist or max(1, int(4 * math.sqrt(n)))
        quant = faiss.IndexFlatIP(d)
        idx = faiss.IndexIVFFlat(quant, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = x[rng.choice(n, size=min(n, 64 * nlist), replace=False)]
        idx.train(sample)
        idx.nprobe = min(nprobe, nlist)
    elif index == "hnsw":
        idx = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = ef_construction
        idx.hnsw.efSearch = max(ef_search, k)
    else:
        raise InputError("unknown index", expected="flat, ivf or hnsw", got=index)
    idx.add(x)
    t1 = time.perf_counter()
    ids = np.empty((n, k), dtype=np.int32)
    dists = np.empty((n, k), dtype=np.float32)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        sim, nb = idx.search(x[lo:hi], k)
        ids[lo:hi] = nb
        dists[lo:hi] = 1.0 - sim
        if progress:
            progress(hi, n)
    missing = ids < 0
    dists[missing] = np.inf
    np.clip(dists, 0.0, None, out=dists, where=~missing)  # 1 - cos may dip below 0 by rounding
    order = np.argsort(dists, axis=1, kind="stable")
    ids = np.take_along_axis(ids, order, axis=1)
    dists = np.take_along_axis(dists, order, axis=1)
    return KnnResult(ids, dists, index, t1 - t0, time.perf_counter() - t1)


def knn_recall(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean fraction of the exact k neighbours that the approximate rows found."""
    hits = 0
    for a, e in zip(approx, exact, strict=True):
        hits += len(np.intersect1d(a[a >= 0], e))
    return hits / exact.size
