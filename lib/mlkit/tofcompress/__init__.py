"""Time-resolved illumination as mixtures of exponentially-modified Gaussians.

Paper: Royo, Huang, Liang, Song, Muñoz, Gutierrez, Marco, "Structure-Aware Parametric
Representations for Time-Resolved Light Transport", Optics Letters, arXiv 2308.15957. The method
section is not public: the fitting pipeline is a reconstruction (paper notes §1.3).
"""

from .demo import run_bench, run_demo

__all__ = ["run_bench", "run_demo"]
