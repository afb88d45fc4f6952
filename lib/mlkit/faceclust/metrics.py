"""Clustering metrics of the face-clustering literature: pairwise and BCubed P/R/F, NMI, and the
per-quintile (size, sparsity) evaluation of Chen et al. (ECCV 2022, Fig. 1-2).

Everything is computed from the contingency table n_gp (samples with ground-truth identity g and
predicted cluster p), found with ``np.unique`` on cell codes in O(N log N); counts are int64.

* Pairwise (learn-to-cluster ``evaluation/metrics.py``, counting ordered pairs):
  tk = sum n_gp^2 - N, pk = sum_p n_.p^2 - N, qk = sum_g n_g.^2 - N; P = tk/pk, R = tk/qk,
  F = 2PR/(P+R).
* BCubed: P = sum n_gp^2/|p| / N, R = sum n_gp^2/|g| / N, F = 2PR/(P+R).
* NMI = I(G;P) / avg(H(G), H(P)), natural logs, as sklearn ``normalized_mutual_info_score``.

Degenerate cases (documented choices): a precision or recall with nothing to judge (pk == 0: every
predicted cluster a singleton; qk == 0: every identity a singleton) is vacuously 1.0, so an exact
all-singletons clustering scores P = R = F = 1; F is 0 when P + R == 0. learn-to-cluster returns
NaN there and the official Chen ``Evaluator`` (1e-4 added to pk, qk, P+R) returns 0. NMI follows
sklearn: 1.0 when both labelings are one cluster, 0.0 when only one of them is.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mlkit.errors import InputError

__all__ = [
    "pairwise", "bcubed", "nmi", "cluster_sizes", "sparsity", "quintiles", "quintile_recall",
    "evaluate", "check_labels", "NMI_AVERAGES",
]

NMI_AVERAGES = ("arithmetic", "geometric", "min", "max")


class _Table(NamedTuple):
    g: np.ndarray       # (cells,) int64 identity index of each non-zero cell
    p: np.ndarray       # (cells,) int64 predicted-cluster index of each non-zero cell
    n: np.ndarray       # (cells,) int64 n_gp > 0
    gsize: np.ndarray   # (G,) int64 |g|, identities in np.unique(gt) order
    psize: np.ndarray   # (P,) int64 |p|
    first: np.ndarray   # (G,) int64 first sample index of each identity
    n_samples: int


def _as_labels(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise InputError(f"{name} labels", expected="a 1-D array", got=f"shape {a.shape}")
    if a.size == 0:
        raise InputError(f"{name} labels: empty input", expected="at least one label", got="0")
    if a.dtype.kind in "biu":
        return a
    if a.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(a) & (a == np.round(a)) & (np.abs(a) < 2.0 ** 63)
        if ok.all():
            return a.astype(np.int64)
        bad = a[~ok][0]
    else:
        bad = a.flat[0]
    bad = bad.item() if isinstance(bad, np.generic) else bad
    raise InputError(f"{name} labels: non-integer label", expected="integers",
                     got=f"{bad!r} (dtype {a.dtype})")


def check_labels(gt, pred) -> tuple[np.ndarray, np.ndarray]:
    """Validate two labelings: 1-D, non-empty, integer-valued (whole floats accepted), same length."""
    gt, pred = _as_labels(gt, "ground-truth"), _as_labels(pred, "predicted")
    if len(gt) != len(pred):
        raise InputError("label length mismatch", expected=f"{len(gt)} predicted labels (one per "
                         "ground-truth label)", got=str(len(pred)))
    return gt, pred


def _table(gt, pred) -> _Table:
    gt, pred = check_labels(gt, pred)
    _, first, gi = np.unique(gt, return_index=True, return_inverse=True)
    _, pi = np.unique(pred, return_inverse=True)
    gi, pi = gi.astype(np.int64).ravel(), pi.astype(np.int64).ravel()
    gsize, psize = np.bincount(gi), np.bincount(pi)
    cells, n = np.unique(gi * len(psize) + pi, return_counts=True)
    return _Table(cells // len(psize), cells % len(psize), n.astype(np.int64),
                  gsize.astype(np.int64), psize.astype(np.int64), first.astype(np.int64), len(gt))


def _prf(tk: int, pk: int, qk: int) -> dict:
    """P = tk/pk, R = tk/qk (1.0 when nothing to judge), F = 2PR/(P+R) (0.0 when P+R == 0)."""
    prec = tk / pk if pk else 1.0
    rec = tk / qk if qk else 1.0
    f = 2.0 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
    return {"precision": float(prec), "recall": float(rec), "f": float(f)}


def _pairwise(t: _Table) -> dict:
    n = t.n_samples
    return _prf(int(t.n @ t.n) - n, int(t.psize @ t.psize) - n, int(t.gsize @ t.gsize) - n)


def pairwise(gt, pred) -> dict:
    """Pairwise precision/recall/F over same-cluster pairs (learn-to-cluster ``pairwise``)."""
    return _pairwise(_table(gt, pred))


def _bcubed(t: _Table) -> dict:
    sq = t.n.astype(np.float64) ** 2
    prec = float(np.sum(sq / t.psize[t.p]) / t.n_samples)
    rec = float(np.sum(sq / t.gsize[t.g]) / t.n_samples)
    return {"precision": prec, "recall": rec, "f": 2.0 * prec * rec / (prec + rec)}


def bcubed(gt, pred) -> dict:
    """BCubed P = sum n_gp^2/|p| / N, R = sum n_gp^2/|g| / N, F = 2PR/(P+R)."""
    return _bcubed(_table(gt, pred))


def _entropy(sizes: np.ndarray, n: int) -> float:
    """H = -sum (c/N) (log c - log N), the form sklearn ``_entropy`` uses."""
    c = sizes.astype(np.float64)
    return float(-np.sum((c / n) * (np.log(c) - np.log(n))))


def _nmi(t: _Table, average: str) -> float:
    if average not in NMI_AVERAGES:
        raise InputError("unknown NMI average", expected=" | ".join(NMI_AVERAGES), got=repr(average))
    if len(t.gsize) == 1 and len(t.psize) == 1:
        return 1.0
    if len(t.gsize) == 1 or len(t.psize) == 1:
        return 0.0
    n, c = t.n_samples, t.n.astype(np.float64)
    # I(G;P) = sum (n_gp/N) log(N n_gp / (|g| |p|))
    terms = (c / n) * (np.log(c) + np.log(n) - np.log(t.gsize[t.g]) - np.log(t.psize[t.p]))
    mi = max(float(np.sum(terms)), 0.0)
    if mi == 0.0:
        return 0.0
    hg, hp = _entropy(t.gsize, n), _entropy(t.psize, n)
    norm = {"arithmetic": (hg + hp) / 2.0, "geometric": float(np.sqrt(hg * hp)),
            "min": min(hg, hp), "max": max(hg, hp)}[average]
    return min(mi / norm, 1.0)


def nmi(gt, pred, average: str = "arithmetic") -> float:
    """NMI = I(G;P) / avg(H(G), H(P)), avg in arithmetic | geometric | min | max (natural log;
    sklearn's default is arithmetic since 0.22, older papers used geometric)."""
    return _nmi(_table(gt, pred), average)


def cluster_sizes(labels) -> np.ndarray:
    """Size of each cluster, int64, in ``np.unique(labels)`` order."""
    return np.unique(_as_labels(labels, "cluster"), return_counts=True)[1].astype(np.int64)


def sparsity(features, gt, *, chunk_rows: int = 65536) -> np.ndarray:
    """Sparsity(C) = 1 - sum_{i!=j in C} cos(x_i, x_j) / (|C|(|C|-1)) per identity, float64, in
    ``np.unique(gt)`` order. O(N*D): with unit rows u_i and S_C = sum u_i, the off-diagonal sum is
    |S_C|^2 - sum |u_i|^2. Rows are normalised here (so cos is exact for any input), in float64
    chunks of ``chunk_rows`` (a memmapped ``.bin`` never loads whole). Singletons have no pairs:
    their sparsity is 0.0 (one point is perfectly compact), which keeps results finite."""
    import scipy.sparse as sp

    gt = _as_labels(gt, "ground-truth")
    features = features if hasattr(features, "ndim") else np.asarray(features)
    if features.ndim != 2 or features.shape[0] != len(gt):
        raise InputError("features", expected=f"a 2-D array with {len(gt)} rows (one per label)",
                         got=f"shape {features.shape}")
    _, gi = np.unique(gt, return_inverse=True)
    gi = gi.astype(np.int64).ravel()
    n_ids, dim = int(gi.max()) + 1, features.shape[1]
    sums = np.zeros((n_ids, dim))
    sqn = np.zeros(n_ids)
    for a in range(0, len(gt), chunk_rows):
        x = np.asarray(features[a:a + chunk_rows], dtype=np.float64)
        norm = np.sqrt(np.einsum("ij,ij->i", x, x))
        if not np.all(np.isfinite(norm) & (norm > 0)):
            row = a + int(np.flatnonzero(~(np.isfinite(norm) & (norm > 0)))[0])
            raise InputError(f"features row {row}", expected="finite values and a non-zero norm",
                             got="NaN/Inf" if not np.isfinite(norm[row - a]) else "a zero row")
        x /= norm[:, None]
        ind = sp.csr_matrix((np.ones(len(x)), (gi[a:a + len(x)], np.arange(len(x)))),
                            shape=(n_ids, len(x)))
        sums += ind @ x
        sqn += np.bincount(gi[a:a + len(x)], weights=np.einsum("ij,ij->i", x, x), minlength=n_ids)
    size = np.bincount(gi, minlength=n_ids).astype(np.float64)
    off = np.einsum("ij,ij->i", sums, sums) - sqn
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 1.0 - off / (size * (size - 1.0))
    out[size < 2] = 0.0
    return out


def quintiles(key, first=None, *, descending: bool = False) -> np.ndarray:
    """Quintile (0..4) of each identity ranked by ``key``, as the official ``evaluate_bin_size``:
    identities are stably sorted by key (ties keep the order of ``first``, their first sample
    index, i.e. the official dict order) and rank r goes to bin b with G*b//5 <= r < G*(b+1)//5.
    Bins are empty only when there are fewer than 5 identities."""
    key = np.asarray(key, dtype=np.float64)
    g = len(key)
    order = np.arange(g) if first is None else np.argsort(np.asarray(first), kind="stable")
    ranked = order[np.argsort(-key[order] if descending else key[order], kind="stable")]
    bounds = np.arange(6) * g // 5
    out = np.empty(g, dtype=np.int64)
    out[ranked] = np.searchsorted(bounds, np.arange(g), side="right") - 1
    return out


def _bins(t: _Table, key: np.ndarray, bin_of_id: np.ndarray) -> list[dict]:
    """Official ``evaluate_bin_size`` style: for each bin keep the samples whose identity is in it
    (their predicted labels unchanged) and compute pairwise P/R/F on that subset."""
    cell_bin, cast = bin_of_id[t.g], int if key.dtype.kind in "iu" else float
    out = []
    for b in range(5):
        ids = np.flatnonzero(bin_of_id == b)
        row = {"bin": b + 1, "n_ids": int(len(ids)), "n_samples": int(t.gsize[ids].sum())}
        if len(ids) == 0:
            out.append({**row, "key_min": None, "key_max": None,
                        "precision": None, "recall": None, "f": None})
            continue
        m = cell_bin == b
        nb, n_b, gsz = t.n[m], row["n_samples"], t.gsize[ids]
        psz = np.bincount(t.p[m], weights=nb).astype(np.int64)  # |p| restricted to the bin
        out.append({**row, "key_min": cast(key[ids].min()), "key_max": cast(key[ids].max()),
                    **_prf(int(nb @ nb) - n_b, int(psz @ psz) - n_b, int(gsz @ gsz) - n_b)})
    return out


def quintile_recall(gt, pred, key="size", *, descending: bool = False) -> list[dict]:
    """Pairwise P/R/F per quintile of identities ranked by ``key``: "size" or one value per
    identity in ``np.unique(gt)`` order (e.g. ``sparsity(features, gt)``). Returns 5 dicts
    ``{bin, n_ids, n_samples, key_min, key_max, precision, recall, f}``; bin 1 holds the lowest
    key (the highest with ``descending``). Fewer than 5 identities leave bins empty (None)."""
    t = _table(gt, pred)
    if isinstance(key, str):
        if key != "size":
            raise InputError("unknown bin key", expected='"size" or one value per identity',
                             got=repr(key), hint="pass sparsity(features, gt) for sparsity bins")
        key = t.gsize
    key = np.asarray(key)
    if key.shape != t.gsize.shape or key.dtype.kind not in "iuf" or not np.all(np.isfinite(key)):
        raise InputError("bin key", expected=f"{len(t.gsize)} finite numbers (one per identity)",
                         got=f"shape {key.shape}, dtype {key.dtype}")
    return _bins(t, key, quintiles(key, t.first, descending=descending))


def evaluate(gt, pred, features=None, nmi_average: str = "arithmetic") -> dict:
    """All metrics in one dict: pairwise_*, bcubed_*, nmi, cluster counts, ``size_bins`` (bin 1 =
    smallest identities) and, with ``features``, ``sparsity_bins`` (bin 1 = sparsest, as the
    official ``evaluate_bin_sim`` ranks identities by ascending mean similarity)."""
    t = _table(gt, pred)
    res = {**{f"pairwise_{k}": v for k, v in _pairwise(t).items()},
           **{f"bcubed_{k}": v for k, v in _bcubed(t).items()},
           "nmi": _nmi(t, nmi_average), "n_clusters_pred": len(t.psize),
           "n_clusters_gt": len(t.gsize), "n_samples": t.n_samples,
           "size_bins": _bins(t, t.gsize, quintiles(t.gsize, t.first))}
    if features is not None:
        sp = sparsity(features, gt)
        res["sparsity_bins"] = _bins(t, sp, quintiles(sp, t.first, descending=True))
    return res
