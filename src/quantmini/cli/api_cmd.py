"""``quantmini api ...``: ad-hoc REST downloads written to a file, outside the lake."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from quantmini._exceptions import ConfigurationError
from quantmini.cli.polygon_cmd import bars_options, bars_request, run_rest

if TYPE_CHECKING:
    import polars as pl

    from quantmini.pipeline.reference_pull import ReferencePull

#: Output formats, chosen by the file's suffix.
FORMATS = (".parquet", ".csv", ".json")


@click.group()
def api() -> None:
    """Ad-hoc downloads from the vendor's REST API (needs POLYGON_API_KEY)."""


def write_frame(frame: pl.DataFrame, output: Path) -> None:
    """Write ``frame`` atomically as Parquet, CSV or JSON according to ``output``'s suffix."""
    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        raise ConfigurationError(f"--output {output}: use a {', '.join(FORMATS)} file name")
    from quantmini.io.atomic import atomic_path

    with atomic_path(output) as tmp:
        if suffix == ".parquet":
            frame.write_parquet(tmp, compression="zstd")
        elif suffix == ".csv":
            frame.write_csv(tmp)
        else:
            frame.write_json(tmp)


@api.command()
@bars_options
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="File (.parquet/.csv/.json).",
)
def bars(
    ticker: str | None,
    start: str,
    end: str | None,
    timespan: str,
    multiplier: int,
    adjusted: bool,
    grouped: bool,
    output: Path,
) -> None:
    """Aggregate bars (/v2/aggs) for one ticker and range, or --grouped for every ticker on one day."""
    request = bars_request(ticker, start, end, timespan, multiplier, adjusted, grouped)
    if output.suffix.lower() not in FORMATS:
        raise ConfigurationError(f"--output {output}: use a {', '.join(FORMATS)} file name")
    from quantmini.cli.common import console
    from quantmini.pipeline.reference_pull import PullResult

    async def work(pull: ReferencePull) -> tuple[pl.DataFrame, PullResult]:
        result = PullResult("bars")
        return await pull.fetch_bars(request, result), result

    frame, result = run_rest(None, work)
    write_frame(frame, output)
    what = request.ticker or "grouped"
    console.print(
        f"{what}: {frame.height:,} bars ({request.multiplier} {request.timespan}, "
        f"{'adjusted' if request.adjusted else 'raw'}) from {result.pages} page(s) → {output}"
    )
