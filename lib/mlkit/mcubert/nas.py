"""MCUBERT's two-stage NAS of the clustered low-rank embedding (paper notes §1a). A planted table
to test it on: ``synth.embtable``.

Stage 1 learns the cluster of every token; stage 2 learns the rank of every cluster; then the
ranks are cut to a flash budget. Both stages optimise

    L = task + μ·recon + λ·size

where ``task`` is the cross-entropy of a frozen BERT whose word embedding is the one being
searched (``Task``; optional), ``recon`` the frequency-weighted reconstruction error
Σ_t w_t‖e_t − ê_t‖² / Σ_t w_t‖e_t‖², and ``size`` the expected parameters / (V·D).

What is reconstructed ([R]; the paper's method section is not available to us):

- [R] Stage 1 (DARTS, as the reviews describe it): logits α_{t,c}, p_t = softmax(α_t / τ),
  ê_t = Σ_c p_{t,c}·e_{c,t} with e_{c,t} = e_t·W_c·W_cᵀ, the projection of the token's row on
  candidate cluster c's rank-R_c subspace ("rank levels"). E[size] = Σ_t Σ_c p_{t,c}·R_c +
  Σ_c R_c·D, eq. (notes §1a). The subspaces W_c are not learned by gradient: between epochs
  they are refitted in closed form (top-R_c eigenvectors of Σ_t w_t p_{t,c} e_t e_tᵀ), so the
  search is an EM-like soft k-subspaces with a size prior. τ is annealed; afterwards token t
  joins argmax_c α_{t,c}. Warm start: ``warm_start``.
- [R] Rank levels: all equal to R = min(D, ⌈3·r̄⌉), r̄ the mean rank the budget affords
  (budget / (V + C·D)), unless given; stage 2 picks the real ranks. Decreasing levels can be
  passed (``levels=``), which makes the clusters act as rank levels.
- [R] Stage 2: per cluster an SVD of the (weighted) rows, gates g_{c,s} = sigmoid(β_{c,s})
  scaling σ_{c,s}, size penalty λ·Σ_c (|𝒱_c| + D)·Σ_s g_{c,s}. For the reconstruction term the
  error has the closed form Σ_{c,s} σ²_{c,s}(1 − g_{c,s})² (orthogonal SVD directions), so no
  pass over the vocabulary is needed. Value s is kept iff β_{c,s} > θ_c with
  θ_c = θ − κ·z_c, z_c the standardised log mean frequency of the cluster (frequent clusters keep
  more, per the review). "MCU-aware": θ is set by an exact search over the sorted β so the int8
  bytes of the table fit the budget with the most values kept.
- [R] λ = "auto": the price per parameter at the budget, i.e. the smallest σ²/(|𝒱_c| + D) the
  budget-optimal greedy allocation (``embedding.allocate_ranks``) keeps, on the relative scale,
  so the penalty and the budget agree; μ = 1.
- The rank floor (``min_rank``, default 1 per non-empty cluster) bounds how small the table can
  get; a budget below it raises ``CheckFailed`` (exit 1) naming the least achievable bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from mlkit.errors import CheckFailed, InputError

from . import embedding as emb

__all__ = ["Task", "SearchResult", "warm_start", "adjusted_rand_index", "matched_ranks", "stage1", "stage2", "threshold", "search", "table_bytes_floor"]


# ---------------------------------------------------------------- task term
@dataclass
class Task:
    """Cross-entropy of a frozen classifier (``BertModel`` with a head) on (ids, types, mask), y.
    During the search the model's word embedding is swapped for the searched one."""

    model: nn.Module
    data: tuple
    y: np.ndarray
    batch: int = 64
    _rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0), repr=False)

    def loss(self, embedding: nn.Module) -> torch.Tensor:
        ids, types, mask = self.data
        b = torch.from_numpy(self._rng.choice(len(ids), min(self.batch, len(ids)), replace=False))
        L = int(mask[b].sum(1).max())
        old = self.model.embeddings.word_embeddings
        self.model.embeddings.word_embeddings = embedding
        try:
            logits = self.model(ids[b, :L], types[b, :L], mask[b, :L])[2]
        finally:
            self.model.embeddings.word_embeddings = old
        return nn.functional.cross_entropy(logits, torch.as_tensor(self.y[b.numpy()], dtype=torch.long))

    def freeze(self):
        self.model.eval()   # no dropout while searching
        for p in self.model.parameters():
            p.requires_grad_(False)


def _weights(freq, V):
    w = np.ones(V) if freq is None else emb._check_weights(freq, V)
    if w.sum() <= 0:
        raise InputError("token frequencies are all zero", expected="some positive count")
    return w / w.mean()


def _price(E, labels, C, budget_params, w) -> float:
    """Relative price per parameter at the budget (see the module notes, λ = auto)."""
    _, _, price = emb._fit(E, labels, C, budget_params, w, False)
    total = float(w @ (E ** 2).sum(1))
    return price / total if total > 0 else 0.0


# ---------------------------------------------------------------- stage 1
class _Stage1Embedding(nn.Module):
    def __init__(self, E: torch.Tensor, labels: np.ndarray, C: int, levels: np.ndarray, tau: float):
        super().__init__()
        V = E.shape[0]
        self.register_buffer("E", E)
        a = np.zeros((V, C), np.float32)
        a[np.arange(V), labels] = np.log(C) + 2.0          # p ≈ 0.88 on the warm-start cluster
        self.alpha = nn.Parameter(torch.from_numpy(a))
        self.levels = [int(r) for r in levels]
        self.W = [torch.zeros(E.shape[1], r) for r in self.levels]
        self.tau = tau

    def probs(self, ids=None) -> torch.Tensor:
        a = self.alpha if ids is None else self.alpha[ids]
        return torch.softmax(a / self.tau, dim=-1)

    def mix(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x)
        for c, W in enumerate(self.W):
            if W.shape[1]:
                out = out + p[..., c:c + 1] * ((x @ W) @ W.T)
        return out

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.mix(self.E[ids], self.probs(ids))

    @torch.no_grad()
    def refit(self, w: torch.Tensor):
        """M-step: W_c = top-R_c eigenvectors of Σ_t w_t p_{t,c} e_t e_tᵀ."""
        P = self.probs()
        for c, r in enumerate(self.levels):
            if r:
                on = P[:, c] > 1e-4          # tokens with a negligible share add nothing: skip them
                X = self.E[on] * (w[on] * P[on, c]).sqrt()[:, None]
                lam, Q = torch.linalg.eigh((X.T @ X).double())
                self.W[c] = Q[:, -r:].flip(1).to(self.E.dtype)


def _levels(levels, C, D, E, init, budget_params, w):
    if levels is None:      # the budget-optimal ranks of the warm start
        levels = np.maximum(emb._fit(E, init, C, budget_params, w, False)[0].ranks, 1)
    levels = np.asarray(levels, np.int64)
    if levels.shape != (C,) or (levels < 0).any() or levels.max() > D:
        raise InputError("rank levels: one per cluster, 0..D", expected=f"{C} values <= {D}", got=str(levels.tolist()))
    return levels


def warm_start(E, C: int, budget_params: float, *, weights=None, seed: int = 0, spectral_max: int = 10_000,
               rounds: int = 5) -> np.ndarray:
    """[R] Stage 1's warm start: several clusterings, each refined by hard cost-aware
    reassignment (``embedding.refine_clusters``), and the one with the lowest weighted error at
    the budget wins (the search objective itself, no labels involved). Candidates: spectral
    subspace clusterings (``subspace_clusters``, k = 5/10/20 neighbours, 2 seeds) when
    V ≤ ``spectral_max`` (they cost O(V²·D)); k-means on raw and on unit rows (2 seeds) above it.
    On planted tables (V 2,000–4,000) one spectral run recovered the clusters in about half the
    cases (ARI 0.26–1.0); the best of six refined ones reached ARI 1.0 in 11 of 12 cases and
    0.90 in the last."""
    V = len(E)
    if V <= spectral_max:
        cands = [emb.subspace_clusters(E, C, 10 * seed + s, k=k) for k in (5, 10, 20) for s in (0, 1)]
    else:
        cands = [emb.kmeans_clusters(E, C, 10 * seed + s, normalize=n) for n in (False, True) for s in (0, 1)]
    best = None
    for labels in cands:
        labels = emb.refine_clusters(E, labels, budget_params, weights, rounds=rounds, n_clusters=C)[1]
        err = emb._fit(E, labels, C, budget_params, weights, False)[1]
        if best is None or err < best[0]:
            best = (err, labels)
    return best[1]


def stage1(E, C: int, budget_params: float, *, weights=None, task: Task | None = None, init=None, levels=None,
           epochs: int = 20, steps: int = 25, lr: float = 0.05, mu: float = 1.0, lam: float | str = "auto",
           tau: tuple[float, float] = (1.0, 0.2), sample: int = 4096, seed: int = 0,
           progress: Callable[[int, int, float], None] | None = None) -> np.ndarray:
    """(V,) cluster labels: argmax_c α after the DARTS search. ``epochs`` refits of the subspaces,
    ``steps`` Adam steps on α between refits; τ anneals geometrically from tau[0] to tau[1].
    The reconstruction term uses ``sample`` random tokens per step (all when V ≤ sample)."""
    E = emb._check_table(E)
    V, D = E.shape
    if not 1 <= C <= V:
        raise InputError("number of clusters out of range", expected=f"1..{V}", got=str(C))
    w = _weights(weights, V)
    init = warm_start(E, C, budget_params, weights=w, seed=seed) if init is None else emb._as_labels(init, V, C)[0]
    levels = _levels(levels, C, D, E, init, budget_params, w)
    lam = _price(E, init, C, budget_params, w) * V * D if lam == "auto" else float(lam)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    Et = torch.from_numpy(E).float()
    wt = torch.from_numpy(w).float()
    total = float(w @ (E ** 2).sum(1))
    m = _Stage1Embedding(Et, init, C, levels, tau[0])
    opt = torch.optim.Adam([m.alpha], lr=lr)
    lv = torch.from_numpy(levels).float()
    if task is not None:
        task.freeze()
    n_all = epochs * steps
    for ep in range(epochs):
        m.tau = float(tau[0] * (tau[1] / tau[0]) ** (ep / max(1, epochs - 1)))
        m.refit(wt)
        for k in range(steps):
            idx = torch.from_numpy(rng.choice(V, sample, replace=False)) if V > sample else torch.arange(V)
            x = Et[idx]
            err = (wt[idx] * ((x - m.mix(x, m.probs(idx))) ** 2).sum(1)).sum() * (V / len(idx)) / total
            size = (m.probs() @ lv).sum() / (V * D)
            loss = mu * err + lam * size
            if task is not None:
                loss = loss + task.loss(m)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if progress:
                progress(ep * steps + k + 1, n_all, float(loss.detach()))
    return m.alpha.detach().argmax(1).numpy().astype(np.int64)


# ---------------------------------------------------------------- stage 2
class _GatedEmbedding(nn.Module):
    def __init__(self, E: np.ndarray, spectra, V: int, D: int, beta0: float):
        super().__init__()
        self.labels = torch.zeros(V, dtype=torch.long)
        self.rows = torch.zeros(V, dtype=torch.long)
        self.T, self.P = [], []
        for c, (tok, _, Wt) in enumerate(spectra):
            t = torch.from_numpy(tok)
            self.labels[t] = c
            self.rows[t] = torch.arange(len(tok))
            self.T.append(torch.from_numpy(E[tok] @ Wt.T).float())
            self.P.append(torch.from_numpy(np.ascontiguousarray(Wt)).float())
        K = max([len(s) for _, s, _ in spectra], default=0)
        self.beta = nn.Parameter(torch.full((len(spectra), K), float(beta0)))
        self.D = D

    def gates(self) -> torch.Tensor:
        return torch.sigmoid(self.beta)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        g = self.gates()
        lab, row = self.labels[ids], self.rows[ids]
        out = torch.zeros((*ids.shape, self.D))
        for c in torch.unique(lab).tolist():
            k = self.P[c].shape[0]
            if k:
                at = lab == c
                out[at] = (self.T[c][row[at]] * g[c, :k]) @ self.P[c]
        return out


def stage2(E, labels, C: int, budget_params: float, *, weights=None, task: Task | None = None, steps: int = 300,
           lr: float = 0.1, mu: float = 1.0, lam: float | str = "auto", beta0: float = 2.0, seed: int = 0,
           progress: Callable[[int, int, float], None] | None = None):
    """Learn the gates of every cluster's singular values. Returns (spectra, β (C, K) numpy with
    NaN past a cluster's numerical rank)."""
    E = emb._check_table(E)
    V, D = E.shape
    w = _weights(weights, V)
    labels = emb._as_labels(labels, V, C)[0]
    spectra = emb.cluster_spectra(E, labels, C, w)
    lam = _price(E, labels, C, budget_params, w) * V * D if lam == "auto" else float(lam)
    total = float(w @ (E ** 2).sum(1))
    torch.manual_seed(seed)
    m = _GatedEmbedding(E, spectra, V, D, beta0)
    K = m.beta.shape[1]
    sig2 = np.zeros((C, K))
    cost = np.zeros((C, K))
    valid = np.zeros((C, K), bool)
    for c, (tok, s, _) in enumerate(spectra):
        sig2[c, :len(s)] = s ** 2 / total
        cost[c, :len(s)] = (len(tok) + D) / (V * D)
        valid[c, :len(s)] = True
    sig2_t, cost_t = torch.from_numpy(sig2).float(), torch.from_numpy(cost).float()
    opt = torch.optim.Adam([m.beta], lr=lr)
    if task is not None:
        task.freeze()
    for k in range(steps):
        g = m.gates()
        loss = mu * (sig2_t * (1 - g) ** 2).sum() + lam * (cost_t * g).sum()
        if task is not None:
            loss = loss + task.loss(m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress:
            progress(k + 1, steps, float(loss.detach()))
    beta = m.beta.detach().double().numpy()
    beta[~valid] = np.nan
    return spectra, beta


def _table_from_keep(E, spectra, keep, V, D) -> emb.ClusteredLowRank:
    tokens, tables, projs = [], [], []
    for (tok, _, Wt), k in zip(spectra, keep, strict=True):
        P = Wt[np.flatnonzero(k)]
        tokens.append(tok)
        projs.append(P)
        tables.append(E[tok] @ P.T)
    return emb.ClusteredLowRank(tokens, tables, projs, V, D)


def _int8_bytes(sizes, ranks, D) -> int:
    C = len(sizes)
    return int(((sizes + D) * ranks).sum()) + emb.SCALE_BYTES * 2 * int((ranks > 0).sum()) \
        + emb.OFFSET_BYTES * (C + 1) + emb.RANK_BYTES * C


def table_bytes_floor(sizes, D: int, min_rank: int = 1) -> int:
    """Int8 bytes of the table with every non-empty cluster at the rank floor."""
    sizes = np.asarray(sizes, np.int64)
    return _int8_bytes(sizes, np.where(sizes > 0, min_rank, 0), D)


def threshold(spectra, beta, budget_bytes: int, *, D: int, freq=None, kappa: float = 0.25, min_rank: int = 1):
    """Keep masks: value s of cluster c kept iff β_{c,s} > θ − κ·z_c, θ the smallest that fits
    ``budget_bytes`` (int8 bytes of the table), the top-``min_rank`` β of each cluster always kept.
    Returns (keep list of bool arrays, θ)."""
    C = len(spectra)
    sizes = np.array([len(t) for t, _, _ in spectra], np.int64)
    floor = table_bytes_floor(sizes, D, min_rank)
    if budget_bytes < floor:
        raise CheckFailed("the embedding budget is below the rank floor",
                          expected=f">= {floor} bytes (rank {min_rank} per cluster)", got=f"{int(budget_bytes)} bytes")
    V = int(sizes.sum())
    w = np.ones(V) if freq is None else _weights(freq, V)
    lf = np.array([np.log(w[t].mean()) if len(t) else 0.0 for t, _, _ in spectra])
    z = (lf - lf.mean()) / (lf.std() or 1.0)
    score = beta + kappa * z[:, None]                     # β_{c,s} > θ − κ z_c  <=>  score > θ
    forced = np.zeros_like(beta, bool)
    for c in range(C):
        ok = np.flatnonzero(~np.isnan(beta[c]))
        forced[c, ok[np.argsort(-beta[c, ok], kind="stable")[:min_rank]]] = True

    def keep_at(th):
        return (np.nan_to_num(score, nan=-np.inf) > th) | forced

    cands = np.unique(np.concatenate([score[~np.isnan(score)], [np.inf]]))
    lo, hi = 0, len(cands) - 1                            # keep_at(cands[-1] = inf) is the floor: fits
    while lo < hi:                                        # smallest candidate θ that fits
        mid = (lo + hi) // 2
        if _int8_bytes(sizes, keep_at(cands[mid]).sum(1), D) <= budget_bytes:
            hi = mid
        else:
            lo = mid + 1
    th = float(cands[lo])
    k = keep_at(th)
    return [k[c, :len(s)] for c, (_, s, _) in enumerate(spectra)], th


@dataclass
class SearchResult:
    table: emb.ClusteredLowRank
    labels: np.ndarray
    theta: float
    beta: np.ndarray


def search(E, C: int, budget_bytes: int, *, freq=None, weights=None, task: Task | None = None, init=None, levels=None,
           stage1_epochs: int = 20, stage1_steps: int = 25, stage2_steps: int = 300, kappa: float = 0.25,
           min_rank: int = 1, mu: float = 1.0, lam: float | str = "auto", seed: int = 0,
           progress: Callable[[str, int, int, float], None] | None = None) -> SearchResult:
    """Stage 1, stage 2, then the budget cut. ``budget_bytes``: int8 bytes of the table."""
    E = emb._check_table(E)
    V, D = E.shape
    sizes = np.full(C, V // C)
    sizes[: V % C] += 1
    floor = table_bytes_floor(sizes, D, min_rank)                # any partition with C non-empty clusters
    if budget_bytes < floor:
        raise CheckFailed("the embedding budget is below the rank floor",
                          expected=f">= {floor} bytes (rank {min_rank} per cluster)", got=f"{int(budget_bytes)} bytes")
    params = max(1.0, budget_bytes - emb.OFFSET_BYTES * (C + 1) - emb.RANK_BYTES * C - 2 * emb.SCALE_BYTES * C)

    def prog(stage):
        return None if progress is None else (lambda i, n, loss: progress(stage, i, n, loss))

    labels = stage1(E, C, params, weights=weights, task=task, init=init, levels=levels, epochs=stage1_epochs,
                    steps=stage1_steps, mu=mu, lam=lam, seed=seed, progress=prog("stage 1"))
    spectra, beta = stage2(E, labels, C, params, weights=weights, task=task, steps=stage2_steps, mu=mu, lam=lam,
                           seed=seed, progress=prog("stage 2"))
    keep, th = threshold(spectra, beta, budget_bytes, D=D, freq=freq, kappa=kappa, min_rank=min_rank)
    return SearchResult(_table_from_keep(E, spectra, keep, V, D), labels, th, beta)


# ---------------------------------------------------------------- scoring against a planted table
def adjusted_rand_index(a, b) -> float:
    """Hubert–Arabie adjusted Rand index of two labelings (1 = identical partitions)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise InputError("ARI: two labelings of the same items", got=f"{a.shape} vs {b.shape}")
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    M = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(M, (ai, bi), 1)

    def pairs(x):
        return float((x * (x - 1) / 2).sum())

    n = len(a)
    sij, sa, sb, tot = pairs(M), pairs(M.sum(1)), pairs(M.sum(0)), n * (n - 1) / 2
    expected = sa * sb / tot if tot else 0.0
    top = (sa + sb) / 2
    return 1.0 if top == expected else (sij - expected) / (top - expected)


def matched_ranks(true_labels, labels, ranks) -> np.ndarray:
    """Ranks of the found clusters, in the order of the true clusters they overlap most
    (Hungarian matching on the contingency table)."""
    from scipy.optimize import linear_sum_assignment

    t, f = np.asarray(true_labels), np.asarray(labels)
    M = np.zeros((t.max() + 1, max(f.max() + 1, len(ranks))))
    np.add.at(M, (t, f), 1)
    _, col = linear_sum_assignment(-M)
    return np.asarray(ranks)[col]
