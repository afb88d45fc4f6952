"""Task data and GLUE metrics.

Readers: GLUE's original TSVs with the column maps of google-research/bert ``run_classifier.py``
(paper notes §4), and JSONL (``{"text": ..., "text_b": ..., "label": ...}``). Metrics as
huggingface/evaluate's ``glue``: CoLA Matthews correlation, STS-B Pearson and Spearman, MRPC/QQP
accuracy and binary F1 (positive = 1), the rest accuracy.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from mlkit.codecs._io import display_name, read_bytes
from mlkit.errors import InputError

__all__ = ["Examples", "TASKS", "read_examples", "glue_metrics", "matthews", "f1_binary", "pearson", "spearman"]


@dataclass(frozen=True)
class Task:
    a: int                 # column of text A
    b: int | None          # column of text B (pairs)
    label: int             # column of the label (-1 = last)
    header: bool
    labels: tuple[str, ...] | None     # string labels in class order; None = numeric (STS-B: float)
    regression: bool = False


TASKS = {
    "sst2": Task(0, None, 1, True, ("0", "1")),
    "cola": Task(3, None, 1, False, ("0", "1")),
    "mrpc": Task(3, 4, 0, True, ("0", "1")),
    "qqp": Task(3, 4, 5, True, ("0", "1")),
    "qnli": Task(1, 2, 3, True, ("entailment", "not_entailment")),
    "rte": Task(1, 2, 3, True, ("entailment", "not_entailment")),
    "mnli": Task(8, 9, -1, True, ("contradiction", "entailment", "neutral")),
    "stsb": Task(7, 8, -1, True, None, regression=True),
}


@dataclass
class Examples:
    a: list[str]
    b: list[str] | None
    y: np.ndarray            # int64 classes, or float64 scores (regression)
    labels: tuple[str, ...] | None
    regression: bool = False

    def __len__(self) -> int:
        return len(self.a)


def read_examples(src: str, task: str = "jsonl") -> Examples:
    """GLUE TSV of ``task`` or JSONL (``task`` = jsonl). Bad rows: InputError naming the line."""
    name = display_name(src)
    if task == "jsonl":
        from mlkit.codecs import tables

        a, b, y = [], [], []
        for i, rec in enumerate(tables.iter_read(src, fmt="jsonl"), 1):
            if "text" not in rec or "label" not in rec:
                raise InputError(f"{name}: record {i} is not an example", expected='{"text": ..., "label": ...}',
                                 got=", ".join(list(rec)[:4]))
            a.append(str(rec["text"]))
            b.append(None if rec.get("text_b") is None else str(rec["text_b"]))
            y.append(rec["label"])
        if not a:
            raise InputError(f"{name}: no examples")
        pairs = [v is not None for v in b]
        if any(pairs) and not all(pairs):
            raise InputError(f"{name}: some examples have text_b and some do not")
        regression = any(isinstance(v, float) for v in y)
        return Examples(a, b if all(pairs) else None, np.asarray(y, np.float64 if regression else np.int64),
                        None, regression)
    if task not in TASKS:
        raise InputError("unknown task", expected=", ".join([*TASKS, "jsonl"]), got=task)
    t = TASKS[task]
    text = read_bytes(src).decode("utf-8", errors="replace")
    rows = list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))
    rows = rows[1:] if t.header else rows
    a, b, y = [], [], []
    width = None
    for i, r in enumerate(rows, 2 if t.header else 1):
        if not r:
            continue
        width = width or len(r)
        need = max(t.a, t.b or 0, t.label if t.label >= 0 else 0) + 1
        if len(r) < need or len(r) != width:
            raise InputError(f"{name}:{i}: ragged row", expected=f"{width} tab-separated columns", got=str(len(r)))
        a.append(r[t.a])
        if t.b is not None:
            b.append(r[t.b])
        lab = r[t.label].strip()
        if t.regression:
            try:
                y.append(float(lab))
            except ValueError as exc:
                raise InputError(f"{name}:{i}: bad score", got=lab) from exc
        else:
            if lab not in t.labels:
                raise InputError(f"{name}:{i}: unknown label", expected=", ".join(t.labels), got=lab)
            y.append(t.labels.index(lab))
    if not a:
        raise InputError(f"{name}: no examples")
    return Examples(a, b if t.b is not None else None, np.asarray(y, np.float64 if t.regression else np.int64),
                    t.labels, t.regression)


def matthews(y: np.ndarray, p: np.ndarray) -> float:
    """Binary Matthews correlation (0 when a marginal is empty, as sklearn)."""
    tp = float(np.sum((y == 1) & (p == 1)))
    tn = float(np.sum((y == 0) & (p == 0)))
    fp = float(np.sum((y == 0) & (p == 1)))
    fn = float(np.sum((y == 1) & (p == 0)))
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / den) if den > 0 else 0.0


def f1_binary(y: np.ndarray, p: np.ndarray) -> float:
    tp = float(np.sum((y == 1) & (p == 1)))
    den = float(np.sum(y == 1) + np.sum(p == 1))
    return 2 * tp / den if den > 0 else 0.0


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, np.float64) - np.mean(x), np.asarray(y, np.float64) - np.mean(y)
    den = np.linalg.norm(x) * np.linalg.norm(y)
    return float(x @ y / den) if den > 0 else 0.0


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import rankdata

    return pearson(rankdata(x), rankdata(y))


def glue_metrics(task: str, y: np.ndarray, pred: np.ndarray) -> dict:
    if task == "stsb" or (task == "jsonl" and y.dtype.kind == "f"):
        return {"pearson": pearson(pred, y), "spearmanr": spearman(pred, y)}
    out = {"accuracy": float(np.mean(y == pred))}
    if task == "cola":
        return {"matthews_correlation": matthews(y, pred)}
    if task in ("mrpc", "qqp"):
        out["f1"] = f1_binary(y, pred)
    return out
