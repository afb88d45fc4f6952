"""Fitting EMG mixtures to transient histograms, batched over pixels [R: the paper's fitting
procedure is not public; this is the design of the paper notes §1.3].

Per pixel (times t in bins, 0..T-1):   m(t) = b + Σ_k a_k·g(t; μ_k, σ_k, λ_k)

1. ``initial_components``: smooth along t, sum over a pool×pool spatial window (the
   "structure-aware" initialisation: a pixel borrows its neighbours' photons to find its peaks),
   background = median, peaks = local maxima above b + κ·√b, the K highest kept, in time order.
2. ``lm_fit``: Levenberg-Marquardt on all 4K + 1 parameters with the analytic Jacobian. For the
   Poisson deviance D = 2Σ(m − y + y·ln(y/m)) the step solves the Fisher-scoring normal equations
   (JᵀWJ + ν·diag(JᵀWJ)) δ = JᵀW(y − m), W = 1/m; for L2, W = 1. A step is kept only where it lowers
   the loss (ν shrinks), otherwise ν grows; parameters are projected onto their bounds.
3. Components that put fewer than ``a_min`` photons inside the window are dropped and the rest
   refitted.

Parameters travel as one (P, 4K + 1) tensor: [a_1..a_K, μ_1..μ_K, σ_1..σ_K, λ_1..λ_K, b], with an
``active`` (P, K) mask; inactive components have a = 0 and take no steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlkit.errors import InputError

from .emg import emg_pdf, emg_pdf_jac

NU0 = 3.0   # initial Marquardt damping: cautious first steps (a bold one can swing a component onto its neighbour)

__all__ = ["FitConfig", "initial_components", "lm_fit", "loss_of", "model_of", "fit_pixels", "unpack", "in_window"]


@dataclass
class FitConfig:
    k_max: int = 4
    loss: str = "poisson"         # or "l2"
    pool: int = 3                 # spatial window of the initialisation (1 = none)
    kappa: float = 3.0            # peak threshold in Poisson standard deviations of the background
    smooth: float = 1.0           # Gaussian smoothing of the detection signal, bins
    sigma0: float = 1.0           # initial σ (the known IRF σ, when given), bins
    tau0: float = 2.0             # initial tail 1/λ (the known IRF tail, when given), bins
    iters: int = 30
    a_min: float = 3.0            # components putting fewer photons inside the window are dropped
    sigma_min: float = 0.2
    lam_min: float = 0.02
    lam_max: float = 5.0
    window: bool = True           # fit each pixel on a window around its peaks (see ``_windows``)
    bic: bool = True              # drop components that do not pay for their 4 parameters (Poisson)
    irf_known: bool = False       # sigma0/tau0 are the measured instrument response: no return is
                                  # narrower, so σ ≥ sigma0 and 1/λ ≥ tau0 (bounds, see ``_bounds``)

    def validate(self) -> FitConfig:
        if not 1 <= self.k_max <= 16:
            raise InputError("k-max out of range", expected="1..16", got=str(self.k_max))
        if self.loss not in ("poisson", "l2"):
            raise InputError("unknown loss", expected="poisson or l2", got=self.loss)
        for name in ("pool", "iters"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1", got=str(getattr(self, name)))
        for name in ("sigma0", "tau0", "sigma_min", "lam_min", "lam_max"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be > 0", got=str(getattr(self, name)))
        return self


def unpack(theta: torch.Tensor, K: int):
    """(a, μ, σ, λ) each (P, K), and b (P,)."""
    return theta[:, :K], theta[:, K:2 * K], theta[:, 2 * K:3 * K], theta[:, 3 * K:4 * K], theta[:, 4 * K]


def model_of(theta: torch.Tensor, t: torch.Tensor, K: int) -> torch.Tensor:
    """m (P, T) for times t (T,)."""
    a, mu, s, lam, b = unpack(theta, K)
    g = emg_pdf(t[None, None, :], mu[..., None], s[..., None], lam[..., None])     # (P, K, T)
    return b[:, None] + (a[..., None] * g).sum(1)


def loss_of(y: torch.Tensor, m: torch.Tensor, kind: str) -> torch.Tensor:
    """Per pixel: Poisson deviance 2Σ(m − y + y·ln(y/m)) or Σ(y − m)²."""
    if kind == "l2":
        return ((y - m) ** 2).sum(1)
    m = m.clamp_min(1e-12)
    ylogy = torch.where(y > 0, y * torch.log(y.clamp_min(1e-300) / m), torch.zeros_like(y))
    return 2.0 * (m - y + ylogy).sum(1)


def _jacobian(theta: torch.Tensor, t: torch.Tensor, K: int):
    """(m (P, T), Jᵀ (P, 4K + 1, T)). Inactive components hold a = 0 (``_project``), so they add
    nothing to m and their a·∂g columns vanish; their ∂/∂a column is not zero, but ``lm_fit``
    freezes their rows and columns."""
    a, mu, s, lam, b = unpack(theta, K)
    A = a[..., None]
    g, adm, ads, adl = emg_pdf_jac(t[None, None, :], mu[..., None], s[..., None], lam[..., None], A)  # (P, K, T)
    Jt = torch.cat([g, adm, ads, adl, torch.ones_like(g[:, :1])], dim=1)                # (P, 4K + 1, T)
    m = b[:, None] + (A * g).sum(1)
    return m, Jt


def _bounds(theta: torch.Tensor, K: int, T: int, cfg: FitConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(lower, upper), each (1, 4K + 1), in the layout of ``theta``."""
    inf = float("inf")
    s_min, l_max = cfg.sigma_min, cfg.lam_max
    if cfg.irf_known:   # a return is the response convolved with the scene's spread: never narrower
        s_min, l_max = max(s_min, cfg.sigma0), min(l_max, 1.0 / cfg.tau0)
    lo = [0.0] * K + [-5.0] * K + [s_min] * K + [cfg.lam_min] * K + [0.0]
    hi = [inf] * K + [float(T)] * K + [max(s_min, T / 4.0)] * K + [max(l_max, cfg.lam_min)] * K + [inf]
    as_t = lambda v: torch.tensor(v, dtype=theta.dtype, device=theta.device)[None]  # noqa: E731
    return as_t(lo), as_t(hi)


def _project(theta: torch.Tensor, K: int, T: int, cfg: FitConfig, active: torch.Tensor) -> torch.Tensor:
    """Clamp onto the bounds of ``_bounds``; inactive components keep a = 0."""
    lower, upper = _bounds(theta, K, T, cfg)
    theta = torch.maximum(torch.minimum(theta, upper), lower)
    theta[:, :K] = torch.where(active, theta[:, :K], torch.zeros_like(theta[:, :K]))
    return theta


def lm_fit(y: torch.Tensor, theta: torch.Tensor, active: torch.Tensor, cfg: FitConfig,
           iters: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Refine ``theta`` (P, 4K + 1) on counts ``y`` (P, T); returns (theta, loss (P,))."""
    P, T = y.shape
    K = active.shape[1]
    n = 4 * K + 1
    t = torch.arange(T, dtype=y.dtype, device=y.device)
    theta = _project(theta, K, T, cfg, active)
    m, Jt = _jacobian(theta, t, K)
    loss = loss_of(y, m, cfg.loss)
    nu = torch.full((P,), NU0, dtype=y.dtype, device=y.device)
    eye = torch.eye(n, dtype=y.dtype, device=y.device)
    inactive = torch.cat([~active] * 4 + [torch.zeros_like(active[:, :1])], dim=1)  # (P, n): never step
    lower, upper = _bounds(theta, K, T, cfg)
    for _ in range(iters or cfg.iters):
        # W = 1/m for the Poisson deviance (Fisher scoring), identity for L2
        JWt = Jt / m.clamp_min(0.1)[:, None, :] if cfg.loss == "poisson" else Jt   # (P, n, T)
        A = JWt @ Jt.transpose(1, 2)                                               # (P, n, n) = JᵀWJ
        g = (JWt @ (y - m)[..., None])[..., 0]                                     # (P, n) descent direction
        # active set: a parameter resting on a bound that the descent direction pushes through takes
        # no step this iteration (otherwise projection eats the step and damping climbs for nothing)
        tol = 1e-9 * (1.0 + theta.abs())
        pinned = ((theta <= lower + tol) & (g < 0)) | ((theta >= upper - tol) & (g > 0))
        frozen = inactive | pinned
        diag = torch.diagonal(A, dim1=1, dim2=2)
        scale = torch.where(frozen, torch.ones_like(diag), diag.clamp_min(1e-12))
        A = A * (~frozen[:, :, None] & ~frozen[:, None, :]) + torch.diag_embed(frozen.to(A.dtype))
        g = g.masked_fill(frozen, 0.0)
        A = A + torch.diag_embed(nu[:, None] * scale) + 1e-12 * eye
        step = torch.linalg.solve(A, g[..., None])[..., 0]
        cand = _project(theta + step, K, T, cfg, active)
        # the candidate's Jacobian comes with its model at little extra cost (the pdf is shared), and
        # is the next iteration's Jacobian wherever the step is kept: one pdf evaluation per iteration
        m_c, J_c = _jacobian(cand, t, K)
        new = loss_of(y, m_c, cfg.loss)
        better = torch.isfinite(new) & (new < loss)
        theta = torch.where(better[:, None], cand, theta)
        loss = torch.where(better, new, loss)
        m = torch.where(better[:, None], m_c, m)
        Jt = torch.where(better[:, None, None], J_c, Jt)
        nu = torch.where(better, nu * 0.3, nu * 10.0).clamp(1e-9, 1e9)
    return theta, loss


def _smooth(y: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian smoothing along the last axis (reflect padding)."""
    if sigma <= 0:
        return y
    r = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-r, r + 1, dtype=y.dtype, device=y.device)
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    w = (w / w.sum()).view(1, 1, -1)
    pad = torch.nn.functional.pad(y[:, None, :], (r, r), mode="reflect" if y.shape[1] > r else "replicate")
    return torch.nn.functional.conv1d(pad, w)[:, 0]


def initial_components(y: torch.Tensor, cfg: FitConfig, shape: tuple[int, int] | None = None):
    """(theta (P, 4K + 1), active (P, K)) from counts ``y`` (P, T). ``shape`` = (H, W) with
    P = H·W enables the spatial pooling."""
    P, T = y.shape
    K = cfg.k_max
    ys = _smooth(y, cfg.smooth)
    if shape is not None and cfg.pool > 1:
        H, W = shape
        cube = ys.T.reshape(T, 1, H, W)
        r = cfg.pool // 2
        pooled = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(cube, (r, r, r, r), mode="replicate"),
                                                cfg.pool, stride=1) * cfg.pool ** 2
        yp = pooled.reshape(T, P).T.contiguous()
    else:
        yp = ys
    b0 = yp.median(dim=1).values                                                   # (P,)
    thresh = b0 + cfg.kappa * torch.sqrt(b0.clamp_min(1.0))
    left = torch.nn.functional.pad(yp[:, :-1], (1, 0), value=-float("inf"))
    right = torch.nn.functional.pad(yp[:, 1:], (0, 1), value=-float("inf"))
    is_peak = (yp > left) & (yp >= right) & (yp > thresh[:, None])
    height = torch.where(is_peak, yp - b0[:, None], torch.full_like(yp, -1.0))
    top_h, top_t = height.topk(min(K, T), dim=1)                                   # highest K
    found = top_h > 0
    order = torch.where(found, top_t, torch.full_like(top_t, T + 1)).argsort(dim=1)  # time order
    top_t = top_t.gather(1, order).to(y.dtype)
    top_h = top_h.gather(1, order).clamp_min(0.0)
    found = found.gather(1, order)
    ratio = (y.sum(1) / yp.sum(1).clamp_min(1e-12))[:, None]                        # pooled -> pixel
    s0, tau0 = cfg.sigma0, cfg.tau0
    a = top_h * ratio * (2 * torch.pi) ** 0.5 * s0 * 1.5
    mu = top_t - 0.5 * s0
    theta = torch.cat([a, mu, torch.full_like(a, s0), torch.full_like(a, 1.0 / tau0),
                       (b0 / (cfg.pool ** 2 if shape is not None and cfg.pool > 1 else 1))[:, None]], dim=1)
    return theta, found


def in_window(theta: torch.Tensor, K: int, T: int) -> torch.Tensor:
    """(P, K) photons each component puts on the grid t = 0..T−1, a·Σ_t g(t) (the model samples
    the density at the bin times). A component parked past the window's end with a huge amplitude
    counts for what it contributes, not for its nominal a."""
    a, mu, s, lam, _ = unpack(theta, K)
    t = torch.arange(T, dtype=theta.dtype, device=theta.device)
    return a * emg_pdf(t[None, None, :], mu[..., None], s[..., None], lam[..., None]).sum(-1)


def _windows(theta: torch.Tensor, active: torch.Tensor, T: int, cfg: FitConfig) -> tuple[torch.Tensor, int]:
    """Per-pixel window starts (P,) and one width for the batch: from 4σ0 + 8 bins before the
    earliest initial peak to max(32, 12τ0) bins after the latest, rounded up to 32 bins, at most T.
    Histograms are mostly empty time: the fit only needs where the returns are."""
    K = active.shape[1]
    mu = theta[:, K:2 * K]
    before = int(4 * cfg.sigma0 + 8)
    after = int(max(32.0, 12 * cfg.tau0))
    first = torch.where(active, mu, torch.full_like(mu, float("inf"))).min(1).values
    last = torch.where(active, mu, torch.full_like(mu, -float("inf"))).max(1).values
    has = active.any(1)
    span = torch.where(has, last - first, torch.zeros_like(first))
    need = int(span.max().item()) + before + after if has.any() else T
    width = min(T, 32 * -(-need // 32))
    lo = torch.where(has, torch.floor(first) - before, torch.zeros_like(first)).clamp(0, T - width).long()
    return lo, width


def fit_pixels(y: torch.Tensor, cfg: FitConfig | None = None, shape: tuple[int, int] | None = None):
    """Initialise, fit, prune weak components, refit. Returns (theta (P, 4K + 1), active (P, K),
    loss (P,)). ``y`` is float64 or float32 counts (P, T) on any device. With ``cfg.window`` the
    fit runs on each pixel's window around its initial peaks (loss is then the window's)."""
    cfg = (cfg or FitConfig()).validate()
    theta, active = initial_components(y, cfg, shape)
    K = cfg.k_max
    P, T = y.shape
    lo = torch.zeros(P, dtype=torch.long, device=y.device)
    if cfg.window:
        lo, width = _windows(theta, active, T, cfg)
        if width < T:
            y = y.gather(1, lo[:, None] + torch.arange(width, device=y.device)[None, :])
            theta = theta.clone()
            theta[:, K:2 * K] -= lo[:, None].to(theta.dtype)
    start = theta.clone()
    theta, loss = lm_fit(y, theta, active, cfg)
    # a second start with 4x longer tails: the (μ, λ) valley has a second basin at the λ bound, where
    # a wide component is explained as a shifted Gaussian; keep the lower loss per pixel
    alt = start
    alt[:, 3 * K:4 * K] *= 0.25
    alt, alt_loss = lm_fit(y, alt, active, cfg)
    better = alt_loss < loss
    theta = torch.where(better[:, None], alt, theta)
    loss = torch.where(better, alt_loss, loss)
    weak = active & (in_window(theta, K, y.shape[1]) < cfg.a_min)
    if weak.any():
        active = active & ~weak
        theta, loss = lm_fit(y, theta, active, cfg, iters=max(5, cfg.iters // 3))
    if cfg.bic and cfg.loss == "poisson":
        theta, active, loss = _bic_prune(y, theta, active, loss, cfg)
    theta = theta.clone()
    theta[:, K:2 * K] += lo[:, None].to(theta.dtype)
    return theta, active, loss


def _bic_prune(y, theta, active, loss, cfg: FitConfig, rounds: int = 2):
    """Backward elimination by BIC: the deviance is −2 log-likelihood up to a constant, so a
    component must lower it by more than its 4 parameters' 4·ln(T). Each round drops, per pixel,
    the component whose removal (others unchanged) costs least, if that is below the penalty, then
    refits the rest briefly."""
    import math

    K = active.shape[1]
    T = y.shape[1]
    t = torch.arange(T, dtype=y.dtype, device=y.device)
    penalty = 4.0 * math.log(T)
    for _ in range(rounds):
        gains = torch.full_like(active, float("inf"), dtype=y.dtype)
        for k in range(K):
            without = theta.clone()
            without[:, k] = 0.0
            gains[:, k] = loss_of(y, model_of(without, t, K), cfg.loss) - loss
        gains = torch.where(active, gains, torch.full_like(gains, float("inf")))
        best, which = gains.min(1)
        drop = best < penalty
        if not drop.any():
            break
        active = active.clone()
        active[drop, which[drop]] = False
        theta, loss = lm_fit(y, theta, active, cfg, iters=max(5, cfg.iters // 3))
    return theta, active, loss
