"""The Dask executor on a real 2-worker LocalCluster (127.0.0.1): results, per-task errors, a second map."""

from __future__ import annotations

import pytest

from quantmini.pipeline.executor import DaskExecutor, make_executor

pytestmark = pytest.mark.slow


def square_unless_three(x: int) -> int:
    if x == 3:
        raise ValueError("three is refused")
    return x * x


def test_tasks_run_on_the_cluster_and_one_failure_stops_nothing_else() -> None:
    with make_executor("streaming", workers=2, executor="dask") as executor:
        assert isinstance(executor, DaskExecutor)
        assert executor.concurrency == 2
        assert executor.address.startswith("tcp://127.0.0.1:")
        results = dict(executor.map(square_unless_three, [1, 2, 3, 4, 5]))
        assert {k: v for k, v in results.items() if k != 3} == {1: 1, 2: 4, 4: 16, 5: 25}
        assert isinstance(results[3], ValueError)
        assert "three is refused" in str(results[3])
        assert dict(executor.map(square_unless_three, [6])) == {6: 36}


def test_an_unreachable_scheduler_is_one_readable_error() -> None:
    from quantmini import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"):
        DaskExecutor(1, "tcp://127.0.0.1:9", connect_timeout=1.0)
