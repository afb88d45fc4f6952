"""The tof-compress verbs through their Typer (not registered in `mlkit --help` until issue 5 is
done): synth -> fit -> info/decode/depth/eval, confocal -> recon, and bad input."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mlkit.codecs import arrays
from mlkit_cli.commands.tof_compress import app


@pytest.fixture
def run():
    runner = CliRunner()
    return lambda *a: runner.invoke(app, [str(x) for x in a], prog_name="mlkit tof-compress")


def test_los_pipeline(run, tmp_path):
    r = run("synth", "-o", tmp_path / "los.h5", "--scene", "los", "--size", 8, "--photons", 1000)
    assert r.exit_code == 0, r.stderr
    r = run("fit", tmp_path / "los.h5", "-o", tmp_path / "los.tofz", "--k-max", 2, "--irf-sigma", 0.4,
            "--irf-tau", 1.2)
    assert r.exit_code == 0, r.stderr
    info = json.loads(run("info", tmp_path / "los.tofz").stdout)
    assert info["shape"] == [8, 8] and info["bins"] == 512 and info["ratio_vs_float32"] > 20
    r = run("decode", tmp_path / "los.tofz", "-o", tmp_path / "dec.npy", "--bins", 256, "--delta-t", 0.04)
    assert r.exit_code == 0, r.stderr
    assert arrays.read(tmp_path / "dec.npy").shape == (256, 8, 8)
    r = run("depth", tmp_path / "los.tofz", "-o", tmp_path / "d.npy", "--png", tmp_path / "d.png")
    assert r.exit_code == 0, r.stderr
    assert arrays.read(tmp_path / "d.npy").shape == (8, 8) and (tmp_path / "d.png").stat().st_size > 1000
    ev = json.loads(run("eval", tmp_path / "los.tofz", "--ref", tmp_path / "los.h5").stdout)
    assert ev["depth_mae_m"] < 0.006 and ev["rel_l2"] < 0.3 and ev["ratio"] > 20
    r = run("depth", tmp_path / "los.h5", "-o", tmp_path / "peak.npy")               # histogram-peak baseline
    assert r.exit_code == 0 and arrays.read(tmp_path / "peak.npy").shape == (8, 8)


def test_confocal_recon_and_eval(run, tmp_path):
    assert run("synth", "-o", tmp_path / "c.h5", "--size", 16, "--bins", 128, "--delta-t", 0.02).exit_code == 0
    assert run("fit", tmp_path / "c.h5", "-o", tmp_path / "c.tofz", "--irf-sigma", 0.4, "--irf-tau", 1.2).exit_code == 0
    r = run("recon", tmp_path / "c.tofz", "-o", tmp_path / "v.npy", "--png", tmp_path / "mip.png")
    assert r.exit_code == 0, r.stderr
    assert arrays.read(tmp_path / "v.npy").shape == (128, 16, 16)
    ev = json.loads(run("eval", tmp_path / "c.tofz", "--ref", tmp_path / "c.h5", "--wall-size", 1.0).stdout)
    assert ev["mip_ncc"] > 0.9 and np.isfinite(ev["mean_deviance"])


def test_bad_input_exits_65(run, tmp_path):
    np.save(tmp_path / "amb.npy", np.zeros((16, 16, 16), np.float32))
    r = run("fit", tmp_path / "amb.npy", "-o", tmp_path / "x.tofz")
    assert r.exit_code == 65 and "layout" in r.stderr and not (tmp_path / "x.tofz").exists()
    bad = np.zeros((32, 2, 2), np.float32)
    bad[3, 1, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    r = run("fit", tmp_path / "nan.npy", "-o", tmp_path / "x.tofz")
    assert r.exit_code == 65 and "non-finite" in r.stderr
    np.save(tmp_path / "ok.npy", np.zeros((32, 2, 2), np.float32))
    r = run("fit", tmp_path / "ok.npy", "-o", tmp_path / "x.tofz", "--k-max", 17)
    assert r.exit_code == 65 and "k-max" in r.stderr
    r = run("fit", tmp_path / "ok.npy", "-o", tmp_path / "x.tofz", "--delta-t", -1)
    assert r.exit_code == 65 and "delta_t" in r.stderr
    (tmp_path / "junk.tofz").write_bytes(b"PK\x03\x04 nonsense")
    r = run("info", tmp_path / "junk.tofz")
    assert r.exit_code == 65 and "tofz" in r.stderr


def test_bench_rows_side_by_side(run):
    r = run("bench", "--photons", 3000, "--ratios", 25, "--size", 8, "--bins", 256, "--no-speed",
            "--methods", "emg,svd,dct")
    assert r.exit_code == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    methods = {x["method"] for x in rows}
    assert {"raw", "emg-f32", "emg-f16", "svd", "dct"} <= methods
    assert all("vs_emg" in x for x in rows if x["method"] != "raw")
    r = run("bench", "--methods", "jpeg")
    assert r.exit_code == 65 and "jpeg" in r.stderr
    r = run("synth", "-o", "never.h5", "--bins", 64)                  # the scene lies beyond 0.64 m of path
    assert r.exit_code == 65 and "outside the time window" in r.stderr


def test_registered_and_demo_runs(cli):
    r = cli("--help")
    assert "tof-compress" in r.stdout
    r = cli("demo", "tof-compress", "--format", "jsonl")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["ok"] and rec["tool"] == "tof-compress"


def test_eval_values_against_numpy(run, tmp_path):
    """rel_l2, PSNR, deviance and ratio recomputed here from the files, independently of the verb."""
    from mlkit.tofcompress.container import read_tofz
    from mlkit.tofcompress.encode import decode
    from mlkit.tofcompress.formats import read_transient

    assert run("synth", "-o", tmp_path / "s.h5", "--scene", "los", "--size", 6).exit_code == 0
    assert run("fit", tmp_path / "s.h5", "-o", tmp_path / "s.tofz", "--k-max", 2).exit_code == 0
    ev = json.loads(run("eval", tmp_path / "s.tofz", "--ref", tmp_path / "s.h5").stdout)
    tr = read_transient(tmp_path / "s.h5")
    c, p, y = (a.astype(np.float64) for a in (tr.gt["clean"], decode(read_tofz(tmp_path / "s.tofz")), tr.H))
    assert ev["rel_l2"] == pytest.approx(np.sqrt(((p - c) ** 2).sum() / (c ** 2).sum()), rel=1e-9)
    assert ev["psnr_db"] == pytest.approx(-10 * np.log10(np.mean(((p - c) / c.max()) ** 2)), rel=1e-9)
    m = np.maximum(p, 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.mean(2 * (m - y + np.where(y > 0, y * np.log(y / m), 0)))
    assert ev["mean_deviance"] == pytest.approx(dev, rel=1e-9)
    assert ev["ratio"] == pytest.approx(c.size * 4 / (tmp_path / "s.tofz").stat().st_size)


@pytest.mark.parametrize("verb,extra", [("decode", []), ("depth", []), ("recon", []), ("info", []),
                                        ("eval", ["--ref", "REF"])])
def test_every_verb_refuses_a_broken_tofz(run, tmp_path, verb, extra):
    (tmp_path / "bad.tofz").write_bytes(b"PK\x03\x04 not really a zip")
    np.save(tmp_path / "ref.npy", np.zeros((32, 2, 2), np.float32))
    args = [a if a != "REF" else tmp_path / "ref.npy" for a in extra]
    out = tmp_path / "out.npy"
    r = run(verb, tmp_path / "bad.tofz", *args, *(["-o", out] if verb != "info" else []))
    assert r.exit_code == 65 and "tofz" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()
    r = run(verb, tmp_path / "missing.tofz", *args)
    assert r.exit_code == 66


def test_recon_refuses_a_non_square_scan(run, tmp_path):
    np.save(tmp_path / "rect.npy", np.ones((64, 4, 6), np.float32))
    r = run("recon", tmp_path / "rect.npy", "-o", tmp_path / "v.npy")
    assert r.exit_code == 65 and "square" in r.stderr and not (tmp_path / "v.npy").exists()


def test_recon_methods(run, tmp_path):
    assert run("synth", "-o", tmp_path / "c.h5", "--size", 8, "--bins", 64, "--delta-t", 0.04).exit_code == 0
    vols = {}
    for method in ("fk", "lct", "bp", "fbp"):
        r = run("recon", tmp_path / "c.h5", "-o", tmp_path / f"{method}.npy", "--method", method)
        assert r.exit_code == 0, r.stderr
        vols[method] = arrays.read(tmp_path / f"{method}.npy")
        assert vols[method].shape == (64, 8, 8) and vols[method].dtype == np.float32
    from mlkit.tofcompress.formats import read_transient
    from mlkit.tofcompress.recon import lct

    tr = read_transient(tmp_path / "c.h5")
    np.testing.assert_array_equal(vols["lct"], lct(tr.H, tr.delta_t, 1.0, snr=0.1))
    r = run("recon", tmp_path / "c.h5", "-o", tmp_path / "l2.npy", "--method", "lct", "--snr", 2)
    assert r.exit_code == 0 and np.array_equal(arrays.read(tmp_path / "l2.npy"), lct(tr.H, tr.delta_t, 1.0, snr=2.0))
    ev = json.loads(run("eval", tmp_path / "c.h5", "--ref", tmp_path / "c.h5", "--wall-size", 1.0,
                        "--method", "lct").stdout)
    assert ev["recon_method"] == "lct" and 0.9 < ev["mip_ncc"] <= 1.0


def test_recon_lct_needs_power_of_two_bins_or_pad(run, tmp_path):
    np.save(tmp_path / "t48.npy", np.random.default_rng(0).gamma(1.0, size=(48, 4, 4)).astype(np.float32))
    out = tmp_path / "v.npy"
    r = run("recon", tmp_path / "t48.npy", "-o", out, "--method", "lct", "--delta-t", 0.05)
    assert r.exit_code == 65 and "power-of-two" in r.stderr and "--pad" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()
    r = run("recon", tmp_path / "t48.npy", "-o", out, "--method", "lct", "--delta-t", 0.05, "--pad")
    assert r.exit_code == 0, r.stderr
    assert arrays.read(out).shape == (48, 4, 4)
    r = run("recon", tmp_path / "t48.npy", "-o", tmp_path / "w.npy", "--method", "sart")
    assert r.exit_code == 2 and not (tmp_path / "w.npy").exists()
