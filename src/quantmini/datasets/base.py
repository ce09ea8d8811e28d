"""The data-type spec: everything the pipeline needs to know about one vendor dataset, as data."""

from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pyarrow as pa

from quantmini.core.adjustment_names import Adjustment

Frequency = Literal["day", "1min"]


@dataclass(frozen=True, slots=True)
class Ref:
    """A function named by ``"module:attribute"``, imported on first call.

    Specs declare their transforms this way so that reading the registry (the CLI does, for its choices)
    imports no dataframe library, and so that tasks carrying a spec pickle to worker processes.
    """

    path: str

    def resolve(self) -> Any:
        """The named object."""
        module, _, name = self.path.partition(":")
        return getattr(importlib.import_module(module), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)


FactorUse = Literal["none", "window", "history"]


@dataclass(frozen=True, slots=True)
class SilverInput:
    """Rows another table holds for a silver part's output sessions, read beside the part's own bronze.

    ``source`` names a data type (``layer="bronze"``: its bronze partitions, e.g. the stocks' closes an
    option is priced against) or a silver table (``layer="silver"``, e.g. the per-contract rows that
    per-underlying aggregates summarise; a table of the same data type is built first). The transform
    finds the rows in ``window.inputs[source]``, ``columns`` of them (empty: all). Each output session's
    identity includes that session's partition checksum, so a changed or newly arrived input partition
    rebuilds exactly the sessions that read it; a session without one reads no rows.
    """

    source: str
    layer: Literal["bronze", "silver"] = "bronze"
    columns: tuple[str, ...] = ()
    #: Read for every session of the window (lookback included), not only the output sessions; each
    #: output session's identity then includes the checksums of the whole window's partitions.
    window: bool = False


@dataclass(frozen=True, slots=True)
class SilverPart:
    """One silver table of a data type, partitioned by session, declared as data.

    ``transform`` is a pure function of a :class:`~quantmini.core.window.SessionWindow`: the bronze rows of
    the output sessions and of the ``lookback`` sessions before them, the reference tables named in
    ``references`` and, as ``factors`` says, the corporate actions: ``"window"`` (only actions inside the
    window matter, e.g. returns), ``"history"`` (actions up to each session matter, e.g. valuation in the
    session's share basis) or ``"none"``. It returns the rows of the output sessions. A partition depends on
    nothing else, so it is stale exactly when one of those inputs changed.

    The table lives at ``silver/<name>/date=…/part.parquet`` (``name`` defaults to the data type's name; the
    data type's main table then holds the bronze columns plus ``columns`` as nullable float64). A part
    with ``references`` is built only when those reference tables exist. Bump ``version`` when the
    computation changes: every partition of the part is rebuilt.
    """

    transform: Ref
    lookback: int
    columns: tuple[str, ...] = ()
    name: str | None = None
    schema: pa.Schema | None = None
    factors: FactorUse = "none"
    references: tuple[str, ...] = ()
    version: int = 1
    #: The transform computes each ticker from that ticker's rows alone, so a task may run it on
    #: contiguous ticker ranges of its window one after another (minute bars: a 20-session window of
    #: the whole market does not fit in memory at once).
    per_ticker: bool = False
    #: Estimated peak bytes per bronze row of an output session while the transform runs, written rows
    #: included (sizes the tasks).
    row_bytes: int = 1200
    #: Bronze columns the transform reads from lookback sessions (other columns of those rows are null);
    #: empty: every column. Lookback rows then cost memory for these columns only.
    lookback_columns: tuple[str, ...] = ()
    #: Estimated peak bytes per bronze row of a lookback session (``None``: ``row_bytes``).
    lookback_row_bytes: int | None = None
    #: Other tables read for the output sessions (see :class:`SilverInput`).
    inputs: tuple[SilverInput, ...] = ()
    #: Reference tables used when present (``window.references`` lacks them otherwise); unlike
    #: ``references`` their absence does not skip the part.
    optional_references: tuple[str, ...] = ()
    #: What the run summary says about the rows written: a function of them returning counts by
    #: phrase (``{"no IV: expiration_day": 59}``), summed over the run's tasks.
    summary: Ref | None = None
    #: Dotted settings keys the transform reads (``"options.risk_free_rate"``); their values are part of
    #: every partition's identity and reach the transform as ``window.settings``.
    settings: tuple[str, ...] = ()
    #: Parquet compression of the table's files (floats that barely compress: ``snappy``, 3× faster
    #: to write than ``zstd`` for a fifth more bytes).
    compression: str = "zstd"
    #: The feature set the table holds (:mod:`quantmini.features.library`): built only when the set is
    #: configured (``features.<data type>``).
    feature_set: str | None = None
    #: Columns unique per row of a partition (``quantmini validate silver``); the main table's are the
    #: data type's ``key_columns``.
    key_columns: tuple[str, ...] = ("ticker", "session_date")

    def window_bytes(self, rows_per_session: float, outputs: int, lookback: int) -> float:
        """Estimated peak memory of a window of ``outputs`` output and ``lookback`` earlier sessions."""
        earlier = self.row_bytes if self.lookback_row_bytes is None else self.lookback_row_bytes
        return rows_per_session * (outputs * self.row_bytes + lookback * earlier)

    def table(self, data_type: str) -> str:
        """Name of the table (and of its directory under ``silver/``)."""
        return self.name or data_type

    def reads_silver(self) -> set[str]:
        """Silver tables among the part's inputs."""
        return {i.source for i in self.inputs if i.layer == "silver"}

    def output_schema(self, bronze: pa.Schema) -> pa.Schema:
        """Schema of a partition: :attr:`schema`, else the bronze columns then :attr:`columns` (float64)."""
        if self.schema is not None:
            return self.schema
        return pa.schema([*bronze, *(pa.field(name, pa.float64()) for name in self.columns)])


@dataclass(frozen=True, slots=True)
class SilverJoin:
    """Columns of another silver table joined to a Qlib target's rows on (ticker, session_date).

    ``columns`` pairs a column of ``table`` with the name the target's frame sees (null where the table
    has no row). A partition of ``table`` changing counts as its session changing.
    """

    table: str
    columns: tuple[tuple[str, str], ...]
    #: What the join brings, for the run summary (``"$vwap from minute bars"``).
    label: str = ""


@dataclass(frozen=True, slots=True)
class QlibTarget:
    """A Qlib provider root built from a data type's silver partitions (``gold/qlib/<type>/<freq>``), one
    per configured adjustment (``gold.adjustment``; the split-only root under ``gold/qlib_split``).

    ``frame`` maps silver rows (``columns`` of them, ``datetime`` — the session for ``day``, the bar's
    exchange-local start for ``1min`` — and the ``joins``), the compact factor table and the root's
    ``adjustment`` to Qlib's long layout (``symbol``, ``datetime`` and one Float64 column per field).
    Values of one row may depend only on that row and its factor, so new sessions are appended and only
    symbols whose factors changed are rewritten. A ``1min`` root holds the bars of its calendar's hours
    (see ``gold.qlib_minute_session``).
    """

    freq: Frequency
    fields: tuple[str, ...]
    frame: Ref
    columns: tuple[str, ...]
    version: int = 1
    joins: tuple[SilverJoin, ...] = ()
    #: Silver columns read only by the root of one adjustment, after ``columns`` (the daily ``$change``:
    #: ``ret_1d`` in the total-return root, ``price_ret_1d`` in the split-only one), so a root never
    #: depends on a column it does not write.
    adjustment_columns: tuple[tuple[Adjustment, tuple[str, ...]], ...] = ()
    #: The adjustment of the root this target builds (see :meth:`for_adjustment`).
    adjustment: Adjustment = "total_return"

    def for_adjustment(self, adjustment: Adjustment) -> QlibTarget:
        """The target of the root adjusted by ``adjustment``: its ``columns`` include that root's own."""
        own = dict(self.adjustment_columns).get(adjustment, ())
        return replace(self, columns=(*self.columns, *own), adjustment_columns=(), adjustment=adjustment)

    #: A silver table of memberships (``ticker``, ``session_date``, ``universe``) written beside the root
    #: as Qlib market files, ``instruments/<universe>.txt`` (see :mod:`quantmini.pipeline.markets`).
    markets: str | None = None

    @property
    def values(self) -> tuple[str, ...]:
        """Per-bar input values (kept raw beside the root to rewrite a symbol without silver): the
        ``columns`` after ticker and session, then the joined columns."""
        return (*self.columns[2:], *(alias for join in self.joins for _, alias in join.columns))


#: Header of every Polygon aggregates flat file (stocks and options, day and minute), in vendor order.
AGGREGATE_CSV_COLUMNS: tuple[str, ...] = (
    "ticker",
    "volume",
    "open",
    "close",
    "high",
    "low",
    "window_start",
    "transactions",
)

#: Bronze columns shared by every aggregates dataset, in storage order.
AGGREGATE_BRONZE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("ticker", pa.string(), nullable=False),
    pa.field("session_date", pa.date32(), nullable=False),
    pa.field("ts", pa.timestamp("ns", tz="America/New_York"), nullable=False),
    pa.field("window_start", pa.int64(), nullable=False),
    pa.field("open", pa.float64(), nullable=False),
    pa.field("high", pa.float64(), nullable=False),
    pa.field("low", pa.float64(), nullable=False),
    pa.field("close", pa.float64(), nullable=False),
    # float64 on purpose: volumes are fractional (6 dp) in files from 2026-02-23 on.
    pa.field("volume", pa.float64(), nullable=False),
    pa.field("transactions", pa.int64(), nullable=False),
)

#: Extra bronze columns of minute bars.
MINUTE_BRONZE_FIELDS: tuple[pa.Field, ...] = (pa.field("regular_session", pa.bool_(), nullable=False),)

#: Extra bronze columns of options bars, parsed from the OCC ticker.
OPTION_BRONZE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("underlying", pa.string(), nullable=False),
    pa.field("expiration", pa.date32(), nullable=False),
    pa.field("option_type", pa.string(), nullable=False),
    pa.field("strike", pa.float64(), nullable=False),
)


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """One vendor dataset, declared as data.

    ``source_key(date)`` gives the object key inside the vendor bucket; the local mirror keeps the same
    key below ``<mirror>/<bucket>/``. Bronze holds one partition per exchange session, sorted by
    ``sort_columns``.
    """

    name: str
    asset: str
    dataset: str
    description: str
    csv_columns: tuple[str, ...]
    bronze_schema: pa.Schema
    key_columns: tuple[str, ...]
    sort_columns: tuple[str, ...]
    frequency: Frequency
    first_session: dt.date
    is_option: bool = False
    calendar: str = "XNYS"
    partitioning: str = "date"
    #: Prices and volumes are adjusted by the lake's split/dividend factors where they are read.
    adjustable: bool = False
    silver: tuple[SilverPart, ...] = field(default=())
    gold: tuple[QlibTarget, ...] = field(default=())

    @property
    def main_silver(self) -> SilverPart | None:
        """The silver part holding this data type's own bars (its table is named like the data type)."""
        return next((part for part in self.silver if part.name is None), None)

    @property
    def features(self) -> tuple[str, ...]:
        """Feature columns the main silver table adds (empty without one)."""
        main = self.main_silver
        return () if main is None else main.columns

    def silver_keys(self, part: SilverPart) -> tuple[str, ...]:
        """Columns unique per row of a partition of ``part``."""
        return self.key_columns if part.name is None else part.key_columns

    @property
    def has_silver(self) -> bool:
        """Whether a silver layer is declared."""
        return bool(self.silver)

    @property
    def has_qlib_gold(self) -> bool:
        """Whether a Qlib gold root is declared."""
        return bool(self.gold)

    @property
    def silver_schema(self) -> pa.Schema:
        """Schema of the main silver table (the bronze schema when none is declared)."""
        main = self.main_silver
        return self.bronze_schema if main is None else main.output_schema(self.bronze_schema)

    @property
    def prefix(self) -> str:
        """Key prefix of this dataset inside the bucket, e.g. ``us_stocks_sip/day_aggs_v1``."""
        return f"{self.asset}/{self.dataset}"

    def source_key(self, session: dt.date) -> str:
        """Object key of the flat file for ``session`` (``{prefix}/YYYY/MM/YYYY-MM-DD.csv.gz``)."""
        return f"{self.prefix}/{session:%Y}/{session:%m}/{session:%Y-%m-%d}.csv.gz"

    def session_from_key(self, key: str) -> dt.date | None:
        """Inverse of :meth:`source_key`; ``None`` when ``key`` is not a file of this dataset."""
        if not key.startswith(self.prefix + "/") or not key.endswith(".csv.gz"):
            return None
        name = key.rsplit("/", 1)[-1].removesuffix(".csv.gz")
        try:
            session = dt.date.fromisoformat(name)
        except ValueError:
            return None
        return session if self.source_key(session) == key else None


def aggregate_schema(*extra: tuple[pa.Field, ...]) -> pa.Schema:
    """Bronze schema of an aggregates dataset: the shared fields plus ``extra`` groups."""
    fields = list(AGGREGATE_BRONZE_FIELDS)
    for group in extra:
        fields.extend(group)
    return pa.schema(fields)
