"""The tools mlkit ships. A tool is listed here only once it works end to end; ``mlkit --help``,
``mlkit demo``, ``mlkit bench`` and ``mlkit doctor`` read this list.

Each tool's library package exposes ``run_demo(workdir) -> dict`` (keys ``what``, ``metric``,
``value``) and ``run_bench(workdir) -> list[dict]``; its CLI module exposes a Typer named ``app``.
``requires`` names what ``doctor`` must find for it: ``python:<module>``, ``encoder:<name>``,
``filter:<name>``, ``solver:<pulp name>``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Tool", "TOOLS", "by_name"]


@dataclass(frozen=True)
class Tool:
    name: str          # subcommand, e.g. "faceclust"
    package: str       # library package, e.g. "mlkit.faceclust"
    cli: str           # CLI module, e.g. "mlkit_cli.commands.faceclust"
    summary: str
    requires: tuple[str, ...] = ()


TOOLS: tuple[Tool, ...] = (
    Tool("memsched", "mlkit.memsched", "mlkit_cli.commands.memsched",
         "Memory-aware DNN scheduling: graph fusion + pruned ILP (lowest peak activation memory).",
         requires=("python:onnx", "solver:HiGHS")),
    Tool("faceclust", "mlkit.faceclust", "mlkit_cli.commands.faceclust",
         "Face clustering for hard clusters: NDDe density + TPDi distance + density peaks.",
         requires=("python:faiss",)),
    Tool("tof-compress", "mlkit.tofcompress", "mlkit_cli.commands.tof_compress",
         "Time-resolved light transport as EMG mixtures: ~50x smaller, any time grid, depth, NLOS f-k.",
         requires=("python:h5py", "python:pywt")),
    Tool("mcubert", "mlkit.mcubert", "mlkit_cli.commands.mcubert",
         "BERT on microcontrollers: clustered low-rank embedding NAS + tiled int8 schedules, C export.",
         requires=("python:tokenizers", "python:safetensors")),
    Tool("au-events", "mlkit.auevents", "mlkit_cli.commands.au_events",
         "Facial action unit events as class-specific sets (EventFormer): train, detect, ActivityNet mAP.",
         requires=("python:safetensors",)),
)


def by_name(name: str) -> Tool:
    for t in TOOLS:
        if t.name == name:
            return t
    raise KeyError(name)
