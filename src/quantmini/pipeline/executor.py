"""Run independent partition tasks one by one or in a process pool, yielding results as they finish."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import TypeVar

from quantmini.config.settings import PipelineMode

T = TypeVar("T")
R = TypeVar("R")


def run_tasks(
    fn: Callable[[T], R], items: Sequence[T], *, mode: PipelineMode, workers: int
) -> Iterator[tuple[T, R | BaseException]]:
    """Apply ``fn`` to each item; yield ``(item, result or the exception it raised)``.

    ``parallel`` uses a process pool of ``workers`` (``fn`` must be a picklable top-level function);
    ``streaming`` and ``batch`` run in this process, one item at a time, keeping memory bounded.
    """
    if mode != "parallel" or workers <= 1 or len(items) <= 1:
        for item in items:
            try:
                yield item, fn(item)
            except Exception as exc:
                yield item, exc
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(items))) as pool:
        futures: dict[Future[R], T] = {pool.submit(fn, item): item for item in items}
        for future in as_completed(futures):
            item = futures[future]
            error = future.exception()
            yield item, (error if error is not None else future.result())
