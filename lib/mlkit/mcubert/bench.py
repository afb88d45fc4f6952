"""``mlkit mcubert bench``: activation memory of the schedules and embedding compression side by
side, each against its baseline in the same run (paper notes §7, "Benchmark").

``memory_rows``: int8 arena bytes (``schedule.plan``, greedy by size, the TFLM planner) of the
TFLM-style ``baseline`` graph (all H×L×L scores materialised), ``head-tiled`` (per head, query
tile = L: no token tiling), ``head+token tiled`` (head-outer, tile 16), ``tile-outer`` (tile 16)
and ``best`` (``search_tile``: the smallest arena over tiles 1, 2, 4, ..., L and both orders), per
model and sequence length; ``ratio_vs_baseline`` = baseline arena / this arena.

``compression_rows``: one shared setup (``synth.sentiment`` on the generated 30,522-word
vocabulary, a BERT-tiny-config classifier trained from scratch), then per ratio one int8 byte
budget for the word-embedding table, the same for every method (the bytes ``ratio`` allows the
table with C clusters' overhead, as ``tools/mcubert_accuracy.py``), each method compressed to it
and fine-tuned the same number of epochs on the remapped ids. The dense row is the same model
fine-tuned those epochs too (the fair reference: the same total epochs). ``error_vs_svd`` =
relative error / global SVD's at the same ratio. With ``accuracy=False`` nothing is trained:
reconstruction figures only, on ``table`` (e.g. the real MiniLM embedding) or on the untrained
model's table.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from mlkit.errors import InputError

from .config import PRESETS, TINY, BertConfig, param_count
from .schedule import baseline_schedule, plan, search_tile, tiled_schedule

__all__ = ["memory_rows", "compression_rows", "run_bench", "NAS_OPTIONS", "SCHEDULES"]

SCHEDULES = ("baseline", "head-tiled", "head+token tiled", "tile-outer", "best")
NAS_OPTIONS = {"stage1_epochs": 6, "stage1_steps": 20, "stage2_steps": 150}
_WORD = "embeddings.word_embeddings.weight"


# ---------------------------------------------------------------- memory
def memory_rows(models=("tiny", "mini"), seq_lens=(64, 128, 256, 512), *, align: int = 16, tile: int = 16,
                elem_bytes: int = 1) -> Iterator[dict]:
    """One row per (model, L, schedule in :data:`SCHEDULES`): model, seq_len, schedule, tile, order,
    arena_bytes, arena_kib, ratio_vs_baseline, peak_live_bytes, fragmentation, peak_step.
    ``models``: names in ``config.PRESETS`` or ``BertConfig`` objects (named ``custom``)."""
    for m in models:
        if isinstance(m, BertConfig):
            name, cfg = "custom", m
        elif m in PRESETS:
            name, cfg = m, PRESETS[m]
        else:
            raise InputError("unknown model", expected=", ".join(PRESETS), got=str(m))
        for L in seq_lens:
            base = plan(baseline_schedule(cfg, L, elem_bytes=elem_bytes), align)
            t = min(tile, L)
            best = search_tile(cfg, L, elem_bytes=elem_bytes, alignment=align)
            plans = {"baseline": base,
                     "head-tiled": plan(tiled_schedule(cfg, L, L, "head-outer", elem_bytes=elem_bytes), align),
                     "head+token tiled": plan(tiled_schedule(cfg, L, t, "head-outer", elem_bytes=elem_bytes), align),
                     "tile-outer": plan(tiled_schedule(cfg, L, t, "tile-outer", elem_bytes=elem_bytes), align),
                     "best": plan(tiled_schedule(cfg, L, best.tile, best.order, elem_bytes=elem_bytes), align)}
            for label, p in plans.items():
                yield {"model": name, "seq_len": L, "schedule": label, "tile": p.schedule.tile,
                       "order": p.schedule.order, "arena_bytes": p.arena_bytes, "arena_kib": p.arena_bytes / 1024,
                       "ratio_vs_baseline": base.arena_bytes / p.arena_bytes, "peak_live_bytes": p.peak_live_bytes,
                       "fragmentation": p.fragmentation, "peak_step": p.peak_step}


# ---------------------------------------------------------------- compression
def table_budget(V: int, D: int, ratio: float, clusters: int) -> int:
    """int8 bytes the table gets at ``ratio``: V·D / ratio parameters plus the overhead of
    ``clusters`` clusters (offsets, ranks, two scales each), as ``compress`` computes it."""
    from . import embedding as E

    C = clusters
    return int(V * D / ratio + E.OFFSET_BYTES * (C + 1) + E.RANK_BYTES * C + 2 * E.SCALE_BYTES * C)


def dense_table(sd, cfg: BertConfig, perm: np.ndarray | None = None) -> np.ndarray:
    """(V, D) float64 word table of a (possibly compressed) state dict, in the original id order
    (``perm``: new id -> old id, from ``compress_embedding``)."""
    from .export import with_dense_embedding

    w = with_dense_embedding(sd, cfg)[_WORD]
    rows = np.asarray(w.detach().cpu().numpy() if hasattr(w, "detach") else w, np.float64)
    if perm is None:
        return rows
    out = np.empty_like(rows)
    out[np.asarray(perm)] = rows
    return out


class _Setup:
    """The shared data and model of ``compression_rows``."""

    def __init__(self, n_train, n_dev, max_len, seed, fillers):
        import tempfile

        from .data import Examples
        from .synth import make_vocab, sentiment, write_vocab
        from .tokenizer import WordPiece
        from .train import encode_examples

        lines, _ = make_vocab()
        with tempfile.TemporaryDirectory() as tmp:
            write_vocab(lines, Path(tmp) / "vocab.txt")
            self.tok = WordPiece(Path(tmp) / "vocab.txt")

        def examples(rows):
            return Examples([r["text"] for r in rows], None, np.array([r["label"] for r in rows]), None)

        self.tr = examples(sentiment(n_train, seed=seed, vocab=lines, fillers=fillers))
        self.dv = examples(sentiment(n_dev, seed=seed + 10_000, vocab=lines, fillers=fillers))
        self.enc_tr = encode_examples(self.tok, self.tr, max_len)
        self.enc_dv = encode_examples(self.tok, self.dv, max_len)
        ids, _, mask = self.enc_tr
        self.counts = np.bincount(ids[mask.bool()].numpy(), minlength=self.tok.vocab_size).astype(np.float64)
        self.cfg = replace(TINY, vocab_size=self.tok.vocab_size, num_labels=2)


def _accuracy(model, enc, y) -> float:
    from .train import predict

    return float((predict(model, enc) == y).mean())


def compression_rows(ratios=(4.0, 8.0, 16.0), methods=("svd", "groupreduce", "cluster-svd", "nas"), *,
                     n_train: int = 6000, n_dev: int = 1000, epochs: int = 4, ft_epochs: int = 1, lr: float = 2e-3,
                     ft_lr: float = 1e-3,
                     max_len: int = 32, fillers: int = 8000, clusters: int = 16, seed: int = 0, table=None,
                     freq=None, config: BertConfig | None = None, accuracy: bool = True,
                     nas_options: dict | None = None,
                     progress: Callable[[str], None] | None = None) -> Iterator[dict]:
    """A ``dense`` row, then per ratio one row per method (yielded once the ratio is done, so
    ``error_vs_svd`` is known): ratio, method, embedding_int8_bytes, budget_int8_bytes,
    total_ratio, relative_error (unweighted Frobenius), weighted_relative_error (weights: train
    token counts + 1, or ``freq``), dev_acc_before_ft, dev_acc, seconds, error_vs_svd, clusters,
    params.

    ``accuracy=True``: train the BERT-tiny config ``epochs`` on ``n_train`` synthetic examples
    (AdamW, ``lr``), then fine-tune dense and every compressed model ``ft_epochs`` at ``ft_lr``;
    NAS searches with the task term (the frozen trained model's cross-entropy). ``accuracy=False``: no training;
    the table is ``table`` (``freq``: its token weights; ``config``: the model it belongs to, for
    ``total_ratio``) or, without one, the untrained model's. Methods: ``compress.METHODS``."""
    import torch

    from . import embedding as E
    from . import nas
    from .compress import METHODS, compress_embedding
    from .model import BertModel
    from .train import fit

    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise InputError("unknown compression method", expected=", ".join(METHODS), got=", ".join(bad))
    if any(not r > 1 for r in ratios):
        raise InputError("compression ratios must be > 1", got=str(list(ratios)))
    if accuracy and table is not None:
        raise InputError("accuracy needs the trained model's own table", hint="pass accuracy=False with table=")
    say = progress or (lambda _msg: None)
    opts = NAS_OPTIONS if nas_options is None else nas_options
    t0 = time.perf_counter()
    setup = base = None
    if table is not None:
        tab = np.asarray(table, np.float64)
        if tab.ndim != 2 or not np.isfinite(tab).all():
            raise InputError("embedding table must be a finite (V, D) array", got=f"shape {tab.shape}")
        V, D = tab.shape
        cfg = config or BertConfig(vocab_size=V, hidden_size=D, num_attention_heads=1)
        if (cfg.vocab_size, cfg.hidden_size) != (V, D):
            raise InputError("config does not match the table", expected=f"vocab {V}, hidden {D}",
                             got=f"vocab {cfg.vocab_size}, hidden {cfg.hidden_size}")
        sd = {_WORD: torch.from_numpy(tab).float()}
        weights = None if freq is None else np.asarray(freq, np.float64)
        tab = sd[_WORD].double().numpy()          # the float32 table every method sees
    else:
        setup = _Setup(n_train, n_dev, max_len, seed, fillers)
        cfg = setup.cfg
        torch.manual_seed(seed)
        base = BertModel(cfg)
        if accuracy:
            fit(base, setup.enc_tr, setup.tr.y, epochs=epochs, lr=lr, seed=seed)
        sd = {k: v.detach().clone() for k, v in base.state_dict().items()}
        tab = sd[_WORD].double().numpy()
        V, D = tab.shape
        weights = setup.counts + 1.0
    dense_params = param_count(cfg)
    known_model = table is None or config is not None
    row = {"ratio": 1.0, "method": "dense", "embedding_int8_bytes": V * D + E.SCALE_BYTES, "budget_int8_bytes": None,
           "total_ratio": 1.0 if known_model else None, "relative_error": 0.0, "weighted_relative_error": 0.0,
           "dev_acc_before_ft": None, "dev_acc": None, "seconds": time.perf_counter() - t0, "error_vs_svd": None,
           "clusters": 1, "params": dense_params if known_model else V * D}
    if accuracy:
        t = time.perf_counter()
        dense = copy.deepcopy(base)
        row["dev_acc_before_ft"] = _accuracy(base, setup.enc_dv, setup.dv.y)
        fit(dense, setup.enc_tr, setup.tr.y, epochs=ft_epochs, lr=ft_lr, seed=seed + 1)
        row["dev_acc"] = _accuracy(dense, setup.enc_dv, setup.dv.y)
        row["seconds"] += time.perf_counter() - t
    yield row
    say("dense")
    for ratio in ratios:
        budget = table_budget(V, D, ratio, clusters)
        out = []
        for m in methods:
            t = time.perf_counter()
            task = None
            if m == "nas" and accuracy:
                task = nas.Task(copy.deepcopy(base), setup.enc_tr, setup.tr.y, _rng=np.random.default_rng(seed))
            new_cfg, new_sd, perm, rep = compress_embedding(
                cfg, sd, method=m, budget_bytes=budget, clusters=clusters, seed=seed, freq=weights, task=task,
                nas_options=opts if m == "nas" else None)
            rec = dense_table(new_sd, new_cfg, perm)
            r = {"ratio": float(ratio), "method": m, "embedding_int8_bytes": rep["embedding_int8_bytes"],
                 "budget_int8_bytes": budget, "total_ratio": rep["total_ratio"] if known_model else None,
                 "relative_error": rep["relative_error"],
                 "weighted_relative_error": None if weights is None else E.relative_error(tab, rec, weights=weights),
                 "dev_acc_before_ft": None, "dev_acc": None, "seconds": 0.0, "error_vs_svd": None,
                 "clusters": rep["clusters"], "params": param_count(new_cfg) if known_model else rep["embedding_params"][1]}
            if accuracy:
                model = BertModel(new_cfg)
                model.load_state_dict(new_sd, strict=True)
                inv = torch.from_numpy(np.argsort(perm))
                tr_new = (inv[setup.enc_tr[0]], *setup.enc_tr[1:])
                dv_new = (inv[setup.enc_dv[0]], *setup.enc_dv[1:])
                r["dev_acc_before_ft"] = _accuracy(model, dv_new, setup.dv.y)
                fit(model, tr_new, setup.tr.y, epochs=ft_epochs, lr=ft_lr, seed=seed + 1)
                r["dev_acc"] = _accuracy(model, dv_new, setup.dv.y)
            r["seconds"] = time.perf_counter() - t
            out.append(r)
            say(f"{m} {ratio:g}x")
        svd = next((r for r in out if r["method"] == "svd"), None)
        for r in out:
            if svd is not None and svd["relative_error"] > 0:
                r["error_vs_svd"] = r["relative_error"] / svd["relative_error"]
            yield r


def run_bench(workdir: Path) -> list[dict]:
    """Memory rows, then compression rows, with the defaults (each tagged ``table``)."""
    rows = [{"table": "memory", **r} for r in memory_rows()]
    rows += [{"table": "compression", **r} for r in compression_rows()]
    return rows
