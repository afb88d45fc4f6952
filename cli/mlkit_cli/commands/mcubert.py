"""mlkit mcubert: BERT on microcontrollers: clustered low-rank embeddings + tiled scheduling."""

from typing import Annotated

import typer

from .. import _output
from .._app import MlkitTyper
from .._options import Device, DeviceName, Fmt, Format, Output, parse_list

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


SYNTH_KINDS = ("sentiment", "pairs", "retrieval", "embtable")


@app.command()
def synth(kind: Annotated[str, typer.Argument(metavar="KIND", help="sentiment, pairs, retrieval or embtable.")],
          output: Annotated[str, typer.Option("-o", "--output", help="Folder to write: train.jsonl, dev.jsonl, "
                                              "vocab.txt (embtable: table.npz).")],
          n: Annotated[int, typer.Option(help="Training examples (dev gets n/10, at least 200); embtable: tokens.")] = 0,
          vocab: Annotated[str, typer.Option(help="A BERT vocab.txt to draw words from [a generated "
                                                  "30,522-entry vocabulary].")] = "",
          max_len: Annotated[int, typer.Option("--max-len", help="retrieval: longest example, WordPiece tokens "
                                               "with [CLS]/[SEP].")] = 512,
          dim: Annotated[int, typer.Option(help="embtable: embedding width D.")] = 128,
          ranks: Annotated[str, typer.Option(help="embtable: planted rank of each cluster.")] = "2,4,6,8,10,12,14,16",
          noise: Annotated[float, typer.Option(help="embtable: noise std per entry.")] = 0.02,
          seed: Annotated[int, typer.Option(help="Random seed.")] = 0):
    """Synthetic data: sentiment, sentence pairs (MRPC-like) and long-range retrieval as JSONL with
    their vocabulary, or a planted embedding table (table.npz: table, labels, ranks, freq)."""
    import json
    from pathlib import Path

    import numpy as np

    from mlkit.codecs._io import atomic_dir
    from mlkit.errors import InputError
    from mlkit.mcubert import synth as S

    if kind not in SYNTH_KINDS:
        raise InputError("unknown synthetic task", expected=", ".join(SYNTH_KINDS), got=kind)
    if kind == "embtable":
        rk = parse_list(ranks, "--ranks", int)
        t = S.embtable(V=n or 4000, D=dim, ranks=rk, noise=noise, seed=seed)
        with atomic_dir(output) as tmp:
            np.savez(Path(tmp) / "table.npz", **t)
        _output.note(f"{output}/table.npz: {t['table'].shape[0]} x {dim}, {len(rk)} planted clusters, ranks {rk}")
        return
    n = n or 20000
    if vocab:
        from mlkit.mcubert.tokenizer import WordPiece

        lines = WordPiece(vocab).vocab
    else:
        lines, _ = S.make_vocab()
    given = lines if vocab else None
    make = {"sentiment": lambda k, sd: S.sentiment(k, seed=sd, vocab=given),
            "pairs": lambda k, sd: S.pairs(k, seed=sd, vocab=given),
            "retrieval": lambda k, sd: S.retrieval(k, seed=sd, vocab=given, max_len=max_len)}[kind]
    train, dev = make(n, seed), make(max(200, n // 10), seed + 10_000)
    with atomic_dir(output) as tmp:
        for name, rows in (("train.jsonl", train), ("dev.jsonl", dev)):
            Path(tmp, name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        S.write_vocab(lines, Path(tmp) / "vocab.txt")
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


def _read_ids(src: str) -> list:
    """Token-id sequences from JSONL records {"ids": [...]}."""
    import numpy as np

    from mlkit.codecs import tables
    from mlkit.codecs._io import display_name
    from mlkit.errors import InputError

    seqs = []
    for i, rec in enumerate(tables.iter_read(src, fmt="jsonl"), 1):
        try:
            seqs.append(np.asarray(rec["ids"], np.int64))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{display_name(src)}: record {i} is not a sequence", expected='{"ids": [...]}',
                             got=str(exc)[:60]) from exc
    if not seqs:
        raise InputError(f"{display_name(src)}: no sequences")
    return seqs


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

    from mlkit.errors import InputError
    from mlkit.mcubert.export import with_dense_embedding
    from mlkit.mcubert.model import from_checkpoint
    from mlkit.mcubert.schedule import plan as make_plan
    from mlkit.mcubert.simulate import calibrate
    from mlkit.mcubert.simulate import simulate as run

    model = from_checkpoint(ckpt)
    cfg = model.config
    sd = with_dense_embedding(model.state_dict(), cfg)
    seqs = _read_ids(ids)
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


def _read_counts(src: str, V: int):
    """Token counts from TSV lines 'id<TAB>count' (no header)."""
    import numpy as np

    from mlkit.codecs._io import display_name, open_input
    from mlkit.errors import InputError

    counts = np.zeros(V)
    with open_input(src) as fh:
        for i, raw in enumerate(fh, 1):
            line = raw.decode("utf-8", "replace")
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            try:
                t, c = int(parts[0]), float(parts[1])
            except (IndexError, ValueError) as exc:
                raise InputError(f"{display_name(src)}: line {i} is not 'id<TAB>count'", got=line[:60]) from exc
            if not 0 <= t < V or not c >= 0:
                raise InputError(f"{display_name(src)}: line {i}: bad id or count", expected=f"id 0..{V - 1}, "
                                 "count >= 0", got=f"{t}, {c}")
            counts[t] += c
    return counts


@app.command()
def compress(ckpt: Annotated[str, typer.Argument(metavar="CKPT", help="Checkpoint folder with vocab.txt.")],
             output: Annotated[str, typer.Option("-o", "--output", help="Compressed checkpoint folder (with the "
                                                 "remapped vocab.txt).")],
             method: Annotated[str, typer.Option(help="svd, cluster-svd, random (control), groupreduce or nas "
                                                 "(the paper's two-stage search).")] = "cluster-svd",
             ratio: Annotated[float, typer.Option(help="Embedding compression ratio (parameters), unless a "
                                                  "budget is given.")] = 12.0,
             budget: Annotated[str, typer.Option(help="Int8 bytes for the embedding table, e.g. 400K.")] = "",
             target: Annotated[str, typer.Option(help="Fit the whole int8 model + code into this board's flash "
                                                 "(see `boards`).")] = "",
             flash: Annotated[str, typer.Option(help="Fit the whole int8 model + code into this much flash.")] = "",
             clusters: Annotated[int, typer.Option(help="Clusters (all but svd).")] = 16,
             data: Annotated[str, typer.Option(help="nas: task data (JSONL/TSV); its cross-entropy on the frozen "
                                               "model joins the search, its token counts weight it.")] = "",
             task: Annotated[str, typer.Option(help="Format of --data: jsonl or a GLUE task name.")] = "jsonl",
             max_len: Annotated[int, typer.Option("--max-len", help="Tokens per --data example.")] = 64,
             freq: Annotated[str, typer.Option(help="Token counts, TSV 'id<TAB>count' (groupreduce, nas).")] = "",
             stage1_epochs: Annotated[int, typer.Option("--stage1-epochs", help="nas: subspace refits.")] = 20,
             stage2_steps: Annotated[int, typer.Option("--stage2-steps", help="nas: gate steps.")] = 300,
             seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
             report: Annotated[str, typer.Option(help="Where the report goes ('-' = stdout).")] = "-",
             format: Format = Fmt.jsonl):
    """Replace the word embedding by a clustered low-rank table; remap the vocabulary so clusters
    are contiguous; print the report (ranks, parameters, error, int8 bytes). With --target/--flash
    the table gets what the board's flash leaves (exit 1, naming the least bytes, if even rank 1
    per cluster cannot fit)."""
    from pathlib import Path

    import numpy as np

    from mlkit.errors import CheckFailed, InputError, MissingInputError
    from mlkit.mcubert.compress import compress_embedding, export_bytes, flash_budget
    from mlkit.mcubert.model import BertModel, load_checkpoint, save_checkpoint
    from mlkit.mcubert.report import CODE_BYTES, flash_bytes

    vocab = Path(ckpt) / "vocab.txt"
    if not vocab.is_file():
        raise MissingInputError(f"{vocab}: the checkpoint folder has no vocab.txt", hint="it is remapped too")
    cfg, sd = load_checkpoint(ckpt)
    words = vocab.read_text(encoding="utf-8").splitlines()
    if len(words) != cfg.vocab_size:
        raise InputError(f"{vocab}: vocabulary size differs from the model's", expected=str(cfg.vocab_size),
                         got=str(len(words)))
    V = cfg.vocab_size
    budget_bytes, board_flash = None, None
    if sum(map(bool, (budget, target, flash))) > 1:
        raise InputError("give one of --budget, --target, --flash")
    if budget:
        budget_bytes = _bytes(budget)
    elif target or flash:
        board_flash = _bytes(flash) if flash else _boards(target, 0, 0)[target].flash
    counts = None
    if freq:
        counts = _read_counts(freq, V)
    nas_task = None
    if data:
        if method != "nas":
            raise InputError("--data is for --method nas")
        import torch

        from mlkit.mcubert.data import read_examples
        from mlkit.mcubert.nas import Task
        from mlkit.mcubert.tokenizer import WordPiece
        from mlkit.mcubert.train import encode_examples

        ex = read_examples(data, task)
        if ex.regression:
            raise InputError("--data: nas needs a classification task", got=task)
        enc = encode_examples(WordPiece(vocab), ex, max_len)
        if counts is None:
            counts = np.bincount(enc[0][enc[2].bool()].numpy(), minlength=V).astype(float)
        model0 = BertModel(cfg)
        model0.load_state_dict(sd, strict=True)
        if cfg.num_labels != int(ex.y.max()) + 1:
            raise InputError("--data has a different number of classes than the checkpoint's head",
                             expected=str(cfg.num_labels), got=str(int(ex.y.max()) + 1))
        torch.manual_seed(seed)
        nas_task = Task(model0, enc, ex.y, _rng=np.random.default_rng(seed))
    w = None if counts is None else counts + 1.0             # add-one: unseen tokens still count a little
    calib_ids = None
    if nas_task is not None:
        ids_, _, mask_ = nas_task.data
        calib_ids = [ids_[i, : int(mask_[i].sum())].numpy() for i in range(min(8, len(ids_)))]
    if board_flash is not None:
        budget_bytes = flash_budget(cfg, sd, board_flash, clusters=clusters, seed=seed, calib_ids=calib_ids,
                                    svd=method == "svd")
    with _output.progress() as prog:
        bar = prog.add_task(method, total=None)

        def progress(stage, i, n, loss):
            prog.update(bar, completed=i, total=n, description=f"{stage} loss {loss:.4f}")

        new_cfg, new_sd, perm, rec = compress_embedding(
            cfg, sd, method=method, ratio=None if budget_bytes is not None else ratio, budget_bytes=budget_bytes,
            clusters=clusters, seed=seed, freq=w, task=nas_task,
            nas_options={"stage1_epochs": stage1_epochs, "stage2_steps": stage2_steps}, progress=progress)
    model = BertModel(new_cfg)
    model.load_state_dict(new_sd, strict=True)
    total = flash_bytes(new_cfg)
    rec.update(int8_flash_bytes=total, code_bytes=CODE_BYTES)
    if board_flash is not None:
        inv = np.argsort(perm)                               # calibration ids in the remapped vocabulary
        exp = export_bytes(new_cfg, new_sd, None if calib_ids is None else [inv[i] for i in calib_ids], seed=seed)
        rec.update(flash=board_flash, export_flash_bytes=exp, fits=max(total, exp) + CODE_BYTES <= board_flash)
        if not rec["fits"]:                                  # flash_budget should prevent this
            raise CheckFailed("the compressed model does not fit the flash", expected=f"<= {board_flash}",
                              got=str(max(total, exp) + CODE_BYTES))
    remapped = ("\n".join(words[i] for i in perm) + "\n").encode()
    save_checkpoint(model, output, {"compressed_from": ckpt, "method": method}, {"vocab.txt": remapped})
    _output.emit([{"checkpoint": ckpt, "output": output, **rec}], format, report, title="mcubert compress")


@app.command()
def export(ckpt: Annotated[str, typer.Argument(metavar="CKPT", help="Checkpoint folder (dense or compressed).")],
           output: Annotated[str, typer.Option("-o", "--output", help="Folder to write: model_data.h, model_data.c, "
                                               "manifest.json.")],
           seq_len: Annotated[int, typer.Option("--seq-len", help="Tokens the arena is planned for.")] = 128,
           schedule: Annotated[str, typer.Option(help="baseline or tiled.")] = "tiled",
           tile: Annotated[str, typer.Option(metavar="N|auto", help="Query/row tile.")] = "auto",
           order: Annotated[str, typer.Option(help="head-outer or tile-outer.")] = "head-outer",
           align: Annotated[int, typer.Option(help="Buffer alignment, bytes.")] = 16,
           ids: Annotated[str, typer.Option(help='Calibration: JSONL of {"ids": [...]} sequences.')] = "",
           data: Annotated[str, typer.Option(help="Calibration: text examples (JSONL/TSV), tokenised with the "
                                             "checkpoint's vocab.txt.")] = "",
           task: Annotated[str, typer.Option(help="Format of --data: jsonl or a GLUE task name.")] = "jsonl",
           calib: Annotated[int, typer.Option(help="Calibration sequences used at most.")] = 64,
           prefix: Annotated[str, typer.Option(help="C identifier prefix.")] = "mcubert",
           target: Annotated[str, typer.Option(help="Check the arena and flash against this board.")] = "",
           report: Annotated[str, typer.Option(help="Where the summary record goes ('-' = stdout).")] = "-",
           format: Format = Fmt.jsonl):
    """Int8 weights as C arrays (model_data.h/.c: per-channel requantisation as multiplier + shift,
    the arena size and buffer offsets as #defines) plus a JSON manifest, from static scales
    calibrated on --ids or --data."""
    from pathlib import Path

    import numpy as np

    from mlkit.errors import InputError
    from mlkit.mcubert.export import export_c, with_dense_embedding
    from mlkit.mcubert.model import from_checkpoint
    from mlkit.mcubert.report import CODE_BYTES
    from mlkit.mcubert.schedule import plan as make_plan
    from mlkit.mcubert.simulate import calibrate

    if bool(ids) == bool(data):
        raise InputError("give calibration data: one of --ids or --data")
    if calib < 1:
        raise InputError("--calib must be >= 1", got=str(calib))
    model = from_checkpoint(ckpt)
    cfg = model.config
    if not 1 <= seq_len <= cfg.max_position_embeddings:
        raise InputError("--seq-len out of range", expected=f"1..{cfg.max_position_embeddings}", got=str(seq_len))
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    if ids:
        seqs = _read_ids(ids)[:calib]
    else:
        from mlkit.mcubert.data import read_examples
        from mlkit.mcubert.tokenizer import WordPiece

        vocab = Path(ckpt) / "vocab.txt"
        ex = read_examples(data, task)
        enc_ids, _, mask = WordPiece(vocab).encode(ex.a[:calib], ex.b[:calib] if ex.b else None, max_len=seq_len)
        seqs = [np.asarray(r[: int(m.sum())], np.int64) for r, m in zip(enc_ids, mask, strict=True)]
    quant = calibrate(with_dense_embedding(sd, cfg), cfg, seqs)
    p = make_plan(_schedule(cfg, seq_len, schedule, tile, order, 1, align, None), align)
    man = export_c(sd, cfg, quant, p, output, prefix=prefix)
    rec = {"checkpoint": ckpt, "output": output, "seq_len": seq_len, "schedule": p.schedule.label,
           "arena_bytes": p.arena_bytes, "flash_bytes": man["totals"]["flash_bytes"], "arrays": man["totals"]["arrays"],
           "calibration_sequences": len(seqs)}
    if target:
        b = _boards(target, 0, 0)[target]
        rec.update(board=b.name, sram_fits=p.arena_bytes <= b.sram,
                   flash_fits=man["totals"]["flash_bytes"] + CODE_BYTES <= b.flash)
    _output.emit([rec], format, report, title="mcubert export")


@app.command()
def bench(models: Annotated[str, typer.Option(help="Memory table: presets.")] = "tiny,mini",
          seq_lens: Annotated[str, typer.Option("--seq-lens", help="Memory table: sequence lengths.")] = "64,128,256,512",
          ratios: Annotated[str, typer.Option(help="Compression table: embedding ratios.")] = "4,8,16",
          methods: Annotated[str, typer.Option(help="Compression methods.")] = "svd,groupreduce,cluster-svd,nas",
          n: Annotated[int, typer.Option(help="Training examples (synth sentiment).")] = 6000,
          epochs: Annotated[int, typer.Option(help="Training epochs of the dense model.")] = 4,
          ft_epochs: Annotated[int, typer.Option("--ft-epochs", help="Fine-tuning epochs after compression "
                                                 "(the dense model gets them too).")] = 1,
          clusters: Annotated[int, typer.Option(help="Clusters.")] = 16,
          accuracy: Annotated[bool, typer.Option("--accuracy/--no-accuracy", help="Train and fine-tune "
                                                 "(else reconstruction figures only).")] = True,
          table: Annotated[str, typer.Option(help="With --no-accuracy: compress this checkpoint's embedding "
                                             "(e.g. a real BERT) instead of an untrained one.")] = "",
          memory: Annotated[bool, typer.Option("--memory/--no-memory", help="Print the memory table.")] = True,
          compression: Annotated[bool, typer.Option("--compression/--no-compression",
                                                    help="Print the compression table.")] = True,
          seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
          output: Output = "-", format: Format = Fmt.jsonl):
    """In one run: the memory table (int8 arena of baseline, head-tiled, head+token tiled,
    tile-outer and the best tile, ratio vs baseline) and the compression table (SVD, GroupReduce,
    cluster-SVD, NAS at equal int8 bytes: error, error vs SVD, accuracy before/after fine-tuning)."""
    from mlkit.errors import InputError
    from mlkit.mcubert.bench import compression_rows, memory_rows

    ms = tuple(m.strip() for m in models.split(",") if m.strip())
    ls = parse_list(seq_lens, "--seq-lens", int)
    rs = parse_list(ratios, "--ratios")
    meths = tuple(m.strip() for m in methods.split(",") if m.strip())
    if table and accuracy:
        raise InputError("--table needs --no-accuracy (accuracy trains its own model)")
    kw = {}
    if table:
        cfg, sd = _load_for_table(table)
        kw = {"table": sd["embeddings.word_embeddings.weight"].double().numpy(), "config": cfg}

    def stream():
        with _output.progress() as prog:
            bar = prog.add_task("mcubert bench", total=None)
            if memory:
                for r in memory_rows(ms, ls):
                    yield {"table": "memory", **r}
            if compression:
                for r in compression_rows(rs, meths, n_train=n, epochs=epochs, ft_epochs=ft_epochs, clusters=clusters,
                                          seed=seed, accuracy=accuracy,
                                          progress=lambda msg: prog.update(bar, description=msg), **kw):
                    yield {"table": "compression", **r}

    _output.emit(stream(), format, output, title="mcubert bench")


def _load_for_table(src: str):
    from mlkit.errors import InputError
    from mlkit.mcubert.model import load_checkpoint

    cfg, sd = load_checkpoint(src)
    if cfg.embedding_factors:
        raise InputError("--table: the checkpoint's embedding is already compressed")
    return cfg, sd


@app.command()
def demo(output: Output = "-", format: Format = Fmt.table):
    """A quick end-to-end run: synthetic sentiment, BERT-tiny trained briefly, compressed to fit a
    NUCLEO-F746ZG (1 MiB flash), planned at L = 128, simulated in int8 and exported to C."""
    import tempfile
    from pathlib import Path

    from mlkit.mcubert.demo import demo_rows

    with _output.progress() as prog, tempfile.TemporaryDirectory(prefix="mlkit-mcubert-") as tmp:
        task = prog.add_task("mcubert demo", total=None)
        rows = demo_rows(Path(tmp))
        prog.update(task, completed=1, total=1)
    _output.emit(rows, format, output, title="mcubert demo")
