"""Flash accounting and the per-board verdict of ``mlkit mcubert inspect``.

int8 deployment bytes per tensor [R: the paper's storage format is not given; this is the
TFLM/CMSIS-NN convention]: weight matrices and embedding tables 1 byte per element plus a
per-tensor requantisation scale stored as int32 multiplier + int32 shift (8 bytes); biases int32
(4 bytes per element, they are added to int32 accumulators); LayerNorm γ/β int16 (2 bytes per
element). ``CODE_BYTES`` (100 KiB, the notes' allowance for the runtime and kernels) is added
before comparing with a board's flash.
"""

from __future__ import annotations

import math

from .config import BOARDS, BertConfig, Board, expected_shapes, module_params, param_count

__all__ = ["CODE_BYTES", "tensor_bytes", "flash_bytes", "inspect_record", "summary"]

CODE_BYTES = 100 * 1024
SCALE_BYTES = 8


def tensor_bytes(key: str, shape: tuple[int, ...]) -> int:
    n = math.prod(shape)
    if "LayerNorm" in key:
        return 2 * n
    if key.endswith(".bias"):
        return 4 * n
    return n + SCALE_BYTES


def flash_bytes(cfg: BertConfig) -> int:
    """Int8 bytes of every tensor; a clustered low-rank embedding adds its C+1 uint32 offsets and C
    uint16 ranks (as ``embedding.ClusteredLowRank.int8_bytes`` counts them)."""
    C = len(cfg.embedding_factors)
    return sum(tensor_bytes(k, s) for k, s in expected_shapes(cfg).items()) + (4 * (C + 1) + 2 * C if C else 0)


def inspect_record(cfg: BertConfig, *, boards: dict[str, Board] | None = None, code_bytes: int = CODE_BYTES,
                   activation_bytes: int | None = None, seq_len: int | None = None) -> dict:
    """Parameters per module, int8 flash bytes, embedding share and, per board, whether weights +
    code fit its flash (and, with ``activation_bytes``, whether the arena fits its SRAM)."""
    per = module_params(cfg)
    total = sum(per.values())
    flash = flash_bytes(cfg)
    rec = {"config": cfg.to_dict(), "params": total, "params_per_module": per,
           "embedding_params": per["embeddings.word"], "embedding_share": per["embeddings.word"] / total,
           "int8_flash_bytes": flash, "code_bytes": code_bytes}
    if activation_bytes is not None:
        rec.update(seq_len=seq_len, arena_bytes=activation_bytes)
    verdict = {}
    for name, b in (boards or BOARDS).items():
        v = {"flash": b.flash, "flash_fits": flash + code_bytes <= b.flash,
             "flash_headroom": b.flash - flash - code_bytes, "sram": b.sram}
        if activation_bytes is not None:
            v.update(sram_fits=activation_bytes <= b.sram, sram_headroom=b.sram - activation_bytes)
        v["fits"] = v["flash_fits"] and v.get("sram_fits", True)
        verdict[name] = v
    rec["boards"] = verdict
    return rec


def summary(p, *, board=None) -> str:
    """X-CUBE-AI-style text: RAM activations, flash weights (int8), MACCs; a verdict when a board
    (``config.Board``) is given."""
    s, cfg = p.schedule, p.schedule.cfg
    flash = flash_bytes(cfg)
    kib = lambda n: f"{n:,} B ({n / 1024:,.1f} KiB)"   # noqa: E731
    dtype = {1: "int8", 2: "int16", 4: "float32"}[s.elem_bytes]
    lines = [f"model            : BERT L{cfg.num_hidden_layers}/H{cfg.hidden_size}/A{cfg.num_attention_heads}/"
             f"FF{cfg.intermediate_size}, seq len {s.seq_len}, batch 1, {s.label}",
             f"RAM activations  : {kib(p.arena_bytes)} arena, {dtype}, align {p.alignment}; "
             f"peak live {kib(p.peak_live_bytes)} at {p.peak_step}",
             f"Flash weights    : {kib(flash)} (int8, {param_count(cfg):,} params; int32 biases, int16 "
             "LayerNorm, per-tensor scales)",
             f"MACCs            : {p.total_macs:,}"]
    if board is not None:
        ok = lambda a, lim: "fits" if a <= lim else "DOES NOT FIT"   # noqa: E731
        lines.append(f"board            : {board.name}: RAM {p.arena_bytes / 1024:,.1f} / {board.sram / 1024:,.0f} KiB "
                     f"{ok(p.arena_bytes, board.sram)}; flash {flash / 1024:,.1f} + {CODE_BYTES // 1024} code / "
                     f"{board.flash / 1024:,.0f} KiB {ok(flash + CODE_BYTES, board.flash)}")
    return "\n".join(lines)
