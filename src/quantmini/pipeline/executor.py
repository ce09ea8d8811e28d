"""Run independent partition tasks through one interface: in this process, in threads, in a process pool,
or on a Dask cluster.

* ``streaming`` (:class:`InlineExecutor`): one task at a time in this process; memory is one task's.
* ``batch`` (:class:`ThreadExecutor`): tasks in groups of ``batch_size`` run together in threads of this
  process (zlib, Polars and Parquet release the GIL), so one session's decompression and writing overlap
  another's parsing; memory is that of ``batch_size`` tasks.
* ``parallel`` (:class:`ProcessExecutor`): a pool of ``workers`` processes started with ``spawn``, never
  ``fork``: a child forked after Polars started its thread pool deadlocks inside Polars (``forkserver`` is
  no safer here: its server imports the CLI's ``__main__``, and with it Polars). Workers ignore SIGINT; the
  parent stops them on Ctrl-C.
* ``dask`` (:class:`DaskExecutor`): the same tasks on a Dask distributed cluster, either the one at
  ``scheduler`` or a ``LocalCluster`` started for the run.

Tasks must be picklable top-level functions over picklable items for the last two. Results are yielded as
tasks finish, each with its item; an exception is yielded in place of a result, so one failing partition
never stops the others. :meth:`TaskExecutor.limit` lowers the number of tasks at a time for the rest of the
run, also while a ``map`` is under way (the runner does so when memory passes its budget); the Dask
executor keeps its cluster's concurrency.

Polars' thread count in worker processes is the machine's cores divided by the number of workers
(``POLARS_MAX_THREADS``), so workers do not oversubscribe the CPU.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from types import TracebackType
from typing import Any, Literal, Protocol, Self, TypeVar

from quantmini._exceptions import ConfigurationError

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)

ExecutorKind = Literal["local", "dask"]


class TaskExecutor(Protocol):
    """Runs ``fn`` over items; a context manager owning its workers for the length of a run."""

    #: Short name shown in summaries and run records (``streaming``, ``batch``, ``parallel``, ``dask``).
    name: str
    #: Tasks that run at the same time (memory budgets are divided by it).
    concurrency: int

    def limit(self, concurrency: int) -> int:
        """Run at most ``concurrency`` tasks at a time from now on (never more than before); return the
        concurrency now in effect."""
        ...

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[T, R | BaseException]]:
        """Apply ``fn`` to each item; yield ``(item, result or the exception it raised)`` as they finish."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class _Base:
    name = "streaming"
    concurrency = 1

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release workers (nothing to do for in-process executors)."""

    def limit(self, concurrency: int) -> int:
        """Lower :attr:`concurrency` to ``concurrency`` (at least 1); return it."""
        self.concurrency = max(1, min(self.concurrency, concurrency))
        return self.concurrency


class InlineExecutor(_Base):
    """One task at a time, in this process (``streaming``)."""

    name = "streaming"

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[T, R | BaseException]]:
        """Run each item in turn."""
        for item in items:
            try:
                yield item, fn(item)
            except Exception as exc:
                yield item, exc


class ThreadExecutor(_Base):
    """Groups of ``batch_size`` tasks in threads of this process (``batch``)."""

    name = "batch"

    def __init__(self, batch_size: int) -> None:
        self.concurrency = max(1, batch_size)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[T, R | BaseException]]:
        """Run items in groups of :attr:`concurrency` (read per group); a group's threads finish before the
        next group starts."""
        if self.concurrency == 1 or len(items) < 2:
            yield from InlineExecutor().map(fn, items)
            return
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as threads:
            start = 0
            while start < len(items):
                group = items[start : start + self.concurrency]
                start += len(group)
                yield from _drain(threads, fn, group)


def _worker_init(polars_threads: int) -> None:
    # The parent owns Ctrl-C: it stops the pool. A worker interrupted mid-task could leave a half-written
    # temporary (harmless) but also report a confusing error instead of the parent's clean stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["POLARS_MAX_THREADS"] = str(polars_threads)


def polars_threads_per_worker(workers: int) -> int:
    """Polars threads each of ``workers`` worker processes may use on this machine."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


class ProcessExecutor(_Base):
    """A pool of worker processes started with ``spawn`` (``parallel``); started on first use, kept for
    the run, so the interpreter start-up of each worker is paid once."""

    name = "parallel"

    def __init__(self, workers: int) -> None:
        self.concurrency = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None
        self._pool_size = 0

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is not None and self._pool_size > self.concurrency:
            self.close()  # concurrency was lowered: idle workers would keep their memory
        if self._pool is None:
            threads = polars_threads_per_worker(self.concurrency)
            # Children read POLARS_MAX_THREADS when they import Polars, which happens before any
            # initializer runs (unpickling a task imports its module), so it must be in their environment.
            previous = os.environ.get("POLARS_MAX_THREADS")
            os.environ["POLARS_MAX_THREADS"] = str(threads)
            try:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.concurrency,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_worker_init,
                    initargs=(threads,),
                )
                self._pool_size = self.concurrency
            finally:
                if previous is None:
                    os.environ.pop("POLARS_MAX_THREADS", None)
                else:
                    os.environ["POLARS_MAX_THREADS"] = previous
        return self._pool

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[T, R | BaseException]]:
        """Run every item in the pool, :attr:`concurrency` at a time (a lowered limit applies to the tasks
        submitted after it); on Ctrl-C (or an abandoned iteration) the workers are stopped."""
        if self.concurrency == 1 or len(items) < 2:
            if self.concurrency == 1:
                self.close()  # lowered to one task at a time: idle workers would keep their memory
            yield from InlineExecutor().map(fn, items)
            return
        pool = self._ensure_pool()
        try:
            yield from _drain(pool, fn, items, lambda: self.concurrency)
        except BaseException:
            self.terminate()
            raise

    def terminate(self) -> None:
        """Stop every worker now (pending tasks are cancelled, running ones killed)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()
        for process in processes:
            with contextlib.suppress(Exception):
                process.join(timeout=5)

    def close(self) -> None:
        """Shut the pool down after its tasks."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


class DaskExecutor(_Base):
    """Tasks on Dask distributed: the scheduler at ``address``, or a ``LocalCluster`` of ``workers``
    processes started on 127.0.0.1 for the run (``dask``).

    Workers must be able to import quantmini and see the lake at the same path (a shared filesystem).
    """

    name = "dask"

    def __init__(self, workers: int, address: str | None = None, *, connect_timeout: float = 30.0) -> None:
        try:
            # Any: distributed is only partly typed, and its untyped calls would need an ignore each.
            distributed: Any = importlib.import_module("distributed")
        except ImportError as exc:
            raise ConfigurationError(
                "the dask executor needs the optional dependency: pip install 'quantmini[dask]'"
            ) from exc
        self._distributed = distributed
        self._cluster: Any = None
        if address is None:
            self._cluster = distributed.LocalCluster(
                n_workers=max(1, workers),
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
                env={"POLARS_MAX_THREADS": str(polars_threads_per_worker(workers))},
            )
            address = self._cluster.scheduler_address
        try:
            self._client = distributed.Client(address, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise ConfigurationError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
        self.address = address
        self.concurrency = max(1, sum(self._client.nthreads().values()))

    def limit(self, concurrency: int) -> int:
        """The cluster's workers decide what runs at a time: unchanged."""
        return self.concurrency

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[T, R | BaseException]]:
        """Submit every item to the cluster; yield results as they complete."""
        futures = {self._client.submit(fn, item, pure=False): item for item in items}
        try:
            for future in self._distributed.as_completed(futures, loop=self._client.loop):
                item = futures[future]
                if future.status == "error":
                    error = future.exception()
                    yield item, error if isinstance(error, BaseException) else RuntimeError(str(error))
                else:
                    yield item, future.result()
        except BaseException:
            self._client.cancel(list(futures))
            raise

    def close(self) -> None:
        """Close the client and, if this executor started it, the local cluster."""
        with contextlib.suppress(Exception):
            if getattr(self, "_client", None) is not None:
                self._client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()
            self._cluster = None


def make_executor(
    mode: str,
    *,
    workers: int = 1,
    batch_size: int = 1,
    executor: ExecutorKind = "local",
    scheduler: str | None = None,
) -> TaskExecutor:
    """The executor a run's settings select (``executor='dask'`` overrides the local ``mode``)."""
    if executor == "dask":
        return DaskExecutor(workers, scheduler)
    if mode == "parallel":
        return ProcessExecutor(workers)
    if mode == "batch":
        return ThreadExecutor(batch_size)
    if mode == "streaming":
        return InlineExecutor()
    raise ConfigurationError(f"unknown pipeline mode {mode!r} (choose streaming, batch or parallel)")


def run_tasks(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    mode: str,
    workers: int,
    batch_size: int = 1,
) -> Iterator[tuple[T, R | BaseException]]:
    """One-off: apply ``fn`` to each item with a local executor for ``mode`` (see :func:`make_executor`)."""
    with make_executor(mode, workers=workers, batch_size=batch_size) as runner:
        yield from runner.map(fn, items)


def _drain(
    pool: ThreadPoolExecutor | ProcessPoolExecutor,
    fn: Callable[[T], R],
    items: Sequence[T],
    limit: Callable[[], int] | None = None,
) -> Iterator[tuple[T, R | BaseException]]:
    """Yield each item's result as it finishes, keeping at most ``limit()`` tasks submitted (all of them
    when ``None``); the next ones are submitted before a finished one is handed out, so the workers never
    wait for the caller."""
    pending = iter(items)
    running: dict[Future[R], T] = {}

    def top_up() -> None:
        room = len(items) if limit is None else max(0, limit() - len(running))
        for item in itertools.islice(pending, room):
            running[pool.submit(fn, item)] = item

    try:
        top_up()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            finished = [(future, running.pop(future)) for future in done]
            top_up()
            for future, item in finished:
                error = future.exception()
                yield item, (error if error is not None else future.result())
    finally:
        for future in running:
            future.cancel()
