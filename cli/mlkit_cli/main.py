"""``mlkit``: the root command. Tools are added from mlkit.registry; nothing heavy is imported
here (a test checks that importing this module loads no torch, cv2, scipy or faiss)."""

import importlib
from typing import Annotated

import typer

from mlkit import __version__
from mlkit.registry import TOOLS

from ._app import MlkitTyper
from ._options import Debug, Quiet, Verbose
from .commands import core

app = MlkitTyper(
    name="mlkit",
    help="Ten recent ML research papers as composable Unix-style tools. "
    "Data on stdout, people on stderr; '-' is stdin/stdout everywhere.",
)


def _version(value: bool):
    if value:
        print(f"mlkit {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    quiet: Quiet = False,
    verbose: Verbose = 0,
    debug: Debug = False,
):
    """Ten recent ML research papers as composable Unix-style tools."""
    ctx.meta.update(quiet=quiet, verbose=verbose, debug=debug)


for _verb in (core.info, core.convert, core.doctor, core.demo, core.bench):
    app.command()(_verb)

for _tool in TOOLS:
    app.add_typer(importlib.import_module(_tool.cli).app, name=_tool.name, help=_tool.summary)


def main() -> None:
    app(prog_name="mlkit")


if __name__ == "__main__":
    main()
