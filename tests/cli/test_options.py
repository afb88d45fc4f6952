"""Shared option parsers."""

import pytest

from mlkit.errors import InputError
from mlkit_cli._options import parse_list


def test_parse_list_casts_each_item_and_skips_blanks():
    assert parse_list("1, 2,,4 ", "--x", int) == (1, 2, 4)
    assert parse_list("0.5,1e-3", "--x") == (0.5, 1e-3)


@pytest.mark.parametrize("text, cast", [("1,a", int), ("1.5", int), ("", float), (" , ", int), ("x", float)])
def test_parse_list_refuses_bad_lists_as_input_errors(text, cast):
    with pytest.raises(InputError) as e:
        parse_list(text, "--x", cast)
    assert e.value.exit_code == 65 and "--x" in str(e.value)
