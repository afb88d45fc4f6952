"""``mlkit doctor``: versions, device, the ffmpeg binary and its x265/VMAF support, LP solvers.

Each check is a record ``{check, ok, detail, needed_by}``; a check whose ``needed_by`` is not
empty must pass for the registered tools (or mlkit itself) to work."""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import platform
import shutil
import subprocess

from . import __version__, registry

__all__ = ["run_checks", "CORE_PACKAGES"]

# distribution name -> import name
CORE_PACKAGES = {
    "numpy": "numpy", "scipy": "scipy", "torch": "torch", "typer": "typer", "rich": "rich",
    "opencv-python-headless": "cv2", "soundfile": "soundfile", "networkx": "networkx", "pulp": "pulp",
    "highspy": "highspy", "ffmpeg-python": "ffmpeg", "imageio-ffmpeg": "imageio_ffmpeg",
    "safetensors": "safetensors", "Pillow": "PIL", "h5py": "h5py", "matplotlib": "matplotlib",
}


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _needed(requirement: str) -> list[str]:
    return [t.name for t in registry.TOOLS if requirement in t.requires]


def run_checks(*, device_probe: bool = True) -> list[dict]:
    rows = [{"check": "mlkit", "ok": True, "detail": __version__, "needed_by": "mlkit"},
            {"check": "python", "ok": True, "detail": platform.python_version(), "needed_by": "mlkit"}]
    for dist, mod in CORE_PACKAGES.items():
        v = _version(dist)
        ok = v is not None and importlib.util.find_spec(mod) is not None
        rows.append({"check": f"package {dist}", "ok": ok, "detail": v or "missing", "needed_by": "mlkit"})
    for t in registry.TOOLS:
        for req in t.requires:
            if req.startswith("python:"):
                mod = req.split(":", 1)[1]
                ok = importlib.util.find_spec(mod) is not None
                rows.append({"check": f"module {mod}", "ok": ok, "detail": "found" if ok else "missing",
                             "needed_by": ",".join(_needed(req))})
    if device_probe:
        rows.append(_device())
    rows.extend(_ffmpeg())
    rows.extend(_solvers())
    x265 = shutil.which("x265")
    rows.append({"check": "x265 program", "ok": x265 is not None, "detail": x265 or "not on PATH (optional; "
                 "ffmpeg's libx265 is used)", "needed_by": ",".join(_needed("program:x265"))})
    return rows


def _device() -> dict:
    try:
        import torch
    except ImportError:
        return {"check": "device", "ok": False, "detail": "torch missing", "needed_by": "mlkit"}
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        detail = f"cuda {torch.version.cuda}: {names}"
    else:
        detail = f"cpu only (torch {torch.__version__}, {torch.get_num_threads()} threads)"
    return {"check": "device", "ok": True, "detail": detail, "needed_by": ""}


def _ffmpeg() -> list[dict]:
    from .codecs import video
    from .errors import BackendUnavailable

    try:
        exe = video.ffmpeg_exe()
    except BackendUnavailable as exc:
        return [{"check": "ffmpeg", "ok": False, "detail": exc.message, "needed_by": "mlkit"}]
    ver = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    rows = [{"check": "ffmpeg", "ok": True, "detail": f"{exe} ({ver.split(' Copyright')[0]})", "needed_by": "mlkit"}]
    enc = video.encoders()
    for name in ("ffv1", "libx264", "libx265"):
        rows.append({"check": f"encoder {name}", "ok": name in enc, "detail": "yes" if name in enc else "no",
                     "needed_by": ",".join(["mlkit"] * (name == "ffv1") + _needed(f"encoder:{name}"))})
    filt = subprocess.run([exe, "-hide_banner", "-filters"], capture_output=True, text=True).stdout
    has_vmaf = any(ln.split()[1:2] == ["libvmaf"] for ln in filt.splitlines() if ln.strip())
    rows.append({"check": "filter libvmaf", "ok": has_vmaf, "detail": "yes" if has_vmaf else "no",
                 "needed_by": ",".join(_needed("filter:libvmaf"))})
    return rows


def _solvers() -> list[dict]:
    try:
        import pulp

        avail = set(pulp.listSolvers(onlyAvailable=True))
    except Exception as exc:  # noqa: BLE001 - a broken pulp install is a doctor finding
        return [{"check": "LP solvers", "ok": False, "detail": str(exc)[:100], "needed_by": "mlkit"}]
    rows = [{"check": "LP solvers", "ok": bool(avail), "detail": ", ".join(sorted(avail)) or "none",
             "needed_by": ""}]
    for name in ("HiGHS", "PULP_CBC_CMD"):
        req = f"solver:{name}"
        rows.append({"check": f"solver {name}", "ok": name in avail, "detail": "yes" if name in avail else "no",
                     "needed_by": ",".join(_needed(req))})
    return rows
