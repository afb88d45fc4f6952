"""faceclust metrics against independent references: sklearn (pair confusion matrix, NMI), O(N^2)
brute forces (BCubed, sparsity), a transcription of the official ``evaluate_bin_size`` binning, and
label-file round trips."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import normalized_mutual_info_score
from sklearn.metrics.cluster import pair_confusion_matrix

from mlkit.errors import InputError, MissingInputError, OutputError
from mlkit.faceclust import metrics as M
from mlkit.faceclust.evaluate import plot_bins, read_labels, write_labels

TOL = 1e-9
AVERAGES = ("arithmetic", "geometric", "min", "max")


# ----------------------------------------------------------------------------- references
def ref_pairwise(gt, pred):
    """P/R/F from sklearn's pair confusion matrix (C11 = TP, C01 = FP, C10 = FN), with the
    documented conventions: nothing to judge -> 1.0, F = 0 when P + R = 0."""
    c = pair_confusion_matrix(gt, pred)
    tp, fp, fn = c[1, 1], c[0, 1], c[1, 0]
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def ref_bcubed(gt, pred):
    """Per-sample BCubed, O(N^2): P_i = |same g & same p| / |same p|, R_i = ... / |same g|."""
    same_g, same_p = gt[:, None] == gt[None, :], pred[:, None] == pred[None, :]
    both = (same_g & same_p).sum(1)
    p, r = np.mean(both / same_p.sum(1)), np.mean(both / same_g.sum(1))
    return p, r, 2 * p * r / (p + r)


def ref_sparsity(x, gt):
    """1 - mean off-diagonal cosine per identity, O(|C|^2); singletons 0."""
    out = []
    for g in np.unique(gt):
        c = x[gt == g].astype(np.float64)
        c /= np.linalg.norm(c, axis=1, keepdims=True)
        n = len(c)
        gram = c @ c.T
        out.append(0.0 if n < 2 else 1 - (gram.sum() - np.trace(gram)) / (n * (n - 1)))
    return np.array(out)


def official_bins(gt, key_of):
    """Transcription of the official ``DPC.evaluate_bin_size`` binning: identity -> bin (1..5)."""
    class_cnt = {}
    for lab in gt.tolist():
        class_cnt.setdefault(lab, 0)
    n = len(class_cnt)
    bin_list = [i * n // 5 for i in range(5)] + [n + 1]
    out = {}
    for cidx, (k, _) in enumerate(sorted(((k, key_of[k]) for k in class_cnt), key=lambda d: d[1])):
        out[k] = next(b for b, cnt in enumerate(bin_list) if cidx < cnt)
    return out


# ----------------------------------------------------------------------------- data
@st.composite
def labelings(draw, max_n: int = 80):
    """Random labelings of varying N and cluster counts, with arbitrary integer values."""
    n = draw(st.integers(1, max_n))
    kg, kp = draw(st.integers(1, n)), draw(st.integers(1, n))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    gt, pred = rng.integers(0, kg, n), rng.integers(0, kp, n)
    scale, shift = draw(st.sampled_from([(1, 0), (-7, 3), (1_000_003, -(2 ** 40))]))
    return gt * scale + shift, pred


def power_law(rng, n_ids):
    sizes = np.minimum((2 * (1 - rng.random(n_ids)) ** -1.0).astype(int), 60)
    return rng.permutation(np.repeat(np.arange(n_ids), sizes))


EDGE = {
    "one-cluster both": (np.zeros(9, int), np.zeros(9, int)),
    "singletons both": (np.arange(9), np.arange(9)[::-1]),
    "gt one, pred singletons": (np.zeros(9, int), np.arange(9)),
    "gt singletons, pred one": (np.arange(9), np.zeros(9, int)),
    "one sample": (np.array([4]), np.array([-2])),
    "independent 2x2": (np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])),
    "relabelled": (np.array([5, 5, 2, 2, 9]), np.array([1, 1, 0, 0, 3])),
}
EDGE_CASES = pytest.mark.parametrize("gt,pred", list(EDGE.values()), ids=list(EDGE))


def check_against_refs(gt, pred):
    pw = M.pairwise(gt, pred)
    assert np.allclose([pw["precision"], pw["recall"], pw["f"]], ref_pairwise(gt, pred), rtol=0, atol=TOL)
    bc = M.bcubed(gt, pred)
    assert np.allclose([bc["precision"], bc["recall"], bc["f"]], ref_bcubed(gt, pred), rtol=0, atol=TOL)
    for avg in AVERAGES:
        assert abs(M.nmi(gt, pred, avg) - normalized_mutual_info_score(gt, pred, average_method=avg)) < TOL


# ----------------------------------------------------------------------------- metrics
@settings(max_examples=80)
@given(labelings())
def test_metrics_match_references_on_random_labelings(lab):
    check_against_refs(*lab)


@pytest.mark.parametrize("seed", range(50))
def test_metrics_match_references_on_power_law_identities(seed):
    rng = np.random.default_rng(seed)
    gt = power_law(rng, int(rng.integers(1, 60)))
    noise = rng.random(len(gt)) < rng.random()  # re-label a random share of samples
    pred = np.where(noise, rng.integers(0, max(1, len(gt) // 3), len(gt)), gt)
    check_against_refs(gt, pred)


@EDGE_CASES
def test_metrics_match_references_on_edge_cases(gt, pred):
    check_against_refs(gt, pred)


def test_degenerate_conventions():
    assert M.pairwise(np.arange(5), np.arange(5)) == {"precision": 1.0, "recall": 1.0, "f": 1.0}
    assert M.pairwise(np.zeros(5, int), np.arange(5)) == {"precision": 1.0, "recall": 0.0, "f": 0.0}
    assert M.pairwise(np.arange(5), np.zeros(5, int)) == {"precision": 0.0, "recall": 1.0, "f": 0.0}
    assert M.nmi(np.zeros(4, int), np.zeros(4, int)) == 1.0
    assert M.nmi(np.zeros(4, int), np.arange(4)) == 0.0


def test_large_counts_stay_exact():
    """Closed form: every other sample moves to cluster 7, so each identity keeps 200k in its own
    cluster and puts 200k in cluster 7 (sums of squares ~5e11, beyond int32)."""
    gt = np.repeat(np.arange(3), 400_000)
    pred = gt.copy()
    pred[::2] = 7
    tk = 6 * 200_000 ** 2 - 1_200_000
    pk = 600_000 ** 2 + 3 * 200_000 ** 2 - 1_200_000
    qk = 3 * 400_000 ** 2 - 1_200_000
    pw = M.pairwise(gt, pred)
    assert pw["precision"] == tk / pk and pw["recall"] == tk / qk


def test_float_labels_with_whole_values_are_accepted():
    gt = np.array([0.0, 0.0, 1.0, 2.0])
    assert M.pairwise(gt, gt.astype(int)) == {"precision": 1.0, "recall": 1.0, "f": 1.0}
    assert M.cluster_sizes(np.array([3, 1, 3, 3, 7])).tolist() == [1, 3, 1]


# ----------------------------------------------------------------------------- sparsity
@settings(max_examples=60)
@given(labelings(max_n=120), st.integers(1, 24), st.integers(1, 50))
def test_sparsity_matches_brute_force(lab, dim, chunk):
    gt, _ = lab
    rng = np.random.default_rng(len(gt) * 31 + dim)
    x = rng.normal(size=(len(gt), dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    got = M.sparsity(x, gt, chunk_rows=chunk)
    assert got.shape == (len(np.unique(gt)),)
    assert np.max(np.abs(got - ref_sparsity(x, gt))) < TOL
    assert np.max(np.abs(got - M.sparsity(x, gt))) < 1e-12  # chunking does not matter


def test_sparsity_of_tight_and_spread_identities():
    x = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0, -1], [5, 0]], dtype=np.float32)  # rows unnormalised
    gt = np.array([0, 0, 0, 1, 1, 2])
    assert np.allclose(M.sparsity(x, gt), [0.0, 2.0, 0.0], atol=1e-12)


# ----------------------------------------------------------------------------- quintile bins
@settings(max_examples=60)
@given(labelings(max_n=150), st.booleans())
def test_quintile_bins_partition_and_match_subset_pairwise(lab, use_sparsity):
    gt, pred = lab
    ids = np.unique(gt)
    if use_sparsity:
        x = np.random.default_rng(len(gt)).normal(size=(len(gt), 6))
        key, desc = M.sparsity(x, gt), True
    else:
        key, desc = M.cluster_sizes(gt), False
    bins = M.quintile_recall(gt, pred, key, descending=desc)
    assert [b["bin"] for b in bins] == [1, 2, 3, 4, 5]
    g = len(ids)
    assert [b["n_ids"] for b in bins] == [(b + 1) * g // 5 - b * g // 5 for b in range(5)]
    assert sum(b["n_samples"] for b in bins) == len(gt)
    which = M.quintiles(key, np.unique(gt, return_index=True)[1], descending=desc)
    filled = [b for b in bins if b["n_ids"]]
    for lo, hi in zip(filled, filled[1:], strict=False):  # ordered, non-overlapping key ranges
        assert (lo["key_max"] <= hi["key_min"]) if not desc else (lo["key_min"] >= hi["key_max"])
    for b in bins:
        members = ids[which == b["bin"] - 1]
        assert len(members) == b["n_ids"]
        if not len(members):
            assert b["recall"] is None
            continue
        keep = np.isin(gt, members)
        assert b["n_samples"] == keep.sum()
        assert np.allclose([b["precision"], b["recall"], b["f"]], ref_pairwise(gt[keep], pred[keep]),
                           rtol=0, atol=TOL)
        assert b["key_min"] == key[which == b["bin"] - 1].min()


@settings(max_examples=50)
@given(labelings(max_n=150))
def test_size_bins_match_official_binning(lab):
    gt, pred = lab
    ids, sizes = np.unique(gt, return_counts=True)
    want = official_bins(gt, dict(zip(ids.tolist(), sizes.tolist(), strict=True)))
    got = M.quintiles(sizes, np.unique(gt, return_index=True)[1])
    assert {k: int(b) + 1 for k, b in zip(ids.tolist(), got, strict=True)} == want


# ----------------------------------------------------------------------------- evaluate
def test_evaluate_collects_every_metric():
    rng = np.random.default_rng(3)
    gt = power_law(rng, 40)
    pred = np.where(rng.random(len(gt)) < 0.2, rng.integers(0, 30, len(gt)), gt)
    res = M.evaluate(gt, pred, nmi_average="geometric")
    assert set(res) == {"pairwise_precision", "pairwise_recall", "pairwise_f", "bcubed_precision",
                        "bcubed_recall", "bcubed_f", "nmi", "n_clusters_pred", "n_clusters_gt",
                        "n_samples", "size_bins"}
    assert res["pairwise_f"] == M.pairwise(gt, pred)["f"] and res["bcubed_f"] == M.bcubed(gt, pred)["f"]
    assert res["nmi"] == M.nmi(gt, pred, "geometric")
    assert (res["n_clusters_gt"], res["n_samples"]) == (40, len(gt))
    x = rng.normal(size=(len(gt), 8)).astype(np.float32)
    full = M.evaluate(gt, pred, x)
    assert len(full["sparsity_bins"]) == 5 and full["sparsity_bins"][0]["key_min"] >= \
        full["sparsity_bins"][4]["key_max"]  # bin 1 = sparsest
    perfect = M.evaluate(gt, gt, x)
    assert all(perfect[k] == 1.0 for k in ("pairwise_f", "bcubed_f", "nmi"))


BAD = {
    "length mismatch": lambda: M.pairwise([1, 2, 3], [1, 2]),
    "empty": lambda: M.bcubed([], []),
    "non-integer": lambda: M.nmi([0.5, 1.0], [0, 1]),
    "nan": lambda: M.pairwise([np.nan, 1.0], [0, 1]),
    "strings": lambda: M.evaluate(np.array(["a", "b"]), [0, 1]),
    "2-D": lambda: M.pairwise(np.zeros((2, 2), int), np.zeros((2, 2), int)),
    "nmi average": lambda: M.nmi([0, 1], [0, 1], "harmonic"),
    "bin key name": lambda: M.quintile_recall([0, 1], [0, 1], "sparsity"),
    "bin key length": lambda: M.quintile_recall([0, 1], [0, 1], [0.1]),
    "feature rows": lambda: M.sparsity(np.ones((3, 2)), [0, 0]),
    "zero feature row": lambda: M.sparsity(np.array([[1.0, 0], [0, 0]]), [0, 0]),
    "nan feature": lambda: M.evaluate([0, 0], [0, 0], np.array([[1.0, np.nan], [0, 1]])),
}


@pytest.mark.parametrize("call", list(BAD.values()), ids=list(BAD))
def test_bad_inputs_raise_one_line_input_error(call):
    with pytest.raises(InputError) as exc:
        call()
    assert "\n" not in str(exc.value) and str(exc.value)


# ----------------------------------------------------------------------------- label files
@settings(max_examples=50)
@given(st.lists(st.integers(-(2 ** 63), 2 ** 63 - 1), min_size=1, max_size=40),
       st.sampled_from(["l.meta", "l.txt", "l.jsonl", "l.meta.gz", "l.jsonl.gz"]))
def test_label_files_round_trip(tmp_path_factory, labels, name):
    dst = tmp_path_factory.mktemp("labels") / name
    write_labels(labels, dst)
    assert read_labels(dst).tolist() == labels
    assert (dst.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")


def test_label_formats(tmp_path):
    assert read_labels(b" 3\r\n-1\n7\n\n\n").tolist() == [3, -1, 7]
    assert read_labels(b'{"label": 4}\n\n{"label": 5}\n').tolist() == [4, 5]
    assert read_labels(b'{"id": 2, "label": 9}\n{"id": 0, "label": 7}\n{"id": 1, "label": 8}\n').tolist() \
        == [7, 8, 9]
    assert read_labels(gzip.compress(b"1\n2\n")).tolist() == [1, 2]
    write_labels(np.array([2, 1]), tmp_path / "x.out", fmt="jsonl")
    assert (tmp_path / "x.out").read_text() == '{"id": 0, "label": 2}\n{"id": 1, "label": 1}\n'
    assert read_labels(tmp_path / "x.out").tolist() == [2, 1]  # sniffed from the content


@pytest.mark.parametrize("data,line", [(b"1\n2\nfoo\n4\n", 3), (b"1\n\n2\n", 2), (b"1.0\n", 1),
                                       (b"0\n1\n99999999999999999999\n", 3)])
def test_bad_meta_line_is_named(tmp_path, data, line):
    (tmp_path / "gt.meta").write_bytes(data)
    with pytest.raises(InputError, match=rf"gt\.meta: line {line}: expected an integer"):
        read_labels(tmp_path / "gt.meta")


@pytest.mark.parametrize("data", [b"", b"\n \n", b'{"label": "a"}\n', b'{"label": true}\n', b"{oops\n",
                                  b'{"id": 0, "label": 1}\n{"id": 0, "label": 2}\n', b"[1]\n"])
def test_bad_label_files(tmp_path, data):
    (tmp_path / "p.jsonl").write_bytes(data)
    with pytest.raises(InputError):
        read_labels(tmp_path / "p.jsonl")
    with pytest.raises(InputError):
        read_labels(data or b"", fmt="meta" if not data.strip() else "jsonl")


def test_missing_input_and_unwritable_output(tmp_path):
    with pytest.raises(MissingInputError):
        read_labels(tmp_path / "nope.meta")
    with pytest.raises(OutputError):
        write_labels([1, 2], tmp_path / "no-dir" / "x.meta")
    (tmp_path / "keep.meta").write_text("5\n")
    with pytest.raises(InputError):
        write_labels([0.5], tmp_path / "keep.meta")
    assert (tmp_path / "keep.meta").read_text() == "5\n"  # never clobbered by a failed write


# ----------------------------------------------------------------------------- plot
def test_plot_bins_writes_png(tmp_path):
    rng = np.random.default_rng(0)
    gt = power_law(rng, 30)
    x = rng.normal(size=(len(gt), 4))
    results = {"chen": M.evaluate(gt, gt, x), "noisy": M.evaluate(gt, rng.integers(0, 20, len(gt)), x),
               "no-features": M.evaluate(gt, gt)}
    plot_bins(results, tmp_path / "bins.png")
    plot_bins({"only-size": M.evaluate(gt, gt)}, tmp_path / "size.png")
    for name in ("bins.png", "size.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError):
        plot_bins({}, tmp_path / "empty.png")
