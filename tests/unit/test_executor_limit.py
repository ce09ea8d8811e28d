"""Executors honour a lowered concurrency: never more tasks at a time than the limit, every result still
yielded once. Tasks block on gates a helper thread opens one at a time, so what runs together is decided by
the gates, not by how fast the machine is."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from quantmini.pipeline.executor import InlineExecutor, ThreadExecutor, _drain


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
