"""System profiler: facts about this machine and the settings they suggest.

:func:`detect_facts` reads the machine (CPU affinity and cgroup quota, ``/proc/meminfo`` or ``sysconf``,
free disk at the data root); :func:`recommend` is pure, so its thresholds are tested with hand-chosen facts.
The recommendation reaches the settings only through ``profile.toml``, written on request, which ranks
below the user's ``config.toml`` and so never overrides a user's choice.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from quantmini.io.atomic import write_text_atomic

#: Decimal gigabyte. A machine sold as "32 GB" reports a MemTotal a little under 32 GiB but above 32e9
#: bytes, so decimal units put it on the side of the threshold its owner expects.
GB = 1_000_000_000

_CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class SystemFacts:
    """What the profiler measured."""

    cpu_count: int
    """CPU cores this process may use (affinity and cgroup quota)."""
    memory_total_gb: float
    """Memory usable by this process: physical memory, or the cgroup limit if lower."""
    memory_available_gb: float
    """Memory available now without swapping."""
    disk_free_gb: float
    """Free space on the file system holding the data root."""
    disk_path: Path
    """The nearest existing ancestor of the data root, where free space was measured."""


def recommend(facts: SystemFacts) -> dict[str, object]:
    """Settings for this machine by dotted key: ``pipeline.mode``, ``pipeline.workers``,
    ``pipeline.memory_budget_gb``.

    Mode: streaming below 32 GB, batch from 32 GB, parallel from 64 GB. The memory budget is half the
    memory (at most three quarters of what is available now), in steps of 0.5 GB. Workers: one core left
    for the parent process, and at least 1 GB of budget per worker.
    """
    memory = facts.memory_total_gb
    mode = "streaming" if memory < 32 else "batch" if memory < 64 else "parallel"
    budget = max(0.5, math.floor(min(0.5 * memory, 0.75 * facts.memory_available_gb) * 2) / 2)
    cores = max(1, facts.cpu_count - 1)
    workers = max(1, min(cores, int(budget), 256))
    return {"pipeline.mode": mode, "pipeline.workers": workers, "pipeline.memory_budget_gb": budget}


def detect_facts(data_root: Path) -> SystemFacts:
    """Measure this machine; ``data_root`` need not exist (its nearest existing ancestor is used)."""
    total, available = _memory_bytes()
    limit = _read_int(_CGROUP / "memory.max")
    if limit is not None:
        total, available = min(total, limit), min(available, limit)
    disk_path = existing_ancestor(data_root)
    return SystemFacts(
        cpu_count=usable_cpus(),
        memory_total_gb=total / GB,
        memory_available_gb=available / GB,
        disk_free_gb=shutil.disk_usage(disk_path).free / GB,
        disk_path=disk_path,
    )


def usable_cpus() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 quota if there is one."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _text(_CGROUP / "cpu.max")
    if quota is not None:
        limit = parse_cpu_max(quota)
        if limit is not None:
            cpus = min(cpus, max(1, int(limit)))
    return max(1, cpus)


def parse_cpu_max(text: str) -> float | None:
    """Cores allowed by a cgroup v2 ``cpu.max`` (``"200000 100000"`` is 2.0; ``"max 100000"`` is None)."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        return int(parts[0]) / int(parts[1])
    except (ValueError, ZeroDivisionError):
        return None


def parse_meminfo(text: str) -> tuple[int, int] | None:
    """``(MemTotal, MemAvailable)`` in bytes from ``/proc/meminfo`` text, or None if absent."""
    fields: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[name.strip()] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    if "MemTotal" not in fields:
        return None
    return fields["MemTotal"], fields.get("MemAvailable", fields.get("MemFree", 0))


def existing_ancestor(path: Path) -> Path:
    """``path`` (made absolute) or its nearest ancestor that exists."""
    current = path.expanduser().absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def render_profile(facts: SystemFacts, recommendation: dict[str, object]) -> str:
    """``profile.toml`` text: the facts as comments, the recommended settings as TOML."""
    nested: dict[str, dict[str, object]] = {}
    for key, value in recommendation.items():
        section, _, name = key.partition(".")
        nested.setdefault(section, {})[name] = value
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    header = (
        "# Written by `quantmini config profile --write`; ranks below config.toml, which overrides it.\n"
        f"# Measured {stamp}: {facts.cpu_count} usable cores, "
        f"{facts.memory_total_gb:.1f} GB memory ({facts.memory_available_gb:.1f} GB available), "
        f"{facts.disk_free_gb:.1f} GB free at {facts.disk_path}\n\n"
    )
    return header + tomli_w.dumps(nested)


def write_profile(path: Path, facts: SystemFacts) -> dict[str, object]:
    """Write the recommendation for ``facts`` to ``path`` atomically; return it."""
    recommendation = recommend(facts)
    write_text_atomic(path, render_profile(facts, recommendation))
    return recommendation


def _memory_bytes() -> tuple[int, int]:
    text = _text(Path("/proc/meminfo"))
    parsed = parse_meminfo(text) if text is not None else None
    if parsed is not None:
        return parsed
    page = os.sysconf("SC_PAGE_SIZE")
    total = page * os.sysconf("SC_PHYS_PAGES")
    try:
        available = page * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError):
        available = total
    return total, available


def _text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _text(path)
    if text is None or not text.strip().isdigit():
        return None
    return int(text.strip())
