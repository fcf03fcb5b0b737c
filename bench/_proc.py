"""CPU use of a server's processes and of the machine over a benchmark's run (Linux /proc)."""

from __future__ import annotations

import os
from pathlib import Path


def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children, alive ones."""
    total, todo, tick = 0.0, [pid], os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo += [int(c) for c in children]
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, for a utilisation over an interval."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def busy_since(before: tuple[float, float]) -> float:
    """The fraction of all CPUs' time in use since ``before`` (a :func:`machine_busy`)."""
    busy, total = machine_busy()
    return (busy - before[0]) / max(1.0, total - before[1])
