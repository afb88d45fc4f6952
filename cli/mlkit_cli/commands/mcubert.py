"""mlkit mcubert: BERT on microcontrollers: clustered low-rank embeddings + tiled scheduling."""

from typing import Annotated

import typer

from .. import _output
from .._app import MlkitTyper
from .._options import Fmt, Format, Output

app = MlkitTyper(help="MCUBERT (Yang et al., ICCAD 2024): fit a BERT's flash and SRAM to a microcontroller: "
                 "clustered low-rank embeddings, tiled attention/FFN schedules, int8 export.")

Ckpt = Annotated[str, typer.Argument(metavar="CKPT", help="Checkpoint folder (config.json + model.safetensors or "
                                     "pytorch_model.bin), a weights file with config.json beside it, or a preset: "
                                     "tiny, mini, minilm-l6.")]


def _config(src: str):
    """(BertConfig, state dict or None) from a checkpoint, or a preset's config."""
    from pathlib import Path

    from mlkit.mcubert.config import PRESETS

    if src in PRESETS and not Path(src).exists():
        return PRESETS[src], None
    from mlkit.mcubert.model import load_checkpoint

    return load_checkpoint(src)


def _boards(target: str, sram: int, flash: int):
    from mlkit.errors import InputError
    from mlkit.mcubert.config import BOARDS, Board

    if sram or flash:
        if not (sram > 0 and flash > 0):
            raise InputError("a custom board needs both --sram and --flash", got=f"sram {sram}, flash {flash}")
        return {"custom": Board("custom", sram, flash, 0)}
    if target:
        if target not in BOARDS:
            raise InputError("unknown --target", expected=", ".join(BOARDS), got=target)
        return {target: BOARDS[target]}
    return dict(BOARDS)


def _bytes(text: str) -> int:
    """'320K', '1M', '1.4M', '65536' -> bytes (K = 1024)."""
    from mlkit.errors import InputError

    t = text.strip().upper().removesuffix("B")
    mult = {"K": 1024, "M": 1024 ** 2}.get(t[-1:], 1)
    try:
        v = float(t[:-1] if mult > 1 else t) * mult
    except ValueError:
        v = -1
    if v <= 0:
        raise InputError("bad byte count", expected="e.g. 320K, 2M or 65536", got=text)
    return int(v)


@app.command()
def inspect(src: Ckpt,
            target: Annotated[str, typer.Option(help="Board: nucleo-f746zg, nucleo-f767zi, nucleo-h7a3zi-q "
                                                     "[all three].")] = "",
            sram: Annotated[str, typer.Option(help="Custom board SRAM, e.g. 320K.")] = "",
            flash: Annotated[str, typer.Option(help="Custom board flash, e.g. 1M.")] = "",
            output: Output = "-", format: Format = Fmt.jsonl):
    """Parameters per module, int8 flash bytes, embedding share, fits / does not fit per board."""
    from mlkit.mcubert.report import inspect_record

    cfg, _ = _config(src)
    boards = _boards(target, _bytes(sram) if sram else 0, _bytes(flash) if flash else 0)
    rec = {"checkpoint": src, **inspect_record(cfg, boards=boards)}
    _output.emit([rec], format, output, title="mcubert inspect")


@app.command()
def boards(output: Output = "-", format: Format = Fmt.table):
    """The boards --target knows: SRAM and flash bytes, clock."""
    from mlkit.mcubert.config import BOARDS

    _output.emit(({"board": b.name, "sram_bytes": b.sram, "flash_bytes": b.flash, "mhz": b.mhz}
                  for b in BOARDS.values()), format, output, title="mcubert boards")
