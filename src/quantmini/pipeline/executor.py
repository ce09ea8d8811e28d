"""Run independent partition tasks: one by one, in groups of threads, or in a process pool.

* ``streaming``: one task at a time in this process; memory is that of one partition.
* ``batch``: tasks in groups of ``batch_size``, each group run together in threads of this process (the
  heavy work — zlib, Polars, Parquet — releases the GIL), so one session's decompression and writing
  overlap another's parsing; memory is that of ``batch_size`` partitions.
* ``parallel``: a process pool of ``workers`` over every task (``fn`` must be a picklable top-level
  function); memory is that of ``workers`` partitions.

Results are yielded as tasks finish, each with its item; an exception is yielded in place of a result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import TypeVar

from quantmini.config.settings import PipelineMode

T = TypeVar("T")
R = TypeVar("R")


def run_tasks(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    mode: PipelineMode,
    workers: int,
    batch_size: int = 1,
) -> Iterator[tuple[T, R | BaseException]]:
    """Apply ``fn`` to each item as ``mode`` says; yield ``(item, result or the exception it raised)``."""
    if mode == "parallel" and workers > 1 and len(items) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(items))) as pool:
            yield from _drain(pool, fn, items)
        return
    if mode == "batch" and batch_size > 1 and len(items) > 1:
        with ThreadPoolExecutor(max_workers=min(batch_size, len(items))) as threads:
            for start in range(0, len(items), batch_size):
                yield from _drain(threads, fn, items[start : start + batch_size])
        return
    for item in items:
        try:
            yield item, fn(item)
        except Exception as exc:
            yield item, exc


def _drain(pool: Executor, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[T, R | BaseException]]:
    futures: dict[Future[R], T] = {pool.submit(fn, item): item for item in items}
    for future in as_completed(futures):
        item = futures[future]
        error = future.exception()
        yield item, (error if error is not None else future.result())
