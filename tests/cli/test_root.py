import subprocess
import sys

import pytest

import mlkit


def test_help_lists_verbs(cli):
    r = cli("--help")
    assert r.exit_code == 0
    for verb in ("info", "convert", "doctor", "demo", "bench"):
        assert verb in r.stdout


def test_no_args_shows_help(cli):
    r = cli()
    assert "Usage" in r.stdout + r.stderr


def test_version(cli):
    r = cli("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"mlkit {mlkit.__version__}"


def test_usage_error_is_2(cli):
    r = cli("info", "--no-such-flag", "x")
    assert r.exit_code == 2


def test_import_loads_no_heavy_modules():
    code = ("import sys, mlkit_cli.main; "
            "bad = [m for m in ('torch', 'cv2', 'scipy', 'faiss', 'matplotlib', 'networkx') if m in sys.modules]; "
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, f"heavy modules imported at start-up: {r.stdout}"


def test_python_dash_m_works():
    r = subprocess.run([sys.executable, "-m", "mlkit_cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("mlkit ")


def test_demo_with_no_tools_says_so(cli, monkeypatch):
    import mlkit.registry

    monkeypatch.setattr(mlkit.registry, "TOOLS", ())
    r = cli("demo")
    assert r.exit_code == 0
    assert "no tools registered" in r.stderr and r.stdout == ""


def test_doctor_json(cli):
    import json

    r = cli("doctor", "--format", "jsonl")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    checks = {row["check"]: row for row in rows}
    assert checks["package numpy"]["ok"] and checks["ffmpeg"]["ok"] and checks["encoder ffv1"]["ok"]
    assert r.exit_code == (0 if all(row["ok"] for row in rows if row["needed_by"]) else 1)


def test_doctor_exits_1_when_needed_piece_missing(cli, monkeypatch):
    import mlkit.doctor

    real = mlkit.doctor._version
    monkeypatch.setattr(mlkit.doctor, "_version", lambda d: None if d == "h5py" else real(d))
    r = cli("doctor", "--format", "jsonl")
    assert r.exit_code == 1
    assert "missing pieces" in r.stderr and "package h5py" in r.stderr


def test_internal_error_is_70_with_hint(cli, monkeypatch, tmp_path):
    import mlkit.fileinfo

    def boom(*a, **k):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(mlkit.fileinfo, "describe", boom)
    r = cli("info", tmp_path)
    assert r.exit_code == 70
    assert r.stderr.strip().splitlines() == [
        "mlkit info: error: internal error: ZeroDivisionError: division by zero; rerun with --debug"]
    r = cli("info", tmp_path, "--debug")
    assert "Traceback" in r.stderr and r.exit_code == 70


@pytest.mark.parametrize("where", ["root", "verb", "env"])
def test_debug_flag_everywhere(cli, tmp_path, where):
    args = ["info", str(tmp_path / "nope.npy")]
    env = None
    if where == "root":
        args = ["--debug"] + args
    elif where == "verb":
        args = args + ["--debug"]
    else:
        env = {"MLKIT_DEBUG": "1"}
    r = cli(*args, env=env)
    assert r.exit_code == 66 and "Traceback" in r.stderr
