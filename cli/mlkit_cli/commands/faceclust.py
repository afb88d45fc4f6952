"""mlkit faceclust: face clustering that keeps hard clusters (NDDe + TPDi + density peaks).

Not registered in mlkit.registry yet (issue 4 is open): the verbs work and are tested through
this module's own Typer."""

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
          dim: Annotated[int, typer.Option(help="Feature width.")] = 256, seed: Seed = 0):
    """Hard-cluster data in the learn-to-cluster layout (features/*.bin, labels/*.meta)."""
    from mlkit.faceclust.synth import make_dataset

    info = make_dataset(output, ids=ids, train_ids=train_ids, seed=seed, dim=dim)
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


@app.command("fit-sim")
def fit_sim(features: Annotated[str, typer.Argument(metavar="FEATURES", help="Train features.")],
            labels: Annotated[str, typer.Option(help="Train labels (.meta).")],
            output: Annotated[str, typer.Option("-o", "--output", help="sim.json or sim.safetensors.")],
            dim: Dim = 0, model: Annotated[str, typer.Option(help="logistic or transformer.")] = "logistic",
            k: Annotated[int, typer.Option(help="Neighbours per anchor.")] = 80,
            epochs: Annotated[int, typer.Option(help="Transformer epochs.")] = 10,
            tiny: Annotated[bool, typer.Option(help="The small transformer config (CPU tests).")] = False,
            device: Device = DeviceName.auto, seed: Seed = 0):
    """Fit the pair-similarity model on a labelled split (logistic calibration or the transformer)."""
    from mlkit.faceclust import train
    from mlkit.faceclust.config import SimConfig, TrainConfig
    from mlkit.faceclust.formats import read_features, read_meta
    from mlkit.faceclust.knn import build_knn
    from mlkit.tensors import resolve_device

    x = read_features(features, dim or None)
    y = read_meta(labels, n=len(x))
    if model == "logistic":
        g = build_knn(x, k)
        sim = train.fit_logistic(x, g.ids, g.dists, y)
    elif model == "transformer":
        cfg = SimConfig.tiny(x.shape[1]) if tiny else SimConfig(d_model=x.shape[1])
        g = build_knn(x, cfg.k)
        sim = train.fit_transformer(x, g.ids, y, cfg, TrainConfig(epochs=epochs, seed=seed),
                                    device=resolve_device(device.value))
    else:
        raise typer.BadParameter("expected logistic or transformer", param_hint="--model")
    train.save_sim(sim, output)


@app.command()
def cluster(graph: Annotated[str, typer.Argument(metavar="KNN", help="kNN graph .npz ('-' = stdin).")],
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
def eval_(pred: Annotated[str, typer.Argument(metavar="PRED", help="Predicted labels ('-' = stdin).")],
          gt: Annotated[str, typer.Option(help="Ground-truth labels.")],
          features: Annotated[str, typer.Option(help="Features, for the sparsity bins.")] = "",
          dim: Dim = 0, nmi_average: Annotated[str, typer.Option(help="NMI average.")] = "arithmetic",
          plot: Annotated[str, typer.Option(metavar="FILE.png", help="Recall per size/sparsity quintile.")] = "",
          output: Output = "-", format: Format = Fmt.jsonl):
    """Pairwise and BCubed P/R/F, NMI, cluster counts and per-quintile recall."""
    from mlkit.faceclust.evaluate import plot_bins, read_labels
    from mlkit.faceclust.formats import read_features
    from mlkit.faceclust.metrics import evaluate

    x = read_features(features, dim or None) if features else None
    rec = evaluate(read_labels(gt), read_labels(pred), x, nmi_average=nmi_average)
    if plot:
        plot_bins({"prediction": rec}, plot)
    _output.emit([rec], format, output)
