"""Feature, label and kNN-graph formats (paper notes §4) and every bad input of §6."""

from __future__ import annotations

import gzip
import io
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlkit.errors import InputError, MissingInputError
from mlkit.faceclust import formats
from mlkit.faceclust.formats import KnnGraph, read_features, read_knn, read_meta, write_knn, write_meta


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(a))
    return buf.getvalue()


@pytest.fixture
def stdin(monkeypatch):
    def feed(data: bytes):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    return feed


def _graph(n=6, k=3, seed=0) -> KnnGraph:
    """A valid brute-force cosine graph (self first)."""
    x = np.random.default_rng(seed).standard_normal((n, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    d = 1 - x @ x.T
    np.fill_diagonal(d, -1)  # self first even against rounding
    ids = np.argsort(d, axis=1, kind="stable")[:, :k]
    dists = np.clip(np.take_along_axis(d, ids, 1), 0, 2)
    return KnnGraph(ids, dists)


# ---- features ---------------------------------------------------------------------------------

@given(st.integers(1, 20), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_bin_round_trip_normalises(n, dim, seed):
    x = np.random.default_rng(seed).uniform(0.5, 2.0, (n, dim)).astype("<f4")
    got = read_features(x.tobytes(), dim=dim, fmt="bin")
    want = x.astype(np.float64) / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    assert got.dtype == np.float32 and got.flags.c_contiguous and got.shape == (n, dim)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_bin_file_npy_file_bytes_and_stdin_agree(tmp_path, stdin):
    x = np.random.default_rng(1).standard_normal((7, 4)).astype(np.float32)
    (tmp_path / "f.bin").write_bytes(x.tobytes())
    (tmp_path / "f.npy").write_bytes(_npy(x))
    (tmp_path / "f.bin.gz").write_bytes(gzip.compress(x.tobytes()))
    (tmp_path / "e.bin").write_bytes(b"")
    ref = read_features(tmp_path / "f.bin", dim=4)
    np.testing.assert_array_equal(read_features(tmp_path / "f.bin.gz", dim=4), ref)
    with pytest.raises(InputError, match="no features"):
        read_features(tmp_path / "e.bin", dim=4)
    np.testing.assert_array_equal(read_features(tmp_path / "f.npy"), ref)
    np.testing.assert_array_equal(read_features(_npy(x)), ref)
    np.testing.assert_array_equal(read_features(_npy(x.astype(np.float64)), dim=4), ref)
    stdin(_npy(x))
    np.testing.assert_array_equal(read_features("-"), ref)


def test_bin_size_not_a_multiple_of_4_dim(tmp_path):
    (tmp_path / "f.bin").write_bytes(np.zeros(10, np.float32).tobytes())
    with pytest.raises(InputError, match=r"multiple of 4·dim = 16 bytes.*dim 4.*got 40 bytes"):
        read_features(tmp_path / "f.bin", dim=4)
    with pytest.raises(InputError, match="need their dimension"):
        read_features(tmp_path / "f.bin")


@pytest.mark.parametrize("bad,row", [(np.nan, 2), (np.inf, 2), (-np.inf, 2)])
def test_non_finite_row_is_named(tmp_path, bad, row):
    x = np.ones((4, 3), np.float32)
    x[row, 1] = bad
    x[3, 0] = bad
    with pytest.raises(InputError, match=rf"row {row} is not finite"):
        read_features(x.tobytes(), dim=3, fmt="bin")


def test_zero_row_is_named(monkeypatch):
    monkeypatch.setattr(formats, "_CHUNK", 2)  # the row number survives the block split
    x = np.ones((5, 3), np.float32)
    x[3] = 0
    with pytest.raises(InputError, match=r"row 3 has zero norm"):
        read_features(_npy(x))


@pytest.mark.parametrize("arr,msg", [(np.ones(4, np.float32), "2-D float"),
                                     (np.ones((2, 3), np.int64), "2-D float"),
                                     (np.ones((0, 3), np.float32), "no features")])
def test_bad_npy_features(arr, msg):
    with pytest.raises(InputError, match=msg):
        read_features(_npy(arr))


def test_npy_dim_mismatch_missing_file_and_empty_stdin(tmp_path, stdin):
    with pytest.raises(InputError, match="expected 5 columns, got 3"):
        read_features(_npy(np.ones((2, 3), np.float32)), dim=5)
    with pytest.raises(MissingInputError):
        read_features(tmp_path / "nope.bin", dim=4)
    stdin(b"")
    with pytest.raises(InputError, match="empty stdin"):
        read_features("-")


# ---- labels -----------------------------------------------------------------------------------

def test_meta_round_trip_and_stdout(tmp_path, capsysbinary):
    y = np.array([3, -1, 0, 12345678901], np.int64)
    write_meta(y, tmp_path / "a.meta")
    assert (tmp_path / "a.meta").read_text() == "3\n-1\n0\n12345678901\n"
    assert np.array_equal(read_meta(tmp_path / "a.meta", n=4), y)
    assert np.array_equal(read_meta(b"1\r\n2\r\n"), [1, 2])
    write_meta(y[:2], "-")
    assert capsysbinary.readouterr().out == b"3\n-1\n"
    with pytest.raises(InputError, match="1-D integer"):
        write_meta(np.ones(3), tmp_path / "b.meta")


def test_meta_count_and_non_integer_lines():
    with pytest.raises(InputError, match=r"wrong number of labels: expected 3 \(one per feature row\), got 2"):
        read_meta(b"1\n2\n", n=3)
    with pytest.raises(InputError, match=r"line 3: expected an integer label.*'1\.5'"):
        read_meta(b"1\n2\n1.5\n4\n")
    with pytest.raises(InputError, match="line 2"):
        read_meta(b"1\n\n2\n")
    with pytest.raises(InputError, match="no labels"):
        read_meta(b"\n\n")


# ---- kNN graphs -------------------------------------------------------------------------------

@given(st.integers(2, 12), st.integers(0, 2**32 - 1), st.sampled_from(["compact", "ltc"]))
def test_knn_round_trip(n, seed, fmt):
    g = _graph(n, k=min(n - 1, 4), seed=seed)
    buf = io.BytesIO()
    formats._write_ltc(g, buf) if fmt == "ltc" else np.savez(buf, ids=g.ids, dists=g.dists)
    got = read_knn(buf.getvalue(), n=n)
    assert got.ids.dtype == np.int32 and got.dists.dtype == np.float32
    np.testing.assert_array_equal(got.ids, g.ids)
    np.testing.assert_array_equal(got.dists, g.dists)


def test_ltc_layout_equals_compact(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "_LTC_BLOCK_BYTES", 3 * 2 * 5 * 8)  # 3 rows a block: many blocks
    g = _graph(20, k=5)
    g.ids[4, 3:], g.dists[4, 3:] = -1, np.inf  # two misses in a row are not duplicates
    write_knn(g, tmp_path / "c.npz")
    write_knn(g, tmp_path / "c.npz.gz", fmt="ltc")
    np.testing.assert_array_equal(read_knn(tmp_path / "c.npz.gz").ids, g.ids)
    write_knn(g, tmp_path / "faiss_k_5.npz", fmt="ltc")
    with np.load(tmp_path / "faiss_k_5.npz") as z:
        assert z.files == ["data"] and z["data"].shape == (20, 2, 5) and z["data"].dtype == np.float64
        np.testing.assert_array_equal(z["data"][:, 0], g.ids)
        np.testing.assert_array_equal(z["data"][:, 1], g.dists)
    with np.load(tmp_path / "c.npz") as z:
        assert z["ids"].dtype == np.int32 and int(z["k"]) == 5 and str(z["metric"]) == "cosine"
    a, b = read_knn(tmp_path / "c.npz"), read_knn(tmp_path / "faiss_k_5.npz")
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.dists, b.dists)
    assert a.valid.sum() == 20 * 5 - 2


def test_learn_to_cluster_file_with_ivf_misses():
    # the reference writer: np.savez_compressed(data=np.array([(ids, dists), ...])) -> float64
    g = _graph(6, k=3)
    rows = [(g.ids[i].copy(), g.dists[i].copy()) for i in range(6)]
    rows[2][0][2], rows[2][1][2] = -1, 3.4028234663852886e38  # faiss IP miss: 1 - (-FLT_MAX)
    buf = io.BytesIO()
    np.savez_compressed(buf, data=np.array(rows))
    got = read_knn(buf.getvalue())
    assert got.ids[2, 2] == -1 and got.dists[2, 2] == np.inf and not got.valid[2, 2]
    np.testing.assert_array_equal(got.ids[~np.isin(np.arange(6), [2])], g.ids[[0, 1, 3, 4, 5]])


def test_compact_stdout_and_stdin(capsysbinary, stdin):
    g = _graph(8, k=3)
    write_knn(g, "-")
    data = capsysbinary.readouterr().out
    assert data[:2] == b"PK"
    stdin(data)
    np.testing.assert_array_equal(read_knn("-").ids, g.ids)


def _compact(ids, dists) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, ids=np.asarray(ids), dists=np.asarray(dists, np.float32))
    return buf.getvalue()


OK_IDS = [[0, 1], [1, 2], [2, 0]]
OK_D = [[0, .1], [0, .2], [0, .3]]


@pytest.mark.parametrize("ids,dists,msg", [
    ([[0, 1], [1, 3], [2, 0]], OK_D, r"row 1 has a neighbour id out of range: expected ids in \[-1, 3\)"),
    ([[0, 1], [1, 2], [2, -2]], OK_D, r"row 2 has a bad neighbour id"),
    ([[0, 1], [1, 1], [2, 0]], OK_D, r"row 1 lists a neighbour twice"),
    (OK_IDS, [[0, .1], [0, .2], [0, 2.5]], r"row 2 has a distance out of range"),
    (OK_IDS, [[-0.01, .1], [0, .2], [0, .3]], r"row 0 has a distance out of range"),
    (OK_IDS, [[0, np.nan], [0, .2], [0, .3]], r"row 0 has a distance out of range"),
    ([[0, 1, 2], [1, 2, 0], [2, 0, 1]], [[0, .1, .2]] * 3, r"bad k: expected 1 <= k < N = 3, got k = 3"),
])
def test_bad_graphs(ids, dists, msg):
    with pytest.raises(InputError, match=msg):
        read_knn(_compact(ids, dists))


def test_bad_graph_rows_named_across_blocks_and_files(monkeypatch):
    monkeypatch.setattr(formats, "_CHUNK", 2)
    ids = np.array([[i, (i + 1) % 7] for i in range(7)])
    ids[5, 1] = 5
    with pytest.raises(InputError, match="row 5 lists a neighbour twice"):
        read_knn(_compact(ids, np.zeros((7, 2))))
    with pytest.raises(InputError, match=r"wrong number of rows: expected 8"):
        read_knn(_compact(OK_IDS, OK_D), n=8)
    data = np.array([[[0, 1.5], [0, .1]], [[1, 0], [0, .1]], [[2, 0], [0, .1]]])
    buf = io.BytesIO()
    np.savez(buf, data=data)
    with pytest.raises(InputError, match=r"row 0 has a bad neighbour id.*1\.5"):
        read_knn(buf.getvalue())


@pytest.mark.parametrize("payload,msg", [(b"not a zip at all", "not a valid .npz"),
                                         ("other", "not a kNN graph"), ("short", "truncated")])
def test_bad_containers(payload, msg):
    if payload == "other":
        buf = io.BytesIO()
        np.savez(buf, foo=np.ones(3))
        payload = buf.getvalue()
    elif payload == "short":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf, zf.open("data.npy", "w") as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False,
                                                      "shape": (5, 2, 3)})
            fh.write(np.zeros((2, 2, 3)).tobytes())
        payload = buf.getvalue()
    with pytest.raises(InputError, match=msg):
        read_knn(payload)


def test_rows_are_sorted_and_self_first_on_ties():
    ids = [[1, 0, 2], [1, 0, 2], [2, 0, 1], [3, 0, 1]]
    dists = [[0.0, 0.0, 0.5], [0.4, 0.0, 0.2], [0, .1, .2], [0, .1, .2]]
    g = read_knn(_compact(ids, dists))
    assert g.ids.tolist() == [[0, 1, 2], [0, 2, 1], [2, 0, 1], [3, 0, 1]]
    np.testing.assert_allclose(g.dists, [[0, 0, .5], [0, .2, .4], [0, .1, .2], [0, .1, .2]], rtol=1e-6)
    with pytest.raises(InputError, match="compact or ltc"):
        write_knn(g, "-", fmt="faiss")
