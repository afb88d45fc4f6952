"""Label files and plots for ``mlkit faceclust eval``.

Label formats (a path, ``-`` for stdin/stdout, or bytes; ``.gz`` is transparent):

* ``.meta`` (learn-to-cluster ``data/labels/<name>.meta``; the official ``*_pred.txt`` too): one
  integer per line, read as Python ``int()`` reads it (surrounding blanks and ``\\r`` allowed).
  Trailing blank lines are ignored; any other line that is not an integer is an error that names
  its 1-based line number.
* JSON Lines: one object per line, ``{"label": int}`` in sample order, or ``{"id": int, "label":
  int}`` where ``id`` is the sample index (records in any order, ids exactly 0..N-1). Blank lines
  are skipped.

The format comes from ``fmt``, else the extension (``.jsonl``/``.ndjson`` -> JSONL; ``.meta``,
``.txt``, ``.labels`` -> meta), else the content (a first non-blank byte ``{`` means JSONL); a
writer with no such hint writes meta.
"""

from __future__ import annotations

import json

import numpy as np

from mlkit.codecs._io import PathLike, display_name, is_bytes, is_std, read_bytes, suffix_of, write_bytes
from mlkit.errors import InputError

from .metrics import check_labels

__all__ = ["read_labels", "write_labels", "plot_bins", "LABEL_FORMATS"]

LABEL_FORMATS = ("meta", "jsonl")


def _format(src, data: bytes | None, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in LABEL_FORMATS:
            raise InputError("unknown label format", expected=" | ".join(LABEL_FORMATS), got=repr(fmt))
        return fmt
    suffix = "" if is_std(src) or is_bytes(src) else suffix_of(src)
    if suffix in ("jsonl", "ndjson"):
        return "jsonl"
    if suffix in ("meta", "txt", "labels"):
        return "meta"
    return "jsonl" if data is not None and data.lstrip()[:1] == b"{" else "meta"


def _parse_meta(data: bytes, name: str) -> np.ndarray:
    lines = data.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise InputError(f"{name}: no labels", expected="one integer per line", got="only blank lines")
    try:
        return np.array(lines).astype(np.int64)
    except (ValueError, OverflowError):
        pass
    for i, line in enumerate(lines, 1):  # slow path: find the first bad line
        try:
            value = int(line)
            if not -(2 ** 63) <= value < 2 ** 63:
                raise OverflowError
        except (ValueError, OverflowError):
            got = line.decode("utf-8", "replace").strip()[:40]
            raise InputError(f"{name}: line {i}", expected="an integer label (one per line)",
                             got=repr(got) if got else "a blank line") from None
    raise InputError(f"{name}: unreadable labels", expected="one integer per line")  # unreachable


def _parse_jsonl(data: bytes, name: str) -> np.ndarray:
    labels, ids = [], []
    for i, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{name}: line {i}", expected="a JSON object",
                             got=getattr(exc, "msg", str(exc))) from None
        if not isinstance(rec, dict) or "label" not in rec:
            raise InputError(f"{name}: line {i}", expected='an object with a "label"',
                             got=type(rec).__name__ if not isinstance(rec, dict) else "no label")
        for key in ("label", "id"):
            if key in rec and (type(rec[key]) is not int):
                raise InputError(f"{name}: line {i}", expected=f'an integer "{key}"',
                                 got=repr(rec[key])[:40])
        labels.append(rec["label"])
        ids.append(rec.get("id"))
    if not labels:
        raise InputError(f"{name}: no labels", expected="JSON Lines records", got="only blank lines")
    n_ids = sum(i is not None for i in ids)
    if n_ids == 0:
        return np.array(labels, dtype=np.int64)
    idx = np.array(ids if n_ids == len(ids) else [], dtype=np.int64)
    if n_ids != len(ids) or not np.array_equal(np.sort(idx), np.arange(len(idx))):
        raise InputError(f"{name}: record ids", expected=f'every record with an "id", ids 0..{len(ids) - 1} '
                         "each once", got=f"{n_ids} of {len(ids)} records with ids, or gaps/duplicates")
    out = np.empty(len(labels), dtype=np.int64)
    out[idx] = labels
    return out


def read_labels(src: PathLike | bytes, *, fmt: str | None = None) -> np.ndarray:
    """Labels from a ``.meta`` or JSON Lines file (or ``-``/bytes) -> (N,) int64."""
    data = read_bytes(src)
    name = getattr(data, "name", display_name(src))
    kind = _format(src, data, fmt)
    return _parse_jsonl(data, name) if kind == "jsonl" else _parse_meta(data, name)


def write_labels(labels, dst: PathLike, *, fmt: str | None = None) -> None:
    """Write labels atomically: ``.meta`` (one int per line) or, for ``*.jsonl`` or ``fmt="jsonl"``,
    ``{"id": i, "label": l}`` records."""
    labels, _ = check_labels(labels, labels)
    values = np.asarray(labels, dtype=np.int64).tolist()
    if _format(dst, None, fmt) == "jsonl":
        text = "".join(f'{{"id": {i}, "label": {v}}}\n' for i, v in enumerate(values))
    else:
        text = "\n".join(map(str, values)) + "\n"
    write_bytes(text.encode(), dst)


def _recalls(bins: list[dict] | None) -> list[float]:
    """Recall per quintile; NaN (no bar) for an empty bin or a result without these bins."""
    if not bins:
        return [np.nan] * 5
    return [np.nan if b["recall"] is None else b["recall"] for b in bins]


def plot_bins(results: dict[str, dict], dst: PathLike, *, title: str | None = None) -> None:
    """Bar chart of pairwise recall per size quintile (sz-1 = smallest identities) and, when any
    result has ``sparsity_bins``, per sparsity quintile (sp-1 = sparsest): one bar per method in
    each group, as the paper's Fig. 1-2. ``results`` maps a method name to its ``evaluate()`` dict."""
    from mlkit.plots import figure

    if not results:
        raise InputError("nothing to plot", expected="at least one method's results", got="none")
    panels = [("size_bins", "sz", "size quintile")]
    if any(r.get("sparsity_bins") for r in results.values()):
        panels.append(("sparsity_bins", "sp", "sparsity quintile"))
    width = 0.8 / len(results)
    with figure(dst=dst, ncols=len(panels), width=5.0 * len(panels) + 1.0, height=3.8) as (fig, axes):
        axes = np.atleast_1d(axes).ravel()
        for ax, (key, tag, xlabel) in zip(axes, panels, strict=True):
            x = np.arange(5)
            for m, (method, res) in enumerate(results.items()):
                ax.bar(x - 0.4 + width * (m + 0.5), _recalls(res.get(key)), width, label=method)
            ax.set_xticks(x, [f"{tag}-{i}" for i in range(1, 6)])
            ax.set_xlabel(xlabel)
            ax.set_ylabel("pairwise recall")
            ax.set_ylim(0.0, 1.15)
            ax.grid(axis="y", alpha=0.3)
        axes[0].legend(loc="upper center", ncol=min(len(results), 4), fontsize="small")
        if title:
            fig.suptitle(title)
