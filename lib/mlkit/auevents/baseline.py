"""Frame-level baselines for AU events: a per-AU logistic regression on per-frame features, turned
into events by raw thresholding or by post-processing tuned on training subjects (notes §6).

Tuning protocol (ours): the post-processing parameters (thr, median, min_dur, merge_gap) are chosen
on the **training subjects only**. A model's in-sample probabilities on its own training sequences
are overconfident (it has seen those subjects' feature offsets and noise), so they are not what the
post-processing meets on new subjects. ``oof_probs`` therefore fits the model k times, holding out
one fold of training *subjects* each time, and returns out-of-fold probabilities for every training
sequence; ``tune_postproc`` grid-searches on those, and the chosen parameters are then applied,
unchanged, to the test subjects' probabilities from the model fitted on all training subjects. The
test labels are never looked at. Measured on the default synth (seeds 0/1/2): the in-sample tuning
score is optimistic (mAP@.5 .88–.91 against .85–.88 out of fold, .84–.86 on test) and picks the
same or slightly less smoothing; test mAP@.5 with the two choices differs by −.004/0/+.021.

One parameter set is shared by all AUs (per-AU tuning would overfit the ~1–4 events per AU and
sequence). Ties in the tuning metric go to the first grid point in ``itertools.product`` order.
"""

from __future__ import annotations

import itertools
import re
import time

import numpy as np
from scipy.optimize import minimize

from mlkit.errors import InputError, NotFittedError

from .events import from_frames
from .events import median_filter as events_median_filter
from .metrics import TIOUS, average_precision, evaluate, interpolated_ap
from .synth import AUS

__all__ = ["LogisticFrames", "DEFAULT_GRID", "RAW_PARAMS", "frame_probs", "oof_probs", "subject_folds",
           "tune_postproc", "postproc_results", "raw_results", "oracle_results", "benchmark"]

DEFAULT_GRID: dict[str, tuple] = {"thr": (0.3, 0.4, 0.5, 0.6, 0.7), "median": (1, 5, 9, 15, 25),
                                  "min_dur": (1, 3, 5, 8, 12), "merge_gap": (0, 3, 8, 15)}
RAW_PARAMS = {"thr": 0.5, "median": 1, "min_dur": 1, "merge_gap": 0}
NOT_CODED = 9


def _as_2d(x, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[0] == 0:
        raise InputError(f"bad {what}", expected="a non-empty (T, D) array", got=f"shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or not np.isfinite(a).all():
        raise InputError(f"bad {what}", expected="finite numbers", got=f"dtype {a.dtype} with NaN/inf or "
                         "non-numbers")
    return a.astype(np.float64)


class LogisticFrames:
    """Independent L2-regularised logistic regressions, one per AU, on standardised frame features.

    Objective per AU: mean log-loss over coded frames + l2/2·‖w‖² (the intercept is not penalised),
    minimised jointly (it is separable) by scipy L-BFGS from zero: deterministic. Frames labelled
    9 (not coded) are left out of the loss. Features are standardised with the training mean and
    standard deviation.
    """

    def __init__(self, l2: float = 1e-3, max_iter: int = 500, tol: float = 1e-7):
        if not (isinstance(l2, (int, float)) and np.isfinite(l2) and l2 >= 0):
            raise InputError("bad l2", expected="a number >= 0", got=repr(l2))
        if not (isinstance(max_iter, int) and max_iter >= 1):
            raise InputError("bad max_iter", expected="an integer >= 1", got=repr(max_iter))
        self.l2, self.max_iter, self.tol = float(l2), max_iter, float(tol)
        self.mean_ = self.scale_ = self.coef_ = self.intercept_ = None

    def fit(self, feats_list, labels_list) -> LogisticFrames:
        """feats_list: sequences of (T_i, D) features; labels_list: matching (T_i, C) in {0, 1, 9}."""
        feats_list, labels_list = list(feats_list), list(labels_list)
        if not feats_list or len(feats_list) != len(labels_list):
            raise InputError("bad training set", expected="as many label arrays as feature arrays, >= 1",
                             got=f"{len(feats_list)} feature and {len(labels_list)} label arrays")
        X = [_as_2d(f, "features") for f in feats_list]
        Y = [_as_2d(y, "labels") for y in labels_list]
        D, C = X[0].shape[1], Y[0].shape[1]
        for i, (x, y) in enumerate(zip(X, Y, strict=True)):
            if x.shape[1] != D or y.shape != (len(x), C):
                raise InputError(f"bad training sequence {i}", expected=f"features (T, {D}) and labels (T, {C})",
                                 got=f"{x.shape} and {y.shape}")
            if not np.isin(y, (0, 1, NOT_CODED)).all():
                raise InputError(f"bad labels in training sequence {i}", expected="0, 1 or 9 (not coded)",
                                 got=f"values {np.unique(y)[:8].tolist()}")
        X, Y = np.concatenate(X), np.concatenate(Y)  # (N, D), (N, C)
        self.mean_ = X.mean(0)
        sd = X.std(0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        Z = np.hstack([(X - self.mean_) / self.scale_, np.ones((len(X), 1))])  # (N, D + 1)
        M = (Y != NOT_CODED).astype(np.float64)  # (N, C) coded mask
        Yb = np.where(Y == 1, 1.0, 0.0)
        n = np.maximum(M.sum(0), 1.0)  # (C,) coded frames per AU
        pen = np.ones((D + 1, 1))
        pen[-1] = 0.0

        def f(wflat):
            W = wflat.reshape(D + 1, C)
            z = Z @ W  # (N, C)
            ez = np.exp(-np.abs(z))
            loss = ((np.maximum(z, 0.0) - Yb * z + np.log1p(ez)) * M).sum(0) / n
            sig = np.where(z >= 0, 1.0, ez) / (1.0 + ez)
            g = Z.T @ ((sig - Yb) * M / n)  # (D + 1, C)
            g += self.l2 * pen * W
            return loss.sum() + 0.5 * self.l2 * (pen * W * W).sum(), g.ravel()

        res = minimize(f, np.zeros((D + 1) * C), jac=True, method="L-BFGS-B",
                       options={"maxiter": self.max_iter, "gtol": self.tol, "ftol": 1e-12})
        W = res.x.reshape(D + 1, C)
        self.coef_, self.intercept_ = W[:-1], W[-1]
        return self

    def predict_proba(self, feats) -> np.ndarray:
        """(T, C) float64 probabilities for (T, D) features."""
        if self.coef_ is None:
            raise NotFittedError("LogisticFrames is not fitted", hint="call fit() first")
        x = _as_2d(feats, "features")
        if x.shape[1] != len(self.mean_):
            raise InputError("bad features", expected=f"{len(self.mean_)} columns", got=f"{x.shape[1]}")
        z = ((x - self.mean_) / self.scale_) @ self.coef_ + self.intercept_
        return 0.5 * (1.0 + np.tanh(0.5 * z))


def frame_probs(data, model: LogisticFrames, seqs=None) -> dict[str, np.ndarray]:
    """seq -> (T, C) probabilities of ``model`` on ``data.feats`` (all sequences or ``seqs``)."""
    return {s: model.predict_proba(data.feats[s]) for s in (data.seqs() if seqs is None else seqs)}


def subject_folds(subjects, folds: int) -> list[list[str]]:
    """Sorted distinct subjects dealt round-robin into ``folds`` groups (deterministic)."""
    subs = sorted(set(subjects))
    if not (isinstance(folds, int) and 2 <= folds <= len(subs)):
        raise InputError("bad number of folds", expected=f"an integer in [2, {len(subs)}] (the subjects)",
                         got=repr(folds))
    return [subs[k::folds] for k in range(folds)]


def oof_probs(data, *, folds: int = 5, subset: str = "train", l2: float = 1e-3) -> dict[str, np.ndarray]:
    """Out-of-fold probabilities for every sequence of ``subset``: k models, each fitted on the
    other folds of that subset's subjects (k-fold by subject), predict the held-out fold."""
    seqs = data.seqs(subset)
    if not seqs:
        raise InputError(f"no {subset!r} sequences", expected="at least one", got="none")
    out = {}
    for held in subject_folds([data.subject[s] for s in seqs], folds):
        fit = [s for s in seqs if data.subject[s] not in held]
        model = LogisticFrames(l2=l2).fit([data.feats[s] for s in fit], [data.labels[s] for s in fit])
        out.update(frame_probs(data, model, [s for s in seqs if data.subject[s] in held]))
    return {s: out[s] for s in seqs}


def _frames_of(probs, frames, seq) -> np.ndarray:
    return np.arange(len(probs[seq]), dtype=np.int64) if frames is None else np.asarray(frames[seq])


def postproc_results(probs: dict, frames: dict | None, aus: list[str], params: dict) -> dict[str, list]:
    """seq -> events from ``events.from_frames`` with ``params`` (thr, median, min_dur, merge_gap);
    ``frames`` None means 0..T − 1 for every sequence."""
    missing = [k for k in RAW_PARAMS if k not in params]
    if missing:
        raise InputError("bad post-processing parameters", expected="keys " + ", ".join(RAW_PARAMS),
                         got=f"missing {missing}")
    p = {k: params[k] for k in RAW_PARAMS}
    return {s: from_frames(probs[s], _frames_of(probs, frames, s), list(aus), **p) for s in probs}


def raw_results(probs: dict, aus: list[str] | None = None, frames: dict | None = None) -> dict[str, list]:
    """Raw thresholding: runs of p > .5, no filtering (``aus`` None: ``synth.AUS``)."""
    return postproc_results(probs, frames, AUS if aus is None else aus, RAW_PARAMS)


def oracle_results(gt) -> dict[str, list]:
    """The ground-truth events of every sequence, score 1."""
    return {s: [{"label": e["label"], "segment": list(e["segment"]), "score": 1.0} for e in v["events"]]
            for s, v in gt.db.items()}


# --------------------------------------------------------------------------- tuning


def _fast_events(f: np.ndarray, cs: np.ndarray, thr: float, min_dur: int,
                 merge_gap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``from_frames`` on fully coded frames 0..L − 1, vectorised over AUs.

    f (C, L) median-filtered values (−inf never switches on), cs (C, L + 1) cumulative sums of the
    unfiltered values along time. Returns (column, start, end, score) ordered by column, then start.
    """
    d = np.diff(np.pad(f > thr, ((0, 0), (1, 1))).astype(np.int8), axis=1)  # (C, L + 1)
    col, s = np.nonzero(d == 1)
    _, e = np.nonzero(d == -1)
    if merge_gap > 0 and len(s) > 1:
        merge = (col[1:] == col[:-1]) & (s[1:] - e[:-1] <= merge_gap)
        keep_s, keep_e = np.r_[True, ~merge], np.r_[~merge, True]
        col, s, e = col[keep_s], s[keep_s], e[keep_e]
    long = e - s >= min_dur
    col, s, e = col[long], s[long], e[long]
    score = np.clip((cs[col, e] - cs[col, s]) / (e - s), 0.0, 1.0)
    return col, s, e, score


def _fast_ap(gs: np.ndarray, ge: np.ndarray, ps: np.ndarray, pe: np.ndarray, score: np.ndarray,
             tious: tuple[float, ...]) -> np.ndarray:
    """``metrics.average_precision`` of one label when its ground-truth segments [gs, ge) are
    sorted and disjoint (events from frame labels are), in one shared time axis. (K,)

    Only prediction/ground-truth pairs that overlap can reach tIoU >= θ > 0, and with disjoint
    sorted ground truth those of a prediction form one index range (two binary searches); the
    greedy matching then loops over the pairs with tIoU >= θ only, in (score rank, tIoU descending,
    later ground truth first) order: the order of ``metrics._match``.
    """
    P, ap = len(ps), np.zeros(len(tious))
    if len(gs) == 0 or P == 0:
        return ap
    rank = np.empty(P, np.int64)
    rank[np.argsort(-score, kind="stable")] = np.arange(P)
    lo = np.searchsorted(ge, ps, side="right")  # first gt ending after the prediction's start
    cnt = np.maximum(np.searchsorted(gs, pe, side="left") - lo, 0)
    pi = np.repeat(np.arange(P), cnt)
    gj = lo[pi] + np.arange(len(pi)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    inter = np.minimum(pe[pi], ge[gj]) - np.maximum(ps[pi], gs[gj])
    iou = inter / ((pe[pi] - ps[pi]) + (ge[gj] - gs[gj]) - inter)
    for k, th in enumerate(tious):
        ok = iou >= th
        order = np.lexsort((-gj[ok], -iou[ok], rank[pi[ok]]))
        tp = np.zeros(P, bool)
        taken, done = set(), set()
        for p, g in zip(pi[ok][order].tolist(), gj[ok][order].tolist(), strict=True):
            if p in done or g in taken:
                continue
            taken.add(g)
            done.add(p)
            tp[rank[p]] = True
        tpc = np.cumsum(tp)
        ap[k] = interpolated_ap(tpc / (np.arange(P) + 1.0), tpc / len(gs))
    return ap


def _check_grid(grid: dict) -> dict[str, tuple]:
    if not isinstance(grid, dict) or set(grid) != set(RAW_PARAMS):
        raise InputError("bad tuning grid", expected="a dict with keys " + ", ".join(RAW_PARAMS),
                         got=repr(sorted(grid) if isinstance(grid, dict) else grid))
    out = {}
    for k in RAW_PARAMS:  # fixed key order: the product order decides ties
        vals = tuple(grid[k]) if isinstance(grid[k], (list, tuple)) else (grid[k],)
        ok = len(vals) > 0
        for v in vals:
            if k == "thr":
                ok &= isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))
            else:
                lo = 0 if k == "merge_gap" else 1
                ok &= isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= lo
                ok &= k != "median" or v % 2 == 1
        if not ok:
            want = {"thr": "finite numbers", "median": "odd integers >= 1", "min_dur": "integers >= 1",
                    "merge_gap": "integers >= 0"}[k]
            raise InputError(f"bad tuning grid values for {k!r}", expected=f"a non-empty list of {want}",
                             got=repr(grid[k]))
        out[k] = vals
    return out


def _metric_tious(metric: str) -> tuple[float, ...]:
    """"map@θ" -> (θ,); "average_map" -> TIOUS (the mean of mAP over them)."""
    if metric == "average_map":
        return tuple(TIOUS)
    m = re.fullmatch(r"map@([0-9]*\.?[0-9]+)", str(metric))
    if not m or not 0 < float(m.group(1)) <= 1:
        raise InputError("bad tuning metric", expected='"map@θ" with θ in (0, 1] or "average_map"',
                         got=repr(metric))
    return (float(m.group(1)),)


def tune_postproc(probs: dict, gt, *, grid: dict = DEFAULT_GRID, metric: str = "map@0.5",
                  subset: str = "train") -> dict:
    """Grid search of (thr, median, min_dur, merge_gap) maximising ``metric`` on the ``subset``
    sequences of ``gt`` only (the others, their probabilities and labels, are never read).

    probs: seq -> (T, C) probabilities with columns ``gt.aus`` and T = duration_frames, frames
    0..T − 1, all coded (what ``synth`` and ``oof_probs`` give). Events come from a vectorised
    equivalent of ``events.from_frames`` (the tests check it equals from_frames) and AP from
    ``metrics.average_precision``; the mean is over the AUs with ground truth, as in ``evaluate``.
    Returns ``{"thr", "median", "min_dur", "merge_gap", "score", "metric", "subset", "sequences",
    "combos", "seconds"}``; ties go to the first combination in grid order.
    """
    t0 = time.perf_counter()
    grid = _check_grid(grid)
    tious = _metric_tious(metric)
    seqs = [s for s, v in gt.db.items() if v["subset"] == subset]
    if not seqs:
        raise InputError(f"no {subset!r} sequences in the ground truth", expected="at least one",
                         got=f"subsets {sorted({v['subset'] for v in gt.db.values()})}")
    C = len(gt.aus)
    V = {}
    for s in seqs:
        if s not in probs:
            raise InputError(f"no probabilities for sequence {s!r}", expected=f"every {subset!r} sequence",
                             got=f"{len(probs)} sequences")
        v = np.asarray(probs[s], dtype=np.float64)
        if v.shape != (gt.db[s]["duration_frames"], C) or not np.isfinite(v).all():
            raise InputError(f"bad probabilities for sequence {s!r}",
                             expected=f"finite ({gt.db[s]['duration_frames']}, {C}) for AUs {gt.aus}",
                             got=f"shape {v.shape}")
        V[s] = v
    # all sequences on one time axis, each followed by a spacer that no run can enter or bridge
    space = max(grid["merge_gap"]) + 1
    start = np.cumsum([0] + [len(V[s]) + space for s in seqs])
    L = int(start[-1])
    col = {a: c for c, a in enumerate(gt.aus)}
    G = [[] for _ in range(C)]
    for s, o in zip(seqs, start.tolist(), strict=False):
        for ev in gt.db[s]["events"]:
            G[col[ev["label"]]].append((o + ev["segment"][0], o + ev["segment"][1]))
    G = [np.array(sorted(g), dtype=np.float64).reshape(-1, 2) for g in G]
    scored = [c for c in range(C) if len(G[c])]
    if not scored:
        raise InputError(f"no ground-truth events in the {subset!r} sequences", expected="at least one",
                         got="none")
    disjoint = all(np.all(g[1:, 0] >= g[:-1, 1]) for g in G)
    vb = np.zeros((C, L))
    for s, o in zip(seqs, start.tolist(), strict=False):
        vb[:, o:o + len(V[s])] = V[s].T
    cs = np.concatenate([np.zeros((C, 1)), np.cumsum(vb, axis=1)], axis=1)  # (C, L + 1)
    best, n = None, 0
    for k in grid["median"]:
        fb = np.full((C, L), -np.inf)
        for s, o in zip(seqs, start.tolist(), strict=False):  # one filter per width and sequence
            fb[:, o:o + len(V[s])] = events_median_filter(V[s], k).T
        for thr, min_dur, gap in itertools.product(grid["thr"], grid["min_dur"], grid["merge_gap"]):
            cols, st, en, sc = _fast_events(fb, cs, thr, min_dur, gap)
            aps = []
            for c in scored:
                m = cols == c
                if disjoint:
                    aps.append(_fast_ap(G[c][:, 0], G[c][:, 1], st[m], en[m], sc[m], tious).mean())
                else:  # the general (slower) matcher; sequences never overlap on the shared axis
                    aps.append(average_precision([(0, a, b) for a, b in G[c].tolist()],
                                                 [(0, a, b, x) for a, b, x in zip(st[m], en[m], sc[m],
                                                                                  strict=True)],
                                                 tious).mean())
            score = float(np.mean(aps))
            key = (thr, k, min_dur, gap)
            order = tuple(grid[p].index(v) for p, v in zip(RAW_PARAMS, key, strict=True))
            n += 1
            if best is None or score > best[0] or (score == best[0] and order < best[2]):
                best = (score, key, order)
    thr, k, min_dur, gap = best[1]
    return {"thr": thr, "median": k, "min_dur": min_dur, "merge_gap": gap, "score": best[0],
            "metric": metric, "subset": subset, "sequences": len(seqs), "combos": n,
            "seconds": time.perf_counter() - t0}


def benchmark(data, *, folds: int = 5, grid: dict = DEFAULT_GRID, metric: str = "map@0.5",
              tious=(0.3, 0.5, 0.7), l2: float = 1e-3) -> dict:
    """Raw / tuned / oracle on the test subjects of a ``synth.SynthData``.

    The logistic model is fitted on all training subjects; the post-processing is tuned on its
    out-of-fold training probabilities (``oof_probs``, k-fold by subject), then applied to the
    test probabilities. Returns ``{"rows": [{"method", "map": [K], "average_map", "params"}],
    "tious", "tuned": tune_postproc(...), "seconds": {...}}``.
    """
    sec = {}
    t = time.perf_counter()
    gt = data.ground_truth()
    train, test = data.seqs("train"), data.seqs("test")
    model = LogisticFrames(l2=l2).fit([data.feats[s] for s in train], [data.labels[s] for s in train])
    probs = frame_probs(data, model, test)
    sec["fit"] = time.perf_counter() - t
    t = time.perf_counter()
    oof = oof_probs(data, folds=folds, l2=l2)
    sec["oof"] = time.perf_counter() - t
    tuned = tune_postproc(oof, gt, grid=grid, metric=metric, subset="train")
    sec["tune"] = tuned["seconds"]
    t = time.perf_counter()
    runs = {"raw": (raw_results(probs, data.aus), dict(RAW_PARAMS)),
            "tuned": (postproc_results(probs, None, data.aus, tuned), {k: tuned[k] for k in RAW_PARAMS}),
            "oracle": (oracle_results(gt), None)}
    rows = []
    for name, (res, params) in runs.items():
        if name == "oracle":
            res = {s: res[s] for s in test}
        ev = evaluate(gt, res, tious=tious, subset="test")
        rows.append({"method": name, "map": ev["map"], "average_map": ev["average_map"], "params": params})
    sec["eval"] = time.perf_counter() - t
    return {"rows": rows, "tious": list(tious), "tuned": tuned, "seconds": sec}
