"""The synthetic hard-cluster generator (paper notes §5) and the dataset layout it writes (§4)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mlkit.errors import InputError, OutputError
from mlkit.faceclust.formats import read_features, read_meta
from mlkit.faceclust.synth import (
    identity_centres,
    identity_sparsity,
    make_dataset,
    make_split,
    sample_sizes,
    train_seed,
)


def test_split_is_deterministic_and_seeded():
    x1, y1 = make_split(30, dim=32, seed=3)
    x2, y2 = make_split(30, dim=32, seed=3)
    x3, _ = make_split(30, dim=32, seed=4)
    assert x1.tobytes() == x2.tobytes() and np.array_equal(y1, y2)
    assert x1.shape != x3.shape or not np.array_equal(x1, x3)


def test_split_shapes_norms_and_sizes():
    x, y = make_split(80, dim=64, smin=4, smax=40, seed=1)
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.flags.c_contiguous
    assert x.shape == (y.size, 64)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    sizes = np.bincount(y, minlength=80)
    assert sizes.min() >= 4 and sizes.max() <= 40 and set(np.unique(y)) == set(range(80))
    assert (np.diff(y) != 0).mean() > 0.5  # rows are shuffled, not grouped by identity


def test_size_law_matches_closed_form():
    # P(s >= m) = (smin / m)^(alpha - 1) for smin <= m <= smax; the cap puts the rest on smax
    s = sample_sizes(np.random.default_rng(0), 40_000, alpha=2.0, smin=5, smax=300)
    assert s.min() == 5 and s.max() == 300
    for m in (10, 25, 100):
        p = 5 / m
        assert abs((s >= m).mean() - p) < 4 * math.sqrt(p * (1 - p) / s.size)
    assert abs((s == 300).mean() - 5 / 300) < 4 * math.sqrt(5 / 300 / s.size)
    assert 9 <= np.median(s) <= 10 and 22 < s.mean() < 28  # notes: median 9, mean about 25


def test_sibling_centres_have_cosine_one_half():
    c, fam = identity_centres(np.random.default_rng(0), 400, dim=256, family=10, family_spread=1.0)
    assert np.array_equal(np.bincount(fam), np.full(40, 10))
    cos = c @ c.T
    same = (fam[:, None] == fam[None, :]) & ~np.eye(400, dtype=bool)
    assert abs(cos[same].mean() - 0.5) < 0.03           # 1 / (1 + t^2)
    assert abs(cos[fam[:, None] != fam[None, :]].mean()) < 0.01
    tight, _ = identity_centres(np.random.default_rng(0), 20, dim=64, family=10, family_spread=0.0)
    np.testing.assert_allclose(tight[:10] @ tight[:10].T, 1.0, atol=1e-12)


def test_sparsity_equals_brute_force():
    x, y = make_split(12, dim=16, smin=1, smax=9, seed=5)
    got = identity_sparsity(x, y)
    for i, label in enumerate(np.unique(y)):
        m = x[y == label].astype(np.float64)
        if len(m) < 2:
            assert np.isnan(got[i])
            continue
        cos = m @ m.T
        want = 1 - (cos.sum() - np.trace(cos)) / (len(m) * (len(m) - 1))
        assert abs(got[i] - want) < 1e-9


def test_spread_sets_sparsity_quantiles():
    # sample cosine within an identity is about 1 / (1 + sigma^2): sigma 0.6 -> 0.26, 1.4 -> 0.66
    x, y = make_split(300, dim=256, seed=0)
    q05, q50, q95 = np.nanquantile(identity_sparsity(x, y), [0.05, 0.5, 0.95])
    assert 0.25 < q05 < 0.31 and 0.42 < q50 < 0.50 and 0.61 < q95 < 0.67


@pytest.mark.parametrize("kw", [dict(n_ids=0), dict(n_ids=5, alpha=1.0), dict(n_ids=5, smin=0),
                                dict(n_ids=5, smin=9, smax=8), dict(n_ids=5, spread=(1.4, 0.6)),
                                dict(n_ids=5, spread=(0, 1)), dict(n_ids=5, dim=1),
                                dict(n_ids=5, family=0), dict(n_ids=5, family_spread=-1)])
def test_bad_parameters_raise(kw):
    with pytest.raises(InputError):
        make_split(**kw)


def _centroids(x, y):
    labels = np.unique(y)
    m = np.stack([x[y == lab].mean(axis=0) for lab in labels])
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_dataset_layout_sizes_and_round_trip(tmp_path):
    out = tmp_path / "ds"
    info = make_dataset(out, ids=40, train_ids=30, seed=7, dim=32)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "features/test.bin", "features/train.bin", "labels/test.meta", "labels/train.meta", "synth.json"]
    assert json.loads((out / "synth.json").read_text()) == info
    assert not [p for p in tmp_path.iterdir() if p.name != "ds"]  # no temp folders left behind
    for split, ids, seed, offset in (("test", 40, 7, 0), ("train", 30, train_seed(7), 40)):
        meta = info["splits"][split]
        assert meta["seed"] == seed and meta["labels"] == [offset, offset + ids - 1]
        x0, y0 = make_split(ids, dim=32, seed=seed)
        assert (out / "features" / f"{split}.bin").stat().st_size == meta["n"] * 32 * 4 == x0.nbytes
        assert (out / "features" / f"{split}.bin").read_bytes() == x0.astype("<f4").tobytes()
        x = read_features(out / "features" / f"{split}.bin", dim=32)
        y = read_meta(out / "labels" / f"{split}.meta", n=meta["n"])
        np.testing.assert_allclose(x, x0, atol=1e-6)
        assert np.array_equal(y, y0 + offset)
        q = np.nanquantile(identity_sparsity(x0, y0), [0.05, 0.5, 0.95])
        assert [meta["sparsity"][k] for k in ("q05", "q50", "q95")] == pytest.approx(q, abs=1e-4)


def test_splits_have_disjoint_identities(tmp_path):
    make_dataset(tmp_path / "ds", ids=40, train_ids=40, seed=0)
    xs, ys = {}, {}
    for split in ("test", "train"):
        xs[split] = read_features(tmp_path / "ds" / "features" / f"{split}.bin", dim=256)
        ys[split] = read_meta(tmp_path / "ds" / "labels" / f"{split}.meta")
    assert not set(ys["test"]) & set(ys["train"])
    assert train_seed(0) != 0
    a, b = _centroids(xs["test"], ys["test"]), _centroids(xs["train"], ys["train"])
    cross = a @ b.T
    within = a[:10] @ a[:10].T  # the first test family
    assert within[~np.eye(10, dtype=bool)].mean() > 0.25
    assert abs(cross.mean()) < 0.03 and cross.max() < 0.6  # same seed would give ~1.0 pairs


def test_dataset_refuses_foreign_folder_and_replaces_its_own(tmp_path):
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not a synth dataset"):
        make_dataset(foreign, ids=5, train_ids=5, dim=8)
    assert (foreign / "notes.txt").read_text() == "keep me"
    ds = tmp_path / "ds"
    make_dataset(ds, ids=5, train_ids=5, dim=8, seed=1)
    info = make_dataset(ds, ids=6, train_ids=5, dim=8, seed=2)
    assert json.loads((ds / "synth.json").read_text())["params"]["seed"] == 2 == info["params"]["seed"]
    with pytest.raises(InputError):
        make_dataset(ds, ids=5, train_ids=5, dim=8, alpha=0.5)
    assert json.loads((ds / "synth.json").read_text())["params"]["seed"] == 2  # old output kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "home"]
