"""Root verbs: the codecs' command-line face (info, convert) and the suite-wide verbs
(doctor, demo, bench)."""

from typing import Annotated

import typer

from .. import _output
from .._options import Fmt, Format, Output, parse_shape

Src = Annotated[str, typer.Argument(metavar="SRC", help="Input file, frame folder, or '-' for stdin.")]


def info(
    src: Src,
    fmt: Annotated[str, typer.Option("--from", help="Input format when the extension or content cannot tell.")] = "",
    dtype: Annotated[str, typer.Option("--dtype", help="dtype of a raw .bin (e.g. float32).")] = "",
    shape: Annotated[str, typer.Option("--shape", help="Shape of a raw .bin, e.g. 100,512 (-1 once).")] = "",
    output: Output = "-",
    format: Format = Fmt.jsonl,
):
    """What a file holds: format, shapes, dtypes, value ranges, metadata."""
    from mlkit.fileinfo import describe

    rec = describe(src, fmt=fmt or None, dtype=dtype or None, shape=parse_shape(shape))
    _output.emit([rec], format, output)


def convert(
    src: Src,
    dst: Annotated[str, typer.Argument(metavar="DST", help="Output path ('-' = stdout; a folder = PNG frames).")],
    src_fmt: Annotated[str, typer.Option("--from", help="Input format override.")] = "",
    dst_fmt: Annotated[str, typer.Option("--to", help="Output format override (needed for '-').")] = "",
    dtype: Annotated[str, typer.Option("--dtype", help="dtype of a raw .bin input, or cast arrays to it.")] = "",
    shape: Annotated[str, typer.Option("--shape", help="Shape of a raw .bin input, e.g. 100,512.")] = "",
    key: Annotated[str, typer.Option("--key", help="Array to take from an .npz/.safetensors.")] = "",
    fps: Annotated[float, typer.Option("--fps", help="Video frame rate (default: the input's, else 25).")] = 0.0,
    codec: Annotated[str, typer.Option("--codec", help="Video codec: ffv1 (lossless), x264, x265.")] = "ffv1",
    crf: Annotated[int, typer.Option("--crf", help="x264/x265 quality (lower = better; -1 = encoder default).")] = -1,
    pix_fmt: Annotated[str, typer.Option("--pix-fmt", help="Video frames: rgb24, gray, gray16le.")] = "",
    sr: Annotated[int, typer.Option("--sr", help="Resample audio to this rate (Hz).")] = 0,
    mono: Annotated[bool, typer.Option("--mono", help="Mix audio down to one channel.")] = False,
):
    """Convert between formats: .bin -> .npy, JSONL -> CSV, frame folder -> FFV1 video, WAV -> FLAC, ..."""
    from mlkit.convert import ConvertOptions
    from mlkit.convert import convert as run

    opts = ConvertOptions(src_fmt=src_fmt or None, dst_fmt=dst_fmt or None, dtype=dtype or None,
                          shape=parse_shape(shape), key=key or None, fps=fps or None, codec=codec,
                          crf=None if crf < 0 else crf, pix_fmt=pix_fmt or None, sr=sr or None, mono=mono)
    rec = run(src, dst, opts)
    _output.note(", ".join(f"{k}={v}" for k, v in rec.items()), level=1)


def doctor(output: Output = "-", format: Format = Fmt.table):
    """Versions, device, ffmpeg (x265, VMAF), LP solvers; exit 1 if a needed piece is missing."""
    from mlkit.doctor import run_checks
    from mlkit.errors import CheckFailed

    rows = run_checks()
    _output.emit(rows, format, output, title="mlkit doctor")
    bad = [r["check"] for r in rows if not r["ok"] and r["needed_by"]]
    if bad:
        raise CheckFailed("missing pieces", got=", ".join(bad), hint="see the table above; reinstall with make install")


Tools = Annotated[list[str], typer.Argument(metavar="[TOOL]...", help="Tools to run (default: all).")]


def demo(tools: Tools = None, output: Output = "-", format: Format = Fmt.table):
    """Run every tool's demo on data it makes itself; one summary table."""
    _suite("demo", tools, output, format)


def bench(tools: Tools = None, output: Output = "-", format: Format = Fmt.jsonl):
    """Run every tool's bench (methods side by side with their baselines, one run each)."""
    _suite("bench", tools, output, format)


def _suite(kind: str, tools, output, format):
    from mlkit.registry import TOOLS
    from mlkit.suite import run_benches, run_demos

    if not TOOLS:
        _output.note(f"mlkit {kind}: no tools registered yet; nothing to run")
        return
    rows = list((run_demos if kind == "demo" else run_benches)(tools or None))
    _output.emit(rows, format, output, title=f"mlkit {kind}")
    worst = max((r.get("exit_code", 0) for r in rows), default=0)
    if worst:
        raise typer.Exit(worst)
