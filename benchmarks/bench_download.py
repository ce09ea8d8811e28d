"""Download throughput from a local S3 endpoint: quantmini landing vs a sequential boto3 loop.

Starts moto in server mode in its own process on 127.0.0.1, uploads generated vendor-format files
(realistic stocks-minute days), then in separate child processes:

* baseline: ``boto3.client("s3").download_file`` for each key, one after another;
* baseline+verify: the same loop, then sha256, a full gzip inflate and fsync of each file (the
  guarantees quantmini's landing gives), one after another;
* quantmini transfer: ``S3Source.fetch_many`` (one async client, bounded concurrency, 1 MiB chunks);
* quantmini landing: the full landing stage (listing, transfer, gzip + sha256 verification, rename,
  manifests) — what ``quantmini data download`` does.

Prints wall time, MB/s, peak RSS of each child, and the ratio to the baseline.

    uv run python benchmarks/bench_download.py [--files 16] [--tickers 2000] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import boto3

BUCKET = "flatfiles"
KEY_ID, SECRET = "bench", "bench"

CHILD = textwrap.dedent(
    """
    import datetime as dt, json, sys, time
    from pathlib import Path

    def peak_rss_mb():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    mode, url, out, keys_json, concurrency = sys.argv[1:]
    keys = json.loads(keys_json)
    out = Path(out)
    t0 = time.perf_counter()
    if mode in ("baseline", "baseline+verify"):
        import boto3, hashlib, os, zlib
        client = boto3.client("s3", endpoint_url=url, aws_access_key_id="bench",
                              aws_secret_access_key="bench", region_name="us-east-1")
        for key in keys:
            dest = out / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            client.download_file("flatfiles", key, str(dest))
            if mode == "baseline+verify":  # the same guarantees as quantmini's landing, done plainly
                data = dest.read_bytes()
                hashlib.sha256(data).hexdigest()
                zlib.decompressobj(wbits=31).decompress(data)
                fd = os.open(dest, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
    else:
        from quantmini.datasets import get_spec
        from quantmini.io.lake import Lake
        from quantmini.io.s3_source import S3Source
        from quantmini.io.source import FetchJob
        from quantmini.pipeline.landing import land_sessions
        source = S3Source(endpoint=url, bucket="flatfiles", region="us-east-1", access_key_id="bench",
                          secret_access_key="bench", concurrency=int(concurrency))
        if mode == "transfer":
            listed = {o.key: o for o in source.list_many(["us_stocks_sip/minute_aggs_v1/"])}
            jobs = []
            for key in keys:
                dest = out / key
                dest.parent.mkdir(parents=True, exist_ok=True)
                jobs.append(FetchJob(key, dest, listed[key]))
            t0 = time.perf_counter()
            results = source.fetch_many(jobs)
            assert all(not isinstance(r.outcome, Exception) for r in results)
        else:
            spec = get_spec("stocks_minute")
            sessions = [dt.date.fromisoformat(k[-17:-7]) for k in keys]
            outcomes, failures = land_sessions(Lake(out), source, spec, sessions)
            assert not failures and all(o.status == "landed" for o in outcomes), failures
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb()}))
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_child(mode: str, url: str, out: Path, keys: list[str], concurrency: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, url, str(out), json.dumps(keys), str(concurrency)],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--tickers", type=int, default=2000, help="minute tickers per generated day")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    from quantmini.core.calendar import sessions
    from quantmini.sample import generate_sample

    work = Path(tempfile.mkdtemp(prefix="qm-bench-download-"))
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        client = boto3.client(
            "s3",
            endpoint_url=url,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=BUCKET)

        days = sessions(dt.date(2025, 9, 2), dt.date(2025, 12, 31))[: args.files]
        sample = work / "sample"
        generate_sample(
            sample,
            days[0],
            days[0],
            tickers=args.tickers,
            minute_tickers=args.tickers,
            data_types=("stocks_minute",),
        )
        template = next((sample / "flatfiles").rglob("*.csv.gz")).read_bytes()
        from quantmini.datasets import get_spec

        spec = get_spec("stocks_minute")
        keys = []
        for day in days:
            key = spec.source_key(day)
            client.put_object(Bucket=BUCKET, Key=key, Body=template)
            keys.append(key)
        total_mb = len(template) * len(keys) / 1e6

        rows = []
        for mode in ("baseline", "transfer", "baseline+verify", "landing"):
            out = work / mode
            out.mkdir()
            result = _run_child(mode, url, out, keys, args.concurrency)
            rows.append((mode, result["seconds"], total_mb / result["seconds"], result["peak_rss_mb"]))
            shutil.rmtree(out)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    base = {
        "transfer": rows[0][1],
        "baseline": rows[0][1],
        "baseline+verify": rows[2][1],
        "landing": rows[2][1],
    }
    print(
        f"{len(keys)} files × {len(template) / 1e6:.1f} MB = {total_mb:.0f} MB, "
        f"concurrency {args.concurrency}"
    )
    print("transfer is compared with the plain boto3 loop; landing (verify + fsync) with the boto3 loop that")
    print("verifies the same way (sha256, full gzip inflate, fsync)")
    print(f"{'run':<16} {'seconds':>8} {'MB/s':>8} {'peak RSS MB':>12} {'speed-up':>9}")
    for mode, seconds, rate, rss in rows:
        print(f"{mode:<16} {seconds:>8.2f} {rate:>8.1f} {rss:>12.0f} {base[mode] / seconds:>8.2f}x")


if __name__ == "__main__":
    main()
