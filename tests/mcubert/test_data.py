"""GLUE readers and metrics against sklearn/scipy."""

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef

from mlkit.errors import InputError
from mlkit.mcubert.data import glue_metrics, read_examples


def test_metrics_equal_sklearn_and_scipy():
    rng = np.random.default_rng(0)
    for _ in range(50):
        y = rng.integers(0, 2, rng.integers(1, 60))
        p = rng.integers(0, 2, len(y))
        assert abs(glue_metrics("cola", y, p)["matthews_correlation"] - matthews_corrcoef(y, p)) < 1e-12
        m = glue_metrics("mrpc", y, p)
        assert abs(m["f1"] - f1_score(y, p, zero_division=0)) < 1e-12 and m["accuracy"] == np.mean(y == p)
    y, p = rng.normal(size=40), rng.normal(size=40)
    m = glue_metrics("stsb", y, p)
    assert abs(m["pearson"] - pearsonr(p, y)[0]) < 1e-12 and abs(m["spearmanr"] - spearmanr(p, y)[0]) < 1e-12


def test_glue_tsv_layouts(tmp_path):
    (tmp_path / "sst.tsv").write_text("sentence\tlabel\ngood film \t1\nbad\t0\n")
    ex = read_examples(str(tmp_path / "sst.tsv"), "sst2")
    assert ex.a == ["good film ", "bad"] and ex.y.tolist() == [1, 0] and ex.b is None
    (tmp_path / "mrpc.tsv").write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tA b\tA c\n")
    ex = read_examples(str(tmp_path / "mrpc.tsv"), "mrpc")
    assert ex.a == ["A b"] and ex.b == ["A c"] and ex.y.tolist() == [1]
    (tmp_path / "cola.tsv").write_text("src\t0\t*\tThey drank the pub.\n")
    assert read_examples(str(tmp_path / "cola.tsv"), "cola").y.tolist() == [0]
    (tmp_path / "rte.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\tx\ty\tnot_entailment\n")
    assert read_examples(str(tmp_path / "rte.tsv"), "rte").y.tolist() == [1]
    (tmp_path / "d.jsonl").write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n')
    assert read_examples(str(tmp_path / "d.jsonl")).y.tolist() == [1, 0]


def test_bad_rows(tmp_path):
    (tmp_path / "r.tsv").write_text("sentence\tlabel\na\t1\nb\t1\textra\n")
    with pytest.raises(InputError, match="ragged"):
        read_examples(str(tmp_path / "r.tsv"), "sst2")
    (tmp_path / "l.tsv").write_text("sentence\tlabel\na\t7\n")
    with pytest.raises(InputError, match="unknown label"):
        read_examples(str(tmp_path / "l.tsv"), "sst2")
    (tmp_path / "j.jsonl").write_text('{"txt": "a"}\n')
    with pytest.raises(InputError, match="not an example"):
        read_examples(str(tmp_path / "j.jsonl"))
