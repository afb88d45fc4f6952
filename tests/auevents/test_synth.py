"""Synthetic AU event sequences: determinism, split, BP4D statistics, episodes, round trip."""

import numpy as np
import pytest

from mlkit.auevents import events, synth
from mlkit.errors import InputError


@pytest.fixture(scope="module")
def big():
    """Many sequences, for the statistics (about 1 s)."""
    return synth.make(n_seqs=600, n_subjects=60, test_subjects=10, seed=11)


def _small(**kw):
    return synth.make(**{"n_seqs": 16, "n_subjects": 8, "test_subjects": 3, "seed": 5, **kw})


def test_deterministic_for_a_seed():
    a, b, c = _small(), _small(), _small(seed=6)
    assert a.seqs() == b.seqs()
    for s in a.seqs():
        assert np.array_equal(a.feats[s], b.feats[s]) and np.array_equal(a.labels[s], b.labels[s])
        assert a.events[s] == b.events[s] and a.subset[s] == b.subset[s]
    assert any(not np.array_equal(a.feats[s], c.feats[s]) for s in a.seqs() if s in c.feats)


def test_shapes_and_types():
    d = _small(dim=7, min_len=50, max_len=60)
    assert d.aus == synth.AUS and len(d.aus) == 12 and d.fps == 25.0
    for s in d.seqs():
        T = len(d.labels[s])
        assert 50 <= T <= 60
        assert d.feats[s].shape == (T, 7) and d.feats[s].dtype == np.float32
        assert d.labels[s].shape == (T, 12) and d.labels[s].dtype == np.uint8
        assert d.intensity[s].shape == (T, 12)
        assert np.array_equal(d.frames(s), np.arange(T))


def test_subject_exclusive_split():
    d = synth.make(n_seqs=45, n_subjects=15, test_subjects=4, seed=2)
    by_subject = {}
    for s in d.seqs():
        by_subject.setdefault(d.subject[s], set()).add(d.subset[s])
    assert len(by_subject) == 15
    assert all(len(v) == 1 for v in by_subject.values())  # a subject never straddles the split
    assert sum(v == {"test"} for v in by_subject.values()) == 4
    assert {d.subject[s] for s in d.seqs("train")}.isdisjoint({d.subject[s] for s in d.seqs("test")})
    assert len(d.seqs("train")) + len(d.seqs("test")) == 45 and len(d.seqs("test")) == 12


def test_event_rates_and_durations_follow_bp4d(big):
    n = len(big.seqs())
    for au in big.aus:
        rate, mu, _, median = synth.BP4D_STATS[au]
        durs = np.array([e - s for q in big.seqs() for ev in big.events[q] if ev["label"] == au
                         for s, e in [ev["segment"]]])
        # long events that do not fit next to the others are shortened or dropped: a few % fewer,
        # a little shorter than the log-normal; its median exp(μ) is 6–16% below the table's
        assert abs(len(durs) / n - rate) <= 0.15 * rate, au
        assert abs(np.median(durs) - np.exp(mu)) <= 0.2 * np.exp(mu), au
        assert abs(np.median(durs) - median) <= 0.3 * median, au
        assert abs(np.log(durs).mean() - mu) <= 0.3, au
        assert durs.min() >= synth.MIN_DUR


def _overlap_fraction(d, a, b, shift=0):
    """Fraction of AU ``a`` events with an AU ``b`` event (of sequence i + shift) starting within
    2·jitter frames and overlapping it."""
    seqs = d.seqs()
    hits = total = 0
    for i, q in enumerate(seqs):
        other = d.events[seqs[(i + shift) % len(seqs)]]
        bs = [ev["segment"] for ev in other if ev["label"] == b]
        for ev in d.events[q]:
            if ev["label"] != a:
                continue
            s, e = ev["segment"]
            total += 1
            hits += any(abs(s - s2) <= 2 * synth.EPISODE_JITTER and s < e2 and s2 < e for s2, e2 in bs)
    return hits / total


@pytest.mark.parametrize("a,b", [("AU12", "AU6"), ("AU2", "AU1"), ("AU24", "AU17"), ("AU23", "AU24")])
def test_cooccurrence_episodes(big, a, b):
    together = _overlap_fraction(big, a, b)
    chance = _overlap_fraction(big, a, b, shift=1)  # the same events paired with another sequence
    assert together > 0.3 and together > 5 * chance, (together, chance)


def test_no_episode_between_unrelated_aus(big):
    assert _overlap_fraction(big, "AU4", "AU12") < 3 * _overlap_fraction(big, "AU4", "AU12", shift=1) + 0.02


def test_labels_events_round_trip_is_exact():
    d = synth.make(n_seqs=40, n_subjects=10, test_subjects=3, seed=3)
    gt = d.ground_truth()
    assert gt.aus == d.aus and set(gt.db) == set(d.seqs())
    for s in d.seqs():
        T = len(d.labels[s])
        assert gt.db[s]["duration_frames"] == T and gt.db[s]["subset"] == d.subset[s]
        assert gt.db[s]["events"] == d.events[s]  # planted == recovered from the labels
        assert np.array_equal(events.rasterize(d.events[s], d.frames(s), d.aus), d.labels[s])
        for a in d.aus:  # same-AU events keep MIN_GAP frames apart
            segs = [ev["segment"] for ev in d.events[s] if ev["label"] == a]
            assert all(s2 - e1 >= synth.MIN_GAP for (_, e1), (s2, _) in zip(segs, segs[1:], strict=False))


def test_intensity_envelope():
    d = _small(seed=9)
    for s in d.seqs():
        assert np.array_equal(d.intensity[s] > 0, d.labels[s].astype(bool))
        for ev in d.events[s]:
            (a, b), c = ev["segment"], d.aus.index(ev["label"])
            x = d.intensity[s][a:b, c]
            assert 0.6 - 1e-6 <= x.max() <= 1.0 + 1e-6
            if b - a >= 10:  # ramps up from onset, down to offset
                assert x[0] < x.max() and x[-1] < x.max()


def test_features_are_linear_in_intensity_without_noise():
    d = _small(noise=0.0, subject_sd=0.0, dim=20)
    X = np.concatenate([d.feats[s] for s in d.seqs()]).astype(np.float64)
    inten = np.concatenate([d.intensity[s] for s in d.seqs()]).astype(np.float64)
    W, *_ = np.linalg.lstsq(inten, X, rcond=None)
    assert np.abs(inten @ W - X).max() < 1e-4
    assert np.allclose(np.linalg.norm(W, axis=1), 4.5, rtol=1e-3)  # rows of norm `signal`
    noisy = _small(dim=20)
    assert noisy.feats[noisy.seqs()[0]].std() > X.std() * 0.5


@pytest.mark.parametrize("kw", [
    {"n_subjects": 1}, {"n_seqs": 5, "n_subjects": 8}, {"test_subjects": 0}, {"test_subjects": 8},
    {"fps": 0.0}, {"dim": 0}, {"min_len": 2}, {"min_len": 60, "max_len": 50}, {"seed": -1},
    {"noise": -1.0}, {"signal": float("nan")}, {"n_seqs": 16.5},
])
def test_bad_arguments(kw):
    with pytest.raises(InputError):
        _small(**kw)
