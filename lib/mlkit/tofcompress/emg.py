"""The exponentially-modified Gaussian (EMG), evaluated stably and batched in torch.

    g(t; μ, σ, λ) = (λ/2)·exp(λ/2·(2μ + λσ² − 2t))·erfc(z),   z = (μ + λσ² − t) / (√2·σ)

is the pdf of a Gaussian N(μ, σ²) plus an independent exponential delay of rate λ (unit area, so
a component's amplitude is its photon count). scipy: ``exponnorm(K=1/(σλ), loc=μ, scale=σ)``.

The textbook form overflows (exp → inf times erfc → 0) once λσ or (μ − t)/σ is large, as lmfit's
``expgaussian`` does. With erfcx(z) = exp(z²)·erfc(z):

* z ≥ 0:  g = (λ/2)·exp(−(t − μ)²/(2σ²))·erfcx(z)     (the exponents cancel analytically)
* z < 0:  with erfc(z) = 2 − erfc(−z), g = λ·exp(λ(μ + λσ²/2 − t)) − (λ/2)·exp(−(t − μ)²/(2σ²))·erfcx(−z);
          the first exponent is negative there, and the subtraction never cancels (erfc(z) ≥ 1).

Both branches share E = exp(−(t − μ)²/(2σ²)) and erfcx(|z|), which the Jacobian's φ = E/(σ√(2π))
reuses: one erfcx and two exp per sample, for the pdf and its three derivatives.

Jacobian (paper notes §1.2, with φ the N(μ, σ²) pdf at t):

    ∂g/∂μ = λ(g − φ)
    ∂g/∂σ = λ²σ·g + λ·φ·(μ − t − λσ²)/σ
    ∂g/∂λ = g·(1/λ + μ + λσ² − t) − λσ²·φ

CDF (for bin-integrated decoding): F(t) = Φ((t − μ)/σ) − g(t)/λ, stable because g is.

All functions broadcast: ``t`` is typically (..., T) and the parameters (..., 1) or (..., K, 1).
"""

from __future__ import annotations

import math

import torch

__all__ = ["emg_pdf", "emg_pdf_jac", "emg_cdf", "gauss_pdf", "mixture"]

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def gauss_pdf(t: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """φ(t) = N(t; μ, σ²)."""
    u = (t - mu) / sigma
    return torch.exp(-0.5 * u * u) * (_INV_SQRT_2PI / sigma)


def _pdf_parts(t, mu, sigma, lam):
    """(g, E) with E = exp(−u²/2), u = (t − μ)/σ (see the module docstring)."""
    u = (t - mu) / sigma
    ls = lam * sigma
    z = (ls - u) * (1.0 / _SQRT2)
    e = torch.exp(-0.5 * u * u)
    core = (0.5 * lam) * e * torch.special.erfcx(z.abs())
    # z < 0 only: exponent λσ(λσ/2 − u) < 0 there; clamped so the unused lane never overflows
    tail = lam * torch.exp(torch.clamp(ls * (0.5 * ls - u), max=0.0))
    return torch.where(z >= 0, core, tail - core), e


def emg_pdf(t: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """g(t; μ, σ, λ), never inf/NaN for finite σ > 0, λ > 0."""
    return _pdf_parts(t, mu, sigma, lam)[0]


def emg_pdf_jac(t, mu, sigma, lam, amp=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(g, ∂g/∂μ, ∂g/∂σ, ∂g/∂λ), each broadcast to the common shape; with ``amp`` the three
    derivatives come multiplied by it, (g, a·∂g/∂μ, a·∂g/∂σ, a·∂g/∂λ), as a mixture's Jacobian
    needs. Per-component factors are combined before they meet the (…, T) arrays."""
    g, e = _pdf_parts(t, mu, sigma, lam)
    a = torch.ones_like(sigma) if amp is None else amp
    s2 = sigma * sigma
    phi_a = e * (a * _INV_SQRT_2PI / sigma)                                     # a·φ
    ga = g * a if amp is not None else g                                        # a·g
    d_mu = lam * (ga - phi_a)
    d_sigma = ga * (lam * lam * sigma) + phi_a * ((mu - lam * s2) - t) * (lam / sigma)
    d_lam = ga * ((1.0 / lam + mu + lam * s2) - t) - phi_a * (lam * s2)
    return g, d_mu, d_sigma, d_lam


def emg_cdf(t, mu, sigma, lam) -> torch.Tensor:
    """F(t) = Φ((t − μ)/σ) − g(t)/λ."""
    u = (t - mu) / (_SQRT2 * sigma)
    return 0.5 * torch.erfc(-u) - emg_pdf(t, mu, sigma, lam) / lam


def mixture(t: torch.Tensor, amp: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, lam: torch.Tensor,
            background: torch.Tensor | None = None, *, integrate: float | None = None) -> torch.Tensor:
    """b + Σ_k a_k·g_k(t) for parameters (P, K) and times (T,) or (P, T) -> (P, T).

    With ``integrate = Δ`` each sample is the bin integral over [t, t + Δ) (a difference of CDFs)
    instead of the density at t times Δ, so coarse output grids keep the photon counts."""
    tt = t if t.ndim == 2 else t[None, :]                                       # (P|1, T)
    tt = tt[:, None, :]                                                         # (P|1, 1, T)
    p = [v[..., None] for v in (amp, mu, sigma, lam)]                           # (P, K, 1)
    if integrate is None:
        y = (p[0] * emg_pdf(tt, *p[1:])).sum(1)                                 # (P, T)
    else:
        y = (p[0] * (emg_cdf(tt + integrate, *p[1:]) - emg_cdf(tt, *p[1:]))).sum(1)
    if background is not None:
        y = y + background[:, None] * (integrate if integrate is not None else 1.0)
    return y
