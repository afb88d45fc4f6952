"""Tables of records (list of dicts): JSON Lines (the default on pipes), JSON, CSV/TSV, and a
rich renderer for ``--format table``.

Writing JSON turns numpy scalars/arrays into plain values and non-finite floats into ``null``
so every line is strict JSON that ``jq`` and other languages accept.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import InputError
from ._io import PathLike, atomic_output, display_name, is_std, open_input, read_bytes, suffix_of

__all__ = ["FORMATS", "read", "iter_read", "write", "dumps", "render_table", "to_jsonable"]

FORMATS = ("jsonl", "json", "csv", "tsv", "table")
_ALIASES = {"ndjson": "jsonl", "txt": "table"}


def _fmt(src: PathLike, fmt: str | None) -> str:
    f = (fmt or ("" if is_std(src) else suffix_of(src)) or "jsonl").lower().lstrip(".")
    f = _ALIASES.get(f, f)
    if f not in FORMATS:
        raise InputError(f"{src}: unknown table format '.{f}'", expected="jsonl, json, csv, tsv",
                         hint="pass an explicit --format")
    return f



def iter_read(src: PathLike, *, fmt: str | None = None, infer: bool = True) -> Iterator[dict]:
    """Stream records. JSONL is read line by line; a non-JSON line raises InputError naming it."""
    f = _fmt(src, fmt)
    name = display_name(src)
    if f == "jsonl":
        with open_input(src, allow_empty=not is_std(src)) as fh:
            for lineno, raw in enumerate(fh, 1):
                line = raw.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise InputError(f"{name}: line {lineno} is not JSON", expected="one JSON object a line",
                                     got=_clip(line)) from exc
                if not isinstance(rec, dict):
                    raise InputError(f"{name}: line {lineno} is not a JSON object",
                                     expected="an object", got=type(rec).__name__)
                yield rec
        return
    yield from read(src, fmt=f, infer=infer)


def read(src: PathLike, *, fmt: str | None = None, infer: bool = True) -> list[dict]:
    """All records. CSV/TSV cells become int/float where they parse (``infer=False`` keeps strings);
    JSON may be a list of objects or one object."""
    f = _fmt(src, fmt)
    name = display_name(src)
    if f == "jsonl":
        return list(iter_read(src, fmt=f))
    text = _decode(read_bytes(src, allow_empty=not is_std(src)), name)
    if f == "json":
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise InputError(f"{name}: not valid JSON", got=str(exc)) from exc
        if isinstance(obj, dict):
            return [obj]
        if not isinstance(obj, list) or not all(isinstance(r, dict) for r in obj):
            raise InputError(f"{name}: not a table", expected="a JSON list of objects",
                             got=type(obj).__name__)
        return obj
    if f == "table":
        raise InputError(f"{name}: a rendered table cannot be read back", hint="write jsonl or csv")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="," if f == "csv" else "\t")
    rows = []
    for lineno, row in enumerate(reader, 2):
        if None in row:
            raise InputError(f"{name}: line {lineno} has more cells than the header",
                             expected=f"{len(reader.fieldnames or [])} cells")
        rows.append({k: (_infer(v) if infer else v) for k, v in row.items()})
    return rows


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text", got=f"byte {exc.start}") from exc


def _infer(v: str | None) -> Any:
    if v is None or v == "":
        return None if v is None else v
    try:
        return int(v)
    except ValueError:
        pass
    try:
        f = float(v)
    except ValueError:
        return v
    return f if v.strip().lower() not in ("nan", "inf", "-inf", "infinity", "-infinity") else v


def to_jsonable(x: Any) -> Any:
    """numpy/torch scalars and arrays -> plain Python; NaN/Inf -> None."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    if hasattr(x, "tolist"):  # numpy / torch
        return to_jsonable(x.tolist())
    if hasattr(x, "item"):
        return to_jsonable(x.item())
    if hasattr(x, "__fspath__"):
        return str(x)
    return str(x)


def dumps(rec: dict) -> str:
    return json.dumps(to_jsonable(rec), ensure_ascii=False, allow_nan=False)


def _columns(records: list[dict]) -> list[str]:
    cols: dict[str, None] = {}
    for r in records:
        for k in r:
            cols.setdefault(str(k), None)
    return list(cols)


def _cell(v: Any) -> str:
    v = to_jsonable(v)
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def render_table(records: Iterable[dict], *, title: str | None = None, width: int = 120) -> str:
    """Records as a boxed text table (rich), for people; never parsed back."""
    from rich.console import Console
    from rich.table import Table

    records = list(records)
    table = Table(title=title, show_lines=False)
    cols = _columns(records)
    for c in cols:
        table.add_column(c, overflow="fold")
    for r in records:
        table.add_row(*[_fmt_num(r.get(c)) for c in cols])
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, force_terminal=False).print(table)
    return buf.getvalue()


def _fmt_num(v: Any) -> str:
    v = to_jsonable(v)
    if isinstance(v, float):
        return f"{v:.4g}" if (abs(v) >= 1e-3 or v == 0) else f"{v:.3e}"
    return _cell(v)


def write(records: Iterable[dict], dst: PathLike, *, fmt: str | None = None, title: str | None = None,
          flush_each: bool = False) -> int:
    """Write records atomically (streaming for JSONL); returns the count. ``flush_each`` flushes
    each JSONL line, for long-running producers feeding a pipe."""
    f = _fmt(dst, fmt)
    n = 0
    with atomic_output(dst) as fh:
        if f == "jsonl":
            for rec in records:
                fh.write((dumps(rec) + "\n").encode())
                n += 1
                if flush_each:
                    fh.flush()
            return n
        records = list(records)
        n = len(records)
        if f == "json":
            text = json.dumps(to_jsonable(records), ensure_ascii=False, indent=1, allow_nan=False) + "\n"
        elif f == "table":
            text = render_table(records, title=title)
        else:
            buf = io.StringIO(newline="")
            cols = _columns(records)
            delim = "," if f == "csv" else "\t"
            w = csv.writer(buf, delimiter=delim, lineterminator="\n")
            # a lone \r is not quoted under a \n terminator but would split the row on reading
            w_all = csv.writer(buf, delimiter=delim, lineterminator="\n", quoting=csv.QUOTE_ALL)
            w.writerow(cols)
            for r in records:
                row = [_cell(r.get(c)) for c in cols]
                (w_all if any("\r" in c for c in row) else w).writerow(row)
            text = buf.getvalue()
        fh.write(text.encode())
    return n


def _clip(line: bytes | str, n: int = 60) -> str:
    s = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    return repr(s if len(s) <= n else s[:n] + "...")
