import decimal
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def wide_decimal_context() -> Iterator[None]:
    """The tests' own arithmetic (reference positions, flows) must be exact: 1e12 - 1e-18 needs
    31 digits, more than Python's default 28-digit context keeps. Only these tests' main
    thread is widened, for the test's length; the library must not lean on it (the root
    conftest starts every test in Python's default context)."""
    with decimal.localcontext(decimal.Context(prec=120)):
        yield
