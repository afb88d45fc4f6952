"""Typed errors. Each carries what was expected, what arrived and how to fix it.

The CLI maps each class to one exit code (see ``mlkit_cli._errors``); the library
itself never exits.
"""

from __future__ import annotations

__all__ = [
    "MlkitError",
    "InputError",
    "MissingInputError",
    "OutputError",
    "StreamError",
    "BackendUnavailable",
    "NotFittedError",
    "CheckFailed",
]


class MlkitError(Exception):
    """Base class. ``str(err)`` gives ``what: expected X, got Y; hint``."""

    exit_code = 70

    def __init__(self, what: str, *, expected: str | None = None, got: str | None = None,
                 hint: str | None = None):
        self.what = what
        self.expected = expected
        self.got = got
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        parts = [self.what]
        detail = []
        if self.expected is not None:
            detail.append(f"expected {self.expected}")
        if self.got is not None:
            detail.append(f"got {self.got}")
        if detail:
            parts.append(", ".join(detail))
        text = ": ".join(parts)
        if self.hint:
            text += f"; {self.hint}"
        # one line, always
        return " ".join(text.split())


class InputError(MlkitError, ValueError):
    """Bad input data: wrong header, shape, dtype, NaN, corrupt file (exit 65)."""

    exit_code = 65


class MissingInputError(MlkitError, FileNotFoundError):
    """An input is missing or unreadable (exit 66)."""

    exit_code = 66


class OutputError(MlkitError, OSError):
    """An output cannot be created (exit 73)."""

    exit_code = 73


class StreamError(MlkitError, OSError):
    """I/O failed in the middle of a stream (exit 74)."""

    exit_code = 74


class BackendUnavailable(MlkitError, RuntimeError):
    """A backend is missing: CUDA asked for and absent, ffmpeg or an encoder missing (exit 69)."""

    exit_code = 69


class NotFittedError(MlkitError, ValueError):
    """A model or checkpoint is used before it was fitted (exit 65: the input is not usable yet)."""

    exit_code = 65


class CheckFailed(MlkitError):
    """A check verb found a negative result: ``eval --fail-under``, ``doctor`` (exit 1)."""

    exit_code = 1
