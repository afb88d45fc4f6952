"""Frames <-> events: runs, median filter, merge gap, minimum duration, round trips."""

import numpy as np
import pytest
import scipy.ndimage
from hypothesis import given
from hypothesis import strategies as st

from mlkit.auevents.events import from_frame_labels, from_frames, median_filter, rasterize, runs
from mlkit.auevents.formats import FrameLabels
from mlkit.errors import InputError


def brute_runs(on, frames, coded):
    """Loop definition: a run continues while on, coded and the next frame number is +1."""
    out, start = [], None
    for i in range(len(on)):
        x = bool(on[i]) and bool(coded[i])
        if x and start is not None and frames[i] != frames[i - 1] + 1:
            out.append((start, frames[i - 1] + 1))
            start = None
        if x and start is None:
            start = frames[i]
        if not x and start is not None:
            out.append((start, frames[i - 1] + 1))
            start = None
    if start is not None:
        out.append((start, frames[-1] + 1))
    return out


def test_runs_hand_cases():
    on = np.array([0, 1, 1, 0, 1, 1, 1, 1, 0, 1], bool)
    assert runs(on) == [(1, 3), (4, 8), (9, 10)]
    frames = np.array([10, 11, 12, 13, 14, 15, 20, 21, 22, 23])
    assert runs(on, frames) == [(11, 13), (14, 16), (20, 22), (23, 24)]      # the 15 -> 20 jump cuts
    coded = np.ones(10, bool)
    coded[5] = False                                                           # a 9 at index 5
    assert runs(on, frames, coded=coded) == [(11, 13), (14, 15), (20, 22), (23, 24)]
    assert runs(np.zeros(0, bool)) == []
    assert runs(np.ones(1, bool), np.array([7])) == [(7, 8)]                   # one frame, length 1


@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(1, 3)), max_size=40))
def test_runs_equal_brute_force(cells):
    on = np.array([c[0] for c in cells], bool)
    coded = np.array([c[1] or c[2] == 2 for c in cells], bool)
    frames = np.cumsum([c[2] for c in cells]).astype(np.int64) if cells else np.zeros(0, np.int64)
    assert runs(on, frames, coded=coded) == brute_runs(on, frames, coded)


def test_runs_refuses_bad_input():
    with pytest.raises(InputError, match="1-D"):
        runs(np.ones((2, 2), bool))
    with pytest.raises(InputError, match="strictly increasing"):
        runs(np.ones(3, bool), np.array([0, 2, 2]))
    with pytest.raises(InputError, match="coded mask"):
        runs(np.ones(3, bool), coded=np.ones(2, bool))


def test_median_filter_hand_case_and_identity():
    x = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 0], float)
    np.testing.assert_array_equal(median_filter(x, 1), x)
    # reflection at the edges: (1) 1 0 1 ... -> median(1, 1, 0) = 1; ... 1 0 (0) -> median(1, 0, 0) = 0
    np.testing.assert_array_equal(median_filter(x, 3), [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    with pytest.raises(InputError, match="odd"):
        median_filter(x, 4)
    with pytest.raises(InputError, match="odd"):
        median_filter(x, 0)


def brute_median(x, k):
    """Median of the k samples around each index, indices reflected about the edges with the
    edge sample repeated (period 2T: d c b a | a b c d | d c b a)."""
    T, h = len(x), k // 2
    out = []
    for i in range(T):
        idx = [(j % (2 * T)) for j in range(i - h, i + h + 1)]
        out.append(np.median([x[j if j < T else 2 * T - 1 - j] for j in idx]))
    return np.array(out)


@pytest.mark.parametrize("k", [3, 5, 9, 25])
def test_median_filter_equals_reflection_brute_force_and_scipy(k):
    rng = np.random.default_rng(k)
    for T in (1, 2, 7, 13, 60):
        x = rng.random((T, 3))
        got = median_filter(x, k)
        for c in range(3):
            np.testing.assert_array_equal(got[:, c], brute_median(x[:, c], k))
        np.testing.assert_array_equal(median_filter(x[:, 0], k), got[:, 0])
        if k // 2 < T:  # scipy reads garbage when the window is far longer than the input (1.17)
            np.testing.assert_array_equal(got, scipy.ndimage.median_filter(x, size=(k, 1), mode="reflect"))


AUS = ["AU1", "AU12"]


def _events(ev):
    return [(e["label"], *e["segment"]) for e in ev]


def test_from_frames_min_dur_merge_gap_and_scores():
    #        0  1  2  3  4  5  6  7  8  9 10 11 12 13 14
    p = np.array([.9, .8, .1, .7, .6, .2, .2, .2, .9, .1, .1, .1, .1, .6, .7])
    v = np.stack([p, np.zeros(15)], 1)
    ev = from_frames(v, None, AUS)
    assert _events(ev) == [("AU1", 0, 2), ("AU1", 3, 5), ("AU1", 8, 9), ("AU1", 13, 15)]
    assert ev[0]["score"] == pytest.approx(0.85) and ev[2]["score"] == pytest.approx(0.9)
    # min_dur drops runs shorter than 2 frames
    assert _events(from_frames(v, None, AUS, min_dur=2)) == [("AU1", 0, 2), ("AU1", 3, 5), ("AU1", 13, 15)]
    # merge_gap 1 joins [0,2) and [3,5) (one off frame between); gap 3 (5..7) is not merged
    ev = from_frames(v, None, AUS, merge_gap=1)
    assert _events(ev) == [("AU1", 0, 5), ("AU1", 8, 9), ("AU1", 13, 15)]
    assert ev[0]["score"] == pytest.approx(np.mean(p[0:5]))                   # the gap frame counts
    assert _events(from_frames(v, None, AUS, merge_gap=3)) == [("AU1", 0, 9), ("AU1", 13, 15)]
    # merging happens before the minimum duration is applied
    assert _events(from_frames(v, None, AUS, merge_gap=3, min_dur=10)) == []
    assert _events(from_frames(v, None, AUS, merge_gap=4, min_dur=10)) == [("AU1", 0, 15)]
    # threshold: strictly greater than
    assert _events(from_frames(v, None, AUS, thr=0.8)) == [("AU1", 0, 1), ("AU1", 8, 9)]


def test_from_frames_median_removes_flicker():
    lab = np.array([0, 1, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 0], float)[:, None]
    assert _events(from_frames(lab, None, ["AU6"])) == [
        ("AU6", 1, 2), ("AU6", 4, 6), ("AU6", 7, 10), ("AU6", 12, 13)]
    ev = from_frames(lab, None, ["AU6"], median=3)
    assert _events(ev) == [("AU6", 4, 10)]
    assert ev[0]["score"] == pytest.approx(5 / 6)                              # mean of the raw labels


def test_merge_and_median_stop_at_jumps_and_not_coded_frames():
    lab = np.array([1, 1, 0, 1, 1, 0, 1, 1], float)[:, None]
    frames = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    assert _events(from_frames(lab, frames, ["AU1"], merge_gap=1)) == [("AU1", 0, 8)]
    # the same labels with a 9 at index 2: no merge across it
    coded = np.ones_like(lab, bool)
    coded[2] = False
    assert _events(from_frames(lab, frames, ["AU1"], merge_gap=1, coded=coded)) == [("AU1", 0, 2), ("AU1", 3, 8)]
    # a frame jump instead of the off frame at index 5: frames 0..4, 10..12
    lab2 = np.array([1, 1, 0, 1, 1, 1, 1, 1], float)[:, None]
    frames2 = np.array([0, 1, 2, 3, 4, 10, 11, 12])
    assert _events(from_frames(lab2, frames2, ["AU1"], merge_gap=5)) == [("AU1", 0, 5), ("AU1", 10, 13)]
    # the median never mixes the stretches on either side of a jump: filtered as one array the
    # 0 at frame 3 would become 1 and the 1 at frame 50 would become 0
    lab3 = np.array([1, 1, 1, 0, 1, 0, 0, 0], float)[:, None]
    frames3 = np.array([0, 1, 2, 3, 50, 51, 52, 53])
    assert _events(from_frames(lab3, frames3, ["AU1"], median=3)) == [("AU1", 0, 3), ("AU1", 50, 51)]
    assert _events(from_frames(lab3, None, ["AU1"], median=3)) == [("AU1", 0, 4)]
    # values at not-coded cells (9) are ignored entirely
    lab4 = np.array([1, 9, 1], float)[:, None]
    assert _events(from_frames(lab4, None, ["AU1"], coded=lab4 != 9)) == [("AU1", 0, 1), ("AU1", 2, 3)]


def test_from_frames_refuses_bad_input():
    v = np.zeros((5, 2))
    for kw, pat in [({"median": 2}, "median width"), ({"min_dur": 0}, "minimum duration"),
                    ({"merge_gap": -1}, "merge gap"), ({"thr": float("nan")}, "threshold")]:
        with pytest.raises(InputError, match=pat) as e:
            from_frames(v, None, AUS, **kw)
        assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="wrong shape"):
        from_frames(v, None, ["AU1"])
    bad = v.copy()
    bad[2, 1] = np.nan
    with pytest.raises(InputError, match="not finite.*frame 2, AU12"):
        from_frames(bad, None, AUS)
    with pytest.raises(InputError, match="strictly increasing"):
        from_frames(v, np.array([0, 1, 3, 3, 4]), AUS)


def random_events(rng, T, aus, touching=False):
    """Non-overlapping events per AU with at least one frame between them (0 if touching)."""
    out = []
    for au in aus:
        t = int(rng.integers(0, 5))
        while True:
            d = int(rng.integers(1, 12))
            if t + d > T:
                break
            out.append({"label": au, "segment": [t, t + d], "score": 1.0})
            t += d + (0 if touching and rng.random() < 0.5 else int(rng.integers(1, 8)))
    return out


def test_events_frames_events_round_trip_exact():
    rng = np.random.default_rng(0)
    aus = ["AU1", "AU2", "AU12", "AU17"]
    for _ in range(200):
        T = int(rng.integers(1, 120))
        first = int(rng.integers(0, 1000))
        ev = random_events(rng, T, aus)
        for e in ev:
            e["segment"] = [e["segment"][0] + first, e["segment"][1] + first]
        frames = np.arange(first, first + T)
        lab = rasterize(ev, frames, aus)
        assert lab.dtype == np.uint8 and lab.shape == (T, len(aus))
        assert from_frames(lab, frames, aus) == ev


def test_touching_events_merge_and_jumps_split():
    ev = [{"label": "AU1", "segment": [2, 5], "score": 1.0}, {"label": "AU1", "segment": [5, 9], "score": 1.0}]
    frames = np.arange(12)
    assert _events(from_frames(rasterize(ev, frames, ["AU1"]), frames, ["AU1"])) == [("AU1", 2, 9)]
    frames = np.array([0, 1, 2, 3, 4, 7, 8, 9, 10])          # frames 5 and 6 missing
    assert _events(from_frames(rasterize(ev, frames, ["AU1"]), frames, ["AU1"])) == [
        ("AU1", 2, 5), ("AU1", 7, 9)]


def test_round_trip_with_jumps_and_not_coded_frames():
    """labels (0/1/9, with frame jumps) -> events -> frames reproduces every coded 1, and
    events -> frames -> events is then exact (no event spans a jump or a 9)."""
    rng = np.random.default_rng(1)
    aus = ["AU4", "AU6", "AU7"]
    for _ in range(200):
        T = int(rng.integers(1, 150))
        frames = np.cumsum(rng.choice([1, 1, 1, 1, 1, 1, 2, 5], size=T)) + int(rng.integers(0, 50))
        # sticky labels so runs are long enough to matter
        lab = (np.cumsum(rng.random((T, 3)) < 0.15, axis=0) % 2).astype(float)
        coded = rng.random((T, 3)) > 0.05
        vals = np.where(coded, lab, 9.0)
        ev = from_frames(vals, frames, aus, coded=coded)
        back = rasterize(ev, frames, aus)
        np.testing.assert_array_equal(back, (lab == 1) & coded)
        for e in ev:
            s, t = e["segment"]
            idx = np.flatnonzero((frames >= s) & (frames < t))
            c = aus.index(e["label"])
            assert frames[idx[-1]] - frames[idx[0]] == len(idx) - 1 and coded[idx, c].all()
            assert e["score"] == 1.0
        assert from_frames(back, frames, aus) == ev
        # and the brute-force run definition agrees column by column
        for c, au in enumerate(aus):
            want = brute_runs(lab[:, c] == 1, frames, coded[:, c])
            assert [tuple(e["segment"]) for e in ev if e["label"] == au] == want


def test_rasterize_fractional_unknown_and_bad_segments():
    frames = np.arange(10)
    lab = rasterize([{"label": "AU1", "segment": [1.5, 4.0]}, {"label": "AU1", "segment": [3, 4.2]}],
                    frames, ["AU1"])
    np.testing.assert_array_equal(lab[:, 0], [0, 0, 1, 1, 1, 0, 0, 0, 0, 0])   # 2, 3 and 4 (< 4.2)
    assert rasterize([{"label": "AU1", "segment": [20, 30]}], frames, ["AU1"]).sum() == 0
    with pytest.raises(InputError, match="unknown label.*'AU99'") as e:
        rasterize([{"label": "AU99", "segment": [0, 1]}], frames, ["AU1"])
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="bad segment"):
        rasterize([{"label": "AU1", "segment": [3, 3]}], frames, ["AU1"])
    with pytest.raises(InputError, match="bad segment"):
        rasterize([{"label": "AU1", "segment": [3]}], frames, ["AU1"])


def test_from_frame_labels_runs_every_sequence():
    fl = {"s1": FrameLabels(np.arange(4), np.array([[0, 1], [1, 1], [1, 0], [0, 0]], float),
                            np.ones((4, 2), bool), ["AU1", "AU2"]),
          "s2": FrameLabels(np.array([5, 6]), np.array([[1, 0], [1, 0]], float),
                            np.ones((2, 2), bool), ["AU1", "AU2"])}
    out = from_frame_labels(fl, min_dur=2)
    assert {k: _events(v) for k, v in out.items()} == {
        "s1": [("AU1", 1, 3), ("AU2", 0, 2)], "s2": [("AU1", 5, 7)]}
