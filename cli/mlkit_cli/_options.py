"""Shared Annotated options, spelled the same on every verb, each with its MLKIT_* variable."""

from enum import StrEnum
from typing import Annotated

import typer


class Fmt(StrEnum):
    jsonl = "jsonl"
    json = "json"
    csv = "csv"
    tsv = "tsv"
    table = "table"


class DeviceName(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


Output = Annotated[str, typer.Option("-o", "--output", metavar="PATH",
                                     help="Where to write ('-' = stdout).")]
Format = Annotated[Fmt, typer.Option("--format", envvar="MLKIT_FORMAT",
                                     help="Record format on stdout/-o.")]
Quiet = Annotated[bool, typer.Option("-q", "--quiet", envvar="MLKIT_QUIET",
                                     help="No progress or notes on stderr.")]
Verbose = Annotated[int, typer.Option("-v", "--verbose", count=True, help="More detail on stderr.")]
Debug = Annotated[bool, typer.Option("--debug", envvar="MLKIT_DEBUG",
                                     help="Show tracebacks on errors.")]
Device = Annotated[DeviceName, typer.Option("--device", envvar="MLKIT_DEVICE",
                                            help="Compute device.")]
Seed = Annotated[int, typer.Option("--seed", envvar="MLKIT_SEED", help="Random seed.")]
Threads = Annotated[int, typer.Option("--threads", envvar="MLKIT_THREADS", min=0,
                                      help="CPU threads (0 = all available cores).")]


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """'1,3,224,224' or '1x3x224x224' -> (1, 3, 224, 224); -1 allowed once."""
    if not text:
        return None
    try:
        return tuple(int(t) for t in text.replace("x", ",").split(",") if t.strip())
    except ValueError as exc:
        raise typer.BadParameter(f"expected integers like 1,3,224,224, got {text!r}") from exc


def parse_list(text: str, what: str, cast=float) -> tuple:
    """'1,2, 4' -> (1, 2, 4) with ``cast`` per item; a non-number or an empty list is bad input
    (exit 65) naming the option ``what``."""
    from mlkit.errors import InputError

    kind = "integers" if cast is int else "numbers"
    try:
        out = tuple(cast(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"bad {what}", expected=f"comma-separated {kind}", got=text) from None
    if not out:
        raise InputError(f"bad {what}", expected=f"at least one of comma-separated {kind}", got=text)
    return out
