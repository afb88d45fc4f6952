"""Defaults of the scheduling pipeline (the paper's values are not public; these are ours)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ScheduleConfig", "METHODS"]

METHODS = ("auto", "ilp", "dp", "beam", "greedy", "rpo", "topo")


@dataclass
class ScheduleConfig:
    method: str = "auto"
    fuse: bool = True            # iterative graph fusion before dp/beam/ilp/auto
    prune: bool = True           # topology-aware ILP variable pruning
    solver: str = "highs"        # highs | cbc
    time_limit: float = 60.0     # ILP seconds
    beam: int = 100              # beam width (states kept per level)
    max_states: int = 2_000_000  # exact-DP state budget before auto falls back to the ILP
    threads: int | None = None
