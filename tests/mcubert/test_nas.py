"""The two-stage NAS (nas.py) on planted tables, its budget cut, and its error paths."""

import numpy as np
import pytest
import torch

from mlkit.errors import CheckFailed, InputError
from mlkit.mcubert import embedding as emb
from mlkit.mcubert import nas
from mlkit.mcubert.synth import embtable


def _bytes(sizes, ranks, D):
    return nas._int8_bytes(np.asarray(sizes), np.asarray(ranks), D)


def test_ari_matches_sklearn_and_is_label_invariant():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.integers(0, 5, 300), rng.integers(0, 7, 300)
        b[:200] = a[:200]
        assert nas.adjusted_rand_index(a, b) == pytest.approx(sk.adjusted_rand_score(a, b), abs=1e-12)
    a = rng.integers(0, 4, 100)
    assert nas.adjusted_rand_index(a, (a + 1) % 4) == pytest.approx(1.0)


def test_embtable_plants_subspaces_of_the_given_ranks():
    P = embtable(V=600, D=32, ranks=(1, 3, 5), noise=0.0, seed=3)
    for c, r in enumerate(P["ranks"]):
        s = np.linalg.svd(P["table"][P["labels"] == c], compute_uv=False)
        assert (s[:r] > 1e-6).all() and (s[r:] < 1e-9).all()
    assert np.bincount(P["labels"]).min() >= 600 // 12
    assert P["freq"].shape == (600,) and P["freq"].mean() == pytest.approx(1.0)
    with pytest.raises(InputError):
        embtable(V=10, D=8, ranks=(1, 2, 3))
    with pytest.raises(InputError):
        embtable(V=100, D=8, ranks=(9,))


@pytest.mark.parametrize("seed", [0, 1])
def test_nas_recovers_planted_clusters_and_ranks_within_budget(seed):
    P = embtable(V=2000, D=96, ranks=(2, 4, 6, 8, 10, 12), noise=0.02, seed=seed)
    E, lab, r = P["table"], P["labels"], P["ranks"]
    budget = _bytes(np.bincount(lab), r, E.shape[1])          # what the planted ranks cost
    res = nas.search(E, len(r), budget, freq=P["freq"], seed=seed)
    assert res.table.int8_bytes() <= budget
    assert nas.adjusted_rand_index(lab, res.labels) >= 0.9
    found = nas.matched_ranks(lab, res.labels, res.table.ranks)
    assert np.abs(found - r).max() <= 1, (found, r)
    # as good a model of E as the planted partition and ranks themselves (the noise floor)
    oracle = emb._build(E, emb.cluster_spectra(E, lab, len(r)), r, *E.shape)
    assert emb.relative_error(E, res.table.reconstruct()) <= 1.02 * emb.relative_error(E, oracle.reconstruct())


def test_threshold_keeps_the_most_values_that_fit():
    rng = np.random.default_rng(0)
    D, sizes = 8, [30, 50, 20]
    spectra = [(np.arange(n), np.sort(rng.random(4))[::-1], np.eye(D)[:4]) for n in sizes]
    beta = rng.normal(size=(3, 4))
    for budget in range(_bytes(sizes, [1, 1, 1], D), _bytes(sizes, [4, 4, 4], D) + 50, 37):
        keep, th = nas.threshold(spectra, beta, budget, D=D, kappa=0.0)
        got = [k.sum() for k in keep]
        assert _bytes(sizes, got, D) <= budget
        # brute force over thresholds: no θ keeps more values and still fits
        best = 0
        for t in np.concatenate([beta.ravel(), [np.inf]]):
            k = beta > t
            for c in range(3):
                k[c, np.argmax(beta[c])] = True
            if _bytes(sizes, k.sum(1), D) <= budget:
                best = max(best, int(k.sum()))
        assert sum(got) == best
        for c, k in enumerate(keep):                         # kept iff above θ (or the floor)
            assert k[np.argmax(beta[c])]
            assert all(k[s] == (beta[c, s] > th) for s in range(4) if s != np.argmax(beta[c]))


def test_thresholds_favour_frequent_clusters():
    D, sizes = 8, [40, 40]
    spectra = [(np.arange(40) + 40 * c, np.ones(4), np.eye(D)[:4]) for c in range(2)]
    beta = np.zeros((2, 4)) + np.arange(4)[::-1] * 0.01
    freq = np.r_[np.full(40, 10.0), np.full(40, 0.1)]
    keep, _ = nas.threshold(spectra, beta, _bytes(sizes, [3, 1], D), D=D, freq=freq, kappa=1.0)
    assert [k.sum() for k in keep] == [3, 1]


def test_stage2_gates_on_reconstruction_reproduce_the_budget_optimum():
    P = embtable(V=800, D=32, ranks=(2, 4, 6), noise=0.05, seed=1)
    E, lab = P["table"], P["labels"]
    params = 0.6 * ((np.bincount(lab) + 32) * P["ranks"]).sum()
    spectra, beta = nas.stage2(E, lab, 3, params, steps=400)
    greedy = emb.cluster_svd(E, lab, params).ranks
    learned = np.array([(b[~np.isnan(b)] > 0).sum() for b in beta])
    assert np.abs(learned - greedy).max() <= 1, (learned, greedy)


def test_budget_below_the_rank_floor_is_exit_1_with_the_least_bytes():
    E = embtable(V=300, D=16, ranks=(1, 2), seed=0)["table"]
    floor = nas.table_bytes_floor(np.array([150, 150]), 16)
    with pytest.raises(CheckFailed, match=f">= {floor} bytes") as e:
        nas.search(E, 2, floor - 1)
    assert e.value.exit_code == 1


def test_task_term_reaches_the_gates_and_the_logits():
    from dataclasses import replace

    from mlkit.mcubert.config import TINY
    from mlkit.mcubert.model import BertModel

    torch.manual_seed(0)
    cfg = replace(TINY, vocab_size=200, hidden_size=32, num_attention_heads=2, intermediate_size=64, num_labels=2)
    model = BertModel(cfg)
    ids = torch.randint(1, 200, (40, 12))
    data = (ids, torch.zeros_like(ids), torch.ones_like(ids))
    y = (ids[:, 0] % 2).numpy()
    task = nas.Task(model, data, y, batch=16)
    table = model.embeddings.word_embeddings.weight.detach().double().numpy()
    spectra, beta = nas.stage2(table, np.arange(200) % 4, 4, 2000, task=task, steps=5)
    assert np.isfinite(beta[~np.isnan(beta)]).all()
    assert not all(p.requires_grad for p in model.parameters())      # the model stays frozen
    assert isinstance(model.embeddings.word_embeddings, torch.nn.Embedding)   # and gets its embedding back
    labels = nas.stage1(table, 4, 2000, task=task, epochs=2, steps=3)
    assert labels.shape == (200,) and set(labels) <= set(range(4))


def test_bad_arguments():
    E = embtable(V=200, D=16, ranks=(1, 2), seed=0)["table"]
    with pytest.raises(InputError):
        nas.stage1(E, 0, 1000)
    with pytest.raises(InputError):
        nas.stage1(E, 2, 1000, levels=[1, 99])
    E2 = E.copy()
    E2[3, 3] = np.nan
    with pytest.raises(InputError):
        nas.search(E2, 2, 5000)
    with pytest.raises(InputError):
        nas.stage2(E, np.zeros(10, np.int64), 2, 1000)
