"""Event metrics: the issue's hand-checked case, an independent brute-force AP, the oracle,
event F1 and frame F1."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlkit.auevents.formats import GroundTruth
from mlkit.auevents.metrics import (
    average_precision,
    evaluate,
    event_f1,
    frame_f1,
    interpolated_ap,
    segment_iou,
)
from mlkit.errors import InputError

TH = (0.1, 0.3, 0.5, 0.7)


def make_gt(events: dict, duration: int = 200, subsets: dict | None = None) -> GroundTruth:
    """events: {seq: [(label, s, e)]}."""
    db, labels = {}, set()
    for seq, evs in events.items():
        db[seq] = {"subset": (subsets or {}).get(seq, "test"), "duration_frames": duration, "fps": 25.0,
                   "events": [{"label": lab, "segment": [s, e]} for lab, s, e in evs]}
        labels |= {lab for lab, _, _ in evs}
    return GroundTruth(db, sorted(labels))


def make_results(preds: dict) -> dict:
    """preds: {seq: [(label, s, e, score)]}."""
    return {seq: [{"label": lab, "segment": [s, e], "score": sc} for lab, s, e, sc in ev]
            for seq, ev in preds.items()}


# --------------------------------------------------------------------------- the hand-checked case

def test_issue_hand_checked_case():
    """Ground truth a:[0,20],[50,90], b:[10,40]; predictions (b,[100,120],.95), (a,[1,19],.9),
    (a,[55,80],.8), (b,[12,38],.7) -> 0.75 / 0.75 / 0.3333 at tIoU .3/.5/.7.

    The numbers hold when a and b are two *sequences* (videos) of one label, which is how the
    ActivityNet call in the notes was set up. By hand, predictions in score order:
      .95 b[100,120]: no overlap with b[10,40]                         -> FP at every θ
      .90 a[1,19] vs a[0,20]: 18/20 = 0.90                            -> TP at every θ
      .80 a[55,80] vs a[50,90]: 25/40 = 0.625                          -> TP at .3/.5, FP at .7
      .70 b[12,38] vs b[10,40]: 26/30 = 0.867                          -> TP at every θ
    θ = .3/.5: recall 0, 1/3, 2/3, 1; precision 0, 1/2, 2/3, 3/4; precision made monotone from
      the right is 3/4 at every recall step -> AP = 3 * 1/3 * 3/4 = 0.75.
    θ = .7: recall 0, 1/3, 1/3, 2/3; precision 0, 1/2, 1/3, 1/2; monotone -> 1/2 at the steps
      to 1/3 and 2/3, 0 from 2/3 to 1 -> AP = 1/3 * 1/2 + 1/3 * 1/2 = 0.3333.
    """
    gt = make_gt({"a": [("AU12", 0, 20), ("AU12", 50, 90)], "b": [("AU12", 10, 40)]})
    res = make_results({"b": [("AU12", 100, 120, .95), ("AU12", 12, 38, .7)],
                        "a": [("AU12", 1, 19, .9), ("AU12", 55, 80, .8)]})
    rep = evaluate(gt, res, tious=(0.3, 0.5, 0.7))
    np.testing.assert_allclose(rep["map"], [0.75, 0.75, 1 / 3], atol=1e-12)
    np.testing.assert_allclose(rep["ap"]["AU12"], [0.75, 0.75, 1 / 3], atol=1e-12)
    assert rep["average_map"] == pytest.approx((0.75 + 0.75 + 1 / 3) / 3)
    assert rep["n_gt"] == {"AU12": 3} and rep["n_pred"] == {"AU12": 4} and rep["sequences"] == 2


def test_hand_case_read_as_two_labels():
    """The same numbers with a and b as two labels of one sequence: label a has TP, TP at .3/.5
    (AP 1) and TP, FP at .7 (AP 1/2); label b has FP then TP (precision 1/2 at recall 1: AP 1/2).
    Mean AP: 0.75 / 0.75 / 0.5."""
    gt = make_gt({"v": [("a", 0, 20), ("a", 50, 90), ("b", 10, 40)]})
    res = make_results({"v": [("b", 100, 120, .95), ("a", 1, 19, .9), ("a", 55, 80, .8), ("b", 12, 38, .7)]})
    rep = evaluate(gt, res, tious=(0.3, 0.5, 0.7))
    np.testing.assert_allclose(rep["ap"]["a"], [1, 1, 0.5])
    np.testing.assert_allclose(rep["ap"]["b"], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(rep["map"], [0.75, 0.75, 0.5])


# --------------------------------------------------------------------------- brute force

def brute_iou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / ((a[1] - a[0]) + (b[1] - b[0]) - inter)


def brute_ap(gts, preds, th):
    """From the definition, explicit loops. gts: [(seq, s, e)], preds: [(seq, s, e, score)]."""
    if not gts:
        return 0.0
    order = sorted(range(len(preds)), key=lambda i: -preds[i][3])   # Python's sort is stable
    used = set()
    tp = []
    for i in order:
        seq, s, e, _ = preds[i]
        best, best_iou = None, -1.0
        for j, (gs, a, b) in enumerate(gts):
            if gs != seq or j in used:
                continue
            iou = brute_iou((s, e), (a, b))
            if iou >= best_iou:          # ties: the later ground truth (ActivityNet's reversed argsort)
                best, best_iou = j, iou
        if best is not None and best_iou >= th:
            used.add(best)
            tp.append(1)
        else:
            tp.append(0)
    rec, prec = [], []
    for n in range(1, len(tp) + 1):
        rec.append(sum(tp[:n]) / len(gts))
        prec.append(sum(tp[:n]) / n)
    # area under the interpolated curve: at each point where recall rises, the best precision
    # reached at any recall >= that recall
    ap, last = 0.0, 0.0
    for n in range(len(tp)):
        if rec[n] > last:
            ap += (rec[n] - last) * max(p for p, r in zip(prec, rec, strict=True) if r >= rec[n])
            last = rec[n]
    return ap


def random_case(rng, integer=False):
    seqs = [f"s{i}" for i in range(int(rng.integers(1, 4)))]
    labels = ["AU1", "AU2", "AU12"][: int(rng.integers(1, 4))]
    gt_ev, pr_ev = {}, {}
    for seq in seqs:
        g, p = [], []
        for lab in labels:
            for _ in range(int(rng.integers(0, 5))):
                s = rng.uniform(0, 150)
                e = s + rng.uniform(1, 40)
                if integer:
                    s, e = int(s), int(e)
                g.append((lab, s, e))
                for _ in range(int(rng.integers(0, 3))):        # detections near the truth
                    j = rng.normal(0, 6, 2)
                    a, b = sorted((s + j[0], e + j[1]))
                    if b - a > 0.5:
                        p.append((lab, a, b))
            for _ in range(int(rng.integers(0, 4))):            # and false alarms
                a = rng.uniform(0, 180)
                p.append((lab, a, a + rng.uniform(1, 30)))
        gt_ev[seq] = g
        pr_ev[seq] = p
    n = sum(len(v) for v in pr_ev.values())
    scores = iter(rng.permutation(n) / max(n, 1) * 0.98 + 0.01)   # distinct scores
    preds = {seq: [(*x, float(next(scores))) for x in v] for seq, v in pr_ev.items()}
    return gt_ev, preds


def test_ap_equals_brute_force_on_random_cases():
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(200):
        gt_ev, preds = random_case(rng)
        if not any(gt_ev.values()):
            continue
        gt = make_gt(gt_ev, duration=400)
        preds = {k: [x for x in v if x[0] in gt.aus] for k, v in preds.items()}
        rep = evaluate(gt, make_results(preds), tious=TH)
        means = []
        for lab in gt.aus:
            g = [(seq, s, e) for seq, v in gt_ev.items() for la, s, e in v if la == lab]
            p = [(seq, s, e, sc) for seq, v in preds.items() for la, s, e, sc in v if la == lab]
            want = [brute_ap(g, p, th) for th in TH]
            np.testing.assert_allclose(rep["ap"][lab], want, atol=1e-9, rtol=0)
            means.append(want)
            checked += 1
        np.testing.assert_allclose(rep["map"], np.mean(means, axis=0), atol=1e-9, rtol=0)
    assert checked > 300


@given(st.integers(0, 2**32 - 1))
def test_ap_equals_brute_force_with_integer_segments(seed):
    """Integer segments make equal tIoUs common: the tie rule must agree too."""
    gt_ev, preds = random_case(np.random.default_rng(seed), integer=True)
    for lab in ["AU1", "AU2", "AU12"]:
        g = [(seq, s, e) for seq, v in gt_ev.items() for la, s, e in v if la == lab]
        p = [(seq, s, e, sc) for seq, v in preds.items() for la, s, e, sc in v if la == lab]
        got = average_precision(g, p, TH)
        np.testing.assert_allclose(got, [brute_ap(g, p, th) for th in TH], atol=1e-9, rtol=0)


def test_oracle_scores_one():
    rng = np.random.default_rng(3)
    for _ in range(20):
        gt_ev, _ = random_case(rng, integer=True)
        gt_ev = {k: v for k, v in gt_ev.items() if v}
        if not gt_ev:
            continue
        gt = make_gt(gt_ev, duration=400)
        oracle = {seq: [{**ev, "score": 1.0} for ev in entry["events"]] for seq, entry in gt.db.items()}
        rep = evaluate(gt, oracle)
        assert rep["map"] == [1.0] * 4 and rep["average_map"] == 1.0
        assert all(v == [1.0] * 4 for v in rep["ap"].values())
        assert event_f1(gt, oracle)["macro"]["f1"] == 1.0
        assert frame_f1(gt, oracle)["macro"]["f1"] == 1.0


def test_average_precision_edge_cases():
    assert average_precision([], [("s", 0, 1, 0.5)]).tolist() == [0, 0, 0, 0]     # no ground truth: 0
    assert average_precision([("s", 0, 1)], []).tolist() == [0, 0, 0, 0]
    assert average_precision([("s", 0, 10)], [("t", 0, 10, 0.9)]).tolist() == [0, 0, 0, 0]  # other sequence
    # a duplicate detection is a false positive: precision 1 at recall 1 comes first, AP stays 1
    assert average_precision([("s", 0, 10)], [("s", 0, 10, 0.9), ("s", 0, 10, 0.8)], 0.5).tolist() == [1.0]
    # ... but ranked above the true one it halves the precision
    assert average_precision([("s", 0, 10)], [("s", 50, 60, 0.9), ("s", 0, 10, 0.8)], 0.5).tolist() == [0.5]
    assert interpolated_ap(np.array([1.0, 0.5, 2 / 3]), np.array([0.5, 0.5, 1.0])) == pytest.approx(
        0.5 * 1 + 0.5 * 2 / 3)


def test_tie_rules():
    # a tIoU equal to the threshold counts: [0,5] vs [0,10] is exactly 0.5
    assert average_precision([("s", 0, 10)], [("s", 0, 5, 0.9)], (0.5, 0.51)).tolist() == [1.0, 0.0]
    # equal scores keep their input order (stable): the false alarm listed first ranks first
    assert average_precision([("s", 0, 10)], [("s", 50, 60, 0.5), ("s", 0, 10, 0.5)], 0.5).tolist() == [0.5]
    assert average_precision([("s", 0, 10)], [("s", 0, 10, 0.5), ("s", 50, 60, 0.5)], 0.5).tolist() == [1.0]
    # equal tIoUs go to the later ground truth: [0,10] overlaps [0,6] and [4,10] by 0.6 each and
    # takes [4,10]; then [4,10] finds only [0,6] (tIoU 0.2) -> TP, FP -> AP 1/2 (1 the other way)
    gt = [("s", 0, 6), ("s", 4, 10)]
    assert average_precision(gt, [("s", 0, 10, 0.9), ("s", 4, 10, 0.8)], 0.5).tolist() == [0.5]
    assert brute_ap(gt, [("s", 0, 10, 0.9), ("s", 4, 10, 0.8)], 0.5) == 0.5


def test_segment_iou():
    np.testing.assert_allclose(segment_iou([0, 10], [[0, 10], [5, 15], [10, 20], [2, 4], [-5, 20]]),
                               [1, 5 / 15, 0, 0.2, 10 / 25])


@given(st.floats(-50, 50), st.floats(0.1, 30), st.floats(-50, 50), st.floats(0.1, 30))
def test_segment_iou_symmetric_and_bounded(s1, d1, s2, d2):
    a, b = [s1, s1 + d1], [s2, s2 + d2]
    x, y = segment_iou(a, [b])[0], segment_iou(b, [a])[0]
    assert 0 <= x <= 1 and x == pytest.approx(y) and x == pytest.approx(brute_iou(a, b))


# --------------------------------------------------------------------------- event / frame F1

def test_event_f1_hand_case():
    gt = make_gt({"v": [("AU1", 0, 10), ("AU1", 20, 30), ("AU1", 40, 50), ("AU2", 0, 5)]})
    res = make_results({"v": [("AU1", 0, 9, 0.9),    # tIoU .9: TP
                              ("AU1", 1, 10, 0.8),   # same gt already taken: FP
                              ("AU1", 22, 30, 0.7),  # tIoU .8: TP
                              ("AU1", 40, 44, 0.6),  # tIoU .4 < .5: FP
                              ("AU1", 40, 50, 0.3),  # below the score threshold: ignored
                              ("AU2", 100, 110, 0.9)]})
    rep = event_f1(gt, res, score_thr=0.5, tiou=0.5)
    a1 = rep["per_au"]["AU1"]
    assert (a1["tp"], a1["n_pred"], a1["n_gt"]) == (2, 4, 3)
    assert a1["precision"] == 0.5 and a1["recall"] == pytest.approx(2 / 3)
    assert a1["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert rep["per_au"]["AU2"]["f1"] == 0.0
    assert rep["macro"]["f1"] == pytest.approx(a1["f1"] / 2)
    # a lower threshold brings the exact detection in
    assert event_f1(gt, res, score_thr=0.2)["per_au"]["AU1"]["tp"] == 3


def test_frame_f1_equals_counting():
    rng = np.random.default_rng(5)
    gt_ev, preds = random_case(rng, integer=True)
    gt_ev = {k: [(la, max(0, s), min(e, 200)) for la, s, e in v if s < 199] for k, v in gt_ev.items()}
    gt = make_gt(gt_ev, duration=200)
    preds = {k: [x for x in v if x[0] in gt.aus] for k, v in preds.items()}
    rep = frame_f1(gt, make_results(preds), score_thr=0.5)
    for lab in gt.aus:
        tp = fp = fn = 0
        for seq in gt_ev:
            for f in range(200):
                y = any(la == lab and s <= f < e for la, s, e in gt_ev[seq])
                x = any(la == lab and s <= f < e and sc >= 0.5 for la, s, e, sc in preds.get(seq, []))
                tp += x and y
                fp += x and not y
                fn += y and not x
        got = rep["per_au"][lab]
        assert (got["tp"], got["fp"], got["fn"]) == (tp, fp, fn)
        assert got["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn) if tp else 0.0)


# --------------------------------------------------------------------------- bad input

def test_evaluate_refuses_bad_results():
    gt = make_gt({"a": [("AU1", 0, 10)], "b": [("AU2", 5, 9)]}, subsets={"b": "train"})
    cases = [({"c": [{"label": "AU1", "segment": [0, 1], "score": .5}]}, "sequence 'c' is not in the ground truth"),
             ({"a": [{"label": "AU9", "segment": [0, 1], "score": .5}]}, "unknown label"),
             ({"a": [{"label": "AU1", "segment": [0, 1], "score": 1.5}]}, "bad score"),
             ({"a": [{"label": "AU1", "segment": [0, 1], "score": float("nan")}]}, "bad score"),
             ({"a": [{"label": "AU1", "segment": [3, 1], "score": .5}]}, "bad segment")]
    for res, pat in cases:
        for fn in (evaluate, event_f1, frame_f1):
            with pytest.raises(InputError, match=pat) as e:
                fn(gt, res)
            assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="subset"):
        evaluate(gt, {}, subset="validation")
    with pytest.raises(InputError, match="tIoU"):
        evaluate(gt, {}, tious=(0.5, 1.5))


def test_subset_and_labels_without_ground_truth():
    gt = make_gt({"a": [("AU1", 0, 10)], "b": [("AU2", 5, 9)]}, subsets={"b": "train"})
    res = make_results({"a": [("AU1", 0, 10, .9), ("AU2", 0, 3, .95)], "b": [("AU2", 5, 9, .9)]})
    rep = evaluate(gt, res, subset="test")
    # only sequence a: AU2 has no ground truth there, so it is reported (AP 0) but left out of the mean
    assert rep["aus"] == ["AU1"] and rep["ap"]["AU2"] == [0.0] * 4 and rep["map"] == [1.0] * 4
    assert rep["sequences"] == 1 and rep["n_pred"] == {"AU1": 1, "AU2": 1} and rep["n_gt"]["AU2"] == 0
    # both sequences: a's AU2 detection is a false positive ranked above b's true one -> AP 1/2
    rep = evaluate(gt, res)
    assert rep["aus"] == ["AU1", "AU2"] and rep["ap"]["AU2"] == [0.5] * 4 and rep["map"] == [0.75] * 4
    assert event_f1(gt, res, subset="test")["aus"] == ["AU1"]
