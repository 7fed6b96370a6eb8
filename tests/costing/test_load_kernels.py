"""``load_kernels``: a method's compiled kernels loaded on the calling thread, before any
trade is costed (what a service warming up, or a benchmark, calls)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from utl.costing import load_kernels

_CHECK = """
from utl import lots, ordering
from utl.costing import load_kernels
kernels = {"fifo": lots._match_and_realize, "wac": lots._wac_words}
assert not any(k.signatures for k in kernels.values())  # a fresh process: nothing loaded yet
load_kernels(METHOD)
assert kernels[METHOD].signatures, "the method's kernel is not loaded"
assert ordering._group_time_order.signatures and ordering._any_repeated.signatures
print("loaded")
"""


@pytest.mark.parametrize("method", ["fifo", "wac"])
def test_the_methods_kernels_are_loaded_when_it_returns(method):
    # A process of its own: this one has costed trades already.
    done = subprocess.run([sys.executable, "-c", _CHECK.replace("METHOD", repr(method))], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "loaded"


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown costing method 'avco'"):
        load_kernels("avco")
