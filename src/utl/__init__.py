"""UTL: the Universal Transaction Ledger."""

import os
import sys

# Polars' allocator (jemalloc) hands freed pages back to the kernel after 0.5 s; a day step
# that frees and takes back gigabytes a second then spends a quarter of its CPU in the kernel
# faulting fresh pages in. Kept 5 s, the 10 M-fill day step took 30-32 CPU s against 35-37
# (system time ~11 -> ~5 s), for ~0.3-0.5 GB more at its peak. jemalloc reads this once, when
# Polars loads: set here, before any module of UTL imports Polars, unless the caller set it.
if "polars" not in sys.modules:
    os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:5000,muzzy_decay_ms:5000")
