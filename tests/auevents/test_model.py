"""EventFormer pieces: matching, loss, windows, NMS, a tiny fit + detect."""

import itertools

import numpy as np
import pytest
import torch

from mlkit.auevents.model import (
    EventFormer,
    EventFormerConfig,
    cw_to_se,
    match,
    nms,
    se_to_cw,
    segment_tiou,
    set_loss,
    window_starts,
    window_targets,
)
from mlkit.errors import InputError


def test_geometry_round_trip_and_tiou():
    se = torch.tensor([[0.1, 0.3], [0.2, 0.9]])
    assert torch.allclose(cw_to_se(se_to_cw(se)), se)
    iou = segment_tiou(torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 3.0], [5.0, 6.0], [0.0, 2.0]]))
    assert torch.allclose(iou, torch.tensor([[1 / 3, 0.0, 1.0]]))


def test_hungarian_matching_is_the_brute_force_optimum():
    cfg = EventFormerConfig(in_dim=4, num_aus=2, queries=4, window=16)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        seg = torch.rand(1, 2, 4, 2, generator=g) * 0.5 + 0.1
        logit = torch.randn(1, 2, 4, generator=g)
        t = [[torch.tensor([[0.1, 0.3], [0.5, 0.8]]), torch.tensor([[0.2, 0.6]])]]
        for b, c, qi, ti in match(seg, logit, t, cfg):
            p = torch.sigmoid(logit[b, c])
            a, gm = cfg.focal_alpha, cfg.focal_gamma
            focal = a * (1 - p) ** gm * -torch.log(p) - (1 - a) * p ** gm * -torch.log(1 - p)
            cw = se_to_cw(t[b][c])
            cost = (cfg.cost_focal * focal[:, None] + cfg.cost_l1 * torch.cdist(seg[b, c], cw, p=1)
                    - cfg.cost_iou * segment_tiou(cw_to_se(seg[b, c]), t[b][c]))
            best = min(sum(float(cost[q, j]) for j, q in enumerate(perm))
                       for perm in itertools.permutations(range(4), len(cw)))
            assert float(cost[qi, ti].sum()) == pytest.approx(best, abs=1e-5)
            assert len(qi) == len(cw)                            # every event gets one query of its own AU


def test_windows_cover_the_sequence_and_clip_targets():
    assert window_starts(100, 256, 64) == [0]
    st = window_starts(700, 256, 64)
    assert st[0] == 0 and st[-1] == 700 - 256 and all(b - a <= 64 for a, b in zip(st, st[1:], strict=False))
    t = window_targets([(0, 10, 20), (1, 250, 300), (0, 400, 420)], 0, 256, 2)
    assert torch.allclose(t[0], torch.tensor([[10 / 256, 20 / 256]]))
    assert torch.allclose(t[1], torch.tensor([[250 / 256, 1.0]]))


def test_nms_keeps_the_best_of_overlapping_segments():
    segs = np.array([[0, 10], [1, 10], [20, 30], [0, 9]], float)
    keep = nms(segs, np.array([0.9, 0.8, 0.7, 0.95]), 0.4)
    assert keep.tolist() == [3, 2]


@pytest.mark.parametrize("kw", [{}, {"proposals": False}, {"refine": False}])
def test_loss_falls_when_fitting_one_window(kw):
    # as ``fit`` trains it: the set loss plus the per-frame head's BCE (the proposals come from that head)
    torch.manual_seed(0)
    cfg = EventFormerConfig(in_dim=3, num_aus=2, queries=3, d_model=16, heads=2, ff_dim=32, window=32, dropout=0.0,
                            **kw)
    m = EventFormer(cfg)
    x = torch.randn(2, 32, 3)
    t = [[torch.tensor([[0.1, 0.4]]), torch.zeros(0, 2)], [torch.tensor([[0.5, 0.9]]), torch.tensor([[0.0, 0.2]])]]
    on = torch.zeros(2, 32, 2)
    on[0, 3:13, 0] = on[1, 16:29, 0] = on[1, 0:6, 1] = 1
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss, _ = set_loss(m(x), t, cfg)
        first = first if first is not None else float(loss.detach())
        loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(m.frame_logits, on)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert float(set_loss(m(x), t, cfg)[0]) < 0.5 * first


@pytest.mark.parametrize("scales", [(1,), (1, 2)])
def test_fit_and_detect_small(scales):
    from mlkit.auevents import synth
    from mlkit.auevents.train import detect, fit

    d = synth.make(n_seqs=6, n_subjects=3, test_subjects=1, min_len=120, max_len=160, seed=1)
    gt = d.ground_truth()
    tr = d.seqs("train")
    cfg = EventFormerConfig(in_dim=d.feats[tr[0]].shape[1], num_aus=len(d.aus), queries=2, d_model=16, heads=2,
                            ff_dim=32, window=64, scales=scales)
    model, norm, losses = fit({s: d.feats[s] for s in tr}, {s: gt.db[s]["events"] for s in tr}, d.aus, cfg,
                              epochs=2, lr=1e-3)
    assert len(losses) == 2 and all(np.isfinite(losses))
    res = detect(model, norm, {s: d.feats[s] for s in d.seqs("test")}, d.aus)
    for seq, evs in res.items():
        for ev in evs:
            s, e = ev["segment"]
            assert ev["label"] in d.aus and 0 <= s < e <= len(d.feats[seq]) and 0 <= ev["score"] <= 1
    with pytest.raises(InputError):
        detect(model, norm, {"x": np.zeros((10, 5), np.float32)}, d.aus)
    with pytest.raises(InputError):
        EventFormerConfig(in_dim=4, d_model=10, heads=4)


def test_nearest_bounds_give_each_position_to_the_nearest_window_centre():
    from mlkit.auevents.train import nearest_bounds

    for T, W, stride in [(700, 256, 64), (300, 256, 64), (1000, 128, 50), (100, 256, 64)]:
        starts = window_starts(T, W, stride)
        b = nearest_bounds(starts, W)
        centres = np.asarray(starts) + W / 2
        for x in np.arange(0, T, 0.5):
            owner = [i for i in range(len(starts)) if b[i] <= x < b[i + 1]]
            assert len(owner) == 1
            assert abs(x - centres[owner[0]]) <= np.abs(x - centres).min() + 1e-9


def test_pool_averages_consecutive_groups():
    from mlkit.auevents.train import pool

    x = np.arange(14, dtype=np.float32).reshape(7, 2)
    assert np.array_equal(pool(x, 1), x)
    ref = np.array([x[0:3].mean(0), x[3:6].mean(0), x[6:7].mean(0)])
    assert np.allclose(pool(x, 3), ref) and pool(x, 3).dtype == np.float32


def test_config_scales_round_trip_and_validation():
    cfg = EventFormerConfig(in_dim=4, scales=[1, 2])
    assert cfg.scales == (1, 2)
    assert EventFormerConfig.from_dict(cfg.to_dict()) == cfg
    for bad in [(), (0,), (1, 1)]:
        with pytest.raises(InputError):
            EventFormerConfig(in_dim=4, scales=bad)
