"""``bench.memory_rows`` / ``compression_rows`` and ``demo`` (mcubert): arena figures against a
closed form and ``schedule.plan``, compression at equal bytes against a numpy SVD, the demo's
flash, SRAM and export claims against ``report`` and the written files."""

import json
import math

import numpy as np
import pytest

from mlkit.errors import InputError
from mlkit.mcubert import bench
from mlkit.mcubert.config import BOARDS, TINY, BertConfig
from mlkit.mcubert.report import CODE_BYTES, flash_bytes
from mlkit.mcubert.schedule import baseline_schedule, plan, tiled_schedule
from mlkit.mcubert.synth import embtable

SMALL_NAS = {"stage1_epochs": 3, "stage1_steps": 10, "stage2_steps": 50}


def _tiled_tile16_bytes(cfg: BertConfig, L: int, T: int = 16) -> int:
    """Closed form of the head-outer tile-16 peak (the paper notes' analytic model): x and the
    context (L x D each), K_h and V_h (L x D/H each), Q_t (T x D/H) and S_t (T x L), int8."""
    D, dh = cfg.hidden_size, cfg.head_dim
    return 2 * L * D + 2 * L * dh + T * dh + T * L


def test_memory_rows_are_consistent_with_plan_and_the_closed_form():
    rows = list(bench.memory_rows(("tiny",), (64, 128, 512)))
    assert len(rows) == 3 * len(bench.SCHEDULES)
    by = {(r["seq_len"], r["schedule"]): r for r in rows}
    for L in (64, 128, 512):
        base = by[L, "baseline"]
        assert base["ratio_vs_baseline"] == 1.0
        for s in bench.SCHEDULES:
            r = by[L, s]
            assert r["arena_bytes"] <= base["arena_bytes"]
            assert r["ratio_vs_baseline"] == pytest.approx(base["arena_bytes"] / r["arena_bytes"])
            assert r["arena_kib"] * 1024 == r["arena_bytes"]
            assert r["arena_bytes"] >= r["peak_live_bytes"]
        assert by[L, "best"]["arena_bytes"] <= min(by[L, s]["arena_bytes"] for s in ("head-tiled", "head+token tiled",
                                                                                     "tile-outer"))
        assert by[L, "head-tiled"]["tile"] == L and by[L, "head+token tiled"]["tile"] == 16
        assert by[L, "tile-outer"]["order"] == "tile-outer" and by[L, "baseline"]["tile"] is None
        assert by[L, "head+token tiled"]["arena_bytes"] == _tiled_tile16_bytes(TINY, L)
    assert by[512, "best"]["arena_bytes"] < 256 * 1024
    assert by[512, "best"]["ratio_vs_baseline"] >= 3.5
    assert by[512, "baseline"]["arena_bytes"] == plan(baseline_schedule(TINY, 512), 16).arena_bytes
    assert by[128, "tile-outer"]["arena_bytes"] == plan(tiled_schedule(TINY, 128, 16, "tile-outer"), 16).arena_bytes


def test_memory_rows_rejects_an_unknown_model():
    with pytest.raises(InputError):
        list(bench.memory_rows(("huge",), (64,)))


def test_compression_rows_on_a_planted_table_every_method_within_the_budget():
    P = embtable(V=800, D=32, ranks=(2, 4, 6, 8), seed=0)
    V, D = P["table"].shape
    ratios, methods = (4.0, 8.0), ("svd", "groupreduce", "cluster-svd", "nas", "random")
    rows = list(bench.compression_rows(ratios, methods, table=P["table"], freq=P["freq"], clusters=4,
                                       accuracy=False, nas_options=SMALL_NAS))
    assert rows[0]["method"] == "dense" and rows[0]["relative_error"] == 0.0
    got = {(r["ratio"], r["method"]): r for r in rows[1:]}
    assert set(got) == {(r, m) for r in ratios for m in methods}
    tab = P["table"].astype(np.float32).astype(np.float64)
    s = np.linalg.svd(tab, compute_uv=False)
    for ratio in ratios:
        budget = bench.table_budget(V, D, ratio, 4)
        assert budget == int(V * D / ratio) + 4 * 5 + 2 * 4 + 8 * 4      # offsets, ranks, two scales per cluster
        for m in methods:
            r = got[ratio, m]
            assert r["budget_int8_bytes"] == budget
            assert 0 < r["embedding_int8_bytes"] <= budget, (ratio, m)
            assert 0 < r["relative_error"] < 1 and r["dev_acc"] is None and r["total_ratio"] is None
            assert r["error_vs_svd"] == pytest.approx(r["relative_error"] / got[ratio, "svd"]["relative_error"])
        assert got[ratio, "svd"]["error_vs_svd"] == 1.0
        # global SVD: the largest rank whose (V + D)·r bytes fit the budget less one cluster's overhead
        k = (budget - (4 * 2 + 2 + 8)) // (V + D)
        assert got[ratio, "svd"]["embedding_int8_bytes"] == k * (V + D) + 18
        assert got[ratio, "svd"]["relative_error"] == pytest.approx(math.sqrt((s[k:] ** 2).sum() / (s ** 2).sum()),
                                                                    rel=1e-6)
    # the planted clusters are subspaces: the clustered search models them far better than one SVD
    assert got[4.0, "nas"]["error_vs_svd"] < 0.5
    # uniform weights: the weighted error (table rebuilt in the original id order) equals the plain one
    for r in bench.compression_rows((4.0,), ("svd", "cluster-svd"), table=P["table"], freq=np.ones(V), clusters=4,
                                    accuracy=False):
        assert r["weighted_relative_error"] == pytest.approx(r["relative_error"], abs=1e-6)


def test_compression_rows_reject_bad_arguments():
    t = np.random.default_rng(0).standard_normal((300, 16))
    with pytest.raises(InputError):
        list(bench.compression_rows((4.0,), ("zip",), table=t, accuracy=False))
    with pytest.raises(InputError):
        list(bench.compression_rows((1.0,), ("svd",), table=t, accuracy=False))
    with pytest.raises(InputError):
        list(bench.compression_rows((4.0,), ("svd",), table=t, accuracy=True))
    with pytest.raises(InputError):
        list(bench.compression_rows((4.0,), ("svd",), table=t, config=TINY, accuracy=False))


def test_compression_rows_accuracy_smoke():
    rows = list(bench.compression_rows((8.0,), ("svd", "cluster-svd"), n_train=200, n_dev=100, epochs=1,
                                       ft_epochs=1, clusters=8))
    assert [r["method"] for r in rows] == ["dense", "svd", "cluster-svd"]
    for r in rows:
        for k in ("dev_acc_before_ft", "dev_acc"):
            assert 0.0 <= r[k] <= 1.0 and math.isfinite(r[k])
        assert r["total_ratio"] >= 1.0 and r["params"] > 0
    assert rows[1]["total_ratio"] > 4 and rows[2]["embedding_int8_bytes"] <= rows[2]["budget_int8_bytes"]
    assert rows[0]["params"] == 4_385_920 + 2 * 128 + 2                  # BERT-tiny + the 2-way classifier
    assert rows[1]["total_ratio"] == pytest.approx(rows[0]["params"] / rows[1]["params"])


def _check_demo(workdir, rows):
    from mlkit.mcubert.demo import BOARD

    dense, comp = rows
    board = BOARDS[BOARD]
    assert dense["fits_flash"] == "none" and BOARD in comp["fits_flash"]
    man = json.loads((workdir / "mcu" / "manifest.json").read_text())
    cfg = BertConfig.from_dict(man["config"])
    assert cfg.embedding_factors and flash_bytes(cfg) + CODE_BYTES <= board.flash
    assert comp["flash_kib"] * 1024 == pytest.approx(flash_bytes(cfg))
    assert man["schedule"]["arena_bytes"] == comp["arena_kib"] * 1024 == _tiled_tile16_bytes(TINY, 128)
    assert comp["fits_sram"] and comp["arena_kib"] * 1024 <= board.sram
    assert comp["export_fits_flash"] and comp["export_flash_kib"] * 1024 + CODE_BYTES <= board.flash
    assert comp["export_flash_kib"] * 1024 == sum(a["bytes"] for a in man["arrays"])
    assert comp["baseline_arena_kib"] > comp["arena_kib"]
    src = (workdir / "mcu" / "model_data.c").read_text()
    assert "mcubert_word_offsets" in src and (workdir / "mcu" / "model_data.h").is_file()
    vocab = (workdir / "vocab.txt").read_text().splitlines()
    assert len(vocab) == cfg.vocab_size and len(set(vocab)) == len(vocab) and "[CLS]" in vocab
    for r in rows:
        assert 0 <= r["dev_acc"] <= 1 and r["int8_cosine_min"] > 0.9


def test_demo_rows_small(tmp_path):
    from mlkit.mcubert.demo import demo_rows

    rows = demo_rows(tmp_path, n_train=300, n_dev=100, epochs=1,
                     nas_options={"stage1_epochs": 1, "stage1_steps": 2, "stage2_steps": 5})
    _check_demo(tmp_path, rows)


@pytest.mark.slow
def test_run_demo(tmp_path):
    from mlkit.mcubert.demo import run_demo

    out = run_demo(tmp_path)
    assert set(out) == {"what", "metric", "value"} and "->" in out["value"]
    assert (tmp_path / "mcu" / "model_data.c").is_file()
