"""Event metrics (paper notes §5): per-AU average precision at temporal-IoU thresholds (the
ActivityNet detection protocol), event F1 and frame F1.

AP, written from the protocol's definition: predictions of one label are sorted by score
(descending, stable: equal scores keep their input order); each in turn is matched to the
not-yet-matched ground truth of the same sequence with the highest tIoU, provided that tIoU is
>= θ (candidates are visited by tIoU descending; equal tIoUs go to the later ground truth, as
ActivityNet's reversed argsort does); matched = true positive, otherwise false positive.
Precision and recall are accumulated in that order and AP is the VOC-2011 interpolated area:
precision made monotone from the right over [0, prec, 0] at recalls [0, rec, 1], summed over
the recall steps. tIoU is on continuous [s, e) intervals.

Conventions where the protocol is silent: a label with no ground truth has AP 0 (ActivityNet
divides by zero) and is left out of every mean; a label with ground truth and no predictions
has AP 0. Means (mAP, macro F1) are over the labels with at least one ground-truth event in the
evaluated sequences.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlkit.errors import InputError

from .events import rasterize
from .formats import GroundTruth

__all__ = ["TIOUS", "segment_iou", "interpolated_ap", "average_precision", "evaluate", "event_f1",
           "frame_f1"]

TIOUS = (0.1, 0.3, 0.5, 0.7)


def segment_iou(seg, segs) -> np.ndarray:
    """tIoU of one segment [s, e) with each of ``segs`` (N, 2): |intersection| / |union|. (N,)"""
    a = np.asarray(seg, dtype=np.float64).reshape(2)
    b = np.asarray(segs, dtype=np.float64).reshape(-1, 2)
    inter = np.clip(np.minimum(a[1], b[:, 1]) - np.maximum(a[0], b[:, 0]), 0.0, None)
    union = (a[1] - a[0]) + (b[:, 1] - b[:, 0]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def interpolated_ap(prec: np.ndarray, rec: np.ndarray) -> float:
    """VOC-2011 interpolated AP of one precision/recall curve (both (P,), in prediction order)."""
    mprec = np.concatenate([[0.0], prec, [0.0]])
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]      # monotone from the right
    step = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[step] - mrec[step - 1]) * mprec[step]))


def _match(gt: Sequence, preds: Sequence, tious: np.ndarray) -> np.ndarray:
    """Greedy matching of ``preds`` (seq, s, e, score) to ``gt`` (seq, s, e) at each θ.

    Returns tp (K, P) bool with the predictions in score order. Sequences are independent, so
    each is matched on its own: one tIoU matrix per sequence, then a short loop per prediction
    over its candidates (tIoU >= the smallest θ) sorted by tIoU descending, later gt first."""
    th = [float(t) for t in tious]
    scores = np.array([p[3] for p in preds], dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(len(preds), dtype=np.int64)
    rank[order] = np.arange(len(preds))
    gsegs: dict = {}
    for seq, s, e in gt:
        gsegs.setdefault(seq, []).append((s, e))
    pidx: dict = {}
    for i in order:                                        # per sequence, in score order
        pidx.setdefault(preds[i][0], []).append(int(i))
    tp = np.zeros((len(th), len(preds)), dtype=bool)
    tmin = min(th)
    for seq, idx in pidx.items():
        if seq not in gsegs:
            continue
        g = np.asarray(gsegs[seq], dtype=np.float64)                       # (G, 2)
        p = np.array([preds[i][1:3] for i in idx], dtype=np.float64)       # (P, 2)
        inter = np.clip(np.minimum(p[:, None, 1], g[None, :, 1]) - np.maximum(p[:, None, 0], g[None, :, 0]),
                        0.0, None)
        union = (p[:, None, 1] - p[:, None, 0]) + (g[None, :, 1] - g[None, :, 0]) - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)   # (P, G) as segment_iou
        rows, cols = np.nonzero(iou >= tmin)
        cand: dict[int, list] = {}
        for r, c, v in zip(rows.tolist(), cols.tolist(), iou[rows, cols].tolist(), strict=True):
            cand.setdefault(r, []).append((-v, -c))
        taken = [set() for _ in th]
        for r in sorted(cand):
            cl = sorted(cand[r])                           # tIoU descending, later gt first
            col = rank[idx[r]]
            for k, t in enumerate(th):
                for neg_iou, neg_c in cl:
                    if -neg_iou < t:
                        break
                    if neg_c not in taken[k]:
                        taken[k].add(neg_c)
                        tp[k, col] = True
                        break
    return tp


def average_precision(gt: Sequence[tuple], preds: Sequence[tuple],
                      tious: float | Sequence[float] = TIOUS) -> np.ndarray:
    """AP of ONE label at each tIoU threshold. ``gt``: (seq, s, e) tuples; ``preds``: (seq, s, e,
    score) tuples. Returns (K,) float64; 0 where there is no ground truth or no prediction."""
    th = np.atleast_1d(np.asarray(tious, dtype=np.float64))
    ap = np.zeros(th.shape[0])
    if len(gt) == 0 or len(preds) == 0:
        return ap
    tp = _match(gt, preds, th)
    tpc = np.cumsum(tp, axis=1)
    fpc = np.cumsum(~tp, axis=1)
    rec = tpc / len(gt)
    prec = tpc / (tpc + fpc)
    for k in range(th.shape[0]):
        ap[k] = interpolated_ap(prec[k], rec[k])
    return ap


# --------------------------------------------------------------------------- whole evaluation


def _sequences(gt: GroundTruth, subset: str | None) -> list[str]:
    if subset is None:
        return list(gt.db)
    seqs = [s for s, v in gt.db.items() if v["subset"] == subset]
    if not seqs:
        have = sorted({v["subset"] for v in gt.db.values()})
        raise InputError("no ground-truth sequences in the subset", expected="one of " + ", ".join(map(repr, have)),
                         got=repr(subset))
    return seqs


def _check(gt: GroundTruth, results: dict) -> None:
    known = set(gt.aus)
    for seq, events in results.items():
        if seq not in gt.db:
            raise InputError(f"results: sequence '{seq}' is not in the ground truth",
                             hint="check that the files belong together")
        for j, ev in enumerate(events):
            if ev.get("label") not in known:
                raise InputError(f"results: sequence '{seq}', event {j}: unknown label",
                                 expected="one of " + ", ".join(gt.aus), got=repr(ev.get("label")))
            try:
                s, e = (float(x) for x in ev["segment"])
                ok = bool(np.isfinite(s) and np.isfinite(e) and e > s)
            except (KeyError, TypeError, ValueError):
                ok = False
            if not ok:
                raise InputError(f"results: sequence '{seq}', event {j}: bad segment",
                                 expected="finite start < end", got=repr(ev.get("segment")))
            score = ev.get("score")
            try:
                ok = not isinstance(score, (bool, str)) and 0.0 <= float(score) <= 1.0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise InputError(f"results: sequence '{seq}', event {j}: bad score",
                                 expected="a number in [0, 1]", got=repr(score))


def _collect(gt: GroundTruth, results: dict, seqs: list[str], score_thr: float | None = None):
    """Per label: gt (seq, s, e) and prediction (seq, s, e, score) lists over ``seqs``."""
    _check(gt, results)
    g = {au: [] for au in gt.aus}
    p = {au: [] for au in gt.aus}
    for seq in seqs:
        for ev in gt.db[seq]["events"]:
            g[ev["label"]].append((seq, *ev["segment"]))
        for ev in results.get(seq, []):
            if score_thr is None or ev["score"] >= score_thr:
                p[ev["label"]].append((seq, *ev["segment"], ev["score"]))
    scored = [au for au in gt.aus if g[au]]
    if not scored:
        raise InputError("no ground-truth events to score", expected="at least one event", got="none")
    return g, p, scored


def evaluate(gt: GroundTruth, results: dict[str, list[dict]], *, tious: Sequence[float] = TIOUS,
             subset: str | None = None) -> dict:
    """ActivityNet detection scores over the ground truth's sequences (or one ``subset``).

    Returns ``{"tious": [K], "ap": {au: [K]}, "map": [K], "average_map": float,
    "aus": [labels in the means], "n_gt": {au: int}, "n_pred": {au: int}, "sequences": int,
    "subset": subset}``; ``ap`` lists every label of ``gt.aus``."""
    th = np.atleast_1d(np.asarray(tious, dtype=np.float64))
    if th.size == 0 or not np.all((th > 0) & (th <= 1)):
        raise InputError("bad tIoU thresholds", expected="numbers in (0, 1]", got=repr(list(tious)))
    seqs = _sequences(gt, subset)
    g, p, scored = _collect(gt, results, seqs)
    ap = {au: average_precision(g[au], p[au], th) for au in gt.aus}
    m = np.mean([ap[au] for au in scored], axis=0)
    return {"tious": th.tolist(), "ap": {au: v.tolist() for au, v in ap.items()}, "map": m.tolist(),
            "average_map": float(m.mean()), "aus": scored, "n_gt": {au: len(g[au]) for au in gt.aus},
            "n_pred": {au: len(p[au]) for au in gt.aus}, "sequences": len(seqs), "subset": subset}


def _prf(tp: int, n_pred: int, n_gt: int) -> dict:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gt if n_gt else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _macro(per: dict, aus: list[str]) -> dict:
    return {k: float(np.mean([per[au][k] for au in aus])) for k in ("precision", "recall", "f1")}


def event_f1(gt: GroundTruth, results: dict[str, list[dict]], *, score_thr: float = 0.5,
             tiou: float = 0.5, subset: str | None = None) -> dict:
    """Event-level F1: predictions with score >= ``score_thr`` are matched one-to-one to ground
    truth (greedy by score, highest tIoU >= ``tiou`` first, as for AP). Precision and recall are
    0 when their denominator is 0. Returns ``{"score_thr", "tiou", "per_au": {au: {"precision",
    "recall", "f1", "tp", "n_pred", "n_gt"}}, "macro": {...}, "aus": [labels in the macro]}``."""
    seqs = _sequences(gt, subset)
    g, p, scored = _collect(gt, results, seqs, score_thr)
    per = {}
    for au in gt.aus:
        tp = int(_match(g[au], p[au], np.array([float(tiou)])).sum()) if g[au] and p[au] else 0
        per[au] = {**_prf(tp, len(p[au]), len(g[au])), "tp": tp, "n_pred": len(p[au]), "n_gt": len(g[au])}
    return {"score_thr": score_thr, "tiou": tiou, "per_au": per, "macro": _macro(per, scored), "aus": scored}


def frame_f1(gt: GroundTruth, results: dict[str, list[dict]], *, score_thr: float = 0.5,
             subset: str | None = None) -> dict:
    """Frame-level F1: ground truth and the predictions with score >= ``score_thr`` are
    rasterised over frames 0..duration-1 of each sequence and counted per AU over all evaluated
    frames. Returns ``{"score_thr", "per_au": {au: {"precision", "recall", "f1", "tp", "fp",
    "fn"}}, "macro": {...}, "aus": [labels in the macro]}``."""
    seqs = _sequences(gt, subset)
    _, _, scored = _collect(gt, results, seqs, score_thr)
    C = len(gt.aus)
    tp, fp, fn = np.zeros(C, np.int64), np.zeros(C, np.int64), np.zeros(C, np.int64)
    for seq in seqs:
        frames = np.arange(gt.db[seq]["duration_frames"])
        y = rasterize(gt.db[seq]["events"], frames, gt.aus).astype(bool)
        preds = [ev for ev in results.get(seq, []) if ev["score"] >= score_thr]
        x = rasterize(preds, frames, gt.aus).astype(bool)
        tp += (x & y).sum(0)
        fp += (x & ~y).sum(0)
        fn += (~x & y).sum(0)
    per = {au: {**_prf(int(tp[c]), int(tp[c] + fp[c]), int(tp[c] + fn[c])), "tp": int(tp[c]),
                "fp": int(fp[c]), "fn": int(fn[c])} for c, au in enumerate(gt.aus)}
    return {"score_thr": score_thr, "per_au": per, "macro": _macro(per, scored), "aus": scored}
