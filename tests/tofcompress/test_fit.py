"""The batched EMG-mixture fitter: parameter recovery (acceptance check 2) and its mechanics."""

import numpy as np
import pytest
import torch

from mlkit.errors import InputError
from mlkit.tofcompress.emg import emg_pdf
from mlkit.tofcompress.fit import FitConfig, fit_pixels, initial_components, loss_of, model_of, unpack

T = 256
t = torch.arange(T, dtype=torch.float64)


def single(P, seed, sigma=(0.6, 3.0), tau=(0.5, 6.0), amp=(1e3, 1e5)):
    rng = np.random.default_rng(seed)
    mu = torch.tensor(rng.uniform(30, 200, P))
    s = torch.tensor(rng.uniform(*sigma, P))
    lam = 1 / torch.tensor(rng.uniform(*tau, P))
    a = torch.tensor(rng.uniform(*amp, P))
    return a, mu, s, lam


@pytest.mark.parametrize("loss", ["poisson", "l2"])
def test_noise_free_single_emg_is_recovered(loss):
    a, mu, s, lam = single(200, 0)
    y = a[:, None] * emg_pdf(t[None], mu[:, None], s[:, None], lam[:, None])
    theta, active, _ = fit_pixels(y, FitConfig(k_max=1, loss=loss, iters=50))
    A, M, S, L, B = unpack(theta, 1)
    assert active.all()
    for got, want, tol in ((M[:, 0], mu, 0.01), (S[:, 0], s, 0.01), (L[:, 0], lam, 0.01), (A[:, 0], a, 0.005)):
        assert ((got - want) / want).abs().max() <= tol
    assert B.abs().max() < 1e-3


def test_ten_thousand_counts_locate_mu_within_a_tenth_of_a_bin():
    """A SPAD-like response (σ 0.4 bin, tail 1.2 bins, the notes' jitter) at sub-bin offsets."""
    torch.manual_seed(0)
    P = 300
    mu = torch.tensor(np.random.default_rng(1).uniform(30, 200, P))
    clean = 1e4 * emg_pdf(t[None], mu[:, None], torch.tensor(0.4), torch.tensor(1 / 1.2))
    theta, active, _ = fit_pixels(torch.poisson(clean), FitConfig(k_max=1, iters=50))
    err = (unpack(theta, 1)[1][:, 0] - mu).abs()
    assert active.all() and err.max() <= 0.1, err.max()


def test_two_components_and_background():
    torch.manual_seed(2)
    P = 64
    mu = torch.stack([torch.full((P,), 60.0), torch.full((P,), 120.0)], 1)
    a = torch.tensor([[4000.0, 1500.0]]).expand(P, 2)
    clean = 2.0 + (a[..., None] * emg_pdf(t[None, None], mu[..., None], torch.tensor(0.8), torch.tensor(0.5))).sum(1)
    theta, active, _ = fit_pixels(torch.poisson(clean), FitConfig(k_max=3, iters=40))
    A, M, S, L, B = unpack(theta, 3)
    assert (active.sum(1) == 2).float().mean() >= 0.95                  # a third component is dropped
    on = active.sum(1) == 2
    got = torch.where(active, M, torch.full_like(M, float("inf"))).sort(1).values[:, :2]
    assert ((got - mu).abs() < 0.3)[on].float().mean() >= 0.95
    assert (B - 2.0).abs().median() < 0.3


def test_all_zero_pixels_are_legal():
    y = torch.zeros(5, T, dtype=torch.float64)
    theta, active, loss = fit_pixels(y, FitConfig(k_max=2))
    assert not active.any() and torch.isfinite(theta).all() and (loss < 1e-6).all()


def test_pooling_finds_peaks_a_lone_pixel_misses():
    torch.manual_seed(3)
    H = W = 8
    clean = 0.2 + 10 * emg_pdf(t[None], torch.tensor(90.0), torch.tensor(0.8), torch.tensor(0.5)).expand(H * W, T)
    y = torch.poisson(clean)
    cfg = FitConfig(k_max=2, kappa=3.0)
    _, alone = initial_components(y, FitConfig(k_max=2, pool=1))
    _, pooled = initial_components(y, cfg, (H, W))
    assert pooled[:, 0].float().mean() > alone[:, 0].float().mean() + 0.5   # measured 1.00 vs 0.28


def test_lm_never_increases_the_loss():
    a, mu, s, lam = single(50, 4, amp=(50, 500))
    torch.manual_seed(4)
    y = torch.poisson(0.5 + a[:, None] * emg_pdf(t[None], mu[:, None], s[:, None], lam[:, None]))
    cfg = FitConfig(k_max=2)
    theta0, active = initial_components(y, cfg)
    from mlkit.tofcompress.fit import lm_fit

    before = loss_of(y, model_of(theta0, t, 2), "poisson")
    theta, after = lm_fit(y, theta0, active, cfg, iters=10)
    assert (after <= before + 1e-9).all()
    torch.testing.assert_close(after, loss_of(y, model_of(theta, t, 2), "poisson"))


@pytest.mark.parametrize("kw,msg", [({"k_max": 0}, "k-max"), ({"k_max": 17}, "k-max"), ({"loss": "huber"}, "loss"),
                                    ({"sigma0": 0}, "sigma0")])
def test_bad_config(kw, msg):
    with pytest.raises(InputError, match=msg):
        FitConfig(**kw).validate()


def test_window_fit_agrees_with_the_full_histogram_fit():
    from mlkit.tofcompress.synth import los_scene

    tr = los_scene(size=8, photons=1000.0, seed=5)
    y = torch.from_numpy(tr.H.reshape(tr.H.shape[0], -1).T.astype(np.float64))
    cfg = FitConfig(k_max=2, sigma0=0.4, tau0=1.2)
    a, act_a, _ = fit_pixels(y, cfg)
    b, act_b, _ = fit_pixels(y, FitConfig(k_max=2, sigma0=0.4, tau0=1.2, window=False))
    first = lambda th, act: torch.where(act, unpack(th, 2)[1], torch.full_like(act, 1e9, dtype=th.dtype)).min(1).values  # noqa: E731
    diff = (first(a, act_a) - first(b, act_b)).abs()
    assert (diff < 0.05).float().mean() >= 0.95, diff.max()


def test_bic_drops_a_component_that_does_not_pay_for_itself():
    """One true return fitted with k_max 3 at low counts: the extras must go."""
    torch.manual_seed(6)
    clean = 0.3 + 200 * emg_pdf(t[None], torch.tensor(80.0), torch.tensor(0.6), torch.tensor(0.7)).expand(40, T)
    y = torch.poisson(clean)
    with_bic = fit_pixels(y, FitConfig(k_max=3, pool=1))[1].sum(1).float().mean()
    without = fit_pixels(y, FitConfig(k_max=3, pool=1, bic=False))[1].sum(1).float().mean()
    assert with_bic <= without and with_bic <= 1.2


def test_known_irf_is_a_floor_on_width_and_tail():
    """--irf-known: σ ≥ the response's σ and 1/λ ≥ its tail for every component; on returns that
    are the response itself (σ 0.8, tail 2 bins) the fit still finds them."""
    torch.manual_seed(3)
    P = 64
    mu = torch.tensor(np.random.default_rng(3).uniform(40, 200, P))
    clean = 1.0 + 3000 * emg_pdf(t[None], mu[:, None], torch.tensor(0.8), torch.tensor(0.5))
    y = torch.poisson(clean)
    free, _, _ = fit_pixels(y, FitConfig(k_max=2, sigma0=0.8, tau0=2.0))
    theta, active, _ = fit_pixels(y, FitConfig(k_max=2, sigma0=0.8, tau0=2.0, irf_known=True))
    A, M, S, L, B = unpack(theta, 2)
    assert (S[active] >= 0.8 - 1e-12).all() and (L[active] <= 0.5 + 1e-12).all()
    assert (unpack(free, 2)[2] < 0.8).any()              # without the floor some fits come out narrower
    first = torch.where(active, M, torch.full_like(M, float("inf"))).min(1).values
    assert (first - mu).abs().median() < 0.1
