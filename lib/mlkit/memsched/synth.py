"""Seeded benchmark graphs for memory-aware scheduling, and the committed bench suite.

The paper's benchmark graphs are not available to us, so every generator here is a
reconstruction (paper notes §4–§5):

- ``randwire``: one RandWire stage (Xie et al. 2019) as HMCOS ``script/randwire.py`` builds it,
  but seeded through networkx. Undirected edges point from the lower to the higher index.
- ``darts`` / ``nasnet`` / ``amoebanet``: the DARTS evaluation network (``NetworkCIFAR``) with the
  DARTS-V2, NASNet-A and AmoebaNet-A genotypes of the DARTS repository (``cnn/genotypes.py``).
  HMCOS ``script/nas.py`` copies the NASNet and AmoebaNet genotypes with other indices and concat lists.
- ``random_chain_dag`` / ``random_dag``: random DAGs for the fusion and brute-force tests.
- ``diamond`` / ``simple``: MODeL's test vectors (``native_graphs/diamond_graph.py`` and
  ``simple_graph.py``).

Sizes are activation bytes at batch 1 (C·H·W·dtype_bytes). Weights are not tensors, and
workspace ``es`` is 0 except in the random DAGs. Op ids name the place in the network
(``n7.relu``, ``c3.n1a.sep3.dw2``), and each op's outputs are ``<op id>:0``, ``<op id>:1``.
Definition order is construction order, and it is always a topological order. A stride-1
``skip_connect`` is an alias, not an op: the consumer reads the source tensor itself.

networkx's random streams are not a stability contract, so the suite ships as JSON under
``suite/`` (``write_suite``), and ``load_suite`` reads it back.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from mlkit.errors import InputError, MissingInputError

from ._build import _Builder, _need_dtype, _need_int, _need_prob
from .cells import GENOTYPES, amoebanet, cell_stack, darts, nasnet
from .graph import Graph, Op, Tensor

__all__ = ["randwire", "darts", "nasnet", "amoebanet", "cell_stack", "GENOTYPES", "random_chain_dag",
           "random_dag", "small_random_graphs", "chain_rich_graphs", "diamond", "simple", "SUITE", "suite",
           "write_suite", "load_suite", "SUITE_DIR"]

SUITE_DIR = Path(__file__).parent / "suite"


# ---------------------------------------------------------------------------- RandWire
def randwire(gen: str = "ws", n: int = 32, k: int = 4, p: float | None = None, seed: int = 0,
             channels: int = 78, hw: int = 28, dtype_bytes: int = 4) -> Graph:
    """One RandWire stage: ``stem`` -> n random-graph nodes -> ``mean`` (the graph output).

    gen "ws": ``connected_watts_strogatz_graph(n, k, p=0.75)``; "er": ``erdos_renyi_graph(n, p=0.2)``;
    "ba": ``barabasi_albert_graph(n, m=min(5, n-1))`` (k and p unused). A node is
    [``add`` over its predecessors when it has two or more] -> ``relu`` -> ``dwconv`` -> ``pwconv``.
    In-degree-0 nodes read the stem output and out-degree-0 nodes feed ``mean``, so isolated ER
    nodes become stem -> node -> mean paths. Every tensor is channels×hw×hw."""
    import networkx as nx

    if gen not in ("ws", "er", "ba"):
        raise InputError("bad generator parameter gen", expected="ws, er or ba", got=repr(gen))
    _need_int("n", n, 2)
    _need_int("seed", seed, 0)
    _need_int("channels", channels, 1)
    _need_int("hw", hw, 1)
    _need_dtype(dtype_bytes)
    p = _need_prob("p", {"ws": 0.75, "er": 0.2, "ba": 0.0}[gen] if p is None else p)
    if gen == "ws":
        _need_int("k", k, 2, n - 1)
        try:
            ug = nx.connected_watts_strogatz_graph(n, k, p, seed=seed)
        except nx.NetworkXError as exc:
            raise InputError("no connected Watts-Strogatz graph", got=f"n={n} k={k} p={p}: {exc}",
                             hint="raise p or k, or try another seed") from exc
    elif gen == "er":
        ug = nx.erdos_renyi_graph(n, p, seed=seed)
    else:
        ug = nx.barabasi_albert_graph(n, min(5, n - 1), seed=seed)
    preds: list[list[int]] = [[] for _ in range(n)]
    has_succ = [False] * n
    for u, v in ug.edges():
        lo, hi = min(u, v), max(u, v)
        preds[hi].append(lo)
        has_succ[lo] = True

    b = _Builder(dtype_bytes)
    size, shape = b.act(channels, hw)
    stem = b.conv("stem", "stem", b.input("input", size, shape), channels, hw)
    # Nodes are written in networkx's topological_sort order of the node DAG, the order a RandWire
    # forward pass iterates its graph in; this is the definition order ("topo") every method is
    # compared with. (Node-index order would be another valid order, kinder to memory here.)
    dag = nx.DiGraph()
    dag.add_nodes_from(range(n))
    dag.add_edges_from((min(u, v), max(u, v)) for u, v in ug.edges())  # networkx's edge order
    outs: dict[int, str] = {}
    for i in nx.topological_sort(dag):
        srcs = [outs[j] for j in sorted(preds[i])] or [stem]
        x = srcs[0] if len(srcs) == 1 else b.op(f"n{i}.add", "add", srcs, [b.act(channels, hw)])[0]
        for kind in ("relu", "dwconv", "pwconv"):
            x = b.conv(f"n{i}.{kind}", kind, x, channels, hw)
        outs[i] = x
    mean = b.op("mean", "mean", [outs[i] for i in range(n) if not has_succ[i]], [b.act(channels, hw)])
    params = {"gen": gen, "n": n, "k": k, "p": p, "seed": seed, "channels": channels, "hw": hw,
              "dtype_bytes": dtype_bytes}
    return b.graph(f"randwire-{gen}-n{n}-s{seed}", {"generator": "randwire", "params": params}, mean)


# ---------------------------------------------------------------------------- random DAGs
def random_chain_dag(n: int = 20, p: float = 0.2, chain: int = 4, seed: int = 0, max_size: int = 16,
                     es_max: int = 4, *, split_p: float = 0.15, keep_p: float = 0.1,
                     input_p: float = 0.5) -> Graph:
    """A G(n, p) DAG (edges low -> high) whose edges are subdivided into 0..chain single-input
    single-output ``chain`` ops. Sizes are uniform in 1..max_size bytes, and each op's es in 0..es_max.
    A node with two or more successors is, with probability split_p, a ``split`` with two output
    tensors that go to different successors. A non-sink node's output is also a graph output
    ("kept") with probability keep_p. A source reads a graph input with probability input_p.
    Sinks' outputs are graph outputs. Uses Python's ``random.Random(seed)``, not networkx."""
    _need_int("n", n, 1)
    _need_int("chain", chain, 0)
    _need_int("seed", seed, 0)
    _need_int("max_size", max_size, 1)
    _need_int("es_max", es_max, 0)
    p, split_p, keep_p, input_p = (_need_prob(k, v) for k, v in
                                   (("p", p), ("split_p", split_p), ("keep_p", keep_p), ("input_p", input_p)))
    rng = random.Random(seed)
    succ: list[list[int]] = [[j for j in range(i + 1, n) if rng.random() < p] for i in range(n)]
    preds: list[list[int]] = [[i for i in range(j) if j in succ[i]] for j in range(n)]
    b = _Builder()
    feed: dict[tuple[int, int], str] = {}   # edge -> the tensor that enters its chain
    outputs: list[str] = []
    for j in range(n):
        ins = []
        for i in preds[j]:
            x = feed[i, j]
            for c in range(rng.randint(0, chain)):
                x = b.op(f"e{i}_{j}.{c}", "chain", [x], [(rng.randint(1, max_size), None)],
                         rng.randint(0, es_max))[0]
            ins.append(x)
        if not preds[j] and rng.random() < input_p:
            ins.append(b.input(f"in{j}", rng.randint(1, max_size)))
        split = len(succ[j]) >= 2 and rng.random() < split_p
        cut = rng.randint(1, len(succ[j]) - 1) if split else len(succ[j])
        outs = b.op(f"v{j}", "split" if split else "node", ins,
                    [(rng.randint(1, max_size), None) for _ in range(2 if split else 1)], rng.randint(0, es_max))
        for pos, s in enumerate(succ[j]):
            feed[j, s] = outs[0] if pos < cut else outs[1]
        if not succ[j]:
            outputs += outs
        elif rng.random() < keep_p:
            outputs.append(outs[0])
    params = {"n": n, "p": p, "chain": chain, "seed": seed, "max_size": max_size, "es_max": es_max,
              "split_p": split_p, "keep_p": keep_p, "input_p": input_p}
    return b.graph(f"chaindag-n{n}-s{seed}", {"generator": "random_chain_dag", "params": params}, outputs)


def random_dag(n: int = 8, p: float = 0.3, seed: int = 0, max_size: int = 16, es_max: int = 0) -> Graph:
    """A plain G(n, p) DAG of n ops ``o0..``: each op has one output of 1..max_size bytes, read by
    all its successors; sinks' outputs are graph outputs; no graph inputs. For brute-force tests."""
    _need_int("n", n, 1)
    _need_int("seed", seed, 0)
    _need_int("max_size", max_size, 1)
    _need_int("es_max", es_max, 0)
    p = _need_prob("p", p)
    rng = random.Random(seed)
    succ = [[j for j in range(i + 1, n) if rng.random() < p] for i in range(n)]
    b = _Builder()
    outs: list[str] = []
    for j in range(n):
        ins = [outs[i] for i in range(j) if j in succ[i]]
        outs += b.op(f"o{j}", "op", ins, [(rng.randint(1, max_size), None)], rng.randint(0, es_max))
    params = {"n": n, "p": p, "seed": seed, "max_size": max_size, "es_max": es_max}
    return b.graph(f"dag-n{n}-s{seed}", {"generator": "random_dag", "params": params},
                   [outs[i] for i in range(n) if not succ[i]])


def small_random_graphs(count: int, max_ops: int, seed0: int = 0) -> list[Graph]:
    """A test population: ``count`` graphs of at most ``max_ops`` ops, alternately plain G(n, p)
    DAGs (with workspace) and small chain-rich DAGs. Used by the brute-force and DP checks."""
    out, s = [], seed0
    while len(out) < count:
        rng = random.Random(s)
        if s % 2:
            g = random_dag(n=rng.randint(1, max_ops), p=rng.choice([0.2, 0.35, 0.5]), seed=s, es_max=4)
        else:
            g = random_chain_dag(n=rng.randint(1, 5), p=0.4, chain=2, seed=s)
        s += 1
        if g.n <= max_ops:
            out.append(g)
    return out


def chain_rich_graphs(count: int, seed0: int = 0, max_ops: int | None = None) -> list[Graph]:
    """A test population of chain-rich DAGs (3-9 nodes, chains up to 4 ops per edge), optionally
    capped at ``max_ops`` ops. Used by the fusion and ILP checks."""
    out, s = [], seed0
    while len(out) < count:
        rng = random.Random(s)
        g = random_chain_dag(n=rng.randint(3, 9), p=0.3, chain=4, seed=s)
        s += 1
        if max_ops is None or g.n <= max_ops:
            out.append(g)
    return out


def _model_graph(name: str, edges: list[tuple[str, str, int]]) -> Graph:
    """MODeL native graph: every edge is its own tensor; ops without out-edges produce nothing."""
    names = list(dict.fromkeys(x for e in edges for x in e[:2]))
    tensors = [Tensor(f"{u}_{v}", size, u, [v]) for u, v, size in edges]
    return Graph([Op(x) for x in sorted(names)], tensors, name=name,
                 meta={"generator": name, "params": {}, "source": f"MODeL native_graphs/{name}_graph.py"})


def diamond() -> Graph:
    """Definition order A..G gives the profile [10, 60, 110, 130, 150, 120, 10]; the optimum is 130."""
    return _model_graph("diamond", [("A", "B", 10), ("B", "C", 20), ("B", "D", 30), ("D", "E", 40),
                                    ("E", "F", 50), ("C", "F", 60), ("F", "G", 10)])


def simple() -> Graph:
    """Definition order A..E gives the profile [10, 60, 50, 70, 40]; the optimum is 70."""
    return _model_graph("simple", [("A", "B", 10), ("B", "C", 20), ("B", "D", 30), ("D", "E", 40)])


# ---------------------------------------------------------------------------- the bench suite
_GENERATORS = {"randwire": randwire, "cell_stack": cell_stack, "random_chain_dag": random_chain_dag}

SUITE: list[tuple[str, str, dict]] = (
    [(f"rw-{g}-n{n}-s{s}", "randwire", {"gen": g, "n": n, "seed": s})
     for g in ("ws", "er", "ba") for n in (12, 16, 24, 32) for s in (0, 1, 2)]
    + [(f"{g}-cifar", "cell_stack", {"genotype": g, "cells": 8, "C": 16, "hw": 32})
       for g in ("darts", "nasnet", "amoebanet")]
    + [(f"{g}-imagenet", "cell_stack", {"genotype": g, "cells": 14, "C": 48, "hw": 56, "image_hw": 224})
       for g in ("darts", "nasnet", "amoebanet")]
    + [(f"chaindag-n{n}-s{s}", "random_chain_dag", {"n": n, "seed": s}) for n in (16, 20, 24) for s in (0, 1)]
)
"""(name, generator, parameters) of each suite graph; unnamed parameters take their defaults."""


def suite() -> list[tuple[str, Graph]]:
    """Regenerate the bench suite (``load_suite`` reads the committed copy instead)."""
    out = []
    for name, gen, params in SUITE:
        g = _GENERATORS[gen](**params)
        g.name = name
        out.append((name, g))
    return out


def write_suite(folder: str | Path) -> list[dict]:
    """Write ``<name>.json`` per suite graph (compact ``Graph.to_dict``) and ``index.json``
    (name, file, generator, parameters, op and tensor counts) into folder. Returns the index."""
    import networkx as nx

    from mlkit.codecs._io import write_bytes

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    index = []
    for name, g in suite():
        write_bytes(_dumps(g.to_dict()) + b"\n", folder / f"{name}.json")
        index.append({"name": name, "file": f"{name}.json", "generator": g.meta["generator"],
                      "params": g.meta["params"],
                      "ops": g.n, "tensors": len(g.tensors)})
    head = {"schema": "mlkit.memsched.suite/v1", "networkx": nx.__version__, "graphs": index}
    write_bytes(json.dumps(head, indent=1).encode() + b"\n", folder / "index.json")
    return index


def load_suite(folder: str | Path | None = None, names: list[str] | None = None) -> list[tuple[str, Graph]]:
    """Read the committed suite (or one written by ``write_suite``), in index order."""
    folder = SUITE_DIR if folder is None else Path(folder)
    try:
        head = json.loads((folder / "index.json").read_text())
        entries = [e for e in head["graphs"] if names is None or e["name"] in names]
        return [(e["name"], Graph.from_dict(json.loads((folder / e["file"]).read_text()), name=e["name"]))
                for e in entries]
    except FileNotFoundError as exc:
        raise MissingInputError(f"{folder}: memsched suite file missing", got=str(exc.filename),
                                hint="regenerate it with mlkit.memsched.synth.write_suite") from exc
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{folder}: unreadable memsched suite", got=f"{type(exc).__name__}: {exc}") from exc


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
