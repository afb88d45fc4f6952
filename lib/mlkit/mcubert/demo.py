"""``mlkit mcubert demo``: the whole story on one small model, in well under a minute on a CPU.

Synthetic sentiment data on the generated 30,522-word vocabulary; a BERT-tiny-config classifier
trained from scratch for a few epochs; its int8 flash per board (it fits none: the embedding is 89%
of it); the word embedding compressed (cluster-SVD) to the budget that makes the whole model fit
the NUCLEO-F746ZG's 1 MiB of flash with 100 KiB of code, then fine-tuned one epoch on the
remapped ids; a tiled int8 schedule at L = 128 planned against the board's 320 KiB of SRAM; the
int8 integer-only simulation (one arena of exactly the planned bytes) against float32 on a few dev
sentences; and the C arrays written by ``export_c``. One row per model (dense, compressed).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

__all__ = ["demo_rows", "run_demo", "run_bench", "BOARD", "SEQ_LEN"]

BOARD = "nucleo-f746zg"
DEMO_NAS = {"stage1_epochs": 4, "stage1_steps": 10, "stage2_steps": 80}
SEQ_LEN = 128
_WORD = "embeddings.word_embeddings.weight"


def _cosine(a, b) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _int8_check(model, cfg, sd, calib_ids, seqs):
    """(int8 scales calibrated on ``calib_ids``, smallest int8-vs-float32 cosine of the last hidden
    states, sentences whose int8 class equals the torch model's) over ``seqs``, each simulated at
    its own length (tiled, tile 16)."""
    import torch

    from .export import with_dense_embedding
    from .schedule import plan, tiled_schedule
    from .simulate import calibrate, simulate

    sd_dense = with_dense_embedding(sd, cfg)
    q = calibrate(sd_dense, cfg, calib_ids)
    cos, agree = [], 0
    for ids in seqs:
        L = len(ids)
        h8 = simulate(plan(tiled_schedule(cfg, L, min(16, L))), sd_dense, ids, quant=q)
        h32 = simulate(plan(tiled_schedule(cfg, L, min(16, L), elem_bytes=4)), sd_dense, ids)
        cos.append(_cosine(h8, h32))
        with torch.no_grad():
            pred8 = int(model.classifier(model.pooler(torch.from_numpy(h8)[None])).argmax())
            pred = int(model(torch.from_numpy(np.asarray(ids))[None])[2].argmax())
        agree += pred8 == pred
    return q, min(cos), agree


def demo_rows(workdir: Path, *, n_train: int = 3000, n_dev: int = 500, epochs: int = 2, ft_epochs: int = 1,
              lr: float = 2e-3, ft_lr: float = 1e-3, max_len: int = 32, clusters: int = 16, method: str = "nas",
              seed: int = 0, nas_options: dict | None = None, sim_sentences: int = 2) -> list[dict]:
    """Rows ``dense`` and the compressed model: params, int8 flash KiB (``report.flash_bytes``), the
    boards whose flash holds it with the code, dev accuracy (the compressed one before and after
    fine-tuning), the int8 arena at L = 128 (head-outer, tile 16; the baseline's beside it) and
    whether it fits the board's SRAM, the int8-vs-float32 cosine and class agreement of the
    simulation, and (compressed) the exported C arrays' bytes and whether they fit with the code. Writes ``workdir/mcu/model_data.{h,c}``,
    ``manifest.json`` and ``workdir/vocab.txt`` (the remapped vocabulary for the host tokenizer)."""
    import torch

    from .bench import _Setup
    from .compress import compress_embedding, flash_budget
    from .config import BOARDS
    from .export import export_c
    from .model import BertModel
    from .report import CODE_BYTES, flash_bytes
    from .schedule import baseline_schedule, plan, tiled_schedule
    from .synth import write_vocab
    from .train import fit, predict

    workdir = Path(workdir)
    board = BOARDS[BOARD]
    t0 = time.perf_counter()
    s = _Setup(n_train, n_dev, max_len, seed, 8000)
    torch.manual_seed(seed)
    model = BertModel(s.cfg)
    fit(model, s.enc_tr, s.tr.y, epochs=epochs, lr=lr, seed=seed)

    def acc(m, enc):
        return float((predict(m, enc) == s.dv.y).mean())

    def seqs(enc, idx):
        ids, _, mask = enc
        return [ids[i, : int(mask[i].sum())].numpy() for i in idx]

    def row(name, cfg, m, enc_tr, enc_dv, before=None):
        f = flash_bytes(cfg)
        base = plan(baseline_schedule(cfg, SEQ_LEN)).arena_bytes
        sp = plan(tiled_schedule(cfg, SEQ_LEN, 16, "head-outer"))
        q, cos, agree = _int8_check(m, cfg, m.state_dict(), seqs(enc_tr, range(8)), seqs(enc_dv, range(sim_sentences)))
        fits = [b.name for b in BOARDS.values() if f + CODE_BYTES <= b.flash]
        return {"model": name, "params": sum(p.numel() for p in m.parameters()), "flash_kib": f / 1024,
                "fits_flash": ", ".join(fits) or "none", "dev_acc_before_ft": before, "dev_acc": acc(m, enc_dv),
                "arena_kib": sp.arena_bytes / 1024, "baseline_arena_kib": base / 1024,
                "fits_sram": sp.arena_bytes <= board.sram, "int8_cosine_min": cos,
                "int8_agree": f"{agree}/{sim_sentences}", "export_flash_kib": None, "export_fits_flash": None,
                "seconds": 0.0}, sp, q

    dense_row = row("dense", s.cfg, model, s.enc_tr, s.enc_dv)[0]
    dense_row["seconds"] = time.perf_counter() - t0
    t = time.perf_counter()
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    budget = flash_budget(s.cfg, sd, board.flash, clusters=clusters, seed=seed, calib_ids=seqs(s.enc_tr, range(8)),
                          svd=method == "svd")
    task = None
    if method == "nas":                 # the task term: the trained model's cross-entropy
        import copy

        from .nas import Task

        task = Task(copy.deepcopy(model), s.enc_tr, s.tr.y, _rng=np.random.default_rng(seed))
    cfg, new_sd, perm, rep = compress_embedding(s.cfg, sd, method=method, budget_bytes=budget, clusters=clusters,
                                                seed=seed, freq=s.counts + 1.0, task=task,
                                                nas_options=nas_options or DEMO_NAS)
    small = BertModel(cfg)
    small.load_state_dict(new_sd, strict=True)
    inv = torch.from_numpy(np.argsort(perm))
    tr_new, dv_new = (inv[s.enc_tr[0]], *s.enc_tr[1:]), (inv[s.enc_dv[0]], *s.enc_dv[1:])
    before = acc(small, dv_new)
    fit(small, tr_new, s.tr.y, epochs=ft_epochs, lr=ft_lr, seed=seed + 1)
    comp_row, sp, q = row(f"{method} C={clusters}", cfg, small, tr_new, dv_new, before=before)
    manifest = export_c(small.state_dict(), cfg, q, sp, workdir / "mcu")
    write_vocab([s.tok.vocab[i] for i in perm], workdir / "vocab.txt")
    comp_row["export_flash_kib"] = manifest["totals"]["flash_bytes"] / 1024
    comp_row["export_fits_flash"] = manifest["totals"]["flash_bytes"] + CODE_BYTES <= board.flash
    comp_row["seconds"] = time.perf_counter() - t
    return [dense_row, comp_row]


def run_demo(workdir: Path) -> dict:
    d, c = demo_rows(workdir)
    return {"what": f"mcubert: BERT-tiny on synthetic sentiment, embedding compressed to fit {BOARD} "
                    f"(1 MiB flash incl. 100 KiB code, 320 KiB SRAM), int8 simulated and exported to C",
            "metric": f"dev acc dense -> compressed; int8 flash KiB dense -> compressed (its C arrays); "
                      f"arena KiB (L={SEQ_LEN}, tile 16)",
            "value": f"{d['dev_acc']:.3f} -> {c['dev_acc']:.3f}; {d['flash_kib']:,.0f} -> {c['flash_kib']:,.0f} "
                     f"({c['export_flash_kib']:,.0f}) KiB; {c['arena_kib']:.1f} KiB"}


def run_bench(workdir: Path) -> list[dict]:
    from .bench import run_bench as bench

    return bench(workdir)
