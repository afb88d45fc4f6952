#!/usr/bin/env python3
"""Regenerate man/ and completions/ from the typer app (``make man``, ``make completions``).
A test fails when the committed files differ from what this writes."""

import sys
from pathlib import Path

from mlkit_cli._docs import render_all

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    files = render_all()
    for sub in ("man", "completions"):
        for old in (ROOT / sub).glob("*"):
            if f"{sub}/{old.name}" not in files and old.is_file():
                old.unlink()
    for rel, text in files.items():
        path = ROOT / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(rel, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
