"""``quantmini report`` on a 20-year lake of manifests: time, peak memory and the HTML file's size.

    uv run python benchmarks/bench_report.py [--years 20] [--root DIR]

The lake is ``bench_status.py``'s: the manifests four data types would hold over ``--years`` of XNYS
sessions (every layer, silver tables, gold state), no Parquet. The report is written twice: as the lake
is (every day quarantines a couple of rows, a republished day now and then), and — for the size bound —
with every layer's states changed from one session to the next (no two neighbouring heatmap cells alike,
the report's worst case). A 20-year lake's report must stay under ~5 MB.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import tempfile
import time
from pathlib import Path

from bench_status import generate
from quantmini.io.lake import Lake
from quantmini.pipeline.status import SEVERITY, LakeStatus
from quantmini.report.aggregates import bucket_of, granularity_for
from quantmini.report.gather import gather
from quantmini.report.html import render


def _worst_case(status: LakeStatus) -> LakeStatus:
    """``status`` with each layer's heatmap columns (sessions, weeks or months) cycling through every
    state: no two neighbouring cells alike."""
    sessions = {s for t in status.types for s in t.sessions}
    granularity = granularity_for(len(sessions))
    columns = {b: i for i, b in enumerate(sorted({bucket_of(s, granularity) for s in sessions}))}
    types = []
    for data_type in status.types:
        days = {s: SEVERITY[columns[bucket_of(s, granularity)] % len(SEVERITY)] for s in data_type.sessions}
        layers = [dataclasses.replace(layer, days=days) for layer in data_type.layers]
        types.append(dataclasses.replace(data_type, layers=layers))
    return LakeStatus(types)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--root", type=Path, help="Lake root to generate into (default: a temporary one).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.root.parent if args.root else None) as scratch:
        root = args.root or Path(scratch) / "lake"
        if not (root / "_manifests").is_dir():
            t0 = time.perf_counter()
            count = generate(root, args.years)
            print(f"generated {count:,} manifests in {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        facts = gather(Lake(root))
        gathered = time.perf_counter() - t0
        html = render(facts)
        rendered = time.perf_counter() - t0 - gathered
        worst = render(dataclasses.replace(facts, coverage=_worst_case(facts.coverage)))
        sessions = len({s for t in facts.coverage.types for s in t.sessions})
        layers = sum(len(t.layers) for t in facts.coverage.types)
        result = {
            "years": args.years,
            "sessions": sessions,
            "heatmap rows": layers,
            "gather s": round(gathered, 2),
            "render s": round(rendered, 2),
            "report KiB": round(len(html.encode()) / 1024),
            "worst-case report KiB": round(len(worst.encode()) / 1024),
            "peak RSS MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
