"""The lake's entities (:mod:`quantmini.core.entities`), refreshed on every run at the cost of the new data.

Entities need every ticker's runs of trading (first and last bar, the closes at both ends), for the
tickers the reference does not know and for the bars no claim covers. The runs are kept in
``silver/reference/ticker_runs`` and extended with the bronze partitions of the sessions after the last
one they hold; only a republished or deleted earlier partition (or a backfill before the last session)
makes them be read again from the whole history. The entity table itself is a pure function of the
runs and the reference tables, rewritten only when its content changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

import polars as pl

from quantmini._exceptions import QuantminiError
from quantmini.core.entities import (
    INSTRUMENT_SPANS_SCHEMA,
    REUSE_GAP,
    RUNS_SCHEMA,
    SPANS_SCHEMA,
    entity_table,
)
from quantmini.datasets import get_spec
from quantmini.io.atomic import write_bytes_atomic
from quantmini.io.lake import Lake
from quantmini.io.parquet import read_parquet_files, write_parquet_atomic
from quantmini.io.reference_store import load_reference
from quantmini.pipeline.partitions import PartitionIndex

#: Partitions read at once while extending the runs (bounds memory on a first build).
_READ_BATCH = 256


@dataclass(frozen=True, slots=True)
class EntityOutcome:
    """What the entity step found, for the summary."""

    entities: int = 0
    renamed: int = 0
    reused: int = 0
    inferred: int = 0
    #: ``TICKER@date`` of each inferred company (a reused ticker seen in the bars alone).
    inferred_from: tuple[str, ...] = ()
    partitions_read: int = 0
    #: Which company a ticker names when changed (a rename, a reuse, a new listing).
    changed: bool = False


def refresh_entities(
    lake: Lake, prices: PartitionIndex, calendar: list[dt.date], splits: pl.DataFrame | None
) -> tuple[pl.DataFrame, EntityOutcome]:
    """The entity table of the lake (written to ``silver/reference/entities``) and what it holds.

    ``prices``: the stocks_daily bronze index; ``calendar``: exchange sessions covering it; ``splits``:
    the cleaned split records (a split in a listing gap is not a price jump).
    """
    runs, read = _runs(lake, prices, calendar)
    table = entity_table(load_reference(lake, "tickers"), load_reference(lake, "ticker_events"), runs, splits)
    path = lake.silver_reference("entities")
    try:
        previous = read_parquet_files([path]) if path.exists() else None
    except QuantminiError:  # an unreadable previous table is simply replaced
        previous = None
    if previous is None or not previous.equals(table):
        write_parquet_atomic(table.to_arrow(), path)
    spans = list(SPANS_SCHEMA)
    # What the factors and silver windows read: a later last bar alone changes nothing they compute.
    changed = previous is None or not previous.select(spans).equals(table.select(spans))
    traded = table.filter(pl.col("first_bar").is_not_null())
    tickers_per_entity = traded.group_by("entity").agg(pl.col("ticker").n_unique().alias("n"))
    entities_per_ticker = traded.group_by("ticker").agg(pl.col("entity").n_unique().alias("n"))
    outcome = EntityOutcome(
        entities=traded["entity"].n_unique(),
        renamed=tickers_per_entity.filter(pl.col("n") > 1).height,
        reused=entities_per_ticker.filter(pl.col("n") > 1).height,
        inferred=traded.filter(pl.col("source") == "inferred").height,
        inferred_from=tuple(traded.filter(pl.col("source") == "inferred")["entity"].sort().to_list()),
        partitions_read=read,
        changed=changed,
    )
    return table, outcome


def instrument_spans(lake: Lake) -> pl.DataFrame:
    """``ticker, valid_from, valid_to, instrument`` of the lake's entities: the Qlib instrument a ticker's
    bars belong to over time (empty before the first run)."""
    path = lake.silver_reference("entities")
    if not path.exists():
        return pl.DataFrame(schema=INSTRUMENT_SPANS_SCHEMA)
    return read_parquet_files([path], columns=list(INSTRUMENT_SPANS_SCHEMA))


def _runs(lake: Lake, prices: PartitionIndex, calendar: list[dt.date]) -> tuple[pl.DataFrame, int]:
    """The runs of trading of every ticker of ``prices``, extended from the cached ones; and how many
    partitions were read."""
    path = lake.silver_reference("ticker_runs")
    state_path = path.with_suffix(".json")
    sessions = prices.sessions
    runs = pl.DataFrame(schema=RUNS_SCHEMA)
    start = 0
    if path.exists() and state_path.exists():
        state = json.loads(state_path.read_text())
        last = dt.date.fromisoformat(state["last"]) if state.get("last") else None
        held = [s for s in sessions if last is not None and s <= last]
        if (
            state.get("gap") == REUSE_GAP
            and last is not None
            and state.get("digest") == _digest(prices, held)
        ):
            runs = read_parquet_files([path])
            start = len(held)
    new = sessions[start:]
    if not new and start:
        return runs, 0
    position = {s: i for i, s in enumerate(calendar)}
    spec = get_spec("stocks_daily")
    for i in range(0, len(new), _READ_BATCH):
        batch = new[i : i + _READ_BATCH]
        bars = read_parquet_files(
            [lake.bronze_partition(spec, s) for s in batch], columns=("ticker", "session_date", "close")
        )
        runs = extend_runs(runs, bars, position)
    write_parquet_atomic(runs.to_arrow(), path)
    last_session = sessions[-1] if sessions else None
    state = {
        "last": last_session.isoformat() if last_session else None,
        "gap": REUSE_GAP,
        "digest": _digest(prices, sessions),
    }
    write_bytes_atomic(state_path, json.dumps(state).encode())
    return runs, len(new)


def extend_runs(runs: pl.DataFrame, bars: pl.DataFrame, position: dict[dt.date, int]) -> pl.DataFrame:
    """``runs`` (:data:`RUNS_SCHEMA`) extended with ``bars`` (ticker, session_date, close) of sessions
    after every run's last; ``position``: each session's index in the exchange calendar.

    A bar more than :data:`~quantmini.core.entities.REUSE_GAP` sessions after its ticker's previous bar
    starts a new run.
    """
    if bars.is_empty():
        return runs
    index = pl.col("session_date").replace_strict(position, return_dtype=pl.Int64)
    open_runs = (
        runs.sort("ticker", "last")
        .group_by("ticker", maintain_order=True)
        .last()
        .select("ticker", pl.col("last").replace_strict(position, return_dtype=pl.Int64).alias("_open"))
    )
    rows = (
        bars.filter(pl.col("close").is_not_null())
        .unique(subset=["ticker", "session_date"], keep="first")
        .sort("ticker", "session_date")
        .with_columns(index.alias("_pos"))
        .join(open_runs, on="ticker", how="left")
    )
    previous = pl.coalesce(pl.col("_pos").shift(1).over("ticker"), pl.col("_open"))
    starts = previous.is_null() | (pl.col("_pos") - previous - 1 >= REUSE_GAP)
    rows = rows.with_columns(starts.cast(pl.Int64).cum_sum().over("ticker").alias("_run"))
    pieces = rows.group_by("ticker", "_run").agg(
        pl.col("session_date").first().alias("first"),
        pl.col("session_date").last().alias("last"),
        pl.col("close").first().alias("first_close"),
        pl.col("close").last().alias("last_close"),
        pl.len().cast(pl.Int64).alias("bars"),
    )
    # Run 0 of a ticker continues its open run.
    continued = pieces.filter(pl.col("_run") == 0).drop("_run", "first", "first_close")
    last_of_ticker = pl.col("last") == pl.col("last").max().over("ticker")
    extended = (
        runs.join(continued, on="ticker", how="left", suffix="_new")
        .with_columns(
            pl.when(last_of_ticker & pl.col("last_new").is_not_null())
            .then(pl.col("last_new"))
            .otherwise(pl.col("last"))
            .alias("last"),
            pl.when(last_of_ticker & pl.col("last_new").is_not_null())
            .then(pl.col("last_close_new"))
            .otherwise(pl.col("last_close"))
            .alias("last_close"),
            pl.when(last_of_ticker & pl.col("last_new").is_not_null())
            .then(pl.col("bars") + pl.col("bars_new"))
            .otherwise(pl.col("bars"))
            .alias("bars"),
        )
        .select(list(RUNS_SCHEMA))
    )
    fresh = pieces.filter(pl.col("_run") > 0).select(list(RUNS_SCHEMA))
    return (
        pl.concat([extended, fresh], how="vertical_relaxed")
        .cast(RUNS_SCHEMA)  # type: ignore[arg-type]
        .sort("ticker", "first")
    )


def _digest(prices: PartitionIndex, sessions: list[dt.date]) -> str:
    text = "|".join(f"{s}:{prices.partitions[s].sha256}" for s in sessions)
    return hashlib.sha256(text.encode()).hexdigest()
