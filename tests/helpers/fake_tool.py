"""A stand-in tool package for the suite tests (mlkit demo / bench / doctor)."""

from mlkit.errors import InputError

FAIL = {"demo": False}


def run_demo(workdir):
    if FAIL["demo"]:
        raise InputError("synthetic failure")
    (workdir / "made.txt").write_text("data")
    return {"what": "synth -> run -> eval", "metric": "f1", "value": 0.5}


def run_bench(workdir):
    return [{"method": "ours", "ratio": 1.0}, {"method": "baseline", "ratio": 2.0}]
