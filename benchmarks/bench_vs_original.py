"""Time ``quantmini data ingest`` against the original quantmini 0.2.0 CLI on the same S3 day, whole process.

    uv run python benchmarks/bench_vs_original.py [--runs 5] [--workdir DIR]

Installs ``quantmini==0.2.0`` from PyPI into its own virtual environment under the work directory (``uv
venv`` + ``uv pip install``; never into the project's environment), starts a moto S3 server on
127.0.0.1, generates one stocks-minute day (~1.75 M rows, 4,800 tickers) and uploads it to the bucket
``flatfiles`` under the vendor's key (``us_stocks_sip/minute_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz``). Then
both CLIs ingest that day from the endpoint, in turn (A B A B …, after one warm-up run each), each run
starting from an empty lake, and the script prints each tool's median, min and max wall time and the
median of the per-pair ratios. Both times cover the whole process: interpreter start-up, imports,
configuration, download, conversion to Parquet, exit.

* quantmini (this project): ``quantmini data ingest --data-type stocks_minute --start-date D --end-date D
  --data-root LAKE`` with ``POLYGON_S3_ENDPOINT``, ``POLYGON_S3_BUCKET``, ``POLYGON_S3_ACCESS_KEY_ID``,
  ``POLYGON_S3_SECRET_ACCESS_KEY`` (dummy values for moto) and an empty ``QUANTMINI_CONFIG_DIR``.
  It lands the file (sha256 + gzip check) and writes bronze.
* quantmini 0.2.0: ``quantmini data ingest -t stocks_minute -s D -e D --full`` run in a directory whose
  ``config/`` holds ``credentials.yaml`` (``polygon.s3`` keys), ``pipeline_config.yaml``
  (``storage.s3_endpoint``, ``storage.s3_bucket``) and ``paths.yaml`` (``data_lake_root``); it downloads
  into memory and writes its bronze Parquet.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from quantmini.datasets import get_spec
from quantmini.sample import generate_sample

SESSION = dt.date(2025, 6, 2)
BUCKET = "flatfiles"
ORIGINAL = "quantmini==0.2.0"
DUMMY_KEY, DUMMY_SECRET = "bench-access-key", "bench-secret-key"  # moto accepts any credentials


@dataclass(frozen=True)
class Tool:
    """One CLI invocation: the command, its working directory and environment, and its lake to empty."""

    name: str
    command: list[str]
    cwd: Path
    env: dict[str, str]
    lake: Path

    def run(self) -> float:
        shutil.rmtree(self.lake, ignore_errors=True)
        self.lake.mkdir(parents=True)
        t0 = time.perf_counter()
        done = subprocess.run(
            self.command, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=600
        )
        seconds = time.perf_counter() - t0
        if done.returncode != 0 or not any(self.lake.rglob("*.parquet")):
            raise SystemExit(
                f"{self.name} failed (exit {done.returncode}, no Parquet under {self.lake}):\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return seconds


def install_original(work: Path) -> Path:
    """A virtual environment outside the project holding quantmini 0.2.0; its ``quantmini`` script."""
    venv = work / "original-venv"
    script = venv / "bin" / "quantmini"
    if not script.exists():
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        subprocess.run(["uv", "venv", "--quiet", "--python", python, str(venv)], check=True)
        env = {**os.environ, "VIRTUAL_ENV": str(venv)}
        env.pop("UV_PROJECT_ENVIRONMENT", None)
        subprocess.run(["uv", "pip", "install", "--quiet", ORIGINAL], check=True, env=env, cwd=work)
    return script


def upload_day(work: Path, endpoint: str) -> str:
    """Generate one stocks-minute day and put it in the bucket under the vendor's key."""
    spec = get_spec("stocks_minute")
    source = work / "source"
    key = spec.source_key(SESSION)
    if not (source / "flatfiles" / key).exists():
        generate_sample(
            source, SESSION, SESSION, data_types=("stocks_minute",), tickers=4800, minute_tickers=4800
        )
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=DUMMY_KEY,
        aws_secret_access_key=DUMMY_SECRET,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    client.upload_file(str(source / "flatfiles" / key), BUCKET, key)
    return key


def _environ() -> dict[str, str]:
    """The caller's environment, minus what would stop Python from using the cached bytecode."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def ours(work: Path, endpoint: str) -> Tool:
    config = work / "quantmini-config"
    config.mkdir(exist_ok=True)
    lake = work / "quantmini-lake"
    env = {
        **_environ(),
        "POLYGON_S3_ENDPOINT": endpoint,
        "POLYGON_S3_BUCKET": BUCKET,
        "POLYGON_S3_ACCESS_KEY_ID": DUMMY_KEY,
        "POLYGON_S3_SECRET_ACCESS_KEY": DUMMY_SECRET,
        "QUANTMINI_CONFIG_DIR": str(config),
    }
    day = SESSION.isoformat()
    script = Path(sys.executable).parent / "quantmini"
    command = [str(script), "data", "ingest", "--data-type", "stocks_minute"]
    command += ["--start-date", day, "--end-date", day, "--data-root", str(lake)]
    return Tool("quantmini", command, work, env, lake)


def original(work: Path, endpoint: str, script: Path) -> Tool:
    home = work / "original-home"
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    lake = home / "lake"
    (config / "credentials.yaml").write_text(
        f"polygon:\n  s3:\n    access_key_id: {DUMMY_KEY}\n    secret_access_key: {DUMMY_SECRET}\n"
    )
    (config / "pipeline_config.yaml").write_text(
        f"storage:\n  s3_endpoint: {endpoint}\n  s3_bucket: {BUCKET}\n"
    )
    (config / "paths.yaml").write_text(
        f"active_environment: production\nproduction:\n  data_lake_root: {lake}\n"
    )
    env = {k: v for k, v in _environ().items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "PATH": f"{script.parent}{os.pathsep}{env['PATH']}"})
    day = SESSION.isoformat()
    command = [str(script), "data", "ingest", "-t", "stocks_minute", "-s", day, "-e", day, "--full"]
    return Tool("quantmini 0.2.0", command, home, env, lake)


def compare(a: Tool, b: Tool, runs: int) -> None:
    a.run(), b.run()  # warm-up: page cache, bytecode caches
    times: dict[str, list[float]] = {a.name: [], b.name: []}
    ratios = []
    for _ in range(runs):
        ta, tb = a.run(), b.run()
        times[a.name].append(ta)
        times[b.name].append(tb)
        ratios.append(ta / tb)
    print("| tool | median | min | max | runs |\n|---|---|---|---|---|")
    for name, values in times.items():
        print(
            f"| {name} | {statistics.median(values):.2f} s | {min(values):.2f} s | "
            f"{max(values):.2f} s | {len(values)} |"
        )
    print(f"\n{a.name} / {b.name}, median of per-pair ratios: {statistics.median(ratios):.2f}")


def cache_bytecode(*pythons: Path) -> None:
    """Both tools run with bytecode cached, as after a user's first run (an environment variable such as
    ``PYTHONDONTWRITEBYTECODE`` would otherwise make every run compile every module it imports)."""
    for python in pythons:
        paths = subprocess.run(
            [str(python), "-c", "import sys; print('\\n'.join(p for p in sys.path if p))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        roots = [p for p in paths if Path(p).is_dir() and not p.startswith(sys.base_prefix)]
        subprocess.run([str(python), "-m", "compileall", "-q", "-j", "0", *roots], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each tool (default 5)")
    parser.add_argument(
        "--workdir", type=Path, help="scratch directory, reused across calls (default: temporary)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = (args.workdir or Path(tmp)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        script = install_original(work)
        cache_bytecode(Path(sys.executable), script.parent / "python")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            key = upload_day(work, endpoint)
            print(f"s3://{BUCKET}/{key} on {endpoint}", file=sys.stderr)
            compare(ours(work, endpoint), original(work, endpoint, script), args.runs)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
