import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlkit.codecs import arrays

SCRIPT = Path(__file__).parent / "helpers" / "ddp_train.py"


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent.parent / "lib"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.timeout(240)
def test_two_process_gloo_equals_one_process(tmp_path):
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    subprocess.run([sys.executable, str(SCRIPT), str(one)], check=True, env=_env(), timeout=120)
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(SCRIPT), str(two)], env=_env(), capture_output=True, text=True, timeout=200)
    assert res.returncode == 0, res.stderr[-8000:]          # enough to hold the failing rank's own message
    a, b = arrays.read(one), arrays.read(two)
    assert int(a.pop("world")) == 1 and int(b.pop("world")) == 2
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=0, atol=1e-12, err_msg=k)
    # and training really moved the weights (the comparison is not between two untouched inits)
    assert np.abs(a["2.weight"]).sum() > 0
