"""Memory-aware DNN scheduling with iterative graph fusion and a pruned ILP.

Paper: Zhong, Li, Liang, Wang, Huang, "Memory-aware Scheduling for Complex Wired Networks with
Iterative Graph Optimization", ICCAD 2023, arXiv 2308.13898. The method section is not public:
the fusion rules (F1/F2), the ILP with topology-aware variable pruning and the pipeline are a
reconstruction (see README.md), checked against brute force and exact DP.
"""

from .config import ScheduleConfig
from .demo import run_bench, run_demo
from .graph import SCHEMA, Graph, Op, Tensor, check_order, simulate
from .schedule import schedule

__all__ = ["SCHEMA", "Graph", "Op", "Tensor", "ScheduleConfig", "check_order", "run_bench", "run_demo",
           "schedule", "simulate"]
