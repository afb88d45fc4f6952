"""stdout carries data only; people read stderr. Records go out through mlkit.codecs.tables."""

import os
import sys
from collections.abc import Iterable

from ._app import meta
from ._options import Fmt


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")), highlight=False)


def note(text: str, *, level: int = 0) -> None:
    """A human note on stderr, unless -q; ``level=1`` only with -v."""
    m = meta()
    if m.get("quiet") or m.get("verbose", 0) < level:
        return
    print(text, file=sys.stderr, flush=True)


def progress():
    """A rich progress bar on stderr: transient, off when quiet or stderr is not a terminal."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=stderr_console(), transient=True,
                    disable=bool(meta().get("quiet")) or not sys.stderr.isatty())


def emit(records: Iterable[dict], fmt: Fmt | str = Fmt.jsonl, output: str = "-", *, title: str | None = None) -> int:
    """Write records to ``output`` ('-' = stdout) in ``fmt``; atomic for files."""
    from mlkit.codecs import tables

    f = fmt.value if isinstance(fmt, Fmt) else str(fmt)
    return tables.write(records, output or "-", fmt=f, title=title, flush_each=(output in ("-", None)))
