"""The EMG pdf, Jacobian and CDF against scipy and central differences (acceptance check 1)."""

import numpy as np
import pytest
import torch
from scipy.stats import exponnorm

from mlkit.tofcompress.emg import emg_cdf, emg_pdf, emg_pdf_jac, mixture


def random_sets(n=2000, seed=0):
    """μ ∈ [0, 200] bins, σ ∈ [0.05, 20], σλ log-uniform in [1e-3, 1e3]."""
    rng = np.random.default_rng(seed)
    mu = rng.uniform(0, 200, n)
    sigma = np.exp(rng.uniform(np.log(0.05), np.log(20), n))
    lam = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), n)) / sigma
    return mu, sigma, lam


def grid(mu, sigma, lam, T=400):
    """Per set, T times covering the rise and the tail: μ − 8σ .. μ + 8σ + 30/λ."""
    lo = mu - 8 * sigma
    hi = mu + 8 * sigma + np.minimum(30 / lam, 1e6)
    return lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, T)[None, :]


def as_t(*arrs):
    return [torch.from_numpy(np.asarray(a, dtype=np.float64)) for a in arrs]


def test_pdf_matches_scipy_within_1e_8_of_the_peak():
    mu, sigma, lam = random_sets()
    t = grid(mu, sigma, lam)
    ref = exponnorm.pdf(t, 1 / (sigma * lam)[:, None], loc=mu[:, None], scale=sigma[:, None])
    tt, m, s, lm = as_t(t, mu[:, None], sigma[:, None], lam[:, None])
    got = emg_pdf(tt, m, s, lm).numpy()
    finite = np.isfinite(ref)
    assert finite.all() and np.isfinite(got).all()
    peak = ref.max(axis=1, keepdims=True)
    err = np.abs(got - ref) / peak
    assert err.max() <= 1e-8, err.max()


def test_pdf_never_overflows_where_the_textbook_form_does():
    t, m, s, lm = as_t([[0.0, 50.0, 1e4]], [[50.0]], [[0.01]], [[1e3]])
    with np.errstate(over="ignore", invalid="ignore"):
        naive = 0.5 * 1e3 * np.exp(0.5 * 1e3 * (100 + 1e3 * 1e-4 - 2 * np.array([0.0, 50.0, 1e4]))) \
            * __import__("scipy").special.erfc((50 + 1e3 * 1e-4 - np.array([0.0, 50.0, 1e4])) / (np.sqrt(2) * 0.01))
    assert not np.isfinite(naive).all()                             # lmfit's formula: inf * 0
    got = emg_pdf(t, m, s, lm).numpy()
    assert np.isfinite(got).all() and (got >= 0).all()


def test_pdf_float32_stays_finite():
    mu, sigma, lam = random_sets(300, seed=1)
    t = grid(mu, sigma, lam, 64)
    got = emg_pdf(*(torch.from_numpy(a.astype(np.float32)) for a in (t, mu[:, None], sigma[:, None], lam[:, None])))
    assert torch.isfinite(got).all()


def test_jacobian_matches_central_differences():
    mu, sigma, lam = random_sets(2000, seed=2)
    t = grid(mu, sigma, lam, 200)
    tt, m, s, lm = as_t(t, mu[:, None], sigma[:, None], lam[:, None])
    _, *jac = emg_pdf_jac(tt, m, s, lm)
    params = [m, s, lm]
    for i, analytic in enumerate(jac):
        h = 1e-3 * (params[2] if i == 2 else s)                     # steps on each parameter's own scale

        def at(step, i=i, h=h):
            shifted = [p.clone() for p in params]
            shifted[i] = params[i] + step * h
            return emg_pdf(tt, *shifted)

        fd = (at(-2) - 8 * at(-1) + 8 * at(1) - at(2)) / (12 * h)   # 5-point central difference, O(h^4)
        scale = fd.abs().amax(dim=1, keepdim=True)                  # relative to the derivative's range
        rel = ((analytic - fd).abs() / scale).max().item()
        assert rel <= 1e-6, (i, rel)


def test_cdf_matches_scipy_and_integrates_the_pdf():
    mu, sigma, lam = random_sets(500, seed=3)
    t = grid(mu, sigma, lam, 300)
    ref = exponnorm.cdf(t, 1 / (sigma * lam)[:, None], loc=mu[:, None], scale=sigma[:, None])
    got = emg_cdf(*as_t(t, mu[:, None], sigma[:, None], lam[:, None])).numpy()
    assert np.abs(got - ref).max() <= 1e-8


def test_mixture_density_and_bin_integrals():
    P, K, T = 5, 3, 256
    rng = np.random.default_rng(4)
    amp = torch.from_numpy(rng.uniform(10, 1000, (P, K)))
    mu = torch.from_numpy(rng.uniform(40, 200, (P, K)))
    sigma = torch.from_numpy(rng.uniform(0.5, 3, (P, K)))
    lam = torch.from_numpy(rng.uniform(0.2, 2, (P, K)))
    bg = torch.from_numpy(rng.uniform(0, 2, P))
    t = torch.arange(T, dtype=torch.float64)
    dens = mixture(t, amp, mu, sigma, lam, bg)
    bins = mixture(t, amp, mu, sigma, lam, bg, integrate=1.0)
    assert dens.shape == bins.shape == (P, T)
    # bin integrals sum to the photons that fall inside the window, plus the background
    inside = (amp * (emg_cdf(torch.tensor(float(T)), mu, sigma, lam) - emg_cdf(torch.tensor(0.0), mu, sigma, lam))).sum(1)
    torch.testing.assert_close(bins.sum(1), inside + bg * T, rtol=1e-10, atol=1e-8)
    # a fine grid's densities integrate to the same counts
    fine = torch.arange(0, T, 0.05, dtype=torch.float64)
    torch.testing.assert_close(mixture(fine, amp, mu, sigma, lam).sum(1) * 0.05, inside, rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gaussian_limit(dtype):
    """λ → ∞ is the Gaussian N(μ, σ²) (the Gaussian-mixture baseline)."""
    t = torch.linspace(-10, 10, 201, dtype=dtype)
    g = emg_pdf(t, torch.tensor(0.0, dtype=dtype), torch.tensor(2.0, dtype=dtype), torch.tensor(1e6, dtype=dtype))
    ref = torch.exp(-t * t / 8) / (2 * np.sqrt(2 * np.pi))
    torch.testing.assert_close(g, ref.to(dtype), rtol=0, atol=1e-5)
