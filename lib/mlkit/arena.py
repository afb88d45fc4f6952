"""Offline arena planning: given buffers with sizes and lifetimes (first and last step they are
needed), assign byte offsets in one arena so that buffers alive at the same time never overlap.

Greedy best-fit by size (as TFLite Micro's GreedyMemoryPlanner and HMCOS's arena report do):
buffers in decreasing size; each goes into the smallest gap, among the buffers already placed
that overlap it in time, that holds it (else on top). Shared by ``memsched eval --arena`` and
``mcubert``'s deployment plan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import InputError

__all__ = ["Buffer", "ArenaPlan", "plan_arena", "peak_live_bytes"]


@dataclass(frozen=True)
class Buffer:
    id: str
    size: int
    first: int   # first step it must hold data
    last: int    # last step it must hold data (inclusive)


@dataclass
class ArenaPlan:
    offsets: dict[str, int]
    arena_bytes: int
    peak_live_bytes: int       # a lower bound for any plan: the most bytes alive at one step
    alignment: int

    @property
    def fragmentation(self) -> float:
        """arena / peak live - 1: 0 means the plan is as small as any plan can be."""
        return self.arena_bytes / self.peak_live_bytes - 1 if self.peak_live_bytes else 0.0

    def to_dict(self) -> dict:
        return {"arena_bytes": self.arena_bytes, "peak_live_bytes": self.peak_live_bytes,
                "fragmentation": self.fragmentation, "alignment": self.alignment, "offsets": self.offsets}


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def peak_live_bytes(buffers: Sequence[Buffer]) -> int:
    events: dict[int, int] = {}
    for b in buffers:
        events[b.first] = events.get(b.first, 0) + b.size
        events[b.last + 1] = events.get(b.last + 1, 0) - b.size
    cur = peak = 0
    for step in sorted(events):
        cur += events[step]
        peak = max(peak, cur)
    return peak


def plan_arena(buffers: Sequence[Buffer], *, alignment: int = 1) -> ArenaPlan:
    """Best-fit offsets for ``buffers`` (sizes rounded up to ``alignment``)."""
    if alignment < 1:
        raise InputError("bad alignment", expected=">= 1", got=str(alignment))
    for b in buffers:
        if b.size < 0 or b.last < b.first:
            raise InputError(f"buffer {b.id!r} is malformed", expected="size >= 0 and first <= last",
                             got=f"size {b.size}, steps {b.first}..{b.last}")
    order = sorted(buffers, key=lambda b: (-b.size, b.first, b.id))
    placed: list[tuple[int, int, Buffer]] = []   # (offset, aligned size, buffer)
    offsets: dict[str, int] = {}
    top = 0
    for b in order:
        need = _align(b.size, alignment)
        if need == 0:
            offsets[b.id] = 0
            continue
        busy = sorted((o, o + s) for o, s, p in placed if p.first <= b.last and b.first <= p.last)
        best = None
        cursor = 0
        for lo, hi in busy:
            gap = lo - cursor
            if gap >= need and (best is None or gap < best[1]):
                best = (cursor, gap)
            cursor = max(cursor, _align(hi, alignment))
        off = best[0] if best is not None else cursor
        placed.append((off, need, b))
        offsets[b.id] = off
        top = max(top, off + need)
    return ArenaPlan(offsets, top, peak_live_bytes(buffers), alignment)
