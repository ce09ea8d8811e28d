"""Executors honour a lowered concurrency: never more tasks at a time than the limit, every result still
yielded once. Tasks block on gates a helper thread opens one at a time, so what runs together is decided by
the gates, not by how fast the machine is. And the memory guard's lowering policy, step by step."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from quantmini.pipeline.executor import InlineExecutor, ThreadExecutor, _drain
from quantmini.pipeline.memory_guard import MemoryGuard


class Gates:
    """Task ``i`` starts, counts itself active, and waits until its gate opens."""

    def __init__(self, n: int) -> None:
        self.started = [threading.Event() for _ in range(n)]
        self.gates = [threading.Event() for _ in range(n)]
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0

    def task(self, i: int) -> int:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        self.started[i].set()
        assert self.gates[i].wait(timeout=60)
        with self.lock:
            self.active -= 1
        return i * i

    def open_in_order(self) -> threading.Thread:
        def run() -> None:
            for started, gate in zip(self.started, self.gates, strict=True):
                assert started.wait(timeout=60)
                gate.set()

        thread = threading.Thread(target=run)
        thread.start()
        return thread


def test_drain_keeps_at_most_the_limit_in_flight_and_yields_everything() -> None:
    gates = Gates(8)
    opener = gates.open_in_order()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = dict(_drain(pool, gates.task, list(range(8)), lambda: 2))
    opener.join()
    assert results == {i: i * i for i in range(8)}
    assert gates.peak <= 2


def test_a_lowered_thread_executor_runs_later_groups_smaller() -> None:
    executor = ThreadExecutor(batch_size=4)
    assert executor.limit(8) == 4  # never raised
    assert executor.limit(2) == 2
    gates = Gates(6)
    opener = gates.open_in_order()
    results = dict(executor.map(gates.task, list(range(6))))
    opener.join()
    assert results == {i: i * i for i in range(6)}
    assert gates.peak <= 2
    assert executor.limit(0) == 1
    assert InlineExecutor().limit(3) == 1


class _Cluster(InlineExecutor):
    """Stands for a Dask cluster: eight tasks at a time, which a run cannot lower."""

    name = "dask"
    concurrency = 8

    def limit(self, concurrency: int) -> int:
        return self.concurrency


def test_a_cluster_keeps_its_concurrency_and_the_chunk_budget_is_halved_to_its_floor() -> None:
    guard = MemoryGuard(memory_budget_gb=2.0, chunk_budget=800.0)
    cluster = _Cluster()
    assert guard.check(2_000_000_000, cluster, "stocks_daily", "silver") is None  # at the budget: fine
    budgets = []
    for _ in range(5):
        lowering = guard.check(3_000_000_000, cluster, "stocks_daily", "silver")
        if lowering is not None:
            assert (lowering.concurrency_from, lowering.concurrency_to) == (8, 8)
            budgets.append((lowering.chunk_budget_from, lowering.chunk_budget_to))
        for _ in range(8):  # the tasks in flight at the lowering finish
            guard.task_done()
    assert budgets == [(800, 400), (400, 200), (200, 100)]  # not below an eighth
    assert guard.chunk_budget == 100.0


def test_a_second_lowering_waits_for_the_tasks_in_flight_at_the_first() -> None:
    guard = MemoryGuard(memory_budget_gb=1.0, chunk_budget=1000.0)
    threads = ThreadExecutor(batch_size=4)
    first = guard.check(2_000_000_000, threads, "stocks_daily", "bronze")
    assert first is not None
    assert (first.concurrency_to, first.chunk_budget_to, threads.concurrency) == (2, 500, 2)
    for _ in range(3):
        guard.task_done()
        assert guard.check(2_000_000_000, threads, "stocks_daily", "bronze") is None
    guard.task_done()  # the fourth of the tasks in flight at the first lowering
    second = guard.check(2_000_000_000, threads, "stocks_daily", "bronze")
    assert second is not None
    assert (second.concurrency_from, second.concurrency_to, second.chunk_budget_to) == (2, 1, 250)
