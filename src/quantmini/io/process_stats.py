"""Memory and CPU of this process and the processes it started, read from the operating system.

The resident set (RSS) is that of this process plus every live descendant (the worker processes of the
``parallel`` mode, a local Dask cluster), read from ``/proc`` on Linux. Where there is no ``/proc`` the
peak RSS the kernel keeps (``getrusage``) stands in: it never goes down, so it can only overstate the
current figure.

CPU time of children: ``getrusage(RUSAGE_CHILDREN)`` counts only children that ended and were waited for,
while a process pool's workers live for the whole run; so the live descendants' own counters from
``/proc/<pid>/stat`` (their time and that of their waited-for children) are added. The sum at two instants
counts each child exactly once, so its difference is the children's CPU time in between.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

_PROC = Path("/proc")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_tree_rss() -> int:
    """Bytes resident in memory for this process and its live descendants."""
    if not (_PROC / "self" / "statm").exists():
        return _peak_rss()
    pids = [os.getpid(), *_descendants(os.getpid())]
    return sum(_rss(pid) for pid in pids)


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user + system) so far of this process, and of its children (ended and live)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    live = sum(_cpu_ticks(pid) for pid in _descendants(os.getpid())) / _TICKS
    return own.ru_utime + own.ru_stime, ended.ru_utime + ended.ru_stime + live


def _peak_rss() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, kilobytes elsewhere
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) * scale


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children of each of its threads, recursively)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for children in (_PROC / str(parent) / "task").glob("*/children"):
            try:
                kids = [int(k) for k in children.read_text().split()]
            except OSError:  # the thread or process ended meanwhile
                continue
            found += kids
            todo += kids
    return found


def _rss(pid: int) -> int:
    try:
        return int((_PROC / str(pid) / "statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):  # ended meanwhile
        return 0


def _cpu_ticks(pid: int) -> int:
    """utime + stime + cutime + cstime of ``pid`` (fields 14 to 17 of ``/proc/<pid>/stat``)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0
    fields = text[text.rfind(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return sum(int(f) for f in fields[11:15])
