"""Benchmark graph generators: determinism, validity, construction counts, sizes, the MODeL test
vectors, the prototype's reference numbers and the committed suite fixtures."""

from __future__ import annotations

import json

import networkx as nx
import pytest

from mlkit.errors import InputError, MissingInputError
from mlkit.memsched import synth
from mlkit.memsched.graph import Graph, check_order, simulate

UNIT = 78 * 28 * 28 * 4  # one RandWire activation at the defaults, fp32


def _all_graphs():
    yield synth.diamond()
    yield synth.simple()
    yield synth.randwire("ws", 5, k=2, seed=1)
    yield synth.randwire("ws", 12, seed=1)
    for gen in ("er", "ba"):
        for n in (2, 5, 12):
            yield synth.randwire(gen, n, seed=1)
    for geno in synth.GENOTYPES:
        yield synth.cell_stack(geno, cells=3, C=8, hw=8)
    for s in range(4):
        yield synth.random_chain_dag(12, seed=s)
    for n in range(1, 11):
        yield synth.random_dag(n, 0.4, seed=n)


@pytest.mark.parametrize("make", [
    lambda s: synth.randwire("ws", 16, seed=s), lambda s: synth.randwire("er", 16, seed=s),
    lambda s: synth.randwire("ba", 16, seed=s), lambda s: synth.random_chain_dag(16, seed=s),
    lambda s: synth.random_dag(9, 0.4, seed=s)])
def test_same_seed_same_graph_other_seed_other_graph(make):
    assert make(3).to_dict() == make(3).to_dict()
    assert make(3).to_dict() != make(4).to_dict()


def test_cell_stacks_are_deterministic():
    assert synth.darts().to_dict() == synth.darts().to_dict()


def test_definition_order_is_topological_and_json_round_trips():
    for g in _all_graphs():
        assert check_order(g, range(g.n)) == list(range(g.n)), g.name
        back = Graph.from_dict(json.loads(json.dumps(g.to_dict())))
        assert back.to_dict() == g.to_dict()


@pytest.mark.parametrize("gen", ["ws", "er", "ba"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_randwire_wiring_matches_networkx(gen, seed):
    n = 24
    ug = {"ws": lambda: nx.connected_watts_strogatz_graph(n, 4, 0.75, seed=seed),
          "er": lambda: nx.erdos_renyi_graph(n, 0.2, seed=seed),
          "ba": lambda: nx.barabasi_albert_graph(n, 5, seed=seed)}[gen]()
    g = synth.randwire(gen, n, seed=seed)
    preds = {i: sorted(j for j in ug[i] if j < i) for i in range(n)}
    sinks = {i for i in range(n) if all(j < i for j in ug[i])}
    assert g.n == 2 + 3 * n + sum(len(p) >= 2 for p in preds.values())
    prod = {t.id: t.producer for t in g.tensors}

    def node_inputs(i):  # the producers feeding node i's first op
        first = f"n{i}.add" if len(preds[i]) >= 2 else f"n{i}.relu"
        return sorted(prod[t.id] for t in g.tensors if first in t.consumers)

    for i in range(n):
        assert node_inputs(i) == (sorted(f"n{j}.pwconv" for j in preds[i]) or ["stem"])
        assert [op.id for op in g.ops if op.id.startswith(f"n{i}.")][-3:] == [f"n{i}.relu", f"n{i}.dwconv",
                                                                                 f"n{i}.pwconv"]
    mean_in = {prod[t.id] for t in g.tensors if "mean" in t.consumers}
    assert mean_in == {f"n{i}.pwconv" for i in sinks}
    assert [t.id for t in g.tensors if t.output] == ["mean:0"]
    assert [t.id for t in g.tensors if t.producer is None] == ["input"]


def test_randwire_ws32_op_counts_match_the_prototype():
    # paper notes §2: RandWire WS(32,4,.75) stages have 117 / 117 / 116 ops for seeds 0 / 1 / 2
    assert [synth.randwire("ws", 32, 4, 0.75, seed=s).n for s in (0, 1, 2)] == [117, 117, 116]


def test_randwire_er_isolated_nodes_become_stem_to_mean_paths():
    seed = next(s for s in range(50) if list(nx.isolates(nx.erdos_renyi_graph(10, 0.2, seed=s))))
    lonely = list(nx.isolates(nx.erdos_renyi_graph(10, 0.2, seed=seed)))
    tensors = {t.id: t for t in synth.randwire("er", 10, seed=seed).tensors}
    for i in lonely:
        assert f"n{i}.relu" in tensors["stem:0"].consumers
        assert tensors[f"n{i}.pwconv:0"].consumers == ["mean"]


def test_randwire_sizes():
    g = synth.randwire("ws", 12, seed=0)
    assert set(g.size) == {UNIT}
    assert all(t.shape == [1, 78, 28, 28] and t.dtype == "float32" for t in g.tensors)
    half = synth.randwire("ws", 12, seed=0, channels=10, hw=7, dtype_bytes=2)
    assert set(half.size) == {10 * 7 * 7 * 2} and half.tensors[0].dtype == "float16"


def test_cell_stack_shapes_follow_the_darts_macro():
    C, hw, cells = 16, 32, 8
    g = synth.darts(cells, C, hw)
    shape = {t.id: t.shape for t in g.tensors}
    assert shape["input"] == [1, 3, hw, hw] and shape["stem:0"] == [1, 3 * C, hw, hw]
    assert shape["c0.concat:0"] == [1, 4 * C, hw, hw]                 # 4 intermediate nodes
    assert shape["c2.concat:0"] == [1, 8 * C, hw // 2, hw // 2]       # reduction at cells // 3
    assert shape["c3.pre0.concat:0"] == [1, 2 * C, hw // 2, hw // 2]  # FactorizedReduce after it
    assert shape["c5.n0.add:0"] == [1, 4 * C, hw // 4, hw // 4]       # reduction at 2 * cells // 3
    assert shape["gap:0"] == [1, 16 * C, 1, 1]
    assert all(t.size == 4 * t.shape[1] * t.shape[2] * t.shape[3] for t in g.tensors)
    # skip_connect at stride 1 is an alias: c0 node 2 adds sep(s1) to the preprocessed s0 itself
    add_inputs = [t.id for t in g.tensors if "c0.n2.add" in t.consumers]
    assert add_inputs == ["c0.pre0.conv:0", "c0.n2a.sep3.pw2:0"]
    nas = synth.nasnet(3, 8, 8)
    assert next(t for t in nas.tensors if t.id == "c0.concat:0").shape[1] == 5 * 8
    amoeba = synth.amoebanet(3, 8, 8)
    assert any(op.id == "c1.n4a.conv7x1_1x7.conv1x7" for op in amoeba.ops)


def test_darts_op_counts_and_definition_order_peaks_match_the_prototype():
    # paper notes §2 (fp32, definition order): 8 cells C=16: 270 ops, peak 2,408,448; 14 cells C=48:
    # 510 ops, peak 7,225,344. Both peaks are 12 activations of the first stage at 56x56.
    small, big = synth.darts(8, 16, 56), synth.darts(14, 48, 56, image_hw=224)
    assert (small.n, big.n) == (270, 510)
    assert simulate(small, range(small.n))[0] == 2_408_448 == 12 * 16 * 56 * 56 * 4
    assert simulate(big, range(big.n))[0] == 7_225_344 == 12 * 48 * 56 * 56 * 4


def _brute_force_optimum(g: Graph) -> int:
    best = None

    def walk(order, done):
        nonlocal best
        if len(order) == g.n:
            peak = simulate(g, order)[0]
            best = peak if best is None else min(best, peak)
            return
        for i in range(g.n):
            if i not in done and g.preds[i] <= done:
                walk(order + [i], done | {i})

    walk([], frozenset())
    return best


def test_model_test_vectors():
    d, s = synth.diamond(), synth.simple()
    assert [op.id for op in d.ops] == list("ABCDEFG")
    assert simulate(d, range(d.n)) == (150, [10, 60, 110, 130, 150, 120, 10])
    assert simulate(s, range(s.n)) == (70, [10, 60, 50, 70, 40])
    assert _brute_force_optimum(d) == 130 and _brute_force_optimum(s) == 70


def test_random_chain_dag_features():
    gs = [synth.random_chain_dag(20, seed=s, max_size=9, es_max=3) for s in range(6)]
    for g in gs:
        assert all(1 <= x <= 9 for x in g.size) and all(0 <= op.es <= 3 for op in g.ops)
        for i, op in enumerate(g.ops):
            if op.type == "chain":
                assert len(g.ins[i]) == 1 and len(g.outs[i]) == 1
            if op.type == "split":
                a, b = g.outs[i]
                assert g.cons[a] and g.cons[b] and not set(g.cons[a]) & set(g.cons[b])
    every = [t for g in gs for t in g.tensors]
    assert any(t.output and t.consumers for t in every)          # kept outputs
    assert any(t.producer is None for t in every)                # graph inputs
    assert sum(op.type == "split" for g in gs for op in g.ops) >= 2
    assert sum(op.type == "chain" for g in gs for op in g.ops) > sum(g.n for g in gs) / 3


def test_random_dag_small_sizes():
    for n in range(1, 11):
        g = synth.random_dag(n, 0.5, seed=0)
        assert g.n == n and all(len(o) == 1 for o in g.outs)
        assert all(t.output == (not t.consumers) for t in g.tensors)


@pytest.mark.parametrize("call", [
    lambda: synth.randwire("ws", 1), lambda: synth.randwire("ws", 12, k=12), lambda: synth.randwire("ws", 12, k=1),
    lambda: synth.randwire("xx", 12), lambda: synth.randwire("er", 12, p=1.5), lambda: synth.randwire(channels=0),
    lambda: synth.randwire(hw=-4), lambda: synth.randwire(dtype_bytes=3), lambda: synth.randwire(seed=-1),
    lambda: synth.random_chain_dag(max_size=-1), lambda: synth.random_chain_dag(n=0),
    lambda: synth.random_chain_dag(chain=-1), lambda: synth.random_dag(0), lambda: synth.random_dag(4, max_size=0),
    lambda: synth.cell_stack("foo"), lambda: synth.darts(cells=0), lambda: synth.darts(C=-16)])
def test_bad_parameters_raise_input_error(call):
    with pytest.raises(InputError):
        call()


def test_committed_suite_equals_a_fresh_regeneration(tmp_path):
    index = json.loads((synth.SUITE_DIR / "index.json").read_text())
    assert [e["name"] for e in index["graphs"]] == [name for name, _, _ in synth.SUITE]
    loaded = synth.load_suite()
    assert len(loaded) == len(synth.SUITE)
    for (name, g), e in zip(loaded, index["graphs"], strict=True):
        assert g.name == name and g.n == e["ops"] and len(g.tensors) == e["tensors"]
        assert check_order(g, range(g.n))
        assert g.n <= 620
    synth.write_suite(tmp_path)
    same_networkx = index["networkx"] == nx.__version__
    for name, gen, _ in synth.SUITE:
        if gen == "randwire" and not same_networkx:
            continue  # networkx's streams may change between releases: the fixtures are the reference
        assert (tmp_path / f"{name}.json").read_bytes() == (synth.SUITE_DIR / f"{name}.json").read_bytes(), name
    assert sum(p.stat().st_size for p in synth.SUITE_DIR.iterdir()) < 3_000_000


def test_load_suite_selects_names_and_reports_a_missing_folder(tmp_path):
    assert [n for n, _ in synth.load_suite(names=["diamond", "darts-cifar"])] == ["darts-cifar"]
    with pytest.raises(MissingInputError):
        synth.load_suite(tmp_path)
