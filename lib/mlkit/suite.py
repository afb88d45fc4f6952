"""Run every registered tool's demo or bench in one go (``mlkit demo``, ``mlkit bench``)."""

from __future__ import annotations

import importlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from . import registry
from .errors import MlkitError
from .registry import Tool

__all__ = ["run_demos", "run_benches"]


def _select(names: list[str] | None) -> list[Tool]:
    if not names:
        return list(registry.TOOLS)
    known = {t.name: t for t in registry.TOOLS}
    missing = [n for n in names if n not in known]
    if missing:
        from .errors import InputError

        raise InputError("unknown tool", expected=", ".join(known) or "a registered tool", got=", ".join(missing))
    return [known[n] for n in names]


def run_demos(names: list[str] | None = None, workdir: str | None = None) -> Iterator[dict]:
    """One record per tool: tool, what ran, key metric and value, seconds, ok/error."""
    for tool in _select(names):
        yield _run(tool, "run_demo", workdir)


def run_benches(names: list[str] | None = None, workdir: str | None = None) -> Iterator[dict]:
    """Each tool's bench rows, tagged with the tool name."""
    for tool in _select(names):
        rec = _run(tool, "run_bench", workdir)
        rows = rec.pop("rows", None)
        if rows is None:
            yield rec
        else:
            for row in rows:
                yield {"tool": tool.name, **row}


def _run(tool: Tool, fn_name: str, workdir: str | None) -> dict:
    pkg = importlib.import_module(tool.package)
    fn = getattr(pkg, fn_name)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"mlkit-{tool.name}-", dir=workdir) as tmp:
        try:
            out = fn(Path(tmp))
        except MlkitError as exc:
            return {"tool": tool.name, "ok": False, "error": exc.message, "exit_code": exc.exit_code,
                    "seconds": time.perf_counter() - t0}
    seconds = time.perf_counter() - t0
    if fn_name == "run_bench":
        return {"tool": tool.name, "rows": list(out)}
    return {"tool": tool.name, "ok": True, **out, "seconds": seconds}
