"""What the machine charges for memory a process touches for the first time, printed beside
the figures of the benchmarks that time a fresh process.

On this project's machines (virtual machines whose guest memory the host backs on first
touch, with freed memory handed back) the kernel's side of a fresh page varied 20-fold
between runs of the same script: touching 1 GiB took 0.11 s in one process and 1.4-2.2 s
in the next. A reader's or the costing's first call touches hundreds of MB, so its wall
time moves with it, whatever the code does. The probe makes that visible: a figure taken
when the probe says seconds per GiB is measuring the machine as much as the code.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys

_PROBE = r"""
import json, resource, time
import numpy as np
def touch(mib):
    r0 = resource.getrusage(resource.RUSAGE_SELF); start = time.perf_counter()
    block = np.ones(mib * 2**20 // 8, np.int64)  # every page written
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    seconds = time.perf_counter() - start
    del block
    return seconds * 1024 / mib, (r1.ru_stime - r0.ru_stime) * 1024 / mib
first = touch(MIB)
again = touch(MIB)  # the same process's freed pages, handed out again
print(json.dumps({"first": first, "again": again}))
"""


def first_touch(mib: int = 256) -> dict[str, tuple[float, float]]:
    """Seconds per GiB (wall, kernel) to write ``mib`` MiB of fresh memory in a new process
    (``first``), and the same again after freeing it (``again``)."""
    done = subprocess.run([sys.executable, "-c", _PROBE.replace("MIB", str(mib))], capture_output=True, text=True, check=True)
    return {k: tuple(v) for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def first_touch_line(mib: int = 256) -> str:
    probe = first_touch(mib)
    return (f"fresh memory (a new process writing {mib} MiB): {probe['first'][0]:.2f} s/GiB "
            f"(kernel {probe['first'][1]:.2f}); freed and written again {probe['again'][0]:.2f} s/GiB")


def kernel_and_faults() -> tuple[float, int]:
    """This process's kernel CPU seconds and minor page faults so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_stime, usage.ru_minflt
