import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from typer.testing import CliRunner

# Shared machines are noisy: no per-example deadline, and slow data generation is not a failure.
settings.register_profile("mlkit", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("mlkit")

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "mlkit"


@pytest.fixture
def cli():
    """Invoke the app in-process: cli("info", "x.npy", input=b"...") -> Result (stdout/stderr apart)."""
    from mlkit_cli.main import app

    runner = CliRunner()

    def run(*args, input=None, env=None):
        return runner.invoke(app, [str(a) for a in args], input=input, env=env, prog_name="mlkit")

    return run


@pytest.fixture
def sh():
    """Run a real shell pipeline with the installed ``mlkit`` first on PATH."""

    def run(cmd: str, *, cwd=None, input=None, check=False, timeout=120):
        env = {**os.environ, "PATH": f"{BIN.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        env.pop("MLKIT_DEBUG", None)
        res = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=cwd, input=input, env=env,
                             capture_output=True, timeout=timeout)
        if check and res.returncode:
            raise AssertionError(f"{cmd} -> {res.returncode}\n{res.stderr.decode()}")
        return res

    return run
