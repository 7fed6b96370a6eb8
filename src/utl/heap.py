"""Handing freed working memory back to the operating system between a costing's stages.

numpy's arrays come from the C library's ``malloc``. glibc serves a large block from its
own mapping and unmaps it on ``free``, but only until a block of that size has been freed
once: from then on it raises its threshold and serves such blocks from its heap, whose
freed pages it keeps. Over a costing call's stages (codes, order, conversions) some tens of
MB of freed arrays stay resident that way, and a second call in the process stacks its
kernel's output words on top of them. ``malloc_trim(0)`` hands every whole free page back
(a fraction of a millisecond here). Where the C library has no ``malloc_trim`` (musl, macOS)
this does nothing.
"""

from __future__ import annotations

import ctypes


def _find_trim():
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own C library
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _find_trim()


def give_back_freed() -> None:
    """Return the C heap's free pages to the operating system (no effect on any value)."""
    if _TRIM is not None:
        _TRIM(0)
