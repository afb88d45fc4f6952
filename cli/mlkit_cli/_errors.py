"""The ONE place that maps exceptions to messages and exit codes.

Message shape: ``mlkit <method> <verb>: error: <what>: expected <...>, got <...>; <hint>``;
no traceback unless --debug / MLKIT_DEBUG=1.
"""

import os
import sys
import traceback

from mlkit.errors import MlkitError

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_DATAERR = 65
EXIT_NOINPUT = 66
EXIT_UNAVAILABLE = 69
EXIT_SOFTWARE = 70
EXIT_CANTCREAT = 73
EXIT_IOERR = 74
EXIT_SIGPIPE = 141
EXIT_INTERRUPTED = 130


def debug_enabled(meta: dict | None = None) -> bool:
    if meta and meta.get("debug"):
        return True
    return os.environ.get("MLKIT_DEBUG", "").lower() in ("1", "true", "yes")


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, MlkitError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, BrokenPipeError):
        return EXIT_SIGPIPE
    if isinstance(exc, MemoryError):
        return EXIT_SOFTWARE
    if isinstance(exc, OSError):
        return EXIT_IOERR
    return EXIT_SOFTWARE


def message_for(exc: BaseException) -> str:
    if isinstance(exc, MlkitError):
        return exc.message
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, MemoryError):
        return "out of memory; try a smaller batch or --device cuda"
    if isinstance(exc, OSError) and not isinstance(exc, MlkitError):
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return f"I/O error: {where}{exc.strerror or exc}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"internal error: {type(exc).__name__}: {text[:200]}; rerun with --debug"


def report(exc: BaseException, command_path: str, meta: dict | None = None) -> int:
    """Print the one-line message (and the traceback with --debug) to stderr; return the exit code."""
    code = exit_code_for(exc)
    if isinstance(exc, BrokenPipeError):
        _silence_stdout()
        return code
    try:
        if debug_enabled(meta) and not isinstance(exc, KeyboardInterrupt):
            traceback.print_exception(exc, file=sys.stderr)
        print(f"{command_path}: error: {message_for(exc)}", file=sys.stderr, flush=True)
    except (BrokenPipeError, ValueError, OSError):
        pass
    return code


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
