#!/usr/bin/env python3
"""Print the mcubert activation-memory table (paper notes §7 check 6 and the bench's memory rows).

    .venv/bin/python tools/mcubert_memory_table.py [--jsonl] [--align 16] [--elem-bytes 1]

Rows: {tiny, mini} x L in {64, 128, 256, 512} x {baseline (TFLM-style graph), head-tiled (tile = L:
per head only), head+token tiled (head-outer, best tile and tile 16), tile-outer (best tile)}.
Arena bytes come from mlkit.arena.plan_arena; ratio = baseline arena / this arena. "Best" is the
smallest arena over tiles 1, 2, 4, ..., L (ties: the larger tile)."""

import argparse
import json

from mlkit.mcubert.config import MINI, TINY
from mlkit.mcubert.schedule import baseline_schedule, plan, search_tile, tiled_schedule


def rows(align: int, elem_bytes: int):
    for name, cfg in (("tiny", TINY), ("mini", MINI)):
        for L in (64, 128, 256, 512):
            base = plan(baseline_schedule(cfg, L, elem_bytes=elem_bytes), align)
            bh = search_tile(cfg, L, orders=("head-outer",), elem_bytes=elem_bytes, alignment=align)
            bt = search_tile(cfg, L, orders=("tile-outer",), elem_bytes=elem_bytes, alignment=align)
            variants = [("baseline", base),
                        ("head-tiled (T=L)", plan(tiled_schedule(cfg, L, L, elem_bytes=elem_bytes), align)),
                        ("head+token, best T", plan(tiled_schedule(cfg, L, bh.tile, elem_bytes=elem_bytes), align)),
                        ("head+token, T=16", plan(tiled_schedule(cfg, L, min(16, L), elem_bytes=elem_bytes), align)),
                        ("tile-outer, best T", plan(tiled_schedule(cfg, L, bt.tile, "tile-outer",
                                                                   elem_bytes=elem_bytes), align))]
            for label, p in variants:
                yield {"model": name, "seq_len": L, "schedule": label, "order": p.schedule.order,
                       "tile": p.schedule.tile, "arena_bytes": p.arena_bytes, "arena_kib": p.arena_bytes / 1024,
                       "peak_live_bytes": p.peak_live_bytes, "fragmentation": round(p.fragmentation, 4),
                       "peak_step": p.peak_step, "ratio": round(base.arena_bytes / p.arena_bytes, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jsonl", action="store_true", help="JSON lines instead of a markdown table")
    ap.add_argument("--align", type=int, default=16)
    ap.add_argument("--elem-bytes", type=int, default=1, help="1 = int8, 4 = float32")
    a = ap.parse_args()
    if not a.jsonl:
        print("| model | L | schedule | tile | arena KiB | peak live B | frag | peak step | ratio |")
        print("|---|---|---|---|---|---|---|---|---|")
    for r in rows(a.align, a.elem_bytes):
        if a.jsonl:
            print(json.dumps(r), flush=True)
        else:
            print(f"| {r['model']} | {r['seq_len']} | {r['schedule']} | {r['tile'] or '-'} | {r['arena_kib']:.2f} "
                  f"| {r['peak_live_bytes']:,} | {r['fragmentation']:.3f} | {r['peak_step']} | {r['ratio']:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
