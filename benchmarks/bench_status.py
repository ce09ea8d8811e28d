"""``data status`` on a 20-year lake of manifests vs a plain loop json-loading every manifest.

    uv run python benchmarks/bench_status.py [--years 20] [--root DIR]

Writes the manifests a lake of the four data types would hold over ``--years`` of XNYS sessions (landing,
bronze, every silver table the demo builds, a gold state per Qlib root; silver manifests with their
``upstream`` digests as the silver stage records them) and an empty ``date=…`` directory per bronze and
silver partition — no Parquet: status reads none. Then, in a fresh process, times :func:`lake_status`
over the whole lake twice — the first call reads every manifest and writes the manifest index
(:mod:`quantmini.io.manifest_index`), the second reads the index; the OS page cache is warm, as after a
pipeline run — and reports the process's peak RSS. The baseline runs first, in its own fresh process:
listing every manifest directory and ``json.load``-ing each file, the floor of reading every manifest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from quantmini.core.calendar import sessions as xnys_sessions
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.pipeline.gold import GOLD_VERSION
from quantmini.pipeline.partitions import Partition
from quantmini.pipeline.silver import upstream_digest, upstream_lines, window_calendar

#: Silver tables per data type (those the demo builds).
TABLES = {
    "stocks_daily": ("stocks_daily", "corporate_action_checks", "universes", "stocks_daily_alpha158"),
    "stocks_minute": ("stocks_minute", "stocks_minute_rollups"),
    "options_daily": ("options_daily", "options_underlying_daily"),
    "options_minute": ("options_minute",),
}


def _sha(*parts: object) -> str:
    return f"{hash(parts) & (2**256 - 1):064x}"


def _write(path: Path, data: dict[str, object]) -> None:
    # As write_manifest formats them (indented, keys sorted), without its fsync: generation speed only.
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def generate(root: Path, years: int) -> int:
    """Write the lake's manifests below ``root``; return how many."""
    lake = Lake(root)
    end = dt.date(2024, 12, 31)
    sessions = xnys_sessions(dt.date(end.year - years + 1, 1, 1), end)
    count = 0
    for name, tables in TABLES.items():
        spec = get_spec(name)
        for stage in ("landing", "bronze"):
            lake.manifest_dir(stage, spec).mkdir(parents=True, exist_ok=True)
        bronze: dict[dt.date, Partition] = {}
        for i, session in enumerate(sessions):
            published = dt.datetime.combine(session + dt.timedelta(days=1), dt.time(16), tzinfo=dt.UTC)
            landing: dict[str, object] = {
                "key": spec.source_key(session),
                "session": session.isoformat(),
                "sha256": _sha("landing", name, session),
                "size": 250_000_000,
                "source": {
                    "etag": _sha("etag", name, session)[:32],
                    "key": spec.source_key(session),
                    "last_modified": published.isoformat(),
                    "size": 250_000_000,
                },
                "source_description": "s3://flatfiles",
                "landed_at": published.isoformat(),
            }
            if i % 97 == 0:  # now and then a republished day
                old = {"sha256": _sha("old", name, session), "size": 1, "etag": "e"}
                landing["replaced"] = [{**old, "last_modified": published.isoformat(), "landed_at": None}]
            _write(lake.manifest("landing", spec, session), landing)
            output = _sha("bronze", name, session)
            _write(
                lake.manifest("bronze", spec, session),
                {
                    "input_key": spec.source_key(session),
                    "input_sha256": landing["sha256"],
                    "session": session.isoformat(),
                    "rows_in": 12_000,
                    "rows_bronze": 11_998,
                    "rows_quarantined": 2,
                    "duplicates": 0,
                    "reasons": {"ohlc_inconsistent": 1, "outside_session": 1},
                    "quality": {
                        "rows_in": 12_000,
                        "rows_bronze": 11_998,
                        "rows_quarantined": 2,
                        "duplicates": 0,
                        "reasons": {"ohlc_inconsistent": 1, "outside_session": 1},
                    },
                    "output_sha256": output,
                    "output_size": 400_000,
                },
            )
            lake.bronze_partition(spec, session).parent.mkdir(parents=True, exist_ok=True)
            bronze[session] = Partition(session, output, 400_000, 11_998)
            count += 2
        calendar = window_calendar(list(bronze), spec.calendar)
        for part in spec.silver:
            table = part.table(name)
            if table not in tables:
                continue
            lake.manifest_dir("silver", table).mkdir(parents=True, exist_ok=True)
            # Inputs are left out of the digests: a table reading another's partitions is then judged
            # stale by status, which costs the same as present.
            for session, lines in upstream_lines(part, bronze, [], calendar):
                _write(
                    lake.manifest("silver", table, session),
                    {
                        "session": session.isoformat(),
                        "identity": _sha("identity", table, session),
                        "rows": 11_998,
                        "output_sha256": _sha("silver", table, session),
                        "output_size": 900_000,
                        "upstream": upstream_digest(lines),
                    },
                )
                lake.silver_partition(table, session).parent.mkdir(parents=True, exist_ok=True)
                count += 1
        for target in spec.gold:
            for adjustment in ("total_return", "split"):
                state = lake.gold_state_dir(name, target.freq, adjustment)
                state.mkdir(parents=True, exist_ok=True)
                _write(
                    state / "state.json",
                    {
                        "version": GOLD_VERSION,
                        "target_version": target.version,
                        "fields": list(target.fields),
                        "first_session": sessions[0].isoformat(),
                        "hours": "regular",
                        "sessions": {s.isoformat(): _sha("silver", name, s) for s in sessions},
                        "skipped": {},
                    },
                )
    return count


def measure_status(root: Path) -> dict[str, float]:
    """Status twice in this (fresh) process: without an index (it writes it), then with it."""
    from quantmini.pipeline.status import lake_status

    results: dict[str, float] = {"RSS after imports MB": _rss_mb()}
    for label in ("status, first call (writes the index)", "status, second call (reads it)"):
        t0 = time.perf_counter()
        found = lake_status(Lake(root))
        results[label] = time.perf_counter() - t0
    results["status peak RSS MB"] = _rss_mb()
    results["sessions x layers"] = sum(len(t.sessions) * len(t.layers) for t in found.types)
    return results


def measure_baseline(root: Path) -> dict[str, float]:
    """The floor of reading every manifest: walk ``_manifests/`` and ``json.load`` each file."""
    t0 = time.perf_counter()
    manifests = 0
    for directory, subdirectories, names in os.walk(root / "_manifests"):
        subdirectories[:] = [d for d in subdirectories if d != ".index"]
        for name in names:
            if name.endswith(".json"):
                with open(os.path.join(directory, name), encoding="utf-8") as handle:
                    json.load(handle)
                manifests += 1
    return {"baseline: json.load every manifest": time.perf_counter() - t0, "manifests": manifests}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--root", type=Path, help="Where to write the lake (default: a temporary directory).")
    parser.add_argument("--measure", choices=("status", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--lake", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        measure = measure_status if args.measure == "status" else measure_baseline
        print(json.dumps(measure(args.lake)))
        return
    with tempfile.TemporaryDirectory(dir=args.root) as tmp:
        root = Path(tmp) / "lake"
        t0 = time.perf_counter()
        count = generate(root, args.years)
        print(f"wrote {count:,} manifests for {args.years} years in {time.perf_counter() - t0:.1f} s")
        results: dict[str, float] = {}
        for which in ("baseline", "status"):  # each in a fresh process, the baseline first
            child = subprocess.run(
                [sys.executable, __file__, "--measure", which, "--lake", str(root)],
                check=True,
                capture_output=True,
                text=True,
            )
            results.update(json.loads(child.stdout))
        for label, value in results.items():
            print(f"{label:40s} {value:,.3f}" if isinstance(value, float) else f"{label:40s} {value:,}")


if __name__ == "__main__":
    main()
