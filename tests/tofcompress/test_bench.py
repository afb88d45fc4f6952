"""The speed comparison runs and both fitters reach the same quality (no timing asserted here:
speed goals are checked by bench verbs)."""

from mlkit.tofcompress.bench import speed


def test_speed_record_and_equal_quality():
    rec = speed(pixels=36, scipy_pixels=6)
    assert rec["pixels"] == 36 and rec["scipy_pixels"] == 6 and rec["bins"] == 512
    assert rec["batched_px_per_s"] > 0 and rec["scipy_px_per_s"] > 0 and rec["speedup"] > 0
    assert rec["batched_median_loss"] <= 1.2 * rec["scipy_median_loss"]
