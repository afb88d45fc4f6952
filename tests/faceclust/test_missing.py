"""IVF misses (id -1, distance +inf) survive similarity refinement: kept last, never scored."""

import numpy as np

from mlkit.faceclust.config import SimConfig
from mlkit.faceclust.knn import build_knn
from mlkit.faceclust.model import LogisticCalibration, PairTransformer
from mlkit.faceclust.train import refine_distances


def _graph_with_misses():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    g = build_knn(x, 12)
    ids, d = g.ids.copy(), g.dists.copy()
    ids[::3, -3:] = -1
    d[::3, -3:] = np.inf
    return x, g, ids, d


def test_logistic_refine_keeps_misses_last():
    x, g, ids, d = _graph_with_misses()
    model = LogisticCalibration(20.0, -8.0)
    ri, rd = refine_distances(model, x, ids, d)
    assert ((ri < 0) == np.isinf(rd)).all() and (ri < 0).sum() == (ids < 0).sum()
    assert (ri[::3, -3:] == -1).all()
    full_i, full_d = refine_distances(model, x, g.ids, g.dists)
    # every scored pair gets the same distance as in the graph without misses
    for i in range(0, 200, 3):
        a = dict(zip(ri[i][ri[i] >= 0].tolist(), rd[i][ri[i] >= 0].tolist(), strict=True))
        b = dict(zip(full_i[i].tolist(), full_d[i].tolist(), strict=True))
        assert all(abs(v - b[k]) < 1e-6 for k, v in a.items())


def test_transformer_refine_keeps_misses_last():
    x, _, ids, d = _graph_with_misses()
    model = PairTransformer(SimConfig(k=12, d_model=32, heads=4, ffn=64, max_len=12))
    ri, rd = refine_distances(model, x, ids, d)
    assert (ri[::3, -3:] == -1).all() and np.isinf(rd[::3, -3:]).all()
    assert np.isfinite(rd[ri >= 0]).all() and (ri[:, 0] == np.arange(200)).all()
