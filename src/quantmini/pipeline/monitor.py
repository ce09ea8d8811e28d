"""Measure the stages of a run: wall and CPU time, peak memory, optionally a profile of each.

A :class:`RunMonitor` is shared by every runner of one command (``pipeline daily`` runs several data types
in one record). :meth:`RunMonitor.measure` wraps a stage: it reads the clocks at both ends, samples the
resident memory of the process tree in a thread while the stage runs, and — when a profile directory is
set — runs the stage under :mod:`cProfile` and writes ``<data_type>.<stage>.prof`` and a top-20 text beside
it. The runner adds what the stage knows (rows, bytes, files) to the :class:`StageFigures` it is handed.

The RSS sampler is a plain callable returning bytes, so tests drive memory figures (and the runner's
reaction to them) deterministically; :meth:`RunMonitor.sample` reads it synchronously too, which is what
the runner's budget checks between tasks use.
"""

from __future__ import annotations

import contextlib
import cProfile
import datetime as dt
import io
import logging
import pstats
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from quantmini.io.atomic import atomic_path, write_text_atomic
from quantmini.io.process_stats import cpu_seconds, process_tree_rss
from quantmini.pipeline.memory_guard import MemoryLowering

log = logging.getLogger(__name__)

#: Returns the resident bytes of the process tree now.
RssSampler = Callable[[], int]

#: Seconds between two RSS samples while a stage runs.
SAMPLE_INTERVAL_S = 0.2
#: Functions listed in a stage's profile summary.
PROFILE_TOP = 20


@dataclass
class StageFigures:
    """What one stage of one data type cost and moved (``None``: the stage does not know it)."""

    name: str
    data_type: str
    started: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    #: CPU seconds of worker processes (ended or alive) during the stage.
    children_cpu_s: float = 0.0
    peak_rss_bytes: int = 0
    rows_in: int | None = None
    rows_out: int | None = None
    bytes_in: int | None = None
    bytes_out: int | None = None
    files: int | None = None
    #: The stage's cProfile file, when profiling is on.
    profile: str | None = None
    #: ``ok``, or how it ended (``failed``, ``interrupted``).
    status: str = "ok"


class RunMonitor:
    """Measures stages (see the module docstring) and keeps every stage and memory lowering of a run.

    ``profile_dir``: write a cProfile file per stage there (``None``: no profiling).
    """

    def __init__(
        self,
        sampler: RssSampler = process_tree_rss,
        *,
        profile_dir: Path | None = None,
        interval_s: float = SAMPLE_INTERVAL_S,
    ) -> None:
        self.sampler = sampler
        self.profile_dir = profile_dir
        self.interval_s = interval_s
        self.stages: list[StageFigures] = []
        self.lowerings: list[MemoryLowering] = []
        self._current: StageFigures | None = None
        self._lock = threading.Lock()

    def sample(self) -> int:
        """Read the RSS now, counting it towards the running stage's peak."""
        rss = self.sampler()
        with self._lock:
            if self._current is not None and rss > self._current.peak_rss_bytes:
                self._current.peak_rss_bytes = rss
        return rss

    @contextlib.contextmanager
    def measure(self, name: str, data_type: str) -> Iterator[StageFigures]:
        """Measure the ``with`` body as stage ``name`` of ``data_type``; the figures are kept (also when the
        body fails or is interrupted, with that status)."""
        figures = StageFigures(name, data_type, started=_now())
        outer = self._current
        # One profiler at a time: a stage measured inside another is timed, and profiled with the outer one.
        profiler = cProfile.Profile() if self.profile_dir is not None and outer is None else None
        with self._lock:
            self._current = figures
        stop = threading.Event()
        sampler = threading.Thread(target=self._sample_until, args=(stop,), name="rss-sampler", daemon=True)
        wall0, (cpu0, children0) = time.perf_counter(), cpu_seconds()
        self.sample()
        sampler.start()
        try:
            if profiler is not None:
                profiler.enable()
            yield figures
        except KeyboardInterrupt:
            figures.status = "interrupted"
            raise
        except BaseException:
            figures.status = "failed"
            raise
        finally:
            if profiler is not None:
                profiler.disable()
            stop.set()
            sampler.join()
            self.sample()
            cpu1, children1 = cpu_seconds()
            figures.wall_s = time.perf_counter() - wall0
            figures.cpu_s = cpu1 - cpu0
            figures.children_cpu_s = children1 - children0
            with self._lock:
                self._current = outer
            self.stages.append(figures)
            if profiler is not None:
                figures.profile = self._write_profile(profiler, figures)

    def _sample_until(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception:  # a sampler failure must not end the run; the peak is then partial
                log.debug("RSS sampling failed", exc_info=True)
                return

    def _write_profile(self, profiler: cProfile.Profile, figures: StageFigures) -> str:
        """``<data_type>.<stage>.prof`` (and ``.txt``, the top functions by cumulative time) in the profile
        directory; a stage measured twice gets ``-2``, ``-3`` … appended."""
        assert self.profile_dir is not None
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{figures.data_type}.{figures.name}")
        path = self.profile_dir / f"{stem}.prof"
        n = 1
        while path.exists():
            n += 1
            path = self.profile_dir / f"{stem}-{n}.prof"
        with atomic_path(path) as tmp:
            profiler.dump_stats(tmp)
        text = io.StringIO()
        pstats.Stats(str(path), stream=text).sort_stats("cumulative").print_stats(PROFILE_TOP)
        write_text_atomic(path.with_suffix(".txt"), text.getvalue())
        return str(path)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
