import gzip
import tempfile
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy as stnp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mlkit.codecs import arrays
from mlkit.errors import InputError

ALL_DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float16", "float32", "float64", "complex64", "complex128", ">f4", ">i8", "<u2"]
shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)


def any_array(dtypes):
    return st.sampled_from(dtypes).flatmap(lambda dt: hnp.arrays(np.dtype(dt), shapes))


def same(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)  # NaNs compare equal here


@settings(max_examples=80, deadline=None)
@given(any_array(ALL_DTYPES), st.booleans())
def test_npy_round_trip(a, gz):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / ("x.npy.gz" if gz else "x.npy")
        arrays.write(a, p)
        same(arrays.read(p), a)
        if gz:
            assert gzip.decompress(p.read_bytes())[:6] == b"\x93NUMPY"


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True), any_array(ALL_DTYPES),
                       min_size=1, max_size=3))
def test_npz_round_trip(d):
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "x.npz"
        arrays.write(d, p)
        back = arrays.read(p)
        assert set(back) == set(d)
        for k in d:
            same(back[k], d[k])


ST_DTYPES = list(arrays.SAFETENSORS_DTYPES)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_.]{0,8}", fullmatch=True), any_array(ST_DTYPES),
                       min_size=1, max_size=3))
def test_safetensors_round_trip_and_reference(d):
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "x.safetensors"
        arrays.write(d, p, metadata={"k": "v"})
        back = arrays.read(p)
        for k in d:
            same(back[k], d[k])
        # the official library reads what we write, and we read what it writes
        ref = stnp.load(p.read_bytes())
        for k in d:
            np.testing.assert_array_equal(ref[k], d[k])
        q = Path(tmp) / "y.safetensors"
        q.write_bytes(stnp.save({k: v.copy(order="C") for k, v in d.items()}))
        for k, v in arrays.read(q).items():
            same(v, d[k])
        assert arrays.safetensors_metadata(p) == {"k": "v"}


@settings(max_examples=60, deadline=None)
@given(any_array([d for d in ALL_DTYPES if not d.startswith(">")]))
def test_bin_round_trip(a):
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "x.bin"
        arrays.write(a, p)
        same(arrays.read(p, dtype=a.dtype, shape=a.shape), a)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["float64", "int64"]).flatmap(
    lambda dt: hnp.arrays(np.dtype(dt), hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
                          elements=(st.floats(allow_nan=False, allow_infinity=False, width=64)
                                    if dt == "float64" else st.integers(-2**53, 2**53)))),
       st.sampled_from(["csv", "tsv"]))
def test_text_round_trip_exact(a, fmt):
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / f"x.{fmt}"
        arrays.write(a, p)
        back = arrays.read(p, dtype=a.dtype)
        np.testing.assert_array_equal(back, a)


def test_bin_minus_one_shape(tmp_path):
    a = np.arange(24, dtype=np.float32)
    a.tofile(tmp_path / "f.bin")
    assert arrays.read(tmp_path / "f.bin", dtype="float32", shape=(-1, 8)).shape == (3, 8)
    m = arrays.read(tmp_path / "f.bin", dtype="float32", shape=(4, 6), mmap=True)
    assert isinstance(m, np.memmap) and m[3, 5] == 23


@pytest.mark.parametrize("shape,msg", [((5, 5), "wrong .bin size"), ((-1, 7), "wrong .bin size")])
def test_bin_wrong_size(tmp_path, shape, msg):
    np.arange(24, dtype=np.float32).tofile(tmp_path / "f.bin")
    with pytest.raises(InputError, match=msg):
        arrays.read(tmp_path / "f.bin", dtype="float32", shape=shape)


def test_bin_not_multiple_of_itemsize(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"\0" * 10)
    with pytest.raises(InputError, match="multiple of 4 bytes"):
        arrays.read(tmp_path / "f.bin", dtype="float32")


def test_truncated_npy(tmp_path):
    arrays.write(np.arange(100.0), tmp_path / "a.npy")
    raw = (tmp_path / "a.npy").read_bytes()
    for cut in (5, 60, len(raw) - 8):
        (tmp_path / "t.npy").write_bytes(raw[:cut])
        with pytest.raises(InputError, match="t.npy"):
            arrays.read(tmp_path / "t.npy")


def test_corrupt_safetensors(tmp_path):
    arrays.write({"w": np.ones((4, 4), np.float32)}, tmp_path / "w.safetensors")
    raw = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "c.safetensors").write_bytes(raw[:-10])
    with pytest.raises(InputError, match="truncated"):
        arrays.read(tmp_path / "c.safetensors")


def test_key_selection_and_errors(tmp_path):
    arrays.write({"a": np.zeros(2), "b": np.ones(3)}, tmp_path / "x.npz")
    assert arrays.read(tmp_path / "x.npz", key="b").shape == (3,)
    with pytest.raises(InputError, match="no array 'c'"):
        arrays.read(tmp_path / "x.npz", key="c")
    with pytest.raises(InputError, match="holds one array"):
        arrays.write({"a": np.zeros(2), "b": np.ones(3)}, tmp_path / "x.npy")


def test_csv_with_header_is_refused(tmp_path):
    (tmp_path / "h.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="header"):
        arrays.read(tmp_path / "h.csv")


def test_failed_write_leaves_nothing_and_keeps_old(tmp_path):
    p = tmp_path / "x.npy"
    arrays.write(np.arange(3), p)
    with pytest.raises(InputError):
        arrays.write(np.array([object()]), p)
    np.testing.assert_array_equal(arrays.read(p), np.arange(3))
    assert sorted(x.name for x in tmp_path.iterdir()) == ["x.npy"]
