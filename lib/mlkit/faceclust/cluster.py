"""The clustering pipeline and its ablations, on a kNN graph whose distances may already be
refined by a similarity model:

=============  ==================  ===========================
method         density             parent distance
=============  ==================  ===========================
``chen``       NDDe (approximate)  TPDi            (the paper)
``chen-full``  NDDe (full)         TPDi
``ndde-only``  NDDe (approximate)  kNN distance
``tpdi-only``  sum of similarity   TPDi
``sumsim``     sum of similarity   kNN distance
=============  ==================  ===========================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mlkit.errors import InputError

from .density import approximate_ndde, ndde, sumsim_density
from .dpc import density_peaks
from .tpdi import tpdi

__all__ = ["METHODS", "ClusterResult", "cluster_graph"]

METHODS = ("chen", "chen-full", "ndde-only", "tpdi-only", "sumsim")


@dataclass
class ClusterResult:
    labels: np.ndarray
    density: np.ndarray
    distance: np.ndarray          # the distance parents were chosen by (TPDi or the kNN distance)
    parent: np.ndarray
    seconds: dict = field(default_factory=dict)


def cluster_graph(ids: np.ndarray, dists: np.ndarray, method: str = "chen", *, ndde_k: int = 20,
                  ndde_sigma: float = 0.5, damping: float = 0.1, eps: float = 0.05, tpdi_sigma: float = 0.05,
                  tau: float = 0.7, progress: Callable[[int, int], None] | None = None) -> ClusterResult:
    import time

    if method not in METHODS:
        raise InputError("unknown method", expected=", ".join(METHODS), got=method)
    for name, v in (("ndde sigma", ndde_sigma), ("tpdi sigma", tpdi_sigma), ("tau", tau)):
        if not v > 0:
            raise InputError(f"{name} must be > 0", got=str(v))
    secs = {}
    t = time.perf_counter()
    if method in ("chen", "ndde-only"):
        rho = approximate_ndde(ids, dists, ndde_k, ndde_sigma)
    elif method == "chen-full":
        rho = ndde(ids, dists, ndde_k, ndde_sigma, damping=damping, eps=eps)
    else:
        rho = sumsim_density(ids, dists)
    secs["density"] = time.perf_counter() - t
    t = time.perf_counter()
    if method in ("chen", "chen-full", "tpdi-only"):
        dist = tpdi(ids, dists, tpdi_sigma, progress=progress)
    else:
        dist = dists.astype(np.float64)
    secs["distance"] = time.perf_counter() - t
    t = time.perf_counter()
    labels, parent = density_peaks(ids, dist, rho, tau)
    secs["dpc"] = time.perf_counter() - t
    return ClusterResult(labels, rho, dist, parent, secs)
