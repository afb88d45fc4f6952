"""Tensors and run-time plumbing shared by every method: device choice, seeding, threads,
checkpoints (``.safetensors`` + JSON metadata), batching, ``check_*`` input validators, a
timer/peak-memory meter for ``bench`` verbs, and (re-exported from :mod:`mlkit.distributed`)
DDP helpers for training under ``torchrun``.

torch is imported inside the functions that need it, so importing this module is cheap.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import __version__
from .distributed import Distributed, distributed  # noqa: F401  (re-exported)
from .errors import BackendUnavailable, InputError, MissingInputError, NotFittedError

__all__ = [
    "resolve_device", "runtime", "seed_everything", "set_threads", "default_threads",
    "save_checkpoint", "load_checkpoint", "load_state_dict_checked", "load_torch_file",
    "batches", "check_finite", "check_shape", "check_positive", "check_range", "check_in",
    "check_nonempty", "check_dtype", "Meter", "median_time", "process_peak_rss", "Distributed", "distributed", "CHECKPOINT_META_KEY",
]

CHECKPOINT_META_KEY = "mlkit"


# ---------------------------------------------------------------- devices, seeds, threads
def resolve_device(name: str | None = "auto"):
    """``auto`` -> CUDA when present, else CPU; ``cuda``/``cuda:N`` when absent raises
    BackendUnavailable (exit 69)."""
    import torch

    name = (name or os.environ.get("MLKIT_DEVICE") or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BackendUnavailable("CUDA requested but not available", got=f"torch {torch.__version__} "
                                     f"(cuda build: {torch.version.cuda or 'no'})",
                                     hint="use --device cpu, or install a CUDA build of torch")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BackendUnavailable("no such CUDA device", expected=f"< {torch.cuda.device_count()}",
                                     got=str(dev.index))
        return dev
    raise InputError("unknown device", expected="auto, cpu, cuda or cuda:N", got=name)


def seed_everything(seed: int | None, *, deterministic: bool = False) -> int:
    """Seed python, numpy and torch (all devices); returns the seed used (0 when None)."""
    seed = int(seed if seed is not None else os.environ.get("MLKIT_SEED", 0))
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return seed
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    return seed


def default_threads() -> int:
    """Cores available to this process (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads (``MLKIT_THREADS`` or the available cores by default)."""
    n = int(n or os.environ.get("MLKIT_THREADS") or default_threads())
    if n < 1:
        raise InputError("bad thread count", expected=">= 1", got=str(n))
    import torch

    torch.set_num_threads(n)
    return n


def runtime(device: str | None = "auto", seed: int | None = None, threads: int | None = None):
    """What every compute verb does first with ``--device/--seed/--threads``: seed everything,
    set the thread count (0/None = all available cores) and return the torch device."""
    seed_everything(seed)
    set_threads(threads or None)
    return resolve_device(device)


# ---------------------------------------------------------------- checkpoints
def save_checkpoint(path, state: dict, *, method: str, config: dict | None = None,
                    format_version: int = 1, extra: dict | None = None) -> None:
    """Write a ``.safetensors`` checkpoint atomically. Metadata (method, format version,
    config, mlkit version, ``extra``) is stored as JSON under the ``mlkit`` header key."""
    from safetensors.torch import save

    from .codecs._io import write_bytes

    meta = {"method": method, "format_version": format_version, "config": config or {},
            "mlkit_version": __version__, **(extra or {})}
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    write_bytes(save(tensors, metadata={CHECKPOINT_META_KEY: json.dumps(meta, sort_keys=True)}), path)


def load_checkpoint(path, *, method: str | None = None, max_format_version: int | None = None,
                    device: str = "cpu") -> tuple[dict, dict]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(state_dict, metadata)``.
    A wrong method or a newer format version raises InputError (exit 65)."""
    import torch

    from .codecs import arrays
    from .codecs._io import read_bytes

    raw = read_bytes(path)
    arrs = arrays.read(raw, fmt="safetensors")
    meta_raw = arrays.safetensors_metadata(raw).get(CHECKPOINT_META_KEY)
    if meta_raw is None:
        raise NotFittedError(f"{path}: not an mlkit checkpoint", expected="mlkit metadata in the header",
                             hint="third-party weights go through the method's --weights loader")
    try:
        meta = json.loads(meta_raw)
    except ValueError as exc:
        raise InputError(f"{path}: corrupt checkpoint metadata") from exc
    if method and meta.get("method") != method:
        raise InputError(f"{path}: checkpoint is for another method", expected=method, got=meta.get("method"))
    if max_format_version is not None and int(meta.get("format_version", 0)) > max_format_version:
        raise InputError(f"{path}: checkpoint format too new", expected=f"<= {max_format_version}",
                         got=str(meta.get("format_version")), hint="upgrade mlkit")
    state = {k: torch.from_numpy(np.array(v)).to(device) for k, v in arrs.items()}
    return state, meta


def load_torch_file(path) -> dict:
    """Third-party ``.pt/.pth``: only ``torch.load(weights_only=True)`` (no free unpickling)."""
    import pickle

    import torch

    if not os.path.exists(path):
        raise MissingInputError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise InputError(f"{path}: not a loadable weights file", expected="a plain state dict "
                         "(weights_only=True)", got=str(exc).splitlines()[0][:120]) from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise InputError(f"{path}: not a state dict", got=type(obj).__name__)
    return obj


def load_state_dict_checked(model, state: dict, *, key_map=None, ignore: Sequence[str] = ()) -> None:
    """Load ``state`` into ``model`` after renaming keys with ``key_map`` (a callable returning the
    new key, or None to drop it). Missing/unexpected keys and shape mismatches raise InputError
    naming the first few, so a wrong checkpoint never loads half-way."""
    import fnmatch

    own = model.state_dict()
    mapped = {}
    for k, v in state.items():
        if any(fnmatch.fnmatch(k, pat) for pat in ignore):
            continue
        nk = key_map(k) if key_map else k
        if nk is None:
            continue
        mapped[nk] = v
    missing = [k for k in own if k not in mapped]
    unexpected = [k for k in mapped if k not in own]
    bad = [f"{k} {tuple(mapped[k].shape)} vs {tuple(own[k].shape)}" for k in own
           if k in mapped and tuple(mapped[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or bad:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing ({', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])})")
        if bad:
            parts.append(f"{len(bad)} wrong shapes ({', '.join(bad[:2])})")
        raise InputError("checkpoint does not match the model", expected=f"{len(own)} keys",
                         got="; ".join(parts))
    model.load_state_dict(mapped, strict=True)


# ---------------------------------------------------------------- batching
def batches(n: int, batch_size: int) -> Iterator[slice]:
    """Slices covering ``range(n)`` in order, the last one possibly shorter."""
    check_positive(batch_size, "batch size")
    for i in range(0, n, batch_size):
        yield slice(i, min(i + batch_size, n))


# ---------------------------------------------------------------- input checks
def check_nonempty(x, name: str) -> None:
    if len(x) == 0:
        raise InputError(f"{name} is empty", expected="at least one item")


def check_finite(a, name: str) -> None:
    """NaN/Inf anywhere -> InputError naming the first bad index."""
    arr = np.asarray(a.detach().cpu() if hasattr(a, "detach") else a)
    if arr.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{name} has non-finite values", expected="finite numbers",
                         got=f"{int(bad.sum())} NaN/Inf, first at index {idx}")


def check_shape(a, shape: Sequence[int | None], name: str) -> None:
    """``shape`` with ``None`` for free dimensions: ``check_shape(x, (None, 3), "points")``."""
    got = tuple(a.shape)
    if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got, strict=False)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise InputError(f"{name} has the wrong shape", expected=want, got=str(got))


def check_dtype(a, kinds: str, name: str) -> None:
    """``kinds`` as numpy kind letters: ``"f"`` float, ``"iu"`` integer, ``"b"`` bool."""
    dt = np.dtype(str(a.dtype).replace("torch.", ""))
    if dt.kind not in kinds:
        raise InputError(f"{name} has the wrong dtype", expected={"f": "float", "iu": "integer"}.get(kinds, kinds),
                         got=str(dt))


def check_positive(x: float, name: str, *, strict: bool = True) -> None:
    if x is None or not np.isfinite(x) or (x <= 0 if strict else x < 0):
        raise InputError(f"{name} must be {'>' if strict else '>='} 0", got=str(x))


def check_range(x: float, lo: float, hi: float, name: str) -> None:
    if x is None or not (lo <= x <= hi):
        raise InputError(f"{name} out of range", expected=f"{lo}..{hi}", got=str(x))


def check_in(x: Any, allowed: Sequence, name: str) -> None:
    if x not in allowed:
        raise InputError(f"unknown {name}", expected=", ".join(map(str, allowed)), got=str(x))


# ---------------------------------------------------------------- bench meter
def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def process_peak_rss() -> int:
    """The kernel's high-water mark of this process's resident set, bytes (0 where unknown). Unlike
    ``Meter``'s sampling it cannot miss a short spike, but it covers the whole process lifetime
    (and the kernel updates it lazily: it can trail the current set by a few pages)."""
    try:
        import resource
        import sys

        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(r if sys.platform == "darwin" else r * 1024)
    except (ImportError, OSError):   # pragma: no cover - not POSIX
        return 0


@dataclass
class Meter:
    """Wall time and peak memory of a block, for ``bench`` verbs::

        with Meter(device) as m:
            run()
        m.seconds, m.peak_rss_delta, m.peak_cuda

    CPU memory is the resident set sampled every ``interval`` seconds (peak minus the start), and
    the kernel's high-water mark when it rose during the block (a sampler can miss a short spike);
    on CUDA, ``torch.cuda.max_memory_allocated`` over the block."""

    device: Any = None
    interval: float = 0.002
    seconds: float = 0.0
    rss_start: int = 0
    rss_peak: int = 0
    peak_cuda: int | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def peak_rss_delta(self) -> int:
        return max(0, self.rss_peak - self.rss_start)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.rss_peak = max(self.rss_peak, _rss_bytes())

    def __enter__(self) -> Meter:
        self._cuda = self.device is not None and str(self.device).startswith("cuda")
        if self._cuda:
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self.rss_start = self.rss_peak = _rss_bytes()
        self._hw_start = process_peak_rss()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self._cuda:
            import torch

            torch.cuda.synchronize(self.device)
            self.peak_cuda = int(torch.cuda.max_memory_allocated(self.device))
        self.seconds = time.perf_counter() - self._t0
        self._stop.set()
        self._thread.join()
        self.rss_peak = max(self.rss_peak, _rss_bytes())
        hw = process_peak_rss()
        if hw > self._hw_start:       # the process's mark rose inside the block: that is the block's peak,
            self.rss_peak = max(self.rss_peak, hw)   # even a spike too short for the sampler to see

    def to_dict(self) -> dict:
        return {"seconds": self.seconds, "peak_rss_delta_bytes": self.peak_rss_delta,
                "peak_cuda_bytes": self.peak_cuda}


def median_time(fn, *, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))
