"""``bench``: every method side by side on the fixed suite, one run, ratios to the optimum.

Columns per graph: ``<method>_peak``, ``<method>_ratio`` (peak / best proven optimum, or best
known when nothing is proven) and ``<method>_s``. Ablations (ILP without fusion, without pruning)
run on graphs up to ``ablation_max_ops`` ops with their own shorter time limit, since unfused ILPs
stall beyond small graphs (an unproven ablation shows as a ratio without ``_optimal``)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from .config import ScheduleConfig
from .graph import Graph
from .schedule import schedule

__all__ = ["METHOD_CONFIGS", "bench_graph", "bench", "plot_bench", "real_onnx_graphs", "bench_suite"]

# The PP-OCR models the rapidocr-onnxruntime wheel ships, at the input sizes rapidocr runs them.
REAL_ONNX = (("ppocr-det", "ch_PP-OCRv4_det_infer.onnx", [1, 3, 640, 640]),
             ("ppocr-cls", "ch_ppocr_mobile_v2.0_cls_infer.onnx", [1, 3, 48, 192]),
             ("ppocr-rec", "ch_PP-OCRv4_rec_infer.onnx", [1, 3, 48, 320]))


def real_onnx_graphs() -> list[tuple[str, Graph]]:
    """The real ONNX graphs, when the rapidocr wheel is installed (it is a test dependency)."""
    import importlib.util
    from pathlib import Path

    from .onnx_import import import_onnx

    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or spec.origin is None:
        return []
    folder = Path(spec.origin).parent / "models"
    return [(name, import_onnx(folder / f, input_shapes={"x": shape}, name=name))
            for name, f, shape in REAL_ONNX if (folder / f).exists()]


def bench_suite(only: str = "") -> list[tuple[str, Graph]]:
    """The shipped synthetic suite plus the real ONNX graphs; ``only`` filters by name."""
    from .synth import load_suite

    return [(n, g) for n, g in load_suite() + real_onnx_graphs() if only in n]

METHOD_CONFIGS = {
    "auto": dict(method="auto"),
    "topo": dict(method="topo"),
    "rpo": dict(method="rpo"),
    "greedy": dict(method="greedy"),
    "beam": dict(method="beam"),
    "dp": dict(method="dp"),
    "ilp": dict(method="ilp"),
    "ilp-nofuse": dict(method="ilp", fuse=False),
    "ilp-noprune": dict(method="ilp", prune=False),
}
DEFAULT_METHODS = ("topo", "rpo", "greedy", "beam", "dp", "ilp", "auto", "ilp-nofuse", "ilp-noprune")


def bench_graph(name: str, g: Graph, methods: Iterable[str] = DEFAULT_METHODS, *, time_limit: float = 30.0,
                max_states: int = 2_000_000, ablation_max_ops: int = 48, ablation_time_limit: float = 10.0,
                solver: str = "highs") -> dict:
    row: dict = {"graph": name, "ops": g.n}
    results = {}
    for m in methods:
        if m.startswith("ilp-") and g.n > ablation_max_ops:
            continue
        limit = min(time_limit, ablation_time_limit) if m.startswith("ilp-") else time_limit
        cfg = ScheduleConfig(**METHOD_CONFIGS[m], time_limit=limit, max_states=max_states, solver=solver)
        t0 = time.perf_counter()
        try:
            r = schedule(g, cfg)
        except Exception as exc:  # noqa: BLE001 - e.g. DP past its state budget: recorded, not fatal
            row[f"{m}_error"] = str(getattr(exc, "message", exc))[:80]
            continue
        results[m] = r
        row[f"{m}_peak"] = r["peak"]
        row[f"{m}_s"] = round(time.perf_counter() - t0, 4)
        if r.get("optimal"):
            row[f"{m}_optimal"] = True
        if "fused_ops" in r:
            row["fused_ops"] = r["fused_ops"]
        if "ilp_vars" in r:
            row[f"{m}_vars"] = r["ilp_vars"]
            row[f"{m}_vars_unpruned"] = r["ilp_vars_unpruned"]
    proven = [r["peak"] for r in results.values() if r.get("optimal")]
    best = min(proven) if proven else min((r["peak"] for r in results.values()), default=None)
    row["optimum"] = best
    row["proven"] = bool(proven)
    for m, r in results.items():
        row[f"{m}_ratio"] = r["peak"] / best if best else 1.0
    return row


def bench(graphs: Iterable[tuple[str, Graph]], methods: Iterable[str] = DEFAULT_METHODS, **kw):
    """One row per graph (a generator, so a long run streams its rows)."""
    methods = list(methods)
    for name, g in graphs:
        yield bench_graph(name, g, methods, **kw)


def plot_bench(rows: list[dict], methods: Iterable[str], dst) -> None:
    """Peak / optimum per graph, one bar per method."""
    import numpy as np

    from mlkit import plots

    methods = [m for m in methods if any(f"{m}_ratio" in r for r in rows)]
    x = np.arange(len(rows))
    w = 0.8 / max(len(methods), 1)
    with plots.figure(dst=dst, width=max(7, 0.45 * len(rows) + 2), height=4) as (fig, ax):
        for k, m in enumerate(methods):
            ax.bar(x + k * w, [r.get(f"{m}_ratio", np.nan) for r in rows], w, label=m)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(x + 0.4 - w / 2, [r["graph"] for r in rows], rotation=70, ha="right", fontsize=7)
        ax.set_ylabel("peak / optimum")
        ax.set_ylim(bottom=0.9)
        ax.legend(fontsize=7, ncol=4)
