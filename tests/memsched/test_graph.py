import pytest

from mlkit.errors import InputError
from mlkit.memsched.graph import SCHEMA, Graph, Op, Tensor, check_order, simulate


def diamond() -> Graph:
    """MODeL's diamond test vector (native_graphs/diamond_graph.py)."""
    edges = [("A", "B", 10), ("B", "C", 20), ("B", "D", 30), ("D", "E", 40), ("E", "F", 50), ("C", "F", 60),
             ("F", "G", 10)]
    return Graph([Op(x) for x in "ABCDEFG"], [Tensor(f"{a}{b}", s, a, [b]) for a, b, s in edges])


def test_model_diamond_vector():
    g = diamond()
    assert simulate(g, list(range(7))) == (150, [10, 60, 110, 130, 150, 120, 10])


def test_accounting_rules():
    # graph input counted, output kept to the end, unread output freed right after its step,
    # workspace only during its step, an op reading a tensor twice reads it once
    g = Graph([Op("a", es=5), Op("b"), Op("c")],
              [Tensor("in", 3, None, ["a"]), Tensor("x", 4, "a", ["b", "b"]), Tensor("dead", 7, "b", []),
               Tensor("y", 2, "b", ["c"], output=True), Tensor("z", 1, "c", [], output=True)])
    #      a: in 3 + x 4 + es 5 = 12;  b: x 4 + dead 7 + y 2 = 13;  c: y 2 + z 1 = 3
    assert simulate(g, [0, 1, 2]) == (13, [12, 13, 3])


def test_json_round_trip():
    g = diamond()
    d = g.to_dict()
    assert d["schema"] == SCHEMA
    h = Graph.from_dict(d)
    assert h.to_dict() == d


@pytest.mark.parametrize("ops,tensors,msg", [
    ([Op("a"), Op("a")], [], "duplicate op id"),
    ([Op("a")], [Tensor("t", 1, "a", []), Tensor("t", 1, "a", [])], "duplicate tensor id"),
    ([Op("a")], [Tensor("t", -1, "a", [])], "bad size"),
    ([Op("a")], [Tensor("t", 1, "zz", [])], "unknown producer"),
    ([Op("a")], [Tensor("t", 1, "a", ["zz"])], "unknown consumer"),
    ([Op("a")], [Tensor("t", 1, "a", ["a"])], "consumes its own output"),
])
def test_bad_graphs(ops, tensors, msg):
    with pytest.raises(InputError, match=msg):
        Graph(ops, tensors)


def test_cycle_names_an_op_on_it():
    ops = [Op("s"), Op("a"), Op("b"), Op("c")]
    ts = [Tensor("t0", 1, "s", ["a"]), Tensor("t1", 1, "a", ["b"]), Tensor("t2", 1, "b", ["c"]),
          Tensor("t3", 1, "c", ["a"])]
    with pytest.raises(InputError, match="cycle through op '[abc]'"):
        Graph(ops, ts)


def test_schema_and_malformed_json():
    with pytest.raises(InputError, match="unsupported graph schema"):
        Graph.from_dict({"schema": "other/v9", "ops": [], "tensors": []})
    with pytest.raises(InputError, match="malformed"):
        Graph.from_dict({"ops": [{"id": "a"}], "tensors": [{"id": "t", "size": 1.5, "producer": "a"}]})


def test_check_order_names_the_first_bad_op():
    g = diamond()
    assert check_order(g, list("ABDECFG")) == [0, 1, 3, 4, 2, 5, 6]
    with pytest.raises(InputError, match="'B' before 'C'"):
        check_order(g, list("ACBDEFG"))
    with pytest.raises(InputError, match="op 'B' twice"):
        check_order(g, list("ABBDEFG"))
    with pytest.raises(InputError, match="op 'G' missing"):
        check_order(g, list("ABCDEF"))
    with pytest.raises(InputError, match="unknown op"):
        check_order(g, list("ABCDEFX"))


def test_empty_graph_peak_zero():
    g = Graph([], [])
    assert simulate(g, []) == (0, [])
