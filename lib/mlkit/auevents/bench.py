"""EventFormer vs raw thresholding vs tuned post-processing vs oracle, side by side, per seed.

For every seed: ``synth.make(seed=…)`` (subject-exclusive split); the per-frame logistic
baseline fitted on the training subjects, its post-processing grid-tuned on out-of-fold training
probabilities (``baseline.benchmark``); EventFormer trained on the training subjects' sequences
(default configuration) and run on the test subjects; everything scored on the test subjects with
``metrics.evaluate`` at tIoU .1/.3/.5/.7. The EventFormer row carries its ratios to raw and tuned
post-processing at mAP@0.5 and in average mAP, measured in the same run.

Seeds run in parallel worker processes, one torch thread each (two single-threaded trainings on
a 2-core machine finish together in the time of one; three share the two cores).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["seed_rows", "run", "run_bench", "SHORT"]

SHORT = {"n_seqs": 60, "epochs": 15, "seeds": (0,)}   # what ``mlkit bench`` (make bench) runs


def seed_rows(seed: int, *, n_seqs: int = 120, epochs: int = 40, lr: float = 1e-3, config: dict | None = None,
              threads: int = 1, keep: dict | None = None, synth_options: dict | None = None) -> list[dict]:
    """Rows ``raw``, ``tuned``, ``oracle``, ``eventformer`` for one seed: ``map@t`` for t in .1/.3/.5/.7,
    ``average_map``, seconds; the EventFormer row adds ``vs_raw@0.5``, ``vs_tuned@0.5``,
    ``vs_tuned_avg``. ``keep`` (a dict) receives ``data``, ``gt`` and EventFormer's ``results``;
    ``synth_options`` go to ``synth.make``."""
    import torch

    from . import baseline, synth
    from .metrics import TIOUS, evaluate
    from .model import EventFormerConfig
    from .train import detect, fit

    torch.set_num_threads(max(1, threads))
    t0 = time.perf_counter()
    d = synth.make(n_seqs=n_seqs, seed=seed, **(synth_options or {}))
    gt = d.ground_truth()
    b = baseline.benchmark(d, tious=TIOUS, folds=min(5, len({d.subject[s] for s in d.seqs("train")})))
    base_s = time.perf_counter() - t0

    def row(method, m, avg, **extra):
        return {"seed": seed, "method": method, **{f"map@{t:g}": v for t, v in zip(TIOUS, m, strict=True)},
                "average_map": avg, **extra}

    rows = [row(r["method"], r["map"], r["average_map"], train_s=None, seconds=base_s) for r in b["rows"]]
    train, test = d.seqs("train"), d.seqs("test")
    cfg = EventFormerConfig(in_dim=d.feats[train[0]].shape[1], num_aus=len(d.aus), **(config or {}))
    t = time.perf_counter()
    model, norm, _ = fit({s: d.feats[s] for s in train}, {s: gt.db[s]["events"] for s in train}, d.aus, cfg,
                         epochs=epochs, lr=lr, seed=seed)
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    res = detect(model, norm, {s: d.feats[s] for s in test}, d.aus)
    ev = evaluate(gt, res, subset="test")
    if keep is not None:
        keep.update(data=d, gt=gt, results=res)
    by = {r["method"]: r for r in rows}
    i5 = list(TIOUS).index(0.5)

    def ratio(a, b):
        return a / b if b > 0 else float("inf")

    rows.append(row("eventformer", ev["map"], ev["average_map"], train_s=train_s,
                    seconds=train_s + time.perf_counter() - t,
                    **{"vs_raw@0.5": ratio(ev["map"][i5], by["raw"]["map@0.5"]),
                       "vs_tuned@0.5": ratio(ev["map"][i5], by["tuned"]["map@0.5"]),
                       "vs_tuned_avg": ratio(ev["average_map"], by["tuned"]["average_map"])}))
    return rows


def _seed_job(args):
    seed, kw = args
    return seed_rows(seed, **kw)


def run(seeds: Sequence[int] = (0, 1, 2), *, workers: int = 3, n_seqs: int = 120, epochs: int = 40,
        lr: float = 1e-3, config: dict | None = None, synth_options: dict | None = None,
        progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """``seed_rows`` for every seed (``workers`` processes; 1 = in this process), in seed order."""
    kw = {"n_seqs": n_seqs, "epochs": epochs, "lr": lr, "config": config, "synth_options": synth_options}
    jobs = [(int(s), kw) for s in seeds]
    out: dict[int, list[dict]] = {}
    if workers <= 1 or len(jobs) == 1:
        for j in jobs:
            out[j[0]] = _seed_job(j)
            if progress:
                progress(len(out), len(jobs))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        for k in env:                      # inherited by the spawned workers: one BLAS thread each
            os.environ[k] = "1"
        try:
            with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=mp.get_context("spawn")) as pool:
                futs = {pool.submit(_seed_job, j): j[0] for j in jobs}
                for f in as_completed(futs):
                    out[futs[f]] = f.result()
                    if progress:
                        progress(len(out), len(jobs))
        finally:
            for k, v in env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return [r for s in sorted(out) for r in out[s]]


def run_bench(workdir: Path) -> list[dict]:
    """The short run of ``mlkit bench``: one seed, 60 sequences, 15 epochs (the full comparison is
    ``mlkit au-events bench``: 3 seeds, 120 sequences, 40 epochs)."""
    return run(SHORT["seeds"], n_seqs=SHORT["n_seqs"], epochs=SHORT["epochs"], workers=1)
