"""mlkit mcubert: BERT on microcontrollers: clustered low-rank embeddings + tiled scheduling."""

from typing import Annotated

import typer

from .. import _output
from .._app import MlkitTyper
from .._options import Device, DeviceName, Fmt, Format, Output

app = MlkitTyper(help="MCUBERT (Yang et al., ICCAD 2024): fit a BERT's flash and SRAM to a microcontroller: "
                 "clustered low-rank embeddings, tiled attention/FFN schedules, int8 export.")

Ckpt = Annotated[str, typer.Argument(metavar="CKPT", help="Checkpoint folder (config.json + model.safetensors or "
                                     "pytorch_model.bin), a weights file with config.json beside it, or a preset: "
                                     "tiny, mini, minilm-l6.")]


def _config(src: str):
    """(BertConfig, state dict or None) from a checkpoint, or a preset's config."""
    from pathlib import Path

    from mlkit.mcubert.config import PRESETS

    if src in PRESETS and not Path(src).exists():
        return PRESETS[src], None
    from mlkit.mcubert.model import load_checkpoint

    return load_checkpoint(src)


def _boards(target: str, sram: int, flash: int):
    from mlkit.errors import InputError
    from mlkit.mcubert.config import BOARDS, Board

    if sram or flash:
        if not (sram > 0 and flash > 0):
            raise InputError("a custom board needs both --sram and --flash", got=f"sram {sram}, flash {flash}")
        return {"custom": Board("custom", sram, flash, 0)}
    if target:
        if target not in BOARDS:
            raise InputError("unknown --target", expected=", ".join(BOARDS), got=target)
        return {target: BOARDS[target]}
    return dict(BOARDS)


def _bytes(text: str) -> int:
    """'320K', '1M', '1.4M', '65536' -> bytes (K = 1024)."""
    from mlkit.errors import InputError

    t = text.strip().upper().removesuffix("B")
    mult = {"K": 1024, "M": 1024 ** 2}.get(t[-1:], 1)
    try:
        v = float(t[:-1] if mult > 1 else t) * mult
    except ValueError:
        v = -1
    if v <= 0:
        raise InputError("bad byte count", expected="e.g. 320K, 2M or 65536", got=text)
    return int(v)


@app.command()
def inspect(src: Ckpt,
            target: Annotated[str, typer.Option(help="Board: nucleo-f746zg, nucleo-f767zi, nucleo-h7a3zi-q "
                                                     "[all three].")] = "",
            sram: Annotated[str, typer.Option(help="Custom board SRAM, e.g. 320K.")] = "",
            flash: Annotated[str, typer.Option(help="Custom board flash, e.g. 1M.")] = "",
            output: Output = "-", format: Format = Fmt.jsonl):
    """Parameters per module, int8 flash bytes, embedding share, fits / does not fit per board."""
    from mlkit.mcubert.report import inspect_record

    cfg, _ = _config(src)
    boards = _boards(target, _bytes(sram) if sram else 0, _bytes(flash) if flash else 0)
    rec = {"checkpoint": src, **inspect_record(cfg, boards=boards)}
    _output.emit([rec], format, output, title="mcubert inspect")


@app.command()
def boards(output: Output = "-", format: Format = Fmt.table):
    """The boards --target knows: SRAM and flash bytes, clock."""
    from mlkit.mcubert.config import BOARDS

    _output.emit(({"board": b.name, "sram_bytes": b.sram, "flash_bytes": b.flash, "mhz": b.mhz}
                  for b in BOARDS.values()), format, output, title="mcubert boards")


@app.command()
def synth(kind: Annotated[str, typer.Argument(metavar="KIND", help="sentiment")],
          output: Annotated[str, typer.Option("-o", "--output", help="Folder to write: train.jsonl, dev.jsonl, "
                                              "vocab.txt.")],
          n: Annotated[int, typer.Option(help="Training examples (dev gets n/10, at least 200).")] = 20000,
          vocab: Annotated[str, typer.Option(help="A BERT vocab.txt to draw words from [a generated "
                                                  "30,522-entry vocabulary].")] = "",
          seed: Annotated[int, typer.Option(help="Random seed.")] = 0):
    """Synthetic task data (JSONL with text/label) and its vocabulary."""
    import json
    from pathlib import Path

    from mlkit.codecs._io import atomic_dir
    from mlkit.errors import InputError
    from mlkit.mcubert.synth import make_vocab, sentiment, write_vocab

    if kind != "sentiment":
        raise InputError("unknown synthetic task", expected="sentiment", got=kind)
    if vocab:
        from mlkit.mcubert.tokenizer import WordPiece

        lines = WordPiece(vocab).vocab
    else:
        lines, _ = make_vocab()
    train = sentiment(n, seed=seed, vocab=lines if vocab else None)
    dev = sentiment(max(200, n // 10), seed=seed + 10_000, vocab=lines if vocab else None)
    with atomic_dir(output) as tmp:
        for name, rows in (("train.jsonl", train), ("dev.jsonl", dev)):
            Path(tmp, name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        write_vocab(lines, Path(tmp) / "vocab.txt")
    _output.note(f"{output}: {len(train)} train / {len(dev)} dev examples, vocabulary {len(lines)}")


def _device(name: str) -> str:
    from mlkit.tensors import resolve_device

    return str(resolve_device(name))


@app.command()
def train(data: Annotated[str, typer.Argument(metavar="DATA", help="Training data: GLUE TSV or JSONL.")],
          output: Annotated[str, typer.Option("-o", "--output", help="Checkpoint folder to write.")],
          task: Annotated[str, typer.Option(help="sst2, cola, mrpc, qqp, qnli, rte, mnli, stsb or jsonl.")] = "jsonl",
          init: Annotated[str, typer.Option(help="Checkpoint to fine-tune (its vocab.txt is used).")] = "",
          config: Annotated[str, typer.Option(help="Preset for training from scratch: tiny, mini.")] = "tiny",
          vocab: Annotated[str, typer.Option(help="vocab.txt [the --init folder's, else DATA's folder's].")] = "",
          epochs: Annotated[int, typer.Option(help="Epochs.")] = 4,
          lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, warm-up 10%, linear decay).")] = 1e-3,
          batch: Annotated[int, typer.Option(help="Batch size.")] = 64,
          max_len: Annotated[int, typer.Option("--max-len", help="Tokens per example.")] = 64,
          seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
          device: Device = DeviceName.cpu):
    """Train a BERT classifier (from a preset, or fine-tune --init) -> checkpoint folder with vocab.txt."""
    from dataclasses import replace
    from pathlib import Path

    import torch

    from mlkit.mcubert.config import PRESETS
    from mlkit.mcubert.data import read_examples
    from mlkit.mcubert.model import BertModel, from_checkpoint, save_checkpoint
    from mlkit.mcubert.tokenizer import WordPiece
    from mlkit.mcubert.train import encode_examples, fit

    torch.manual_seed(seed)                 # the initial weights too: the same --seed, the same model
    ex = read_examples(data, task)
    vpath = Path(vocab) if vocab else (Path(init) if init else Path(data).parent) / "vocab.txt"
    tok = WordPiece(vpath)
    classes = 1 if ex.regression else (len(ex.labels) if ex.labels else int(ex.y.max()) + 1)
    if init:
        model = from_checkpoint(init)
        if model.config.num_labels != classes:
            model.config = replace(model.config, num_labels=classes)
            model.classifier = torch.nn.Linear(model.config.hidden_size, classes)
    else:
        from mlkit.errors import InputError

        if config not in PRESETS:
            raise InputError("unknown --config", expected=", ".join(PRESETS), got=config)
        model = BertModel(replace(PRESETS[config], vocab_size=tok.vocab_size, num_labels=classes))
    enc = encode_examples(tok, ex, max_len)
    with _output.progress() as prog:
        t = prog.add_task("train", total=None)
        losses = fit(model, enc, ex.y, epochs=epochs, lr=lr, batch=batch, seed=seed, device=_device(device.value),
                     regression=ex.regression,
                     progress=lambda d, s, loss: prog.update(t, completed=d, total=s, description=f"loss {loss:.3f}"))
    model.cpu()
    save_checkpoint(model, output, {"task": task, "epochs": epochs, "final_loss": losses[-1]},
                    {"vocab.txt": vpath.read_bytes()})
    _output.note(f"{output}: loss {' '.join(f'{v:.3f}' for v in losses)}")


@app.command("eval")
def eval_(ckpt: Annotated[str, typer.Argument(metavar="CKPT", help="Checkpoint folder (with vocab.txt).")],
          data: Annotated[str, typer.Argument(metavar="DATA", help="GLUE TSV or JSONL with labels.")],
          task: Annotated[str, typer.Option(help="sst2, cola, mrpc, qqp, qnli, rte, mnli, stsb or jsonl.")] = "jsonl",
          max_len: Annotated[int, typer.Option("--max-len", help="Tokens per example.")] = 64,
          device: Device = DeviceName.cpu,
          output: Output = "-", format: Format = Fmt.jsonl):
    """GLUE metrics of a checkpoint on labelled data."""
    from pathlib import Path

    from mlkit.mcubert.data import glue_metrics, read_examples
    from mlkit.mcubert.model import from_checkpoint
    from mlkit.mcubert.tokenizer import WordPiece
    from mlkit.mcubert.train import encode_examples, predict

    model = from_checkpoint(ckpt)
    ex = read_examples(data, task)
    pred = predict(model, encode_examples(WordPiece(Path(ckpt) / "vocab.txt"), ex, max_len), device=_device(device.value),
                   regression=ex.regression)
    _output.emit([{"checkpoint": ckpt, "data": data, "task": task, "n": len(ex), **glue_metrics(task, ex.y, pred)}],
                 format, output, title="mcubert eval")


def _elem_bytes(dtype: str) -> int:
    from mlkit.errors import InputError

    eb = {"int8": 1, "f32": 4}.get(dtype)
    if eb is None:
        raise InputError("unknown --dtype", expected="int8 or f32", got=dtype)
    return eb


def _schedule(cfg, seq_len: int, kind: str, tile: str, order: str, eb: int, align: int, budget: int | None):
    """A baseline or tiled schedule; ``tile`` 'auto' searches tile (and order, with order 'auto')."""
    from mlkit.errors import InputError
    from mlkit.mcubert.schedule import ORDERS, baseline_schedule, search_tile, tiled_schedule

    if kind == "baseline":
        return baseline_schedule(cfg, seq_len, elem_bytes=eb)
    if kind != "tiled":
        raise InputError("unknown --schedule", expected="baseline or tiled", got=kind)
    if tile == "auto":
        c = search_tile(cfg, seq_len, orders=ORDERS if order == "auto" else (order,), elem_bytes=eb,
                        alignment=align, budget=budget)
        return tiled_schedule(cfg, seq_len, c.tile, c.order, elem_bytes=eb)
    try:
        t = int(tile)
    except ValueError:
        raise InputError("bad --tile", expected="a number or auto", got=tile) from None
    return tiled_schedule(cfg, seq_len, t, order, elem_bytes=eb)


@app.command()
def plan(src: Ckpt,
         seq_len: Annotated[int, typer.Option("--seq-len", help="Tokens (batch 1).")] = 128,
         schedule: Annotated[str, typer.Option(help="baseline or tiled.")] = "tiled",
         tile: Annotated[str, typer.Option(metavar="N|auto", help="Query/row tile; auto searches it (smallest "
                                           "arena, or the largest tile that fits --target/--sram).")] = "auto",
         order: Annotated[str, typer.Option(help="head-outer or tile-outer (with --tile N); auto searches both "
                                            "with --tile auto.")] = "head-outer",
         dtype: Annotated[str, typer.Option(help="Activation type: int8 or f32.")] = "int8",
         align: Annotated[int, typer.Option(help="Buffer alignment, bytes.")] = 16,
         target: Annotated[str, typer.Option(help="Board for the verdict (see `boards`).")] = "",
         sram: Annotated[str, typer.Option(help="Custom SRAM budget, e.g. 256K.")] = "",
         steps: Annotated[bool, typer.Option("--steps", help="Include live bytes and MACs per step.")] = False,
         plot: Annotated[str, typer.Option(metavar="FILE.png", help="Live memory per op: baseline and tiled.")] = "",
         output: Output = "-", format: Format = Fmt.jsonl):
    """The arena plan for a sequence length: per-buffer offsets, arena and peak bytes, the peak op,
    MACs; an X-CUBE-AI style summary on stderr."""
    from mlkit.mcubert.config import Board
    from mlkit.mcubert.report import summary
    from mlkit.mcubert.schedule import baseline_schedule
    from mlkit.mcubert.schedule import plan as make_plan

    cfg, _ = _config(src)
    eb = _elem_bytes(dtype)
    board = None
    if sram:
        board = Board("custom", _bytes(sram), 1 << 62, 0)
    elif target:
        board = _boards(target, 0, 0)[target]
    sched = _schedule(cfg, seq_len, schedule, tile, order, eb, align, board.sram if board else None)
    p = make_plan(sched, align)
    rec = {"checkpoint": src, **p.to_dict(per_step=steps)}
    if board is not None:
        rec.update(board=board.name, sram=board.sram, fits=p.arena_bytes <= board.sram)
    _output.note(summary(p, board=board if target else None))
    if plot:
        from mlkit.plots import figure

        base = p if schedule == "baseline" else make_plan(baseline_schedule(cfg, seq_len, elem_bytes=eb), align)
        with figure(dst=plot) as (fig, ax):
            for q, name in [(base, "baseline")] + ([] if p is base else [(p, sched.label)]):
                ax.plot([v / 1024 for v in q.live_bytes], label=f"{name}: arena {q.arena_bytes / 1024:.1f} KiB")
            ax.set_xlabel("op (execution order)")
            ax.set_ylabel("live activations (KiB)")
            ax.set_title(f"L{cfg.num_hidden_layers}/H{cfg.hidden_size}, seq len {seq_len}, {dtype}")
            ax.legend()
    _output.emit([rec], format, output, title="mcubert plan")


@app.command()
def simulate(ckpt: Annotated[str, typer.Argument(metavar="CKPT", help="Checkpoint folder or weights file.")],
             ids: Annotated[str, typer.Option(help='JSONL of {"ids": [...]} sequences (\'-\' = stdin).')] = "-",
             schedule: Annotated[str, typer.Option(help="baseline or tiled.")] = "tiled",
             tile: Annotated[str, typer.Option(metavar="N|auto", help="Query/row tile.")] = "16",
             order: Annotated[str, typer.Option(help="head-outer or tile-outer.")] = "head-outer",
             dtype: Annotated[str, typer.Option(help="int8 (integer arithmetic) or f32.")] = "int8",
             align: Annotated[int, typer.Option(help="Buffer alignment, bytes.")] = 16,
             arena: Annotated[int, typer.Option(help="Arena bytes to run in [the plan's]; fewer is refused.")] = 0,
             check: Annotated[bool, typer.Option("--check-against-untiled/--no-check",
                                                 help="Also run the baseline schedule and compare.")] = True,
             hidden: Annotated[str, typer.Option(metavar="FILE.npy", help="Write the last hidden states "
                                                 "(N x L x D).")] = "",
             output: Output = "-", format: Format = Fmt.jsonl):
    """Run the planned schedule inside one arena of exactly the planned size (int8 or float32) and
    compare it with the untiled schedule and the float model. One record per sequence."""
    import time

    import numpy as np
    import torch

    from mlkit.codecs import tables
    from mlkit.codecs._io import display_name
    from mlkit.errors import InputError
    from mlkit.mcubert.model import from_checkpoint
    from mlkit.mcubert.schedule import plan as make_plan
    from mlkit.mcubert.simulate import calibrate
    from mlkit.mcubert.simulate import simulate as run

    model = from_checkpoint(ckpt)
    cfg, sd = model.config, model.state_dict()
    seqs = []
    for i, rec in enumerate(tables.iter_read(ids, fmt="jsonl"), 1):
        try:
            seqs.append(np.asarray(rec["ids"], np.int64))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{display_name(ids)}: record {i} is not a sequence", expected='{"ids": [...]}',
                             got=str(exc)[:60]) from exc
    if not seqs:
        raise InputError(f"{display_name(ids)}: no sequences")
    eb = _elem_bytes(dtype)
    quant = calibrate(sd, cfg, seqs) if eb == 1 else None
    recs, states = [], []
    for k, seq in enumerate(seqs):
        if seq.ndim != 1 or not 1 <= len(seq) <= cfg.max_position_embeddings:
            raise InputError(f"sequence {k}: bad length", expected=f"1..{cfg.max_position_embeddings} ids",
                             got=str(seq.shape))
        p = make_plan(_schedule(cfg, len(seq), schedule, tile, order, eb, align, None), align)
        t0 = time.perf_counter()
        out = run(p, sd, seq, quant=quant, arena_bytes=arena or None)
        secs = time.perf_counter() - t0
        with torch.no_grad():
            ref = model(torch.from_numpy(seq)[None])[0][0].numpy()
        cos = float((out * ref).sum() / (np.linalg.norm(out) * np.linalg.norm(ref)))
        rec = {"sequence": k, "seq_len": len(seq), "schedule": p.schedule.label, "dtype": dtype,
               "arena_bytes": arena or p.arena_bytes, "planned_bytes": p.arena_bytes, "seconds": secs,
               "max_abs_vs_float": float(np.abs(out - ref).max()), "cosine_vs_float": cos}
        if check and schedule != "baseline":
            bp = make_plan(_schedule(cfg, len(seq), "baseline", "auto", order, eb, align, None), align)
            base = run(bp, sd, seq, quant=quant)
            rec.update(baseline_bytes=bp.arena_bytes, identical_to_untiled=bool(np.array_equal(out, base)),
                       max_abs_vs_untiled=float(np.abs(out - base).max()))
        recs.append(rec)
        states.append(out)
    if hidden:
        from mlkit.codecs import arrays

        arrays.write(np.stack(states) if len({len(s) for s in seqs}) == 1 else np.concatenate(states), hidden)
    _output.emit(recs, format, output, title="mcubert simulate")


@app.command()
def compress(ckpt: Annotated[str, typer.Argument(metavar="CKPT", help="Checkpoint folder with vocab.txt.")],
             output: Annotated[str, typer.Option("-o", "--output", help="Compressed checkpoint folder (with the "
                                                 "remapped vocab.txt).")],
             method: Annotated[str, typer.Option(help="svd, cluster-svd, random (control) or groupreduce.")] = "cluster-svd",
             ratio: Annotated[float, typer.Option(help="Embedding compression ratio (parameters).")] = 12.0,
             clusters: Annotated[int, typer.Option(help="Clusters (cluster-svd, random, groupreduce).")] = 16,
             seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
             report: Annotated[str, typer.Option(help="Where the report goes ('-' = stdout).")] = "-",
             format: Format = Fmt.jsonl):
    """Replace the word embedding by a clustered low-rank table; remap the vocabulary so clusters
    are contiguous; print the report (ranks, parameters, error, int8 bytes)."""
    from pathlib import Path

    from mlkit.errors import MissingInputError
    from mlkit.mcubert.compress import compress_embedding
    from mlkit.mcubert.model import BertModel, load_checkpoint, save_checkpoint

    vocab = Path(ckpt) / "vocab.txt"
    if not vocab.is_file():
        raise MissingInputError(f"{vocab}: the checkpoint folder has no vocab.txt", hint="it is remapped too")
    cfg, sd = load_checkpoint(ckpt)
    words = vocab.read_text(encoding="utf-8").splitlines()
    if len(words) != cfg.vocab_size:
        from mlkit.errors import InputError

        raise InputError(f"{vocab}: vocabulary size differs from the model's", expected=str(cfg.vocab_size),
                         got=str(len(words)))
    new_cfg, new_sd, perm, rec = compress_embedding(cfg, sd, method=method, ratio=ratio, clusters=clusters, seed=seed)
    model = BertModel(new_cfg)
    model.load_state_dict(new_sd, strict=True)
    remapped = ("\n".join(words[i] for i in perm) + "\n").encode()
    save_checkpoint(model, output, {"compressed_from": ckpt, "method": method}, {"vocab.txt": remapped})
    _output.emit([{"checkpoint": ckpt, "output": output, **rec}], format, report, title="mcubert compress")
