"""mlkit faceclust: face clustering that keeps hard clusters (NDDe + TPDi + density peaks)."""

from enum import StrEnum
from typing import Annotated

import typer

from .. import _output
from .._app import MlkitTyper
from .._options import Device, DeviceName, Fmt, Format, Output, Seed, Threads

app = MlkitTyper(help="Face clustering for hard clusters: NDDe density + TPDi distance + density peaks "
                 "(Chen et al., ECCV 2022). Features .bin/.npy, labels .meta, kNN graphs .npz.")

Dim = Annotated[int, typer.Option("--dim", help="Feature width of a raw .bin (float32).")]


class Index(StrEnum):
    flat = "flat"
    ivf = "ivf"
    hnsw = "hnsw"


class Sim(StrEnum):
    logistic = "logistic"
    transformer = "transformer"


class Method(StrEnum):
    chen = "chen"
    chen_full = "chen-full"
    ndde_only = "ndde-only"
    tpdi_only = "tpdi-only"
    sumsim = "sumsim"


@app.command()
def synth(output: Annotated[str, typer.Option("-o", "--output", help="Dataset folder to write.")],
          ids: Annotated[int, typer.Option(help="Test identities.")] = 600,
          train_ids: Annotated[int, typer.Option(help="Train identities (disjoint).")] = 300,
          dim: Annotated[int, typer.Option(help="Feature width.")] = 256,
          alpha: Annotated[float, typer.Option(help="Power-law exponent of identity sizes.")] = 2.0,
          smin: Annotated[int, typer.Option(help="Smallest identity size.")] = 5,
          smax: Annotated[int, typer.Option(help="Largest identity size.")] = 300,
          family: Annotated[int, typer.Option(help="Identities per family (similar-looking siblings).")] = 10,
          family_spread: Annotated[float, typer.Option(help="Spread of sibling centres (cos ~ 1/(1+t^2)).")] = 1.0,
          spread: Annotated[str, typer.Option(metavar="A:B", help="Per-identity spread range.")] = "0.6:1.4",
          seed: Seed = 0):
    """Hard-cluster data in the learn-to-cluster layout (features/*.bin, labels/*.meta, synth.json)."""
    from mlkit.errors import InputError
    from mlkit.faceclust.synth import make_dataset

    try:
        a, b = (float(v) for v in spread.split(":"))
    except ValueError as exc:
        raise InputError("bad --spread", expected="two numbers A:B, e.g. 0.6:1.4", got=spread) from exc
    info = make_dataset(output, ids=ids, train_ids=train_ids, seed=seed, dim=dim, alpha=alpha, smin=smin,
                        smax=smax, family=family, family_spread=family_spread, spread=(a, b))
    _output.note(f"{output}: " + ", ".join(f"{k} N={v['n']}" for k, v in info.get("splits", {}).items()))


@app.command()
def knn(features: Annotated[str, typer.Argument(metavar="FEATURES", help=".bin (with --dim) or .npy; '-' = stdin .npy.")],
        dim: Dim = 0, k: Annotated[int, typer.Option(help="Neighbours (self included).")] = 80,
        index: Annotated[Index, typer.Option(help="faiss index.")] = Index.flat,
        nprobe: Annotated[int, typer.Option(help="IVF lists probed.")] = 32,
        ltc: Annotated[bool, typer.Option("--ltc", help="Write learn-to-cluster (N, 2, k) float64.")] = False,
        threads: Threads = 0, output: Output = "-"):
    """Exact or approximate kNN graph (cosine on unit rows) -> .npz."""
    from mlkit.faceclust.formats import KnnGraph, read_features, write_knn
    from mlkit.faceclust.knn import build_knn

    x = read_features(features, dim or None)
    with _output.progress() as prog:
        task = prog.add_task("knn", total=len(x))
        r = build_knn(x, k, index=index.value, nprobe=nprobe, threads=threads or None,
                      progress=lambda done, n: prog.update(task, completed=done))
    write_knn(KnnGraph(r.ids, r.dists), output, "ltc" if ltc else "compact")


class Tokens(StrEnum):
    features = "features"
    gram = "gram"


@app.command("fit-sim")
def fit_sim(features: Annotated[str, typer.Argument(metavar="FEATURES", help="Train features.")],
            labels: Annotated[str, typer.Option(help="Train labels (.meta).")],
            output: Annotated[str, typer.Option("-o", "--output", help="sim.json (logistic) or "
                                                "sim.safetensors / sim.pt (transformer).")],
            dim: Dim = 0, model: Annotated[Sim, typer.Option(help="Similarity model.")] = Sim.logistic,
            k: Annotated[int, typer.Option(help="Neighbours per anchor (logistic; the transformer uses its "
                                                "config's k).")] = 80,
            tiny: Annotated[bool, typer.Option(help="The CPU config: k 40, 4 heads, FFN 512, gram tokens; batch 64, "
                                                   "lr 3e-4, 8 epochs, the best on 20% held-out identities, "
                                                   "calibrated on them.")] = False,
            tokens: Annotated[Tokens, typer.Option(help="Transformer input: raw neighbour features (the "
                                                        "paper's; default) or their cosine matrix (--tiny's "
                                                        "default; carries over to unseen identities).")] = None,
            epochs: Annotated[int, typer.Option(help="Transformer epochs [10; --tiny 8].")] = None,
            lr: Annotated[float, typer.Option(help="Learning rate, Adam [1e-4; --tiny 3e-4].")] = None,
            weight_decay: Annotated[float, typer.Option("--wd", help="Weight decay [5e-4].")] = None,
            batch: Annotated[int, typer.Option(help="Anchors per batch, global across torchrun ranks "
                                                    "[512; --tiny 64].")] = None,
            val_fraction: Annotated[float, typer.Option(help="Identities held out to pick the epoch and "
                                                             "calibrate p(same) [0; --tiny 0.2].")] = None,
            device: Device = DeviceName.auto, seed: Seed = 42):
    """Fit the pair-similarity model on a labelled split (logistic calibration or the transformer)."""
    from dataclasses import replace

    from mlkit.faceclust import train
    from mlkit.faceclust.config import SimConfig, TrainConfig
    from mlkit.faceclust.formats import read_features, read_meta
    from mlkit.faceclust.knn import build_knn
    from mlkit.tensors import resolve_device

    x = read_features(features, dim or None)
    y = read_meta(labels, n=len(x))
    if model == Sim.logistic:
        g = build_knn(x, k)
        sim = train.fit_logistic(x, g.ids, g.dists, y)
        _output.note(f"p(same) = sigmoid({float(sim.a):.3f} cos + {float(sim.b):.3f})", level=1)
    else:
        cfg = SimConfig.tiny(x.shape[1]) if tiny else SimConfig(d_model=x.shape[1])
        if tokens is not None:
            cfg = replace(cfg, tokens=tokens.value)
        given = {"epochs": epochs, "lr": lr, "weight_decay": weight_decay, "batch": batch,
                 "val_fraction": val_fraction}
        tc = replace(TrainConfig.tiny() if tiny else TrainConfig(), seed=seed,
                     **{name: v for name, v in given.items() if v is not None})
        g = build_knn(x, cfg.k)
        with _output.progress() as prog:
            task = prog.add_task("fit-sim", total=tc.epochs)

            def step(epoch, total, loss):
                prog.update(task, completed=epoch + 1, description=f"fit-sim loss {loss:.4f}")
                _output.note(f"epoch {epoch + 1}/{total}: training loss {loss:.4f}", level=1)

            sim = train.fit_transformer(x, g.ids, y, cfg.validate(), tc.validate(),
                                        device=str(resolve_device(device.value)), progress=step)
        if tc.val_fraction > 0:
            best = min(sim.history, key=lambda h: h["val_loss"])
            a, b = sim.get_calibration()
            _output.note(f"kept epoch {best['epoch'] + 1} (validation loss {best['val_loss']:.4f}); "
                         f"calibration p = sigmoid({a:.3f} logit + {b:.3f})", level=1)
    train.save_sim(sim, output)


@app.command()
def cluster(graph: Annotated[str, typer.Argument(metavar="[KNN]", help="kNN graph .npz ('-' = stdin).")] = "-",
            features: Annotated[str, typer.Option(help="Features (needed with --sim).")] = "",
            dim: Dim = 0, sim: Annotated[str, typer.Option(help="Similarity model from fit-sim.")] = "",
            method: Annotated[Method, typer.Option(help="Density/distance combination.")] = Method.chen,
            tau: Annotated[float, typer.Option(help="Edge threshold on the parent distance.")] = 0.7,
            ndde_k: Annotated[int, typer.Option(help="NDDe neighbours.")] = 20,
            ndde_sigma: Annotated[float, typer.Option(help="NDDe sigma.")] = 0.5,
            tpdi_sigma: Annotated[float, typer.Option(help="TPDi sigma.")] = 0.05,
            dump: Annotated[str, typer.Option(help="Folder for density/distance/neighbours .npy.")] = "",
            output: Output = "-"):
    """Cluster a kNN graph -> labels (.meta lines; JSONL when -o ends in .jsonl)."""
    from mlkit.faceclust.cluster import cluster_graph
    from mlkit.faceclust.evaluate import write_labels
    from mlkit.faceclust.formats import read_features, read_knn

    g = read_knn(graph)
    ids, dists = g.ids, g.dists
    if sim:
        from mlkit.faceclust.train import load_sim, refine_distances

        if not features:
            raise typer.BadParameter("--sim needs --features", param_hint="--features")
        ids, dists = refine_distances(load_sim(sim), read_features(features, dim or None), ids, dists)
    else:
        _output.note("note: clustering raw cosine distances; the defaults (tau 0.7, TPDi sigma 0.05) assume a "
                     "fitted similarity: fit-sim, then --sim FILE --features FEATURES")
    res = cluster_graph(ids, dists, method.value, ndde_k=ndde_k, ndde_sigma=ndde_sigma, tpdi_sigma=tpdi_sigma,
                        tau=tau)
    if dump:
        from mlkit.codecs import arrays
        from mlkit.codecs._io import atomic_dir

        with atomic_dir(dump) as tmp:
            for name, arr in (("density", res.density), ("distance", res.distance), ("nbrs", ids),
                              ("dist", dists), ("parent", res.parent)):
                arrays.write(arr, tmp / f"{name}.npy")
    write_labels(res.labels, output)
    _output.note(f"{len(set(res.labels.tolist()))} clusters; seconds {res.seconds}", level=1)


@app.command("eval")
def eval_(gt: Annotated[str, typer.Option(help="Ground-truth labels.")],
          preds: Annotated[list[str], typer.Argument(metavar="[PRED]...",
                                                     help="Predicted labels, one file per method ('-' = stdin).")] = None,
          features: Annotated[str, typer.Option(help="Features, for the sparsity bins.")] = "",
          dim: Dim = 0, nmi_average: Annotated[str, typer.Option(help="NMI average.")] = "arithmetic",
          plot: Annotated[str, typer.Option(metavar="FILE.png", help="Recall per size/sparsity quintile, "
                                                                     "one bar per PRED.")] = "",
          output: Output = "-", format: Format = Fmt.jsonl):
    """Pairwise and BCubed P/R/F, NMI, cluster counts and per-quintile recall: one record per PRED."""
    from mlkit.codecs._io import display_name
    from mlkit.errors import InputError
    from mlkit.faceclust.evaluate import plot_bins, read_labels
    from mlkit.faceclust.formats import read_features
    from mlkit.faceclust.metrics import evaluate

    preds = preds or ["-"]
    if preds.count("-") > 1:
        raise InputError("stdin given twice", expected="at most one '-' among the PRED files")
    truth = read_labels(gt)
    x = read_features(features, dim or None) if features else None
    results: dict[str, dict] = {}
    for p in preds:
        name = display_name(p)
        if name in results:
            name = f"{name}#{len(results) + 1}"
        results[name] = evaluate(truth, read_labels(p), x, nmi_average=nmi_average)
    if plot:
        plot_bins(results, plot)
    records = []
    for name, rec in results.items():
        rec = {"pred": name, **rec}
        if format in (Fmt.table, Fmt.csv, Fmt.tsv):   # flat rows: quintile recalls as columns
            flat = {k: v for k, v in rec.items() if not isinstance(v, list)}
            for key in ("size_bins", "sparsity_bins"):
                for b in rec.get(key) or []:
                    flat[f"{key.split('_')[0]}_q{b['bin']}_recall"] = b["recall"]
            rec = flat
        records.append(rec)
    _output.emit(records, format, output, title="faceclust eval")


@app.command()
def bench(n: Annotated[int, typer.Option("--n", help="Scale run: the whole pipeline on N synthetic faces "
                                                     "(IVF kNN) instead of the per-seed method table.")] = 0,
          seeds: Annotated[str, typer.Option(help="Comma-separated dataset seeds.")] = "10,11,12",
          ids: Annotated[int, typer.Option(help="Test identities per seed.")] = 600,
          train_ids: Annotated[int, typer.Option(help="Train identities (disjoint) for the similarity.")] = 300,
          sim: Annotated[Sim, typer.Option(help="Similarity model fitted on the train split (the transformer: "
                                                 "the tiny config, trained on the CPU).")] = Sim.logistic,
          tokens: Annotated[Tokens, typer.Option(help="Transformer input tokens.")] = Tokens.gram,
          methods: Annotated[str, typer.Option(help="Comma-separated methods.")] = ",".join(
              ("chen", "ndde-only", "tpdi-only", "sumsim", "knn-dbscan")),
          tau: Annotated[float, typer.Option(help="Edge threshold.")] = 0.7,
          index: Annotated[Index, typer.Option(help="kNN index of the scale run.")] = Index.ivf,
          nprobe: Annotated[int, typer.Option(help="IVF lists probed (scale run).")] = 32,
          device: Device = DeviceName.cpu, output: Output = "-", format: Format = Fmt.jsonl):
    """The paper's method beside its ablations and best-eps kNN-DBSCAN, one row per seed and method;
    or, with --n, one scale row: time per stage, peak RSS, kNN recall@k, extrapolation to 5.21M."""
    from mlkit.faceclust.bench import scale_bench
    from mlkit.tensors import resolve_device

    if n:
        with _output.progress() as prog:
            tasks: dict = {}

            def step(stage, done, total):
                if stage not in tasks:
                    tasks[stage] = prog.add_task(stage, total=total)
                prog.update(tasks[stage], completed=done, total=total)

            rec = scale_bench(n, index=index.value, nprobe=nprobe, tau=tau, progress=step)
        _output.emit([rec], format, output, title="faceclust bench (scale)")
        return
    from mlkit.errors import InputError
    from mlkit.faceclust.bench import BENCH_METHODS, run_seed

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError as exc:
        raise InputError("bad --seeds", expected="comma-separated integers", got=seeds) from exc
    ms = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = sorted(set(ms) - set(BENCH_METHODS))
    if unknown or not ms or not seed_list:
        raise InputError("bad --methods or --seeds", expected=", ".join(BENCH_METHODS),
                         got=", ".join(unknown) or "nothing")
    dev = resolve_device(device.value)

    def stream():
        with _output.progress() as prog:
            task = prog.add_task("bench", total=len(seed_list))
            for s in seed_list:
                yield from run_seed(s, ids=ids, train_ids=train_ids, sim=sim.value, methods=ms, tau=tau,
                                    device=str(dev), tokens=tokens.value)
                prog.advance(task)

    _output.emit(stream(), format, output, title="faceclust bench")


@app.command()
def demo(output: Output = "-", format: Format = Fmt.table):
    """Synthesise ~7,500 hard-cluster faces, cluster them with the paper's method, its ablations and
    best-eps kNN-DBSCAN, and print the metrics side by side."""
    from mlkit.faceclust.demo import demo_rows

    with _output.progress() as prog:
        task = prog.add_task("faceclust demo", total=None)
        rows = demo_rows()
        prog.update(task, completed=1, total=1)
    keep = ("method", "pairwise_f", "bcubed_f", "nmi", "clusters", "smallest_quintile_recall", "seconds")
    _output.emit([{k: r[k] for k in keep} for r in rows], format, output, title="faceclust demo")
