"""Density, TPDi, density peaks and kNN against independent references (acceptance 2)."""

import numpy as np
import pytest

from mlkit.errors import InputError
from mlkit.faceclust.baselines import knn_dbscan
from mlkit.faceclust.cluster import cluster_graph
from mlkit.faceclust.density import approximate_ndde, ndde, ndde_dense_reference, sumsim_density
from mlkit.faceclust.dpc import density_peaks
from mlkit.faceclust.knn import build_knn, knn_recall
from mlkit.faceclust.tpdi import tpdi, tpdi_dense_reference


def clustered(n=1500, ids=60, dim=32, noise=0.6, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(ids, dim))
    lab = rng.integers(0, ids, n)
    x = c[lab] + noise * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), lab


def brute_knn(x, k):
    sim = x.astype(np.float64) @ x.T.astype(np.float64)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return order.astype(np.int32), (1 - np.take_along_axis(sim, order, axis=1)).astype(np.float32)


def test_flat_knn_is_exact():
    x, _ = clustered(800)
    r = build_knn(x, 20, chunk=97)
    ids, d = brute_knn(x, 20)
    np.testing.assert_allclose(r.dists, np.clip(d, 0, None), atol=2e-6)
    assert knn_recall(r.ids, ids) > 0.999
    assert (r.ids[:, 0] == np.arange(len(x))).mean() > 0.99  # self first


def test_ivf_and_hnsw_recall_and_missing_ids():
    x, _ = clustered(3000, ids=100)
    exact = build_knn(x, 30).ids
    assert knn_recall(build_knn(x, 30, index="ivf", nprobe=16).ids, exact) > 0.9
    assert knn_recall(build_knn(x, 30, index="hnsw").ids, exact) > 0.9
    r = build_knn(x, 30, index="ivf", nlist=200, nprobe=1)  # tiny lists: some rows come up short
    miss = r.ids < 0
    assert np.isinf(r.dists[miss]).all() and np.isfinite(r.dists[~miss]).all()


@pytest.mark.parametrize("n,k", [(400, 20), (3000, 40)])
def test_full_ndde_sparse_equals_dense(n, k):
    x, _ = clustered(n)
    r = build_knn(x, k)
    a = ndde(r.ids, r.dists, 20, 0.5)
    b = ndde_dense_reference(r.ids, r.dists, 20, 0.5)
    assert np.abs(a - b).max() <= 1e-12


def test_approximate_ndde_matches_the_formula():
    x, _ = clustered(300)
    r = build_knn(x, 30)
    rho = np.zeros(300)
    for i in range(300):
        w = np.exp(-r.dists[i, :20].astype(np.float64) / 0.5)
        p = w / (w.sum() + 1e-5)
        for j, v in zip(r.ids[i, :20], p, strict=True):
            rho[j] += v
    np.testing.assert_allclose(approximate_ndde(r.ids, r.dists, 20, 0.5), rho, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sumsim_density(r.ids, r.dists), (1 - r.dists.astype(np.float64)).sum(1))


def test_tpdi_equals_dense_brute_force():
    x, _ = clustered(700)
    r = build_knn(x, 40)
    got = tpdi(r.ids, r.dists, 0.05, chunk=53)
    assert np.abs(got - tpdi_dense_reference(r.ids, r.dists, 0.05)).max() <= 1e-9
    assert np.allclose(got[:, 0], 1 - (np.sqrt(np.exp(-r.dists[:, :] / 0.05) / (np.exp(-r.dists / 0.05).sum(1,
                       keepdims=True) + 1e-5)) ** 2).sum(1), atol=1e-6)  # self: 1 - Σ_m P_im


def _dpc_reference(ids, dist, rho, tau):
    n = len(ids)
    parent = np.full(n, -1)
    for i in range(n):
        for c in sorted(range(ids.shape[1]), key=lambda c: dist[i, c]):
            j = ids[i, c]
            if j >= 0 and j != i and rho[j] >= rho[i]:
                if dist[i, c] < tau:
                    parent[i] = j
                break
    # union-find
    root = list(range(n))

    def find(a):
        while root[a] != a:
            root[a] = root[root[a]]
            a = root[a]
        return a

    for i in range(n):
        if parent[i] >= 0:
            root[find(i)] = find(parent[i])
    return parent, np.array([find(i) for i in range(n)])


def same_partition(a, b):
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_density_peaks_equals_a_loop_reference():
    x, _ = clustered(600)
    r = build_knn(x, 30)
    dist = tpdi(r.ids, r.dists)
    rho = approximate_ndde(r.ids, r.dists)
    for tau in (0.3, 0.7, 0.95):
        labels, parent = density_peaks(r.ids, dist, rho, tau)
        ref_parent, ref_roots = _dpc_reference(r.ids, dist, rho, tau)
        assert (parent == ref_parent).all()
        assert same_partition(labels, ref_roots)


def test_pipeline_separates_clear_clusters():
    x, lab = clustered(1200, ids=20, noise=0.3)
    r = build_knn(x, 40)
    res = cluster_graph(r.ids, r.dists, "chen", tau=0.7)
    assert same_partition(res.labels, lab) or len(set(res.labels.tolist())) <= 25


def test_knn_dbscan_min_samples_one_is_eps_components():
    x, lab = clustered(500, ids=10, noise=0.2)
    r = build_knn(x, 20)
    labels = knn_dbscan(r.ids, r.dists, 0.3)
    assert same_partition(labels, lab)


@pytest.mark.parametrize("kw,msg", [({"tau": 0}, "tau must be > 0"), ({"tpdi_sigma": -1}, "sigma must be > 0"),
                                    ({"ndde_sigma": 0}, "sigma must be > 0")])
def test_bad_parameters(kw, msg):
    x, _ = clustered(100)
    r = build_knn(x, 10)
    with pytest.raises(InputError, match=msg):
        cluster_graph(r.ids, r.dists, **kw)
    with pytest.raises(InputError, match="bad k"):
        build_knn(x, 100)
