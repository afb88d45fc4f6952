"""Inputs and outputs (paper notes §3, §7).

* **Features**: ``.npz`` (each key one sequence, a 2-D T x D array) or ``.npy`` (one sequence,
  named by the file stem; ``stdin`` on standard input). Content decides which, so ``-`` works.
* **Frame labels** (BP4D ``AU_OCC`` style): CSV with a header, either ``seq,frame,AU1,AU2,...``
  (many sequences) or ``frame,AU1,...`` (one sequence named by the file stem; BP4D's own files,
  whose first header cell is ``0`` or empty, are read the same way). AU columns may be spelled
  ``1``, ``AU1``, ``au01``: all mean ``AU1``. Values are 0/1 labels or probabilities in [0, 1];
  9 means "not coded" (``coded`` False, value stored as 0.0).
* **ActivityNet JSON**: ground truth ``{"version", "taxonomy", "database": {seq: {"subset",
  "duration", "fps", "annotations": [{"label", "segment": [s, e]}]}}}`` and results
  ``{"version", "results": {seq: [{"label", "segment", "score"}]}, "external_data": {}}``.
  ``fps`` per sequence and a top-level ``units`` ("seconds" or "frames") are our extensions;
  segments and durations are in ``units``. In memory everything is in frames: ground-truth
  segments are rounded to the nearest frame (half up); result segments keep their fractional
  part (snapped to the integer when within 1e-6 of one) because tIoU is continuous.

Every reader raises ``InputError`` with one line naming the file, line, sequence or event;
every writer is atomic and takes ``-`` for stdout.
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlkit.codecs import arrays
from mlkit.codecs._io import (
    NamedBytes,
    PathLike,
    atomic_output,
    display_name,
    is_std,
    read_bytes,
    sniff,
    strip_gz,
)
from mlkit.codecs.tables import to_jsonable
from mlkit.errors import InputError

__all__ = ["FrameLabels", "GroundTruth", "UNITS", "au_name", "au_sort_key", "read_features",
           "read_frame_labels", "write_frame_labels", "read_gt", "write_gt", "read_results",
           "write_results", "results_to_records", "FORMAT_VERSION"]

UNITS = ("seconds", "frames")
FORMAT_VERSION = "mlkit-au-events 1"
NOT_CODED = 9.0
_AU_RE = re.compile(r"^(?:au)?0*(\d+)$", re.IGNORECASE)
_SNAP = 1e-6


# --------------------------------------------------------------------------- names


def au_name(label) -> str:
    """Canonical AU label: ``1``, ``AU1``, ``au01`` -> ``AU1``; other labels are kept as given."""
    text = str(label).strip()
    m = _AU_RE.match(text)
    return f"AU{int(m.group(1))}" if m else text


def au_sort_key(label: str):
    """Natural order: AU1 < AU2 < AU10; non-AU labels after, alphabetically."""
    m = _AU_RE.match(label)
    return (0, int(m.group(1)), "") if m else (1, 0, label)


def _stem(src) -> str:
    if is_std(src):
        return "stdin"
    name, _ = strip_gz(display_name(src))
    return Path(name).stem or name


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text", got=f"a bad byte at offset {exc.start}") from exc


# --------------------------------------------------------------------------- features


def read_features(src: PathLike) -> dict[str, np.ndarray]:
    """``{seq: (T, D) float array}`` from ``.npz`` (one key per sequence) or ``.npy`` (one
    sequence named by the file stem). Integer arrays become float64; float dtypes are kept.
    Refuses non-2-D, empty and non-finite arrays."""
    name = display_name(src)
    raw = read_bytes(src)
    kind = sniff(bytes(raw[:64]))
    if kind not in ("npy", "npz"):
        raise InputError(f"{name}: not a feature file", expected=".npz (one T x D array per sequence) or .npy",
                         got=f"{kind or 'unknown'} content")
    data = arrays.read(NamedBytes(bytes(raw), name), fmt=kind)
    feats = data if isinstance(data, dict) else {_stem(src): data}
    if not feats:
        raise InputError(f"{name}: no sequences", expected="at least one array in the .npz")
    out = {}
    for seq, a in feats.items():
        if a.dtype.kind not in "fiub":
            raise InputError(f"{name}: sequence '{seq}': not numbers", expected="a float array", got=str(a.dtype))
        if a.ndim != 2:
            raise InputError(f"{name}: sequence '{seq}': wrong shape", expected="2-D (frames, features)",
                             got=str(a.shape))
        if a.shape[0] == 0 or a.shape[1] == 0:
            raise InputError(f"{name}: sequence '{seq}': empty", expected="at least one frame and one feature",
                             got=str(a.shape))
        if a.dtype.kind != "f":
            a = a.astype(np.float64)
        finite = np.isfinite(a)
        if not finite.all():
            t, d = np.argwhere(~finite)[0]
            raise InputError(f"{name}: sequence '{seq}': not finite", expected="finite features",
                             got=f"{a[t, d]} at frame row {t}, feature {d}")
        out[str(seq)] = a
    return out


# --------------------------------------------------------------------------- frame labels


@dataclass
class FrameLabels:
    """One sequence's per-frame AU labels or probabilities."""

    frames: np.ndarray        # (T,) int64, strictly increasing
    values: np.ndarray        # (T, C) float64 in [0, 1]; 0.0 where not coded
    coded: np.ndarray         # (T, C) bool; False where the file had 9
    aus: list[str]            # (C,) canonical labels, e.g. "AU12"


def _frame_column(cell: str) -> bool:
    return cell.lower() in ("frame", "frames", "", "0")


def _first_bad(cells: list, lines: list[int], what: str, name: str, hint: str):
    for ln, cell in zip(lines, cells, strict=True):
        for c in (cell if isinstance(cell, list) else [cell]):
            try:
                float(c)
            except ValueError:
                raise InputError(f"{name}: line {ln}: {what} is not a number", got=repr(c),
                                 hint=hint) from None
    raise InputError(f"{name}: {what}: not numbers")  # pragma: no cover - float() and numpy agree


def read_frame_labels(src: PathLike) -> dict[str, FrameLabels]:
    """``{seq: FrameLabels}`` from a ``seq,frame,AU...`` or ``frame,AU...`` CSV (see the module
    docstring). Sequences keep the order of their first row."""
    name = display_name(src)
    text = _decode(read_bytes(src), name)
    rows, lines = [], []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            if row and any(c.strip() for c in row):
                rows.append([c.strip() for c in row])
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise InputError(f"{name}: line {reader.line_num}: not valid CSV", got=str(exc)) from exc
    if not rows:
        raise InputError(f"{name}: no header", expected="seq,frame,AU1,... or frame,AU1,...")
    header, rows, hline, lines = rows[0], rows[1:], lines[0], lines[1:]
    multi = header[0].lower() in ("seq", "sequence", "video")
    first = 2 if multi else 1
    if (multi and (len(header) < 2 or header[1].lower() not in ("frame", "frames"))) or \
            (not multi and not _frame_column(header[0])):
        raise InputError(f"{name}: line {hline}: unknown header", expected="seq,frame,AU1,... or frame,AU1,...",
                         got=",".join(header[:4]) + ("..." if len(header) > 4 else ""))
    aus = []
    for j, col in enumerate(header[first:], first + 1):
        m = _AU_RE.match(col)
        if not m:
            raise InputError(f"{name}: line {hline}: column {j} is not an AU", expected="AU<n> or <n>",
                             got=repr(col))
        au = au_name(col)
        if au in aus:
            raise InputError(f"{name}: line {hline}: AU column {au} appears twice", got=repr(col))
        aus.append(au)
    if not aus:
        raise InputError(f"{name}: line {hline}: no AU columns", expected="seq,frame,AU1,... or frame,AU1,...")
    if not rows:
        raise InputError(f"{name}: no data rows", expected="one row per frame after the header")
    for ln, row in zip(lines, rows, strict=True):
        if len(row) != len(header):
            raise InputError(f"{name}: line {ln}: ragged row", expected=f"{len(header)} cells like the header",
                             got=f"{len(row)} cells")
    hint = "values are 0/1, probabilities in [0, 1] or 9 (not coded)"
    fcells = [r[first - 1] for r in rows]
    vcells = [r[first:] for r in rows]
    try:
        F = np.array(fcells, dtype=np.float64)
    except ValueError:
        _first_bad(fcells, lines, "frame number", name, "frame numbers are integers")
    try:
        V = np.array(vcells, dtype=np.float64).reshape(len(rows), len(aus))
    except ValueError:
        _first_bad(vcells, lines, "an AU value", name, hint)
    badf = ~np.isfinite(F) | (F != np.round(F)) | (F < 0)
    if badf.any():
        i = int(np.argmax(badf))
        raise InputError(f"{name}: line {lines[i]}: bad frame number", expected="an integer >= 0",
                         got=fcells[i])
    badv = ~(((V >= 0) & (V <= 1)) | (V == NOT_CODED))
    if badv.any():
        i, c = np.argwhere(badv)[0]
        raise InputError(f"{name}: line {lines[i]}: bad value for {aus[c]}", expected="0/1, [0, 1] or 9",
                         got=vcells[i][c])
    F = F.astype(np.int64)
    if multi:
        seqs = np.array([r[0] for r in rows], dtype=object)
        if any(s == "" for s in seqs):
            i = next(i for i, s in enumerate(seqs) if s == "")
            raise InputError(f"{name}: line {lines[i]}: empty sequence name")
        names, first_row, inv = np.unique(seqs, return_index=True, return_inverse=True)
        order = np.argsort(first_row, kind="stable")
        groups = np.argsort(inv, kind="stable")              # rows grouped by sequence, file order kept
        bounds = np.concatenate([[0], np.cumsum(np.bincount(inv, minlength=len(names)))])
        parts = [(str(names[k]), groups[bounds[k]:bounds[k + 1]]) for k in order]
    else:
        parts = [(_stem(src), np.arange(len(rows)))]
    out: dict[str, FrameLabels] = {}
    for seq, idx in parts:
        fr = F[idx]
        d = np.diff(fr)
        if (d <= 0).any():
            j = int(np.argmax(d <= 0))
            what = "duplicate frame" if d[j] == 0 else "frames out of order"
            raise InputError(f"{name}: line {lines[idx[j + 1]]}: {what} in sequence '{seq}'",
                             expected=f"a frame after {fr[j]}", got=str(fr[j + 1]))
        v = V[idx]
        coded = v != NOT_CODED
        out[seq] = FrameLabels(fr, np.where(coded, v, 0.0), coded, list(aus))
    return out


def _cell(v: float, coded: bool) -> str:
    if not coded:
        return "9"
    if v == 0.0 or v == 1.0:
        return str(int(v))
    return repr(float(v))


def write_frame_labels(labels: dict[str, FrameLabels], dst: PathLike) -> int:
    """Write ``seq,frame,AU...`` CSV atomically (``-``: stdout); 9 where not coded. All sequences
    must share one AU list. Returns the number of rows."""
    if not labels:
        raise InputError("frame labels: nothing to write", expected="at least one sequence")
    aus = list(next(iter(labels.values())).aus)
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["seq", "frame", *aus])
    n = 0
    for seq, fl in labels.items():
        if list(fl.aus) != aus:
            raise InputError(f"frame labels: sequence '{seq}' has other AU columns", expected=",".join(aus),
                             got=",".join(fl.aus))
        values, coded = np.asarray(fl.values, np.float64), np.asarray(fl.coded, bool)
        for t, f in enumerate(np.asarray(fl.frames)):
            w.writerow([seq, int(f), *(_cell(v, c) for v, c in zip(values[t], coded[t], strict=True))])
            n += 1
    with atomic_output(dst) as fh:
        fh.write(buf.getvalue().encode())
    return n


# --------------------------------------------------------------------------- ActivityNet JSON


@dataclass
class GroundTruth:
    """ActivityNet ground truth with every segment in frames.

    ``db[seq] = {"subset": str, "duration_frames": int, "fps": float,
    "events": [{"label": str, "segment": [s, e]}]}`` (half-open, integer frames, file order);
    ``aus``: the labels that occur, in natural order (AU1, AU2, AU10)."""

    db: dict[str, dict]
    aus: list[str]
    version: str = FORMAT_VERSION
    taxonomy: list = field(default_factory=list)


def _load_json(src: PathLike):
    """(object or None, name, text, parse error or None)."""
    name = display_name(src)
    text = _decode(read_bytes(src), name)
    try:
        return json.loads(text), name, text, None
    except ValueError as exc:
        return None, name, text, exc


def _units(units: str | None, declared, name: str) -> str:
    if declared is not None and declared not in UNITS:
        raise InputError(f"{name}: unknown \"units\"", expected=" or ".join(UNITS), got=repr(declared))
    if units is None:
        return declared or "seconds"
    if units not in UNITS:
        raise InputError("unknown units", expected=" or ".join(UNITS), got=repr(units))
    if declared is not None and declared != units:
        raise InputError(f"{name}: units mismatch", expected=units, got=f"a file in {declared}",
                         hint="drop --units or give the file's units")
    return units


def _show(x, n: int = 60) -> str:
    """A value as it would look in the file, clipped, for messages (numpy values included)."""
    try:
        text = json.dumps(to_jsonable(x))
    except (TypeError, ValueError):
        text = repr(x)
    return text if len(text) <= n else text[:n] + "..."


def _real(x) -> bool:
    """A finite-or-not real number, numpy scalars included, bools excluded."""
    t = type(x)
    if t is float or t is int:
        return True
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def _positive(v, what: str) -> float:
    if not _real(v) or not math.isfinite(v) or v <= 0:
        raise InputError(f"{what}: bad fps", expected="a positive number", got=repr(v))
    return float(v)


def _pair(seg, what: str) -> tuple[float, float]:
    ok = isinstance(seg, (list, tuple, np.ndarray)) and len(seg) == 2 and all(
        _real(x) and math.isfinite(x) for x in seg)
    if not ok:
        raise InputError(f"{what}: bad segment", expected="[start, end] as two finite numbers",
                         got=_show(seg))
    s, e = float(seg[0]), float(seg[1])
    if e <= s:
        raise InputError(f"{what}: end <= start", expected="start < end", got=_show(seg))
    return s, e


def _score(ev, what: str) -> float:
    score = ev.get("score")
    if not _real(score) or not (0.0 <= score <= 1.0):
        raise InputError(f"{what}: bad score", expected="a number in [0, 1]", got=_show(score))
    return float(score)


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def _snap(x: float):
    r = round(x)
    return int(r) if abs(x - r) <= _SNAP else x


def _label(ev, what: str) -> str:
    label = ev.get("label")
    if not isinstance(label, (str, int)) or isinstance(label, bool) or str(label).strip() == "":
        raise InputError(f"{what}: bad label", expected="a label such as \"AU12\"", got=_show(label))
    return au_name(label)


def read_gt(src: PathLike, *, units: str | None = None, fps: float = 25.0) -> GroundTruth:
    """Ground truth from ActivityNet JSON, converted to frames.

    ``units``: how the file's segments and durations are measured; None takes the file's own
    ``"units"`` (our extension), else seconds. A given ``units`` that contradicts the file's
    raises. ``fps`` is used for sequences without their own ``"fps"``."""
    obj, name, _, err = _load_json(src)
    if err is not None:
        raise InputError(f"{name}: not valid JSON", got=str(err))
    if not isinstance(obj, dict) or not isinstance(obj.get("database"), dict):
        raise InputError(f"{name}: not ActivityNet ground truth", expected='an object with "database": {seq: ...}',
                         got=type(obj).__name__ if not isinstance(obj, dict) else "keys " + ",".join(list(obj)[:5]))
    u = _units(units, obj.get("units"), name)
    fps = _positive(fps, name)
    db, labels = {}, set()
    for seq, entry in obj["database"].items():
        where = f"{name}: sequence '{seq}'"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: not an object", got=type(entry).__name__)
        f = _positive(entry.get("fps", fps), where)
        scale = f if u == "seconds" else 1.0
        dur = entry.get("duration")
        if not _real(dur) or not math.isfinite(dur) or dur <= 0:
            raise InputError(f"{where}: bad duration", expected=f"a positive number of {u}", got=_show(dur))
        dur_f = _round(dur * scale)
        anns = entry.get("annotations", [])
        if not isinstance(anns, list):
            raise InputError(f"{where}: \"annotations\" is not a list", got=type(anns).__name__)
        events = []
        for j, ev in enumerate(anns):
            w = f"{where}, annotation {j}"
            if not isinstance(ev, dict):
                raise InputError(f"{w}: not an object", got=type(ev).__name__)
            label = _label(ev, w)
            s, e = _pair(ev.get("segment"), f"{w} ({label})")
            sf, ef = _round(s * scale), _round(e * scale)
            if ef <= sf:
                raise InputError(f"{w} ({label}): shorter than one frame", expected="at least one frame at "
                                 f"{f:g} fps", got=_show(ev.get("segment")))
            if sf < 0 or ef > dur_f:
                raise InputError(f"{w} ({label}): segment outside the sequence",
                                 expected=f"within [0, {dur:g}] {u}", got=_show(ev.get("segment")))
            events.append({"label": label, "segment": [sf, ef]})
            labels.add(label)
        db[str(seq)] = {"subset": str(entry.get("subset", "")), "duration_frames": dur_f, "fps": f,
                        "events": events}
    tax = obj.get("taxonomy", [])
    return GroundTruth(db, sorted(labels, key=au_sort_key), str(obj.get("version", FORMAT_VERSION)),
                       tax if isinstance(tax, list) else [])


def _to_units(x, u: str, f: float):
    x = x.item() if isinstance(x, np.generic) else x
    return x / f if u == "seconds" else x


def _dump(obj, dst: PathLike, indent: int | None = 1) -> None:
    """``obj`` holds plain Python values already (the writers build it so)."""
    try:
        text = json.dumps(obj, ensure_ascii=False, indent=indent, allow_nan=False) + "\n"
    except ValueError as exc:
        raise InputError(f"{display_name(dst)}: cannot write JSON", expected="finite numbers", got=str(exc)) from exc
    with atomic_output(dst) as fh:
        fh.write(text.encode())


def write_gt(gt: GroundTruth, dst: PathLike, *, units: str = "seconds") -> None:
    """Write ActivityNet ground truth atomically (``-``: stdout), segments and durations in
    ``units``, with each sequence's ``fps`` and the top-level ``units`` so it reads back exactly."""
    u = _units(units, None, display_name(dst))
    tax = gt.taxonomy or [{"nodeId": i + 1, "nodeName": au, "parentId": 0, "parentName": "AU"}
                          for i, au in enumerate(gt.aus)]
    database = {}
    for seq, entry in gt.db.items():
        f = _positive(entry.get("fps", 25.0), f"ground truth: sequence '{seq}'")
        for j, ev in enumerate(entry["events"]):
            _pair(ev.get("segment"), f"ground truth: sequence '{seq}', event {j}")
        database[seq] = {
            "subset": str(entry.get("subset", "")), "duration": _to_units(entry["duration_frames"], u, f), "fps": f,
            "annotations": [{"label": str(ev["label"]), "segment": [_to_units(x, u, f) for x in ev["segment"]]}
                            for ev in entry["events"]]}
    _dump({"version": gt.version, "units": u, "taxonomy": to_jsonable(tax), "database": database}, dst)


def _records(obj, text: str, err, name: str):
    """JSON Lines / a list of ``{"seq", "label", "segment", "score"}`` records -> results dict."""
    if err is not None:  # not one JSON document: maybe JSON Lines
        recs = []
        for ln, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                recs.append(json.loads(line))
            except ValueError as exc:
                what = "not valid JSON" if ln == 1 else f"line {ln}: not valid JSON"
                raise InputError(f"{name}: {what}", got=str(exc if ln > 1 else err)) from None
            if not isinstance(recs[-1], dict):
                raise InputError(f"{name}: line {ln}: not a JSON object", got=type(recs[-1]).__name__)
    else:
        recs = obj if isinstance(obj, list) else [obj]
    out: dict[str, list] = {}
    for n, rec in enumerate(recs):
        seq = rec.get("seq", rec.get("video")) if isinstance(rec, dict) else None
        if seq is None:
            raise InputError(f"{name}: record {n}: not an event record",
                             expected='{"results": {...}} or records {"seq", "label", "segment", "score"}',
                             got=_show(rec))
        out.setdefault(str(seq), []).append(rec)
    return out


def read_results(src: PathLike, *, units: str | None = None, fps: float = 25.0,
                 gt: GroundTruth | None = None) -> dict[str, list[dict]]:
    """Detections ``{seq: [{"label", "segment": [s, e] in frames, "score"}]}`` from ActivityNet
    results JSON, or from JSON Lines (or a JSON list) of records ``{"seq", "label", "segment",
    "score"}`` whose segments are always in frames (``results_to_records``).

    ``units`` as for ``read_gt``. With ``gt`` the sequence's fps comes from the ground truth and
    every sequence must be in it, every label one of ``gt.aus`` and every segment inside the
    sequence. Segments keep fractional frames (snapped to integers within 1e-6)."""
    obj, name, text, err = _load_json(src)
    if isinstance(obj, dict) and "results" in obj:
        res = obj["results"]
        if not isinstance(res, dict):
            raise InputError(f"{name}: \"results\" is not an object", expected="{seq: [events]}",
                             got=type(res).__name__)
        declared = obj.get("units")
    else:
        res, declared = _records(obj, text, err, name), "frames"   # records are always in frames
    u = _units(units, declared, name)
    fps = _positive(fps, name)
    known = set(gt.aus) if gt is not None else None
    out: dict[str, list[dict]] = {}
    for seq, preds in res.items():
        where = f"{name}: sequence '{seq}'"
        if gt is not None and seq not in gt.db:
            raise InputError(f"{where}: not in the ground truth", hint="check that the files belong together")
        if not isinstance(preds, list):
            raise InputError(f"{where}: not a list of events", got=type(preds).__name__)
        f = gt.db[seq]["fps"] if gt is not None else fps
        scale = f if u == "seconds" else 1.0
        events = []
        for j, ev in enumerate(preds):
            w = f"{where}, event {j}"
            if not isinstance(ev, dict):
                raise InputError(f"{w}: not an object", got=type(ev).__name__)
            label = _label(ev, w)
            if known is not None and label not in known:
                raise InputError(f"{w}: unknown label", expected="one of " + ", ".join(gt.aus), got=repr(label))
            s, e = _pair(ev.get("segment"), f"{w} ({label})")
            score = _score(ev, f"{w} ({label})")
            sf, ef = _snap(s * scale), _snap(e * scale)
            if gt is not None and (sf < -_SNAP or ef > gt.db[seq]["duration_frames"] + _SNAP):
                dur = _to_units(gt.db[seq]["duration_frames"], u, f)
                raise InputError(f"{w} ({label}): segment outside the sequence",
                                 expected=f"within [0, {dur:g}] {u}", got=_show(ev.get("segment")))
            events.append({"label": label, "segment": [sf, ef], "score": score})
        out[str(seq)] = events
    return out


def write_results(results: dict[str, list[dict]], dst: PathLike, *, units: str = "seconds",
                  fps: float = 25.0, gt: GroundTruth | None = None) -> None:
    """Write ActivityNet results JSON atomically (``-``: stdout), segments in ``units`` (frames
    divided by the sequence's fps from ``gt`` when given, else ``fps``)."""
    u = _units(units, None, display_name(dst))
    fps = _positive(fps, display_name(dst))
    out = {}
    for seq, events in results.items():
        f = gt.db[seq]["fps"] if gt is not None and seq in gt.db else fps
        for j, ev in enumerate(events):
            _pair(ev.get("segment"), f"results: sequence '{seq}', event {j}")
            _score(ev, f"results: sequence '{seq}', event {j}")
        out[str(seq)] = [{"label": str(ev["label"]), "segment": [_to_units(x, u, f) for x in ev["segment"]],
                          "score": float(ev["score"])} for ev in events]
    _dump({"version": FORMAT_VERSION, "units": u, "results": out, "external_data": {}}, dst, indent=None)


def results_to_records(results: dict[str, list[dict]]) -> list[dict]:
    """Flat ``{"seq", "label", "segment", "score"}`` records (frames), e.g. for JSON Lines output;
    ``read_results`` reads them back."""
    return [{"seq": seq, **ev} for seq, events in results.items() for ev in events]

