"""Peak RSS of each stage of a full silver + gold build, against ``pipeline.memory_budget_gb``.

    uv run python benchmarks/bench_stage_memory.py --workdir DIR [--sessions 5000] [--budget 1.0]

Generates synthetic stocks_daily bronze in the lake layout (``bench_engine_data.generate``), then runs the
runner's stages one after the other in this process — bronze index, factor tables, silver, gold — while a
thread samples the process's RSS every 20 ms, and prints each stage's peak and the RSS it leaves behind.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from bench_engine_data import SPEC, _status, discard, generate, make_lake
from quantmini.io.lake import Lake
from quantmini.pipeline.runner import PipelineReport, PipelineRunner


class Sampler:
    """The largest RSS seen since the last :meth:`take`."""

    def __init__(self) -> None:
        self.peak = 0.0
        threading.Thread(target=self._run, daemon=True).start()

    @staticmethod
    def rss_mb() -> float:
        return _status("self", "VmRSS").get("VmRSS", 0) / 1e6

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.rss_mb())
            time.sleep(0.02)

    def take(self) -> tuple[float, float]:
        now = self.rss_mb()
        peak, self.peak = max(self.peak, now), now
        return peak, now


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--tickers", type=int, default=12000)
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--budget", type=float, default=1.0, help="pipeline.memory_budget_gb")
    args = parser.parse_args()
    master, lake_root = args.workdir / "master", args.workdir / "lake"
    generate(master, args.tickers, args.sessions, 0)
    make_lake(master, lake_root, args.sessions)
    sampler = Sampler()
    sampler.take()
    runner = PipelineRunner(Lake(lake_root), SPEC, memory_budget_gb=args.budget)
    report = PipelineReport(data_type=SPEC.name)
    print(f"{args.tickers:,} tickers × {args.sessions:,} sessions, budget {args.budget} GB")
    print("| stage | peak RSS | RSS after |\n|---|---|---|")
    bronze = runner._bronze_index(SPEC)
    print("| bronze index | {:.0f} MB | {:.0f} MB |".format(*sampler.take()))
    factors = runner.factors(report, bronze)
    print("| factor tables | {:.0f} MB | {:.0f} MB |".format(*sampler.take()))
    runner.enrich(report, factors, bronze)
    print("| silver | {:.0f} MB | {:.0f} MB |".format(*sampler.take()))
    runner.convert(report, factors)
    print("| gold | {:.0f} MB | {:.0f} MB |".format(*sampler.take()))
    if report.failures:
        raise SystemExit("; ".join(report.failures))
    discard(args.workdir)


if __name__ == "__main__":
    main()
