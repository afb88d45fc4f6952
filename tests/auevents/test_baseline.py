"""Frame-level logistic baseline and post-processing tuned on training subjects."""

import itertools

import numpy as np
import pytest

from mlkit.auevents import baseline as B
from mlkit.auevents import events, metrics, synth
from mlkit.errors import InputError, NotFittedError

SMALL_GRID = {"thr": (0.3, 0.5), "median": (1, 9), "min_dur": (1, 5), "merge_gap": (0, 8)}


@pytest.fixture(scope="module")
def setup():
    """A reduced benchmark: data, ground truth, test probabilities, out-of-fold train probabilities."""
    d = synth.make(n_seqs=40, n_subjects=10, test_subjects=3, seed=4)
    gt = d.ground_truth()
    train = d.seqs("train")
    model = B.LogisticFrames().fit([d.feats[s] for s in train], [d.labels[s] for s in train])
    return d, gt, B.frame_probs(d, model, d.seqs("test")), B.oof_probs(d, folds=3)


# --------------------------------------------------------------------------- logistic model


def _toy(rng, n=400, D=5, C=3):
    X = rng.standard_normal((n, D)) * rng.uniform(0.5, 3, D) + rng.uniform(-2, 2, D)
    Y = (X @ rng.standard_normal((D, C)) + rng.standard_normal((n, C)) > 0.3).astype(np.uint8)
    return X, Y


def test_logistic_matches_sklearn():
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, Y = _toy(np.random.default_rng(0))
    l2 = 0.01
    m = B.LogisticFrames(l2=l2).fit([X[:250], X[250:]], [Y[:250], Y[250:]])
    Z = (X - X.mean(0)) / X.std(0)
    P = m.predict_proba(X)
    for c in range(Y.shape[1]):
        # sklearn minimises ½‖w‖² + C·Σ loss (intercept unpenalised with lbfgs): C = 1 / (l2·n)
        ref = linear_model.LogisticRegression(C=1 / (l2 * len(X)), tol=1e-10, max_iter=10000).fit(Z, Y[:, c])
        assert np.allclose(m.coef_[:, c], ref.coef_[0], atol=1e-4)
        assert np.allclose(P[:, c], ref.predict_proba(Z)[:, 1], atol=1e-5)


def test_logistic_ignores_not_coded_frames():
    X, Y = _toy(np.random.default_rng(1))
    Y9 = Y.copy()
    Y9[:50, 1] = 9
    # with l2 = 0 the fit is invariant to the standardisation (all frames vs frames 50..), so AU
    # column 1 fitted with frames :50 not coded equals a fit on frames 50.. alone
    a = B.LogisticFrames(l2=0.0).fit([X], [Y9]).predict_proba(X)
    b = B.LogisticFrames(l2=0.0).fit([X[50:]], [Y[50:]]).predict_proba(X)
    full = B.LogisticFrames(l2=0.0).fit([X], [Y]).predict_proba(X)
    assert np.allclose(a[:, 1], b[:, 1], atol=1e-4)
    assert np.allclose(a[:, [0, 2]], full[:, [0, 2]], atol=1e-6)
    assert not np.allclose(a[:, 1], full[:, 1], atol=1e-3)


def test_logistic_is_deterministic_and_validates():
    X, Y = _toy(np.random.default_rng(2))
    p1 = B.LogisticFrames().fit([X], [Y]).predict_proba(X)
    p2 = B.LogisticFrames().fit([X], [Y]).predict_proba(X)
    assert np.array_equal(p1, p2) and p1.shape == (len(X), 3) and ((p1 > 0) & (p1 < 1)).all()
    with pytest.raises(NotFittedError):
        B.LogisticFrames().predict_proba(X)
    m = B.LogisticFrames().fit([X], [Y])
    with pytest.raises(InputError):
        m.predict_proba(X[:, :4])
    for feats, labels in [([], []), ([X], [Y, Y]), ([X], [Y[:10]]), ([X], [Y * 2]), ([X[:, 0]], [Y]),
                          ([np.where(X > 2, np.nan, X)], [Y])]:
        with pytest.raises(InputError):
            B.LogisticFrames().fit(feats, labels)
    with pytest.raises(InputError):
        B.LogisticFrames(l2=-1.0)


def test_oof_probs_hold_out_whole_subjects(setup):
    d, _, _, oof = setup
    train = d.seqs("train")
    assert sorted(oof) == train  # no test sequence
    folds = B.subject_folds([d.subject[s] for s in train], 3)
    held = folds[1]
    fit = [s for s in train if d.subject[s] not in held]
    m = B.LogisticFrames().fit([d.feats[s] for s in fit], [d.labels[s] for s in fit])
    for s in train:
        if d.subject[s] in held:
            assert np.allclose(oof[s], m.predict_proba(d.feats[s]))
    with pytest.raises(InputError):
        B.subject_folds(["a", "b"], 3)


# --------------------------------------------------------------------------- fast paths


def test_fast_events_equal_from_frames():
    rng = np.random.default_rng(3)
    aus = [f"AU{i}" for i in range(4)]
    for _ in range(60):
        T = int(rng.integers(1, 70))
        v = np.clip(rng.random((T, 4)) * 1.2 - 0.1 + 0.3 * np.sin(np.arange(T)[:, None] / rng.uniform(1, 8)), 0, 1)
        cs = np.concatenate([np.zeros((4, 1)), np.cumsum(v.T, axis=1)], axis=1)
        for k, thr, md, gap in itertools.product((1, 5), (0.3, 0.6), (1, 4), (0, 2, 6)):
            ref = events.from_frames(v, None, aus, thr=thr, median=k, min_dur=md, merge_gap=gap)
            c, s, e, sc = B._fast_events(events.median_filter(v, k).T, cs, thr, md, gap)
            got = [{"label": aus[a], "segment": [int(x), int(y)], "score": float(z)}
                   for a, x, y, z in zip(c, s, e, sc, strict=True)]
            assert [(r["label"], r["segment"]) for r in ref] == [(g["label"], g["segment"]) for g in got]
            assert np.allclose([r["score"] for r in ref], [g["score"] for g in got], atol=1e-12)


def test_fast_ap_equals_metrics_average_precision():
    rng = np.random.default_rng(4)
    tious = (0.1, 0.3, 0.5, 0.7)
    for _ in range(150):
        cuts = np.sort(rng.choice(np.arange(1, 300), size=2 * int(rng.integers(1, 8)), replace=False))
        g = cuts.reshape(-1, 2).astype(float)  # sorted, disjoint ground truth
        n = int(rng.integers(1, 25))
        ps = rng.uniform(0, 290, n).round()
        pe = ps + rng.integers(1, 60, n)
        sc = rng.choice([0.2, 0.5, 0.9], n) if rng.random() < 0.5 else rng.random(n)  # with ties
        near = rng.random(n) < 0.5  # some predictions jitter around a ground-truth event
        j = rng.integers(0, len(g), n)
        ps = np.where(near, g[j, 0] + rng.integers(-5, 6, n), ps)
        pe = np.where(near, np.maximum(g[j, 1] + rng.integers(-5, 6, n), ps + 1), pe)
        ref = metrics.average_precision([(0, a, b) for a, b in g], list(zip([0] * n, ps, pe, sc, strict=True)),
                                        tious)
        got = B._fast_ap(g[:, 0], g[:, 1], ps.astype(float), pe.astype(float), sc, tious)
        assert np.allclose(got, ref, atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- tuning and results


def test_tune_equals_brute_force_over_the_grid(setup):
    d, gt, _, oof = setup
    tuned = B.tune_postproc(oof, gt, grid=SMALL_GRID)
    best, arg = -1.0, None
    for thr, k, md, gap in itertools.product(*SMALL_GRID.values()):
        params = {"thr": thr, "median": k, "min_dur": md, "merge_gap": gap}
        m = metrics.evaluate(gt, B.postproc_results(oof, None, d.aus, params), tious=(0.5,),
                             subset="train")["map"][0]
        if m > best + 1e-12:
            best, arg = m, params
    assert tuned["score"] == pytest.approx(best, abs=1e-9)
    assert {k: tuned[k] for k in B.RAW_PARAMS} == arg
    assert tuned["combos"] == 16 and tuned["sequences"] == len(d.seqs("train"))


def test_tune_reads_only_the_training_subset(setup):
    d, gt, probs, oof = setup
    a = B.tune_postproc({**oof, **probs}, gt, grid=SMALL_GRID)
    garbage = {s: ({**v, "events": [{"label": "AU1", "segment": [0, 3]}]} if v["subset"] == "test" else v)
               for s, v in gt.db.items()}
    bad = type(gt)(db=garbage, aus=gt.aus)
    rng = np.random.default_rng(0)
    b = B.tune_postproc({**oof, **{s: rng.random(p.shape) for s, p in probs.items()}}, bad, grid=SMALL_GRID)
    c = B.tune_postproc(oof, bad, grid=SMALL_GRID)  # test probabilities not even given
    for x in (b, c):
        assert {k: x[k] for k in B.RAW_PARAMS} == {k: a[k] for k in B.RAW_PARAMS} and x["score"] == a["score"]
    t = B.tune_postproc(probs, gt, grid=SMALL_GRID, subset="test")  # the subset is what is read
    assert t["sequences"] == len(d.seqs("test"))


def test_raw_below_tuned_and_oracle_is_one(setup):
    d, gt, probs, oof = setup
    tuned = B.tune_postproc(oof, gt)
    raw = metrics.evaluate(gt, B.raw_results(probs, d.aus), tious=(0.3, 0.5, 0.7), subset="test")["map"]
    tun = metrics.evaluate(gt, B.postproc_results(probs, None, d.aus, tuned), tious=(0.3, 0.5, 0.7),
                           subset="test")["map"]
    assert raw[1] < 0.3 and tun[1] > raw[1] + 0.3, (raw, tun)
    ora = metrics.evaluate(gt, {s: v for s, v in B.oracle_results(gt).items() if s in probs},
                           subset="test")
    assert ora["map"] == [1.0] * 4
    assert B.raw_results(probs) == B.raw_results(probs, d.aus)  # default AUs: synth.AUS


def test_benchmark_rows(setup):
    d = synth.make(n_seqs=24, n_subjects=8, test_subjects=2, seed=7, min_len=200, max_len=300)
    r = B.benchmark(d, folds=2, grid=SMALL_GRID)
    rows = {row["method"]: row for row in r["rows"]}
    assert list(rows) == ["raw", "tuned", "oracle"] and r["tious"] == [0.3, 0.5, 0.7]
    assert rows["oracle"]["map"] == [1.0, 1.0, 1.0]
    assert rows["raw"]["params"] == B.RAW_PARAMS and rows["tuned"]["params"]["median"] in SMALL_GRID["median"]


@pytest.mark.parametrize("kw", [
    {"grid": {"thr": (0.5,), "median": (1,), "min_dur": (1,)}},
    {"grid": {**SMALL_GRID, "median": (4,)}},
    {"grid": {**SMALL_GRID, "min_dur": ()}},
    {"grid": {**SMALL_GRID, "merge_gap": (-1,)}},
    {"grid": {**SMALL_GRID, "thr": (float("nan"),)}},
    {"metric": "f1"}, {"metric": "map@1.5"}, {"subset": "nope"},
])
def test_tune_bad_arguments(setup, kw):
    _, gt, _, oof = setup
    with pytest.raises(InputError):
        B.tune_postproc(oof, gt, **kw)


def test_tune_bad_probabilities(setup):
    _, gt, _, oof = setup
    s = next(iter(oof))
    with pytest.raises(InputError):
        B.tune_postproc({k: v for k, v in oof.items() if k != s}, gt, grid=SMALL_GRID)
    with pytest.raises(InputError):
        B.tune_postproc({**oof, s: oof[s][:, :5]}, gt, grid=SMALL_GRID)
    with pytest.raises(InputError):
        B.postproc_results(oof, None, synth.AUS, {"thr": 0.5})
