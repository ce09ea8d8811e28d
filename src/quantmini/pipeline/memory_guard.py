"""Keep a run within ``pipeline.memory_budget_gb`` by lowering what it runs at once, instead of being killed.

The runner hands every RSS reading (on entering a stage and after each task) to :meth:`MemoryGuard.check`.
Above the budget the guard halves the tasks at a time through :meth:`TaskExecutor.limit` and scales the
chunk budget — what silver chunks and gold symbol buckets are planned from — with it, so each task keeps
its chunk size while half as many run; at one task at a time (or on a Dask cluster, which keeps its own
concurrency) it halves the chunk budget instead, down to an eighth of the original. A lowering acts only
on tasks started after it, so the next one waits until the tasks in flight at the previous one have
finished. Every lowering lasts for the rest of the run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from quantmini.pipeline.executor import TaskExecutor

#: The chunk budget is never lowered below this fraction of the original.
CHUNK_BUDGET_FLOOR = 1 / 8


@dataclass(frozen=True, slots=True)
class MemoryLowering:
    """The run lowered its concurrency (or its chunk budget) because RSS passed the memory budget."""

    at: str
    data_type: str
    stage: str
    rss_bytes: int
    budget_bytes: int
    concurrency_from: int
    concurrency_to: int
    chunk_budget_from: int
    chunk_budget_to: int

    def describe(self) -> str:
        """One line for the run summary."""
        changes = []
        if self.concurrency_to != self.concurrency_from:
            changes.append(f"tasks at a time {self.concurrency_from} → {self.concurrency_to}")
        if self.chunk_budget_to != self.chunk_budget_from:
            changes.append(
                f"chunk budget {self.chunk_budget_from / 1e9:.2f} → {self.chunk_budget_to / 1e9:.2f} GB"
            )
        return (
            f"memory: {self.stage} used {self.rss_bytes / 1e9:.2f} GB, over the budget of "
            f"{self.budget_bytes / 1e9:.2f} GB (pipeline.memory_budget_gb); lowered "
            f"{', '.join(changes)} for the rest of the run"
        )


class MemoryGuard:
    """The lowering policy of one run (see the module docstring); ``chunk_budget`` is what planning reads."""

    def __init__(self, memory_budget_gb: float, chunk_budget: float) -> None:
        self.budget_bytes = memory_budget_gb * 1e9
        self.chunk_budget = chunk_budget
        self._floor = chunk_budget * CHUNK_BUDGET_FLOOR
        self._since = 0
        self._in_flight = 0

    def task_done(self) -> None:
        """Count a finished task (the next lowering waits for those in flight at the previous one)."""
        self._since += 1

    def check(self, rss: int, executor: TaskExecutor, data_type: str, stage: str) -> MemoryLowering | None:
        """Lower ``executor``'s concurrency or the chunk budget when ``rss`` is over the budget; the
        lowering made, or ``None``."""
        if rss <= self.budget_bytes or self._since < self._in_flight:
            return None
        concurrency, budget = executor.concurrency, self.chunk_budget
        lowered = executor.limit(concurrency // 2) if concurrency > 1 else concurrency
        if lowered < concurrency:
            self.chunk_budget = budget * lowered / concurrency
        elif budget / 2 >= self._floor:
            self.chunk_budget = budget / 2
        else:
            return None  # nothing left to lower
        self._since, self._in_flight = 0, concurrency
        return MemoryLowering(
            at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            data_type=data_type,
            stage=stage,
            rss_bytes=rss,
            budget_bytes=int(self.budget_bytes),
            concurrency_from=concurrency,
            concurrency_to=lowered,
            chunk_budget_from=int(budget),
            chunk_budget_to=int(self.chunk_budget),
        )
