import pytest

from mlkit.errors import (
    BackendUnavailable,
    CheckFailed,
    InputError,
    MissingInputError,
    MlkitError,
    NotFittedError,
    OutputError,
    StreamError,
)


def test_message_shape_is_one_line():
    e = InputError("x.bin: wrong size", expected="a multiple of 4 bytes", got="10 bytes\nmore",
                   hint="check --dtype")
    assert e.message == "x.bin: wrong size: expected a multiple of 4 bytes, got 10 bytes more; check --dtype"
    assert "\n" not in str(e)


@pytest.mark.parametrize("cls,code", [(InputError, 65), (MissingInputError, 66), (OutputError, 73),
                                      (StreamError, 74), (BackendUnavailable, 69), (NotFittedError, 65),
                                      (CheckFailed, 1)])
def test_exit_codes(cls, code):
    assert issubclass(cls, MlkitError)
    assert cls("x").exit_code == code


def test_builtin_bases_kept():
    assert isinstance(InputError("x"), ValueError)
    assert isinstance(MissingInputError("x"), FileNotFoundError)
