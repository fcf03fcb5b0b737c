"""CPU and memory of a server's processes and CPU use of the machine over a benchmark's run
(Linux /proc)."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from pathlib import Path


def process_tree(pid: int) -> Iterator[int]:
    """``pid`` and its descendants alive now (one that exits meanwhile is passed over)."""
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        yield p
        todo += [int(c) for c in children]


def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children, alive ones."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def self_cpu_s() -> float:
    """CPU seconds (user + system) of this process, every thread."""
    mine = resource.getrusage(resource.RUSAGE_SELF)
    return mine.ru_utime + mine.ru_stime


def tree_memory_kb(pid: int) -> tuple[int, int]:
    """Resident memory of a server and its worker processes together: the sum of their
    RSS (what a memory goal counts: pages they share, such as an index's, count once per
    process) and of their PSS (each shared page split among the processes that map it)."""
    rss = pss = 0
    for p in process_tree(pid):
        for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss += int(line.split()[1])
            elif line.startswith("Pss:"):
                pss += int(line.split()[1])
    return rss, pss


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, for a utilisation over an interval."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def busy_since(before: tuple[float, float]) -> float:
    """The fraction of all CPUs' time in use since ``before`` (a :func:`machine_busy`)."""
    busy, total = machine_busy()
    return (busy - before[0]) / max(1.0, total - before[1])
