import tempfile
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlkit.codecs import graphs
from mlkit.errors import InputError

attr_values = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=6) | \
    st.lists(st.integers(0, 9), max_size=4)
attrs = st.dictionaries(st.sampled_from(["op", "bytes", "shape", "name", "ws"]), attr_values, max_size=3)


@st.composite
def dags(draw):
    n = draw(st.integers(0, 12))
    g = nx.DiGraph(name=draw(st.text(max_size=5)))
    ids = draw(st.lists(st.one_of(st.integers(0, 10**6), st.text(min_size=1, max_size=6)), min_size=n,
                        max_size=n, unique_by=str))
    ids = list(dict.fromkeys(ids))
    for i in ids:
        g.add_node(i, **draw(attrs))
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            if draw(st.booleans()):
                g.add_edge(ids[a], ids[b], **draw(attrs))
    return g


@settings(max_examples=60, deadline=None)
@given(dags())
def test_round_trip_keeps_attrs_and_order(g):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "g.json"
        graphs.write(g, p)
        h = graphs.read(p, require_dag=True)
    assert list(h.nodes(data=True)) == list(g.nodes(data=True))
    assert list(h.edges(data=True)) == list(g.edges(data=True))
    assert h.graph == g.graph


def test_networkx_reads_ours():
    g = nx.DiGraph()
    g.add_edge("a", "b", bytes=4)
    data = graphs.to_dict(g)
    h = nx.node_link_graph(data, edges="links")
    assert h.edges["a", "b"]["bytes"] == 4


def test_edges_key_accepted():
    h = graphs.from_dict({"nodes": [{"id": 1}, {"id": 2}], "edges": [{"source": 1, "target": 2}]})
    assert list(h.edges) == [(1, 2)]


def test_cycle_names_a_node():
    obj = {"nodes": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
           "links": [{"source": "a", "target": "b"}, {"source": "b", "target": "c"}, {"source": "c", "target": "b"}]}
    with pytest.raises(InputError, match="cycle through node '[bc]'"):
        graphs.from_dict(obj, require_dag=True)


@pytest.mark.parametrize("obj,msg", [
    ({"nodes": [{"id": 1}, {"id": 1}], "links": []}, "duplicate node id"),
    ({"nodes": [{"id": 1}], "links": [{"source": 1, "target": 9}]}, "unknown node"),
    ({"nodes": [{"name": 1}], "links": []}, "has no id"),
    ([1, 2], "not a node-link graph"),
])
def test_bad_graphs(obj, msg):
    with pytest.raises(InputError, match=msg):
        graphs.from_dict(obj)
