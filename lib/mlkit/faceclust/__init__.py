"""Face clustering that finds hard clusters: NDDe density + TPDi distance + density peaks.

Paper: Chen, Zhong, Chen, Shen, Huang, Wang, Liang, Sun, "On Mitigating Hard Clusters for Face
Clustering", ECCV 2022, arXiv 2207.11895. Formulas and defaults follow the official code
(``echoanran/On-Mitigating-Hard-Clusters``); see README.md for what is reconstructed.
"""

from .cluster import METHODS, cluster_graph
from .demo import run_bench, run_demo

__all__ = ["METHODS", "cluster_graph", "run_bench", "run_demo"]
