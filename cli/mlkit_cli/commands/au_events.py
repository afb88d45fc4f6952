"""mlkit au-events: facial action unit events (onset-offset segments) as class-specific sets."""

from typing import Annotated

import typer

from .. import _output
from .._app import MlkitTyper
from .._options import Device, DeviceName, Fmt, Format, Output, parse_list

app = MlkitTyper(help="EventFormer (Chen et al., BMVC 2023): AU events from per-frame features or probabilities, "
                 "scored with ActivityNet-style detection metrics.")

Units = Annotated[str, typer.Option(help="Segments in seconds or frames [the file's own; seconds].")]


def _units(u: str):
    from mlkit.errors import InputError

    if u not in ("", "seconds", "frames"):
        raise InputError("unknown --units", expected="seconds or frames", got=u)
    return u or None


def _tious(text: str) -> tuple[float, ...]:
    from mlkit.errors import InputError

    t = parse_list(text, "--tiou")
    if any(not 0 < v <= 1 for v in t):
        raise InputError("bad --tiou", expected="comma-separated numbers in (0, 1]", got=text)
    return t


@app.command()
def synth(output: Annotated[str, typer.Option("-o", "--output", help="Folder: feats.npz, frames.csv, probs.csv, "
                                              "gt.json.")],
          seqs: Annotated[int, typer.Option(help="Sequences.")] = 120,
          subjects: Annotated[int, typer.Option(help="Subjects (each sequence belongs to one).")] = 30,
          test_subjects: Annotated[int, typer.Option("--test-subjects", help="Subjects held out as 'test'.")] = 10,
          fps: Annotated[float, typer.Option(help="Frames per second.")] = 25.0,
          dim: Annotated[int, typer.Option(help="Feature width.")] = 32,
          seed: Annotated[int, typer.Option(help="Random seed.")] = 0):
    """Sequences with BP4D's per-AU event rates and log-normal durations, onset/apex/offset
    envelopes, co-occurring episodes and per-subject feature offsets; a subject-exclusive split;
    and a per-frame logistic baseline's probabilities (out-of-fold on the training subjects)."""
    from pathlib import Path

    import numpy as np

    from mlkit.auevents import baseline, formats
    from mlkit.auevents import synth as S
    from mlkit.codecs._io import atomic_dir

    with _output.progress() as prog:
        t = prog.add_task("synth", total=None)
        d = S.make(n_seqs=seqs, n_subjects=subjects, test_subjects=test_subjects, fps=fps, dim=dim, seed=seed)
        prog.update(t, description="frame baseline")
        model = baseline.LogisticFrames().fit([d.feats[s] for s in d.seqs("train")],
                                              [d.labels[s] for s in d.seqs("train")])
        n_train_subjects = len({d.subject[s] for s in d.seqs("train")})
        probs = {**baseline.frame_probs(d, model, d.seqs("test")),
                 **baseline.oof_probs(d, folds=min(5, n_train_subjects))}
    gt = d.ground_truth()

    def frame_table(values):
        return {s: formats.FrameLabels(d.frames(s), np.asarray(values[s], np.float64),
                                       np.ones(values[s].shape, bool), list(d.aus)) for s in d.seqs()}

    with atomic_dir(output) as tmp:
        np.savez(Path(tmp) / "feats.npz", **d.feats)
        formats.write_frame_labels(frame_table(d.labels), Path(tmp) / "frames.csv")
        formats.write_frame_labels(frame_table(probs), Path(tmp) / "probs.csv")
        formats.write_gt(gt, Path(tmp) / "gt.json")
    n_ev = sum(len(v["events"]) for v in gt.db.values())
    _output.note(f"{output}: {len(d.feats)} sequences ({len(d.seqs('train'))} train / {len(d.seqs('test'))} test), "
                 f"{n_ev} events, {len(d.aus)} AUs")


@app.command("from-frames")
def from_frames(src: Annotated[str, typer.Argument(metavar="FRAMES.csv", help="Frame labels (0/1/9) or "
                                                   "probabilities: seq,frame,AU1,... or BP4D frame,AU1,... ('-' = stdin).")] = "-",
                thr: Annotated[float, typer.Option(help="A frame is on when its value > thr.")] = 0.5,
                median: Annotated[int, typer.Option(help="Median filter width (odd; 1 = off).")] = 1,
                min_dur: Annotated[int, typer.Option("--min-dur", help="Drop events shorter than this (frames).")] = 1,
                merge_gap: Annotated[int, typer.Option("--merge-gap", help="Merge events this close (frames).")] = 0,
                params: Annotated[str, typer.Option(help="JSON from `tune` (overrides the four options).")] = "",
                units: Units = "seconds",
                fps: Annotated[float, typer.Option(help="Frames per second (for seconds).")] = 25.0,
                output: Output = "-"):
    """Frame labels or probabilities -> events {label, segment, score} as ActivityNet results JSON:
    maximal runs, half-open [s, e); label 9 and frame-index jumps break runs."""
    import json

    from mlkit.auevents import events, formats
    from mlkit.errors import InputError

    if params:
        from mlkit.codecs._io import read_bytes

        try:
            p = json.loads(read_bytes(params))
            thr, median, min_dur, merge_gap = float(p["thr"]), int(p["median"]), int(p["min_dur"]), int(p["merge_gap"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{params}: not a `tune` parameter file", expected="thr, median, min_dur, merge_gap",
                             got=str(exc)[:60]) from exc
    fl = formats.read_frame_labels(src)
    res = events.from_frame_labels(fl, thr=thr, median=median, min_dur=min_dur, merge_gap=merge_gap)
    formats.write_results(res, output, units=_units(units) or "seconds", fps=fps)


@app.command()
def tune(probs: Annotated[str, typer.Argument(metavar="PROBS.csv", help="Per-frame probabilities.")],
         gt: Annotated[str, typer.Option(help="Ground truth (ActivityNet JSON with subsets).")],
         subset: Annotated[str, typer.Option(help="Tune on this subset only.")] = "train",
         metric: Annotated[str, typer.Option(help="map@THETA or average_map.")] = "map@0.5",
         units: Units = "",
         output: Output = "-"):
    """Grid-search the post-processing (thr, median, min-dur, merge-gap) on one subset's sequences;
    the result feeds `from-frames --params`."""
    import json

    import numpy as np

    from mlkit.auevents import baseline, formats
    from mlkit.codecs._io import write_bytes

    g = formats.read_gt(gt, units=_units(units))
    fl = formats.read_frame_labels(probs)
    values = {s: v.values.astype(np.float64) for s, v in fl.items()}
    best = baseline.tune_postproc(values, g, metric=metric, subset=subset)
    write_bytes((json.dumps(best) + "\n").encode(), output)


@app.command("eval")
def eval_(pred: Annotated[str, typer.Argument(metavar="PRED", help="Results JSON or JSONL ('-' = stdin).")] = "-",
          gt: Annotated[str, typer.Option(help="Ground truth (ActivityNet JSON).")] = "",
          tiou: Annotated[str, typer.Option(help="tIoU thresholds.")] = "0.1,0.3,0.5,0.7",
          subset: Annotated[str, typer.Option(help="Score only this subset [all].")] = "",
          score_thr: Annotated[float, typer.Option("--score-thr", help="Event/frame F1: keep scores >= this.")] = 0.5,
          units: Units = "",
          per_au: Annotated[bool, typer.Option("--per-au", help="One record per AU too.")] = False,
          output: Output = "-", format: Format = Fmt.jsonl):
    """Per-AU AP at each tIoU and their mean (ActivityNet), event F1 and frame F1."""
    from mlkit.auevents import formats, metrics
    from mlkit.errors import InputError

    if not gt:
        raise InputError("--gt is required")
    th = _tious(tiou)
    g = formats.read_gt(gt, units=_units(units))
    res = formats.read_results(pred, units=_units(units), gt=g)
    sub = subset or None
    ev = metrics.evaluate(g, res, tious=th, subset=sub)
    ef = metrics.event_f1(g, res, score_thr=score_thr, tiou=0.5, subset=sub)
    ff = metrics.frame_f1(g, res, score_thr=score_thr, subset=sub)
    rec = {"sequences": ev["sequences"], "subset": sub or "all",
           **{f"map@{t:g}": m for t, m in zip(th, ev["map"], strict=True)}, "average_map": ev["average_map"],
           "event_f1@0.5": ef["macro"]["f1"], "frame_f1": ff["macro"]["f1"]}
    rows = [rec]
    if per_au:
        rows += [{"au": a, **{f"ap@{t:g}": v for t, v in zip(th, ev["ap"][a], strict=True)}} for a in ev["aus"]]
    _output.emit(rows, format, output, title="au-events eval")


@app.command()
def train(feats: Annotated[str, typer.Argument(metavar="FEATS.npz", help="Per-frame features (seq -> T x D).")],
          gt: Annotated[str, typer.Option(help="Ground-truth events (ActivityNet JSON).")],
          model: Annotated[str, typer.Option("-m", "--model", help="Checkpoint to write (.safetensors).")],
          subset: Annotated[str, typer.Option(help="Train on this subset.")] = "train",
          epochs: Annotated[int, typer.Option(help="Epochs.")] = 40,
          lr: Annotated[float, typer.Option(help="AdamW learning rate (cosine decay).")] = 1e-3,
          window: Annotated[int, typer.Option(help="Window length, frames.")] = 256,
          queries: Annotated[int, typer.Option(help="Queries per AU.")] = 8,
          d_model: Annotated[int, typer.Option("--d-model", help="Hidden size.")] = 64,
          enc_layers: Annotated[int, typer.Option("--enc-layers")] = 2,
          dec_layers: Annotated[int, typer.Option("--dec-layers")] = 2,
          frame_loss: Annotated[float, typer.Option("--frame-loss", help="[R] per-frame AU head weight (0 = off).")] = 1.0,
          refine: Annotated[bool, typer.Option("--refine/--no-refine", help="[R] iterative (c, w) refinement.")] = True,
          proposals: Annotated[bool, typer.Option("--proposals/--no-proposals", help="[R] queries start from runs "
                                                  "of the frame head (needs --frame-loss > 0 and --refine).")] = True,
          stem_kernel: Annotated[int, typer.Option("--stem-kernel", help="[R] temporal conv stem kernel "
                                                   "(odd; 0 = none).")] = 5,
          scales: Annotated[str, typer.Option(help="[R] temporal scales (windows over k-frame means too).")] = "1,2,4",
          dropout: Annotated[float, typer.Option(help="Transformer dropout.")] = 0.2,
          seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
          threads: Annotated[int, typer.Option(help="torch threads (1 is fastest on a shared 2-core CPU).")] = 1,
          device: Device = DeviceName.cpu):
    """Train EventFormer on sliding windows of the subset's sequences -> safetensors checkpoint."""
    import torch

    from mlkit.auevents import formats
    from mlkit.auevents.model import EventFormerConfig
    from mlkit.auevents.train import fit
    from mlkit.errors import InputError
    from mlkit.tensors import resolve_device

    torch.set_num_threads(max(1, threads))
    g = formats.read_gt(gt)
    f = formats.read_features(feats)
    seqs = [s for s, v in g.db.items() if v["subset"] == subset]
    if not seqs:
        raise InputError(f"{gt}: no sequences in subset {subset!r}")
    missing = [s for s in seqs if s not in f]
    if missing:
        raise InputError(f"{feats}: sequences missing from the features", got=", ".join(missing[:3]))
    D = {f[s].shape[1] for s in seqs}
    if len(D) != 1:
        raise InputError(f"{feats}: feature widths differ between sequences", got=str(sorted(D)))
    cfg = EventFormerConfig(in_dim=D.pop(), num_aus=len(g.aus), queries=queries, d_model=d_model,
                            enc_layers=enc_layers, dec_layers=dec_layers, window=window, frame_loss=frame_loss,
                            refine=refine, proposals=proposals and refine and frame_loss > 0,
                            stem_kernel=stem_kernel, scales=parse_list(scales, "--scales", int), dropout=dropout)
    with _output.progress() as prog:
        t = prog.add_task("train", total=None)
        net, norm, losses = fit({s: f[s] for s in seqs}, {s: g.db[s]["events"] for s in seqs}, g.aus, cfg,
                                epochs=epochs, lr=lr, seed=seed, device=str(resolve_device(device.value)),
                                progress=lambda d, n, loss: prog.update(t, completed=d, total=n,
                                                                        description=f"loss {loss:.3f}"))
    from mlkit.auevents.checkpoint import save

    save(net, norm, g.aus, model, {"epochs": epochs, "final_loss": losses[-1], "subset": subset})
    _output.note(f"{model}: {len(seqs)} sequences, loss {losses[0]:.3f} -> {losses[-1]:.3f}")


@app.command()
def detect(feats: Annotated[str, typer.Argument(metavar="FEATS.npz", help="Per-frame features (seq -> T x D).")],
           model: Annotated[str, typer.Option("-m", "--model", help="EventFormer checkpoint.")],
           min_score: Annotated[float, typer.Option("--min-score", help="Drop detections below this score.")] = 0.01,
           top_k: Annotated[int, typer.Option("--top-k", help="At most this many events per AU and sequence.")] = 100,
           nms_thr: Annotated[float, typer.Option("--nms", help="Per-AU NMS tIoU.")] = 0.4,
           stride: Annotated[int, typer.Option(help="Window stride, frames [window/4].")] = 0,
           nearest: Annotated[bool, typer.Option("--nearest/--all-windows", help="[R] keep a detection only from "
                                                 "the window whose centre is nearest to it.")] = True,
           fuse: Annotated[bool, typer.Option("--fuse/--no-fuse", help="[R] score = sqrt(query score x mean "
                                              "frame-head probability over the segment).")] = True,
           units: Units = "seconds",
           fps: Annotated[float, typer.Option(help="Frames per second (for seconds).")] = 25.0,
           plot: Annotated[str, typer.Option(metavar="FILE.png", help="Timeline of one sequence (--plot-seq; "
                                             "with --gt: ground truth too).")] = "",
           plot_seq: Annotated[str, typer.Option("--plot-seq", help="Sequence to draw [the first].")] = "",
           gt: Annotated[str, typer.Option(help="Ground truth for the plot.")] = "",
           threads: Annotated[int, typer.Option(help="torch threads.")] = 1,
           device: Device = DeviceName.cpu,
           output: Output = "-"):
    """Events per sequence from EventFormer (overlapping windows merged by NMS) as ActivityNet
    results JSON."""
    import torch

    from mlkit.auevents import formats
    from mlkit.auevents.checkpoint import load
    from mlkit.auevents.train import detect as run
    from mlkit.errors import InputError
    from mlkit.tensors import resolve_device

    torch.set_num_threads(max(1, threads))
    net, norm, aus, _ = load(model)
    f = formats.read_features(feats)
    if stride < 0:
        raise InputError("bad --stride", expected=">= 0 (0 = window/4)", got=str(stride))
    res = run(net, norm, f, aus, min_score=min_score, top_k=top_k, nms_thr=nms_thr, stride=stride or None,
              nearest=nearest, fuse=fuse, device=str(resolve_device(device.value)))
    formats.write_results(res, output, units=_units(units) or "seconds", fps=fps)
    if plot:
        seq = plot_seq or next(iter(f))
        if seq not in f:
            raise InputError("--plot-seq: no such sequence", got=seq)
        from mlkit.auevents.plot import timeline

        truth = formats.read_gt(gt).db.get(seq, {}).get("events", []) if gt else []
        timeline(seq, len(f[seq]), aus, truth, res[seq], plot)


@app.command()
def bench(seeds: Annotated[str, typer.Option(help="Seeds (one synthetic benchmark each).")] = "0,1,2",
          seqs: Annotated[int, typer.Option(help="Sequences per seed.")] = 120,
          epochs: Annotated[int, typer.Option(help="EventFormer epochs.")] = 40,
          lr: Annotated[float, typer.Option(help="EventFormer learning rate.")] = 1e-3,
          workers: Annotated[int, typer.Option(help="Seeds trained in parallel, one torch thread each (more "
                                               "workers than cores is fine).")] = 3,
          output: Output = "-", format: Format = Fmt.jsonl):
    """EventFormer vs raw thresholding vs tuned post-processing vs oracle on the default synthetic
    benchmark, per seed (test subjects): mAP at tIoU .1/.3/.5/.7, average mAP, and EventFormer's
    ratios to raw and tuned post-processing measured in the same run."""
    from mlkit.auevents.bench import run
    from mlkit.errors import InputError

    sd = parse_list(seeds, "--seeds", int)
    if seqs < 4 or epochs < 1 or workers < 1:
        raise InputError("bad bench size", expected="--seqs >= 4, --epochs >= 1, --workers >= 1",
                         got=f"{seqs}, {epochs}, {workers}")
    with _output.progress() as prog:
        t = prog.add_task(f"au-events bench ({len(sd)} seeds)", total=len(sd))
        rows = run(sd, workers=workers, n_seqs=seqs, epochs=epochs, lr=lr,
                   progress=lambda k, n: prog.update(t, completed=k, total=n))
    _output.emit(rows, format, output, title="au-events bench")


@app.command()
def demo(plot: Annotated[str, typer.Option(metavar="FILE.png", help="Keep the timeline picture of one test "
                                           "sequence here.")] = "",
         output: Output = "-", format: Format = Fmt.table):
    """A quick end-to-end run: 60 synthetic sequences, raw / tuned post-processing / oracle /
    EventFormer (12 epochs) on the test subjects, and a timeline picture (--plot)."""
    import tempfile
    from pathlib import Path

    from mlkit.auevents.demo import demo_rows

    with _output.progress() as prog, tempfile.TemporaryDirectory(prefix="mlkit-au-events-") as tmp:
        task = prog.add_task("au-events demo", total=None)
        rows = demo_rows(Path(tmp), plot=plot or None)
        prog.update(task, completed=1, total=1)
    _output.emit(rows, format, output, title="au-events demo")
