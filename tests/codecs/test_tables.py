import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlkit.codecs import tables
from mlkit.errors import InputError

keys = st.text(min_size=1, max_size=8).filter(lambda s: s.strip() == s and s)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**62, 2**62) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)
records = st.lists(st.dictionaries(keys, json_values, max_size=5), max_size=8)


@settings(max_examples=80, deadline=None)
@given(records, st.sampled_from(["jsonl", "json", "jsonl.gz"]))
def test_json_round_trip_unicode(recs, ext):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"t.{ext}"
        assert tables.write(recs, p) == len(recs)
        assert tables.read(p) == recs


# cells that survive CSV as text: any unicode string without NUL or surrogates
cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.fixed_dictionaries({"name": cells, "note": cells, "città": cells}), min_size=1, max_size=6),
       st.sampled_from(["csv", "tsv"]))
def test_csv_round_trip_strings(recs, fmt):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"t.{fmt}"
        tables.write(recs, p)
        assert tables.read(p, infer=False) == recs


@settings(max_examples=50, deadline=None)
@given(st.lists(st.fixed_dictionaries({"i": st.integers(-10**12, 10**12),
                                       "x": st.floats(allow_nan=False, allow_infinity=False)}),
                min_size=1, max_size=6))
def test_csv_round_trip_numbers(recs):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.csv"
        tables.write(recs, p)
        back = tables.read(p)
        for a, b in zip(recs, back, strict=True):
            assert b["i"] == a["i"] and isinstance(b["i"], int)
            assert float(b["x"]) == a["x"]


def test_numpy_values_and_nan_become_strict_json(tmp_path):
    p = tmp_path / "t.jsonl"
    tables.write([{"a": np.float32(1.5), "b": np.arange(3), "c": float("nan"), "d": np.int64(7)}], p)
    line = p.read_text().strip()
    assert json.loads(line) == {"a": 1.5, "b": [0, 1, 2], "c": None, "d": 7}
    assert "NaN" not in line


def test_non_json_line_names_the_line(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"a": 1}\n\n{"a": 2}\nnot json\n')
    with pytest.raises(InputError, match="line 4 is not JSON"):
        tables.read(p)


def test_jsonl_line_must_be_object(tmp_path):
    (tmp_path / "t.jsonl").write_text("[1, 2]\n")
    with pytest.raises(InputError, match="not a JSON object"):
        tables.read(tmp_path / "t.jsonl")


def test_ragged_csv(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,2,3\n")
    with pytest.raises(InputError, match="more cells"):
        tables.read(tmp_path / "t.csv")


def test_render_table_has_all_cells():
    text = tables.render_table([{"tool": "x", "value": 0.123456}, {"tool": "ü", "extra": [1, 2]}], title="T")
    for piece in ("tool", "value", "extra", "0.1235", "ü", "[1, 2]", "T"):
        assert piece in text
