"""``mlkit tof-compress demo`` and the suite hooks."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

__all__ = ["demo_rows", "run_demo", "run_bench", "BENCH_PHOTONS"]

BENCH_PHOTONS = (3000.0, 300.0, 100.0)


def demo_rows(workdir: Path | None = None) -> list[dict]:
    """A line-of-sight scene (depth) and a confocal NLOS scene (reconstruction), each written as
    HDF5-TAL, fitted, stored as .tofz (f16) and scored against its ground truth."""
    import tempfile

    from .container import write_tofz
    from .depth import depth_map, histogram_peak_depth
    from .encode import decode, encode
    from .fit import FitConfig
    from .formats import read_transient, write_tal
    from .recon import fk, mip, ncc
    from .synth import confocal_scene, los_scene

    rows = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp = Path(tmp)
        for name, tr in (("los 24x24x512, 300 photons", los_scene(size=24, photons=300.0)),
                         ("confocal 24x24x256, 3000 photons", confocal_scene(size=24, photons=3000.0))):
            write_tal(tr, tmp / "in.h5")
            tr = read_transient(tmp / "in.h5")
            t0 = time.perf_counter()
            enc = encode(tr.H, FitConfig(k_max=3, sigma0=0.4, tau0=1.2), delta_t=tr.delta_t)
            n = write_tofz(enc, tmp / "x.tofz", "f16")
            secs = time.perf_counter() - t0
            clean = tr.gt["clean"]
            rec = decode(enc)
            row = {"scene": name, "ratio": tr.H.size * 4 / n, "components_per_px": float(enc.count.mean()),
                   "rel_l2": float(np.linalg.norm(rec - clean) / np.linalg.norm(clean)),
                   "raw_rel_l2": float(np.linalg.norm(tr.H - clean) / np.linalg.norm(clean))}
            if "depth" in tr.gt:
                row["depth_mae_mm"] = float(np.nanmean(np.abs(depth_map(enc) - tr.gt["depth"]))) * 1000
                row["hist_peak_mae_mm"] = float(np.abs(histogram_peak_depth(tr.H, tr.delta_t) - tr.gt["depth"]).mean()) * 1000
            else:
                row["mip_ncc"] = ncc(mip(fk(rec, tr.delta_t, 1.0)), mip(fk(clean, tr.delta_t, 1.0)))
            row["seconds"] = secs
            rows.append(row)
    return rows


def run_demo(workdir: Path) -> dict:
    rows = demo_rows(workdir)
    return {"what": "tof-compress: LOS depth + confocal NLOS, fitted as EMG mixtures (f16 .tofz)",
            "metric": "ratio / relL2 (confocal)", "value": f"{rows[1]['ratio']:.0f}x / {rows[1]['rel_l2']:.3f}"}


def run_bench(workdir: Path) -> list[dict]:
    from .bench import compare, speed

    rows = [r for p in BENCH_PHOTONS for r in compare(p)]
    rows.append({"method": "speed", **speed(pixels=1024, scipy_pixels=64)})
    return rows
