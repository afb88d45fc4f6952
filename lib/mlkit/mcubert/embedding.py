"""Clustered low-rank compression of a word-embedding table (MCUBERT §1a, stage-2 optimum).

A table ``E`` (V, D) is split into clusters of tokens 𝒱_c; each cluster keeps a rank-r_c SVD
``E_c ≈ T_c · P_c`` with ``T_c = U_c[:, :r_c]·diag(σ_c[:r_c])`` (|𝒱_c|, r_c) and
``P_c = W_c[:, :r_c]ᵀ`` (r_c, D). Flash cost Σ_c (|𝒱_c| + D)·r_c parameters; r_c = 0 maps a
cluster to zero vectors. Everything is numpy float64.

What is reconstructed ([R]; the paper's method section is not available to us):

- [R] Rank allocation: the paper learns r_c with gates (stage-2 NAS). Its optimum for the
  reconstruction objective is computed here directly: by Eckart–Young per block, adding the s-th
  value of cluster c removes σ_{c,s}² of squared error at a cost of (|𝒱_c| + D) params, so ranks
  are a knapsack. ``allocate_ranks`` solves it greedily on σ²/cost (optimal up to one item: the
  gap to the optimum is below the gain of the first item the greedy could not afford; exact when
  all clusters cost the same per rank), or exactly with ``exact=True`` (a Pareto dynamic program,
  for small problems).
- [R] Stage-1 clusters (a DARTS search in the paper) are replaced by k-means on the rows of E
  (``kmeans_clusters``): the notes name it as the warm start. Raw vs unit-normalised rows on the
  MiniLM table (C = 4/8/16, 6x/12x/24x, seeds 0-1): raw gave the lower error in 12 of 18 cases,
  the difference never above 0.004 either way (seed noise), so raw, the simpler, is the default.
- Errors: ``relative_error`` is ‖E − Ê‖_F/‖E‖_F. The prototype table in the paper notes (§5:
  SVD 0.549/0.715/0.825) is on the squared scale ‖E − Ê‖²/‖E‖² (``squared=True``); a ratio
  of 0.95 on one scale is ≈0.975 or ≈0.90 on the other.
- [R] Frequency weighting: with token weights w_t the objective is Σ_t w_t‖e_t − ê_t‖²; each
  cluster's SVD is taken on diag(√w)·E_c and the table is T_c = E_c·P_cᵀ (the projection of the
  raw rows on the weighted subspace, which equals U·diag(σ) when w = 1).
- [R] Vocabulary remap (``remap``): clusters are made contiguous host-side, so the MCU stores C+1
  offsets instead of a per-token cluster map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from mlkit.errors import InputError
from mlkit.tensors import check_finite

__all__ = ["ClusteredLowRank", "Factorized", "Remapped", "relative_error", "allocate_ranks",
           "cluster_spectra", "global_svd", "cluster_svd", "kmeans_clusters", "subspace_clusters", "random_clusters",
           "zipf_frequencies", "refine_clusters", "groupreduce"]

SCALE_BYTES = 4    # one float32 scale per int8 tensor
OFFSET_BYTES = 4   # uint32 cluster offsets (C+1 of them)
RANK_BYTES = 2     # uint16 rank per cluster (ranks go up to D, which can pass 255)


def relative_error(E, E_hat, *, weights=None, squared: bool = False) -> float:
    """‖E − Ê‖_F / ‖E‖_F, optionally with row weights (Σ_t w_t‖·‖²) and/or squared.

    ``squared=True`` gives ‖E − Ê‖²/‖E‖², the scale of the prototype table in the paper notes §5."""
    E, E_hat = np.asarray(E, np.float64), np.asarray(E_hat, np.float64)
    if E.shape != E_hat.shape:
        raise InputError("relative_error: shapes differ", expected=str(E.shape), got=str(E_hat.shape))
    w = np.ones(len(E)) if weights is None else np.asarray(weights, np.float64)
    num = float(w @ ((E - E_hat) ** 2).sum(1))
    den = float(w @ (E ** 2).sum(1))
    r = num / den if den > 0 else (0.0 if num == 0 else np.inf)
    return r if squared else float(np.sqrt(r))


class Remapped(NamedTuple):
    perm: np.ndarray          # (V,) new_id -> old_id
    offsets: np.ndarray       # (C+1,) cluster c holds new ids offsets[c]:offsets[c+1]
    table: ClusteredLowRank   # the same factors, indexed by new ids


@dataclass
class ClusteredLowRank:
    """A compressed table. ``tokens[c]`` (int64 ids; ascending when built here), ``tables[c]``
    (|𝒱_c|, r_c), ``projections[c]`` (r_c, D). The token lists partition ``range(vocab_size)``.
    Token t of cluster c is ``tables[c][rows[t]] @ projections[c]``."""

    tokens: list[np.ndarray]
    tables: list[np.ndarray]
    projections: list[np.ndarray]
    vocab_size: int
    dim: int
    labels: np.ndarray = field(init=False, repr=False)   # (V,) cluster of each token
    rows: np.ndarray = field(init=False, repr=False)     # (V,) row of each token in its table

    def __post_init__(self):
        V, D = int(self.vocab_size), int(self.dim)
        if not len(self.tokens) == len(self.tables) == len(self.projections):
            raise InputError("ClusteredLowRank: one token list, table and projection per cluster",
                             got=f"{len(self.tokens)}, {len(self.tables)}, {len(self.projections)}")
        self.tokens = [np.asarray(t, np.int64) for t in self.tokens]
        self.labels = np.full(V, -1, np.int64)
        self.rows = np.zeros(V, np.int64)
        for c, (tok, T, P) in enumerate(zip(self.tokens, self.tables, self.projections, strict=True)):
            if T.shape != (len(tok), P.shape[0]) or P.ndim != 2 or P.shape[1] != D:
                raise InputError(f"cluster {c}: factor shapes do not match",
                                 expected=f"T ({len(tok)}, r), P (r, {D})", got=f"T {T.shape}, P {P.shape}")
            if len(tok) and (tok.min() < 0 or tok.max() >= V or (self.labels[tok] >= 0).any()
                             or len(np.unique(tok)) != len(tok)):
                raise InputError(f"cluster {c}: token ids repeat or fall outside the vocabulary",
                                 expected=f"each id in 0..{V - 1} in exactly one cluster")
            self.labels[tok] = c
            self.rows[tok] = np.arange(len(tok))
        if (self.labels < 0).any():
            raise InputError("the clusters do not cover the vocabulary",
                             got=f"{int((self.labels < 0).sum())} token(s) in no cluster")

    @property
    def n_clusters(self) -> int:
        return len(self.tokens)

    @property
    def ranks(self) -> np.ndarray:
        return np.array([P.shape[0] for P in self.projections], np.int64)

    @property
    def sizes(self) -> np.ndarray:
        return np.array([len(t) for t in self.tokens], np.int64)

    def params(self) -> int:
        """Σ_c (|𝒱_c| + D)·r_c (a rank-0 cluster costs nothing)."""
        return int(((self.sizes + self.dim) * self.ranks).sum())

    def int8_bytes(self) -> int:
        """Flash bytes at int8: 1 byte per parameter, plus the overhead: one float32 scale per
        stored tensor (2 per cluster with r_c > 0), C+1 uint32 offsets, and C uint16 ranks.
        Equals the total ``nbytes`` of ``int8_arrays()``. The remap itself lives in the host's
        tokenizer and costs the MCU nothing."""
        C = self.n_clusters
        return self.params() + SCALE_BYTES * 2 * int((self.ranks > 0).sum()) + OFFSET_BYTES * (C + 1) + RANK_BYTES * C

    def reconstruct(self) -> np.ndarray:
        """(V, D) float64; rank-0 clusters give zero rows."""
        out = np.zeros((self.vocab_size, self.dim))
        for tok, T, P in zip(self.tokens, self.tables, self.projections, strict=True):
            if P.shape[0]:
                out[tok] = T @ P
        return out

    def lookup(self, ids) -> np.ndarray:
        """Embeddings of token ids (any shape) -> (*ids.shape, D), as the MCU computes T_c[t]·P_c."""
        ids = np.asarray(ids, np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise InputError("token id out of range", expected=f"0..{self.vocab_size - 1}",
                             got=f"{ids.min()}..{ids.max()}")
        flat, out = ids.ravel(), np.zeros((ids.size, self.dim))
        lab, row = self.labels[flat], self.rows[flat]
        for c in np.unique(lab):
            m = lab == c
            if self.ranks[c]:
                out[m] = self.tables[c][row[m]] @ self.projections[c]
        return out.reshape(*ids.shape, self.dim)

    def remap(self) -> Remapped:
        """[R] Renumber tokens so clusters are contiguous, in cluster order, ascending old id
        inside a cluster. ``table.reconstruct() == self.reconstruct()[perm]``."""
        perm = np.concatenate([np.asarray(t, np.int64) for t in self.tokens])
        offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        tokens = [np.arange(offsets[c], offsets[c + 1]) for c in range(self.n_clusters)]
        table = ClusteredLowRank(tokens, list(self.tables), list(self.projections), self.vocab_size, self.dim)
        return Remapped(perm, offsets, table)

    def int8_arrays(self) -> dict[str, np.ndarray]:
        """Symmetric per-tensor int8 export of a contiguous (remapped) table: ``T{c}``, ``P{c}``
        (clusters with r_c > 0), ``scales`` float32 (T then P, per such cluster: x ≈ q·scale),
        ``offsets`` uint32 (C+1), ``ranks`` uint16 (C)."""
        offsets = np.concatenate([[0], np.cumsum(self.sizes)])
        if any(not np.array_equal(t, np.arange(offsets[c], offsets[c + 1])) for c, t in enumerate(self.tokens)):
            raise InputError("int8 export needs contiguous clusters", hint="call remap() first")
        out, scales = {}, []
        for c, (T, P) in enumerate(zip(self.tables, self.projections, strict=True)):
            if P.shape[0] == 0:
                continue
            for name, x in ((f"T{c}", T), (f"P{c}", P)):
                s = (float(np.abs(x).max()) if x.size else 0.0) / 127 or 1.0
                out[name] = np.clip(np.rint(x / s), -127, 127).astype(np.int8)
                scales.append(s)
        out["scales"] = np.array(scales, np.float32)
        out["offsets"] = offsets.astype(np.uint32)
        out["ranks"] = self.ranks.astype(np.uint16)
        return out


Factorized = ClusteredLowRank  # the other name used in the design notes


# ---------------------------------------------------------------- rank allocation
def allocate_ranks(gains, costs, budget: float, *, exact: bool = False, max_states: int = 2_000_000) -> np.ndarray:
    """Ranks r_c maximising Σ_c Σ_{s<r_c} gains[c][s] subject to Σ_c costs[c]·r_c ≤ budget.

    ``gains[c]`` must be non-increasing (σ² of a block's SVD), so a rank keeps a prefix.
    Greedy (default): take items in decreasing gain/cost order, skipping any that no longer fit.
    Its shortfall from the optimum is below the gain of the first item it skipped (the LP bound);
    with equal costs it is exact. ``exact=True`` runs a Pareto-frontier DP over (cost, gain),
    exact for integer costs; its state count is capped at ``max_states``."""
    gains = [np.asarray(g, np.float64) for g in gains]
    costs = np.asarray(costs, np.int64)
    if len(gains) != len(costs) or (costs <= 0).any():
        raise InputError("allocate_ranks: one positive cost per cluster", got=str(costs.tolist()))
    if not np.isfinite(budget) or budget < 0:
        raise InputError("parameter budget must be >= 0", got=str(budget))
    B = int(np.floor(budget))
    if any(len(g) > 1 and (np.diff(g) > 1e-12 * max(g[0], 1e-300)).any() for g in gains):
        raise InputError("allocate_ranks: gains must be non-increasing within a cluster")
    C = len(gains)
    if exact:
        return _allocate_exact(gains, costs, B, max_states)
    c_idx = np.concatenate([np.full(len(g), c) for c, g in enumerate(gains)]).astype(np.int64)
    s_idx = np.concatenate([np.arange(len(g)) for g in gains]).astype(np.int64)
    ratio = np.concatenate(gains) / costs[c_idx] if C else np.zeros(0)
    ranks, left, closed = np.zeros(C, np.int64), B, np.zeros(C, bool)
    for k in np.lexsort((s_idx, c_idx, -ratio)):
        c = c_idx[k]
        if closed[c]:
            continue
        if costs[c] <= left:
            left -= costs[c]
            ranks[c] += 1
        else:              # costs are per cluster, so the rest of c cannot fit either
            closed[c] = True
    return ranks


def _allocate_exact(gains, costs, B, max_states):
    cost, gain = np.zeros(1, np.int64), np.zeros(1)
    choice = np.zeros((1, 0), np.int64)
    for c, g in enumerate(gains):
        R = min(len(g), B // int(costs[c]))
        cum = np.concatenate([[0.0], np.cumsum(g[:R])])
        nc = (cost[:, None] + costs[c] * np.arange(R + 1)[None]).ravel()
        ng = (gain[:, None] + cum[None]).ravel()
        ok = np.flatnonzero(nc <= B)
        order = ok[np.lexsort((-ng[ok], nc[ok]))]
        best = np.maximum.accumulate(ng[order])
        keep = order[np.concatenate([[True], ng[order][1:] > best[:-1]])]   # the Pareto frontier
        if len(keep) > max_states:
            raise InputError("exact rank allocation is too large", expected=f"<= {max_states} states",
                             got=str(len(keep)), hint="use the greedy (exact=False)")
        parent, r = np.divmod(keep, R + 1)
        cost, gain = nc[keep], ng[keep]
        choice = np.concatenate([choice[parent], r[:, None]], axis=1)
    return choice[int(np.argmax(gain))].astype(np.int64)


# ---------------------------------------------------------------- factorizations
def _check_table(E) -> np.ndarray:
    E = np.asarray(E, np.float64)
    if E.ndim != 2 or E.size == 0:
        raise InputError("embedding table must be a non-empty 2-D array (V, D)", got=str(E.shape))
    check_finite(E, "embedding table")
    return E


def _as_labels(clusters, V: int, n_clusters: int | None) -> tuple[np.ndarray, int]:
    if isinstance(clusters, list | tuple):   # a list of token-index arrays
        labels = np.full(V, -1, np.int64)
        for c, idx in enumerate(clusters):
            labels[np.asarray(idx, np.int64)] = c
        if (labels < 0).any() or sum(len(i) for i in clusters) != V:
            raise InputError("the clusters must partition the vocabulary", expected=f"{V} ids, each once")
        C = len(clusters)
    else:
        labels = np.asarray(clusters)
        if labels.shape != (V,) or labels.dtype.kind not in "iu" or (V and labels.min() < 0):
            raise InputError("cluster labels must be one non-negative integer per token",
                             expected=f"shape ({V},)", got=f"{labels.shape} {labels.dtype}")
        labels = labels.astype(np.int64)
        C = int(labels.max()) + 1
    if n_clusters is not None:
        if n_clusters < C:
            raise InputError("a label is >= n_clusters", expected=f"< {n_clusters}", got=str(C - 1))
        C = n_clusters
    return labels, C


def cluster_spectra(E, labels, n_clusters: int, weights=None):
    """Per cluster: (token ids, σ (weighted), Wᵀ (k, D)) of the SVD of X = diag(√w)·E_c.

    Tall blocks (|𝒱_c| > D) use the eigen-decomposition of XᵀX (D×D), 5-20x faster than an SVD
    on MiniLM and far less hurt by BLAS threads competing for 2 cores. Its floor: directions with
    σ < σ_max·√(|𝒱_c|·eps) (≈1e-6 relative) are dropped, as are, in the SVD path, those below the
    usual rank tolerance; they would cost parameters for no measurable gain."""
    E = np.asarray(E, np.float64)
    sw = None if weights is None else np.sqrt(np.asarray(weights, np.float64))
    out = []
    for c in range(n_clusters):
        tok = np.flatnonzero(labels == c)
        if len(tok) == 0:
            out.append((tok, np.zeros(0), np.zeros((0, E.shape[1]))))
            continue
        X = E[tok] if sw is None else E[tok] * sw[tok, None]
        if X.shape[0] > X.shape[1]:
            lam, Q = np.linalg.eigh(X.T @ X)
            lam, Wt = lam[::-1], Q[:, ::-1].T
            keep = lam > lam[0] * max(X.shape) * np.finfo(float).eps
            s = np.sqrt(np.where(keep, lam, 0.0))
        else:
            _, s, Wt = np.linalg.svd(X, full_matrices=False)
            keep = s > s[0] * max(X.shape) * np.finfo(float).eps
        out.append((tok, s[keep], Wt[keep]))
    return out


def _build(E, spectra, ranks, V, D) -> ClusteredLowRank:
    tokens, tables, projs = [], [], []
    for (tok, _, Wt), r in zip(spectra, ranks, strict=True):
        P = Wt[:r]
        tokens.append(tok)
        projs.append(P)
        tables.append(E[tok] @ P.T)   # = U[:, :r]·diag(σ[:r]) when unweighted
    return ClusteredLowRank(tokens, tables, projs, V, D)


def global_svd(E, budget_params: float) -> ClusteredLowRank:
    """Best rank-r truncated SVD with (V + D)·r ≤ budget (one cluster holding every token);
    r also stops at the numerical rank (see ``cluster_spectra``)."""
    E = _check_table(E)
    V, D = E.shape
    if not np.isfinite(budget_params) or budget_params < 0:
        raise InputError("parameter budget must be >= 0", got=str(budget_params))
    spectra = cluster_spectra(E, np.zeros(V, np.int64), 1)
    r = int(min(budget_params // (V + D), len(spectra[0][1])))
    return _build(E, spectra, [r], V, D)


def cluster_svd(E, clusters, budget_params: float, weights=None, *, n_clusters: int | None = None,
                exact: bool = False) -> ClusteredLowRank:
    """Per-cluster SVD with the (weighted) error-optimal ranks under Σ_c (|𝒱_c| + D)·r_c ≤ budget.

    ``clusters``: (V,) integer labels or a list of token-id arrays. ``weights``: (V,) ≥ 0 token
    weights (e.g. frequencies) for the objective Σ_t w_t‖e_t − ê_t‖². ``exact``: see
    ``allocate_ranks``. Clusters may end with rank 0 (zero vectors)."""
    E = _check_table(E)
    V, D = E.shape
    labels, C = _as_labels(clusters, V, n_clusters)
    weights = _check_weights(weights, V)
    return _fit(E, labels, C, budget_params, weights, exact)[0]


def _check_weights(weights, V):
    if weights is None:
        return None
    w = np.asarray(weights, np.float64)
    if w.shape != (V,) or not np.isfinite(w).all() or (w < 0).any():
        raise InputError("token weights must be finite, >= 0, one per token", expected=f"shape ({V},)",
                         got=str(w.shape))
    return w


def _fit(E, labels, C, budget, weights, exact):
    """-> (model, weighted squared error, price λ = best gain per parameter left out)."""
    V, D = E.shape
    spectra = cluster_spectra(E, labels, C, weights)
    gains = [s ** 2 for _, s, _ in spectra]
    costs = [len(t) + D for t, _, _ in spectra]
    ranks = allocate_ranks(gains, costs, budget, exact=exact)
    sq = (E ** 2).sum(1)
    total = float(sq.sum() if weights is None else weights @ sq)
    err = total - sum(float(g[:r].sum()) for g, r in zip(gains, ranks, strict=True))
    price = max([g[r] / k for g, k, r in zip(gains, costs, ranks, strict=True) if r < len(g)], default=0.0)
    return _build(E, spectra, ranks, V, D), max(err, 0.0), price


# ---------------------------------------------------------------- clusterings
def kmeans_clusters(E, C: int, seed: int = 0, *, normalize: bool = False, iters: int = 30,
                    sample: int | None = None) -> np.ndarray:
    """(V,) labels from k-means (scipy ``kmeans2``, k-means++ init, fixed seed) on the rows of E.

    ``normalize`` clusters unit rows (direction only); [R] raw rows are the default (no clear
    difference on MiniLM, see the module notes). ``sample``: fit the centroids on that many random rows, then assign every row."""
    from scipy.cluster.vq import kmeans2, vq

    E = _check_table(E)
    if not 1 <= C <= len(E):
        raise InputError("number of clusters out of range", expected=f"1..{len(E)}", got=str(C))
    X = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12) if normalize else E
    rng = np.random.default_rng(seed)
    fit = X if sample is None or sample >= len(X) else X[rng.choice(len(X), sample, replace=False)]
    centroids, _ = kmeans2(fit, C, iter=iters, minit="++", seed=rng)
    return vq(X, centroids, check_finite=False)[0].astype(np.int64)


def subspace_clusters(E, C: int, seed: int = 0, *, k: int = 10, block: int = 2048) -> np.ndarray:
    """(V,) labels from spectral clustering of the |cosine| k-nearest-neighbour graph of the rows.

    [R] A warm start for stage 1 that sees subspaces: rows of one low-rank cluster point in many
    directions (k-means on rows or unit rows splits them), but each has near neighbours, up to
    sign, inside its own subspace. Symmetrised kNN affinity, normalised adjacency
    D^-1/2 A D^-1/2, its top C eigenvectors (unit rows), then k-means. O(V²·D) time in blocks
    of ``block`` rows, O(V·k) memory."""
    from scipy.cluster.vq import kmeans2
    from scipy.sparse import csr_matrix, diags
    from scipy.sparse.linalg import eigsh

    E = _check_table(E)
    V = len(E)
    if not 1 <= C <= V:
        raise InputError("number of clusters out of range", expected=f"1..{V}", got=str(C))
    k = min(k, V - 1)
    if C == 1 or k < 1:
        return np.zeros(V, np.int64)
    X = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    rows, cols, vals = [], [], []
    for s in range(0, V, block):
        S = np.abs(X[s:s + block] @ X.T)
        n = len(S)
        S[np.arange(n), np.arange(s, s + n)] = -1.0
        nn = np.argpartition(-S, k, axis=1)[:, :k]
        rows.append(np.repeat(np.arange(s, s + n), k))
        cols.append(nn.ravel())
        vals.append(np.take_along_axis(S, nn, 1).ravel())
    A = csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(V, V))
    A = A.maximum(A.T)
    d = np.asarray(A.sum(1)).ravel()
    Dh = diags(1.0 / np.sqrt(np.maximum(d, 1e-12)))
    v0 = np.random.default_rng(seed).standard_normal(V)
    _, U = eigsh(Dh @ A @ Dh, k=C, which="LA", v0=v0)
    U /= np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1e-12)
    _, labels = kmeans2(U, C, iter=30, minit="++", seed=np.random.default_rng(seed))
    return labels.astype(np.int64)


def random_clusters(V: int, C: int, seed: int = 0) -> np.ndarray:
    """(V,) labels of a random balanced partition (sizes differ by at most 1): the control."""
    if not 1 <= C <= V:
        raise InputError("number of clusters out of range", expected=f"1..{V}", got=str(C))
    labels = np.empty(V, np.int64)
    labels[np.random.default_rng(seed).permutation(V)] = np.arange(V) % C
    return labels


def zipf_frequencies(V: int, *, start: int = 0, exponent: float = 1.0) -> np.ndarray:
    """[R] A Zipf proxy for token counts when none are given: f_t = (t − start + 1)^−exponent for
    t ≥ start, and the smallest of those for t < start. Assumes the vocabulary is in frequency
    order from ``start`` (true of BERT's uncased WordPiece vocab from id 1996, "the"; ids below it
    are [unused], special and single-character tokens)."""
    t = np.arange(V, dtype=np.float64)
    f = (np.maximum(t - start, 0) + 1.0) ** -float(exponent)
    f[t < start] = f.min()
    return f


# ---------------------------------------------------------------- refinement and GroupReduce
def refine_clusters(E, clusters, budget_params: float, weights=None, *, rounds: int = 3,
                    cost_aware: bool = True, n_clusters: int | None = None,
                    exact: bool = False) -> tuple[ClusteredLowRank, np.ndarray]:
    """Alternate "move each token to the cluster whose subspace reconstructs it best" and "re-fit
    (SVDs + ranks under the budget)"; return the best fit seen (by weighted error) and its labels.

    Plain GroupReduce refinement scores token t in cluster c by w_t·‖e_t − e_t P_cᵀP_c‖².
    [R] ``cost_aware`` adds λ·r_c, the parameters of t's own table row priced at λ, the best
    gain per parameter the allocation left out. Without it tokens drift into the highest-rank
    cluster, which then gets dearer per rank: in a MiniLM prototype (k-means C = 4, 6x) the error
    rose round after round (0.698 -> 0.708), while the cost-aware rule lowered it (-> 0.691).
    A local search: it can stop in a local optimum, so the best fit seen is kept."""
    E = _check_table(E)
    V, D = E.shape
    labels, C = _as_labels(clusters, V, n_clusters)
    weights = _check_weights(weights, V)
    w = np.ones(V) if weights is None else weights
    sq = (E ** 2).sum(1)
    model, err, price = _fit(E, labels, C, budget_params, weights, exact)
    best = (err, model, labels)
    for _ in range(rounds):
        score = np.empty((V, C))
        for c, P in enumerate(model.projections):
            kept = ((E @ P.T) ** 2).sum(1) if P.shape[0] else 0.0
            score[:, c] = w * (sq - kept) + (price * P.shape[0] if cost_aware else 0.0)
        new = np.argmin(score, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        model, err, price = _fit(E, labels, C, budget_params, weights, exact)
        if err < best[0]:
            best = (err, model, labels)
    return best[1], best[2]


def groupreduce(E, freq=None, C: int = 8, budget_params: float = 0.0, *, rounds: int = 3,
                cost_aware: bool = True, exact: bool = False) -> ClusteredLowRank:
    """GroupReduce-style compression (Chen et al., NeurIPS 2018), reimplemented.

    1. [R] Sort tokens by frequency (descending; ties by id) and cut them into C groups of equal
       size (not equal total frequency, which under Zipf puts a handful of tokens in group 0).
    2. Frequency-weighted SVD per group (rows scaled by √freq) and ranks from the greedy on the
       weighted error, so frequent groups get higher ranks (not forced monotone).
    3. ``rounds`` of refinement (``refine_clusters``), keeping the best fit.
    ``freq=None`` [R]: uniform weights (groups are then contiguous id blocks); for a frequency
    proxy pass ``zipf_frequencies(V, start=...)``."""
    E = _check_table(E)
    V, _ = E.shape
    if not 1 <= C <= V:
        raise InputError("number of clusters out of range", expected=f"1..{V}", got=str(C))
    w = np.ones(V) if freq is None else _check_weights(freq, V)
    if w.sum() <= 0:
        raise InputError("token frequencies are all zero", expected="some positive count")
    w = w / w.mean()
    labels = np.empty(V, np.int64)
    labels[np.argsort(-w, kind="stable")] = np.arange(V) * C // V
    return refine_clusters(E, labels, budget_params, w, rounds=rounds, cost_aware=cost_aware,
                           n_clusters=C, exact=exact)[0]
