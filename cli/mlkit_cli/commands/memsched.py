"""mlkit memsched: the execution order of a DNN graph with the lowest peak activation memory."""

from enum import StrEnum
from typing import Annotated

import typer

from .. import _output
from .._app import MlkitTyper
from .._options import Fmt, Format, Output, Threads

app = MlkitTyper(help="Memory-aware DNN scheduling: iterative graph fusion + a pruned ILP (Zhong et al., "
                 "ICCAD 2023). Graphs are memsched JSON or ONNX; records are JSON on stdout.")

GraphArg = Annotated[str, typer.Argument(metavar="GRAPH", help="memsched graph JSON or .onnx model ('-' = stdin).")]
InputShape = Annotated[list[str], typer.Option("--input-shape", metavar="NAME=DIMS",
                                               help="Fix an ONNX input's dims, e.g. x=1,3,224,224 (repeatable).")]


class Method(StrEnum):
    auto = "auto"
    ilp = "ilp"
    dp = "dp"
    beam = "beam"
    greedy = "greedy"
    rpo = "rpo"
    topo = "topo"


class Solver(StrEnum):
    highs = "highs"
    cbc = "cbc"


class Inplace(StrEnum):
    none = "none"
    exclusive = "exclusive"


def _shapes(specs: list[str] | None) -> dict | None:
    if not specs:
        return None
    out = {}
    for spec in specs:
        name, _, dims = spec.partition("=")
        try:
            out[name] = [int(d) for d in dims.replace("x", ",").split(",") if d]
        except ValueError as exc:
            raise typer.BadParameter(f"expected NAME=1,3,224,224, got {spec!r}") from exc
        if not name or not out[name]:
            raise typer.BadParameter(f"expected NAME=1,3,224,224, got {spec!r}")
    return out


def _load(src: str, input_shape=None, inplace: str = "none"):
    from mlkit.memsched.io import load_graph

    return load_graph(src, input_shapes=_shapes(input_shape), inplace=inplace)


@app.command("import")
def import_(model: Annotated[str, typer.Argument(metavar="MODEL", help="ONNX model ('-' = stdin).")],
            input_shape: InputShape = None, inplace: Annotated[Inplace, typer.Option(
                help="In-place outputs: none, or exclusive (an elementwise op overwrites an input only it reads).")]
            = Inplace.none, output: Output = "-"):
    """ONNX -> memsched graph JSON (shape inference, weights excluded, constants folded)."""
    from mlkit.memsched.io import save_graph

    g = _load(model, input_shape, inplace.value)
    save_graph(g, output)
    _output.note(f"{g.name}: {g.n} ops, {len(g.tensors)} tensors", level=1)


class Kind(StrEnum):
    randwire = "randwire"
    darts = "darts"
    nasnet = "nasnet"
    amoebanet = "amoebanet"
    random = "random"
    diamond = "diamond"


@app.command()
def synth(kind: Annotated[Kind, typer.Argument(help="Generator.")],
          gen: Annotated[str, typer.Option(help="RandWire graph: ws, er or ba.")] = "ws",
          n: Annotated[int, typer.Option(help="RandWire nodes / random DAG nodes.")] = 32,
          k: Annotated[int, typer.Option(help="WS neighbours.")] = 4,
          p: Annotated[float, typer.Option(help="WS rewiring / ER edge probability.")] = 0.75,
          channels: Annotated[int, typer.Option(help="RandWire channels.")] = 78,
          hw: Annotated[int, typer.Option(help="Feature map height = width.")] = 28,
          cells: Annotated[int, typer.Option(help="Cell-stack depth.")] = 8,
          c: Annotated[int, typer.Option("--C", help="Cell-stack initial channels.")] = 16,
          chain: Annotated[int, typer.Option(help="Random DAG: longest chain per edge.")] = 4,
          seed: Annotated[int, typer.Option(envvar="MLKIT_SEED", help="Random seed.")] = 0,
          output: Output = "-"):
    """A benchmark graph: RandWire (WS/ER/BA), DARTS/NASNet/AmoebaNet cell stacks, random DAGs."""
    from mlkit.memsched import synth as S
    from mlkit.memsched.io import save_graph

    if kind == Kind.randwire:
        g = S.randwire(gen=gen, n=n, k=k, p=p, seed=seed, channels=channels, hw=hw)
    elif kind in (Kind.darts, Kind.nasnet, Kind.amoebanet):
        g = getattr(S, kind.value)(cells=cells, C=c, hw=hw)
    elif kind == Kind.random:
        g = S.random_chain_dag(n=n, p=p if p < 0.75 else 0.2, chain=chain, seed=seed)
    else:
        g = S.diamond()
    save_graph(g, output)


@app.command()
def fuse(graph: GraphArg, input_shape: InputShape = None, output: Output = "-"):
    """Iterative graph fusion (F1/F2): a smaller graph with the same optimum; fused ops list members."""
    from mlkit.memsched.fuse import fuse as run
    from mlkit.memsched.io import save_graph

    g, st = run(_load(graph, input_shape))
    save_graph(g, output)
    _output.note(f"fused {st.ops_before} -> {st.ops_after} ops ({st.ratio:.2f}x; F1 {st.f1}, F2 {st.f2})")


@app.command()
def schedule(graph: GraphArg,
             method: Annotated[Method, typer.Option(help="auto = fuse, exact DP under --max-states, else ILP.")]
             = Method.auto,
             solver: Annotated[Solver, typer.Option(help="LP solver for the ILP.")] = Solver.highs,
             time_limit: Annotated[float, typer.Option(help="ILP time limit (s).")] = 60.0,
             no_fuse: Annotated[bool, typer.Option("--no-fuse", help="Skip graph fusion.")] = False,
             no_prune: Annotated[bool, typer.Option("--no-prune", help="Skip ILP variable pruning.")] = False,
             beam: Annotated[int, typer.Option(help="Beam width.")] = 100,
             max_states: Annotated[int, typer.Option(help="Exact-DP state budget.")] = 2_000_000,
             require_optimal: Annotated[bool, typer.Option(help="Exit 1 unless optimality is proven.")] = False,
             input_shape: InputShape = None, threads: Threads = 0, output: Output = "-", format: Format = Fmt.jsonl):
    """The order with the lowest peak memory, with 'optimal' true only when proven."""
    from mlkit.errors import CheckFailed
    from mlkit.memsched.config import ScheduleConfig
    from mlkit.memsched.schedule import schedule as run

    cfg = ScheduleConfig(method=method.value, fuse=not no_fuse, prune=not no_prune, solver=solver.value,
                         time_limit=time_limit, beam=beam, max_states=max_states, threads=threads or None)
    rec = run(_load(graph, input_shape), cfg)
    _output.emit([rec], format, output)
    if require_optimal and not rec["optimal"]:
        raise CheckFailed("optimality not proven", expected="a proven optimum",
                          got=f"peak {rec['peak']}, lower bound {rec['lower_bound']}")


@app.command("eval")
def eval_(graph: GraphArg,
          order: Annotated[str, typer.Option(help="Order: a schedule record, JSON list or one op a line ('-' = stdin).")],
          arena: Annotated[bool, typer.Option(help="Add best-fit arena offsets and size.")] = False,
          align: Annotated[int, typer.Option(help="Arena alignment in bytes.")] = 1,
          compare: Annotated[list[str], typer.Option(help="More orders to draw with --plot.")] = None,
          plot: Annotated[str, typer.Option(metavar="FILE.png", help="Draw memory over steps.")] = "",
          input_shape: InputShape = None, output: Output = "-", format: Format = Fmt.jsonl):
    """Peak and per-step memory of an order (csv/tsv/table: one row a step)."""
    from mlkit.memsched.evaluate import evaluate, plot_profiles
    from mlkit.memsched.heuristics import definition_order
    from mlkit.memsched.io import load_order

    g = _load(graph, input_shape)
    main = load_order(order)
    rec = evaluate(g, main, arena=arena, alignment=align)
    if plot:
        orders = {"definition order": g.order_ids(definition_order(g)), "order": main}
        orders.update({c: load_order(c) for c in compare or []})
        plot_profiles(g, orders, plot)
    rows = [rec] if format in (Fmt.jsonl, Fmt.json) else rec["profile"]
    _output.emit(rows, format, output)


@app.command()
def verify(graph: GraphArg, no_ilp: Annotated[bool, typer.Option("--no-ilp", help="Check DP only.")] = False,
           input_shape: InputShape = None, output: Output = "-", format: Format = Fmt.jsonl):
    """Brute force over all topological orders (<= 10 ops) against DP and the ILP; exit 1 on a mismatch."""
    from mlkit.errors import CheckFailed
    from mlkit.memsched.verify import verify as run

    rec = run(_load(graph, input_shape), ilp=not no_ilp)
    _output.emit([rec], format, output)
    if not rec["agree"]:
        raise CheckFailed("methods disagree", expected=f"peak {rec['brute_force']} everywhere",
                          got=f"dp {rec['dp']}, ilp {rec.get('ilp')}")


@app.command()
def bench(graphs: Annotated[list[str], typer.Argument(metavar="[GRAPH]...",
                                                      help="Graphs (default: the shipped suite).")] = None,
          methods: Annotated[str, typer.Option(help="Comma-separated methods.")] =
          "topo,rpo,greedy,beam,dp,ilp,auto,ilp-nofuse,ilp-noprune",
          time_limit: Annotated[float, typer.Option(help="ILP time limit per solve (s).")] = 10.0,
          only: Annotated[str, typer.Option(help="Only suite graphs whose name contains this.")] = "",
          plot: Annotated[str, typer.Option(metavar="FILE.png", help="Bar chart of peak/optimum.")] = "",
          output: Output = "-", format: Format = Fmt.jsonl):
    """Every method side by side with peak/optimum ratios and seconds, one row per graph."""
    from mlkit.memsched.bench import bench as run
    from mlkit.memsched.bench import bench_suite, plot_bench
    from mlkit.memsched.io import load_graph

    items = [(s, load_graph(s)) for s in graphs] if graphs else bench_suite(only)
    ms = [m.strip() for m in methods.split(",") if m.strip()]
    rows: list[dict] = []

    def stream():  # JSON Lines go out row by row while a long bench runs
        with _output.progress() as prog:
            task = prog.add_task("bench", total=len(items))
            for row in run(items, ms, time_limit=time_limit):
                rows.append(row)
                prog.advance(task)
                yield row

    _output.emit(stream(), format, output, title="memsched bench")
    if plot:
        plot_bench(rows, ms, plot)


@app.command()
def demo(output: Output = "-", format: Format = Fmt.table):
    """Synthesise RandWire and DARTS graphs, schedule them, compare with definition order."""
    from mlkit.memsched.demo import demo_rows

    with _output.progress() as prog:
        task = prog.add_task("memsched demo", total=None)
        rows = list(demo_rows())
        prog.update(task, completed=1, total=1)
    _output.emit(rows, format, output, title="memsched demo")
