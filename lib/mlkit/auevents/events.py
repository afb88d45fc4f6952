"""Frames <-> events (paper notes §4).

An event is a maximal run of "on" frames of one AU within one sequence, stored as the half-open
frame segment [s, e): ``s`` is the first frame of the run and ``e`` the last frame + 1, so a
one-frame event has length 1. Two things break a run: a jump in the frame numbers
(``frames[i+1] != frames[i] + 1``) and a frame that is not coded (BP4D label 9).

``from_frames`` is also the post-processing baseline: median filter -> threshold -> runs -> merge
short gaps -> drop short runs. ``rasterize`` goes back to frames. Round trip: for events of one AU
that do not overlap and are separated by at least one frame, inside the frame range and not
spanning a frame jump, ``from_frames(rasterize(events))`` gives them back exactly (score 1.0).
Events that touch (``e == s'``) come back merged into one, an event that spans a jump comes back
split at the jump, and overlapping events of one AU come back as their union.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mlkit.errors import InputError

__all__ = ["runs", "median_filter", "from_frames", "from_frame_labels", "rasterize"]


# --------------------------------------------------------------------------- checks


def _check_frames(frames, T: int) -> np.ndarray:
    if frames is None:
        return np.arange(T, dtype=np.int64)
    fr = np.asarray(frames)
    if fr.ndim != 1 or fr.shape[0] != T:
        raise InputError("frame numbers: wrong shape", expected=f"({T},)", got=str(fr.shape))
    if fr.dtype.kind not in "iu":
        if fr.dtype.kind != "f" or not np.all(np.isfinite(fr)) or np.any(fr != np.round(fr)):
            raise InputError("frame numbers: not integers", expected="integer frame numbers",
                             got=str(fr.dtype))
    fr = fr.astype(np.int64)
    if T > 1 and np.any(np.diff(fr) <= 0):
        i = int(np.argmax(np.diff(fr) <= 0))
        raise InputError("frame numbers: not strictly increasing", expected="sorted, unique frames",
                         got=f"{fr[i]} then {fr[i + 1]} at rows {i}, {i + 1}")
    return fr


def _check_int(name: str, v, lo: int, odd: bool = False) -> int:
    try:
        ok = not isinstance(v, bool) and float(v).is_integer() and int(v) >= lo
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or (odd and int(v) % 2 == 0):
        raise InputError(f"{name}: bad value",
                         expected=f"an {'odd ' if odd else ''}integer >= {lo}", got=repr(v))
    return int(v)


# --------------------------------------------------------------------------- runs


def _index_runs(on: np.ndarray, jump: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximal runs of True as index pairs [i0, i1); ``jump[i]`` (length T-1) cuts i | i+1."""
    T = on.shape[0]
    if T == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cont = on[:-1] & on[1:] & ~jump                      # (T-1,) run continues from i to i+1
    first = on.copy()
    first[1:] &= ~cont
    last = on.copy()
    last[:-1] &= ~cont
    return np.flatnonzero(first), np.flatnonzero(last) + 1


def runs(on: np.ndarray, frames: np.ndarray | None = None, *,
         coded: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Maximal runs of True in a 1-D boolean array as half-open frame segments [s, e).

    ``frames`` (T,) are the frame numbers (default 0..T-1, strictly increasing); a jump
    (``frames[i+1] != frames[i] + 1``) ends a run. ``coded`` (T,) marks coded frames; a not-coded
    frame is never on, so it breaks a run too. ``e`` is the last frame of the run + 1.
    """
    x = np.asarray(on)
    if x.ndim != 1:
        raise InputError("runs: wrong shape", expected="a 1-D array", got=str(x.shape))
    x = x.astype(bool)
    fr = _check_frames(frames, x.shape[0])
    if coded is not None:
        c = np.asarray(coded, dtype=bool)
        if c.shape != x.shape:
            raise InputError("runs: coded mask has the wrong shape", expected=str(x.shape), got=str(c.shape))
        x = x & c
    i0, i1 = _index_runs(x, np.diff(fr) != 1)
    return [(int(fr[a]), int(fr[b - 1]) + 1) for a, b in zip(i0, i1, strict=True)]


# --------------------------------------------------------------------------- median filter


def median_filter(p: np.ndarray, k: int) -> np.ndarray:
    """Running median of odd width ``k`` along axis 0, each column on its own.

    Edges are handled by **reflection** about the edge, repeating the edge sample
    (``d c b a | a b c d | d c b a``; numpy's ``pad(mode="symmetric")``, the same as
    ``scipy.ndimage.median_filter(mode="reflect")``), so every output is the median of exactly
    ``k`` values, and binary input stays binary. ``k = 1`` is the identity. Returns float64.
    """
    k = _check_int("median width", k, 1, odd=True)
    a = np.asarray(p, dtype=np.float64)
    if a.ndim not in (1, 2):
        raise InputError("median filter: wrong shape", expected="(T,) or (T, C)", got=str(a.shape))
    if k == 1 or a.shape[0] == 0:
        return a.copy()
    h = k // 2
    cols = a.reshape(a.shape[0], -1)
    out = np.empty_like(cols)
    for c in range(cols.shape[1]):                       # one column at a time bounds memory to T*k
        padded = np.pad(cols[:, c], h, mode="symmetric")
        win = np.lib.stride_tricks.sliding_window_view(padded, k)   # (T, k)
        out[:, c] = np.median(win, axis=1)
    return out.reshape(a.shape)


# --------------------------------------------------------------------------- frames -> events


def from_frames(values: np.ndarray, frames: np.ndarray | None, aus: list[str], *, thr: float = 0.5,
                median: int = 1, min_dur: int = 1, merge_gap: int = 0,
                coded: np.ndarray | None = None) -> list[dict]:
    """Events of one sequence from per-frame labels or probabilities.

    ``values`` (T, C) (labels 0/1 or probabilities), ``frames`` (T,) frame numbers (None: 0..T-1),
    ``aus`` the C column labels, ``coded`` (T, C) bool (None: all coded; values at not-coded
    cells are ignored). Per AU: median filter of width ``median`` (applied within each stretch of
    consecutive coded frames, never across a jump or a not-coded frame) -> on = value > ``thr``
    -> maximal runs -> runs separated by at most ``merge_gap`` off frames are merged (only when
    every frame between them is present and coded) -> runs shorter than ``min_dur`` frames are
    dropped. Each event is ``{"label", "segment": [s, e], "score"}``, score = mean of the
    unfiltered values over [s, e) (merged gaps included), clipped to [0, 1]. Events are ordered by
    the column order of ``aus``, then by start.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != len(aus):
        raise InputError("frame values: wrong shape", expected=f"(T, {len(aus)}) for {len(aus)} AUs",
                         got=str(v.shape))
    T = v.shape[0]
    fr = _check_frames(frames, T)
    if coded is None:
        cod = np.ones(v.shape, dtype=bool)
    else:
        cod = np.asarray(coded, dtype=bool)
        if cod.shape != v.shape:
            raise InputError("coded mask: wrong shape", expected=str(v.shape), got=str(cod.shape))
    bad = cod & ~np.isfinite(v)
    if bad.any():
        i, c = np.argwhere(bad)[0]
        raise InputError("frame values: not finite", expected="finite numbers",
                         got=f"{v[i, c]} at frame {fr[i]}, {aus[c]}")
    if not np.isfinite(thr):
        raise InputError("threshold: not finite", got=repr(thr))
    median = _check_int("median width", median, 1, odd=True)
    min_dur = _check_int("minimum duration", min_dur, 1)
    merge_gap = _check_int("merge gap", merge_gap, 0)

    jump = np.diff(fr) != 1                               # (T-1,)
    events: list[dict] = []
    for c, au in enumerate(aus):
        cc = cod[:, c]
        vc = np.where(cc, v[:, c], 0.0)
        f = vc
        if median > 1:
            f = vc.copy()
            for a, b in zip(*_index_runs(cc, jump), strict=True):
                f[a:b] = median_filter(vc[a:b], median)
        i0, i1 = _index_runs((f > thr) & cc, jump)
        if merge_gap > 0 and len(i0) > 1:
            cut = jump | ~cc[:-1] | ~cc[1:]                # a stretch of present, coded frames ends
            block = np.concatenate([[0], np.cumsum(cut)])  # (T,) stretch id
            same = block[i1[:-1] - 1] == block[i0[1:]]
            merge = same & ((i0[1:] - i1[:-1]) <= merge_gap)   # within a stretch, index gap = frame gap
            keep_start = np.concatenate([[True], ~merge])
            keep_end = np.concatenate([~merge, [True]])
            i0, i1 = i0[keep_start], i1[keep_end]
        dur = fr[i1 - 1] + 1 - fr[i0]                      # no jumps inside a run: = i1 - i0
        long = dur >= min_dur
        i0, i1 = i0[long], i1[long]
        cs = np.concatenate([[0.0], np.cumsum(vc)])
        score = np.clip((cs[i1] - cs[i0]) / (i1 - i0), 0.0, 1.0)
        for a, b, s in zip(i0, i1, score, strict=True):
            events.append({"label": au, "segment": [int(fr[a]), int(fr[b - 1]) + 1], "score": float(s)})
    return events


def from_frame_labels(labels: Mapping, **kw) -> dict[str, list[dict]]:
    """``from_frames`` over every sequence of ``formats.read_frame_labels`` output
    (``{seq: FrameLabels}``); keyword options as for ``from_frames``. Returns ``{seq: events}``."""
    return {seq: from_frames(fl.values, fl.frames, list(fl.aus), coded=fl.coded, **kw)
            for seq, fl in labels.items()}


# --------------------------------------------------------------------------- events -> frames


def rasterize(events: Sequence[dict], frames: np.ndarray, aus: list[str]) -> np.ndarray:
    """(T, C) uint8: 1 at frame ``f`` of AU column ``c`` when an event of that AU has s <= f < e.

    ``frames`` must be strictly increasing; segments may be fractional (continuous [s, e));
    overlapping events are united. An event whose label is not in ``aus`` raises InputError.
    """
    fr = np.asarray(frames)
    if fr.ndim != 1:
        raise InputError("frame numbers: wrong shape", expected="(T,)", got=str(fr.shape))
    fr = _check_frames(fr, fr.shape[0])
    col = {au: i for i, au in enumerate(aus)}
    out = np.zeros((fr.shape[0], len(aus)), dtype=np.uint8)
    for n, ev in enumerate(events):
        label = ev.get("label")
        if label not in col:
            raise InputError(f"event {n}: unknown label", expected="one of " + ", ".join(map(str, aus)),
                             got=repr(label))
        seg = ev.get("segment")
        try:
            s, e = (float(x) for x in seg)
        except (TypeError, ValueError) as exc:
            raise InputError(f"event {n} ({label}): bad segment", expected="[start, end]",
                             got=repr(seg)) from exc
        if not (np.isfinite(s) and np.isfinite(e)) or e <= s:
            raise InputError(f"event {n} ({label}): bad segment", expected="finite start < end",
                             got=repr(seg))
        a, b = np.searchsorted(fr, [s, e], side="left")  # first frame >= s, first frame >= e
        out[a:b, col[label]] = 1
    return out
