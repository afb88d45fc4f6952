"""``detect --plot``: a per-AU timeline of one sequence, ground truth above detections."""

from __future__ import annotations

from mlkit.plots import figure


def timeline(seq: str, n_frames: int, aus: list[str], truth: list[dict], detected: list[dict], dst,
             *, min_score: float = 0.3) -> None:
    """Rows per AU: ground-truth events (grey) and detections with score >= ``min_score``
    (coloured, opacity = score)."""
    row = {a: i for i, a in enumerate(aus)}
    with figure(width=10, height=0.45 * len(aus) + 1.2, dst=dst) as (fig, ax):
        for ev in truth:
            if ev["label"] in row:
                s, e = ev["segment"]
                ax.broken_barh([(s, e - s)], (row[ev["label"]] - 0.4, 0.35), facecolors="0.55")
        for ev in detected:
            if ev["label"] in row and ev["score"] >= min_score:
                s, e = ev["segment"]
                ax.broken_barh([(s, e - s)], (row[ev["label"]] + 0.05, 0.35), facecolors="tab:blue",
                               alpha=float(min(1.0, ev["score"])))
        ax.set_yticks(range(len(aus)), aus)
        ax.set_xlim(0, n_frames)
        ax.invert_yaxis()
        ax.set_xlabel("frame")
        ax.set_title(f"{seq}: ground truth (grey, upper) and detections (blue, lower; opacity = score)")
