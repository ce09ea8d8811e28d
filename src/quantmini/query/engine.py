"""The query engine: partition pruning by path, DuckDB in-process, Polars out, an LRU result cache.

Only the partitions of sessions inside the query's range are handed to DuckDB, which then prunes row
groups on the ticker/date statistics; adjusted prices join the compact factor table, and features of a
feature set join that set's partitions of the same sessions (:mod:`quantmini.query.feature_sets`). Minute
bars are filtered by time of day and resampled in DuckDB too, so only the answer reaches Python. Results
are cached under the query spec *and* the identity (path, size, mtime) of every file read (the factor
table and feature partitions included), so a re-ingested partition, a rebuilt feature set or a new
corporate action is never answered from the cache.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import polars as pl
import pyarrow as pa

from quantmini import __version__
from quantmini._exceptions import QueryError
from quantmini.datasets import get_spec
from quantmini.features.library import sets_of
from quantmini.io.lake import PARTITION_FILE, Lake
from quantmini.io.parquet import empty_table, read_parquet_files
from quantmini.query.cache import InputIdentities, ResultCache, cache_key
from quantmini.query.explain import Explanation, profiled
from quantmini.query.feature_sets import feature_reads, not_built_message
from quantmini.query.identity import Resolution, resolve
from quantmini.query.spec import QuerySpec, has_silver
from quantmini.query.sql import FeatureJoin, build_coverage_query, build_query, needs_factors, select_items

if TYPE_CHECKING:
    from quantmini.config.settings import FeatureSettings

logger = logging.getLogger(__name__)

_PARTITION_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def _dated(directory: Path) -> list[tuple[dt.date, str]]:
    """The ``date=YYYY-MM-DD`` entries of ``directory`` (names only, nothing opened), sorted."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        match = _PARTITION_DIR.match(name)
        if match is None:
            continue
        try:
            found.append((dt.date.fromisoformat(match.group(1)), name))
        except ValueError:
            continue
    return sorted(found)


def partition_sessions(
    directory: Path, start: dt.date = dt.date.min, end: dt.date = dt.date.max
) -> list[dt.date]:
    """Sessions in ``[start, end]`` with a ``date=YYYY-MM-DD/part.parquet`` file below ``directory``, sorted.

    Only the sessions in range are checked for their file (a one-session query over 20 years checks one),
    temporaries (``.<name>.tmp-*``) and any other names are ignored; a missing directory has none.
    """
    base = str(directory)
    return [
        session
        for session, name in _dated(directory)
        if start <= session <= end and os.path.isfile(os.path.join(base, name, PARTITION_FILE))
    ]


def output_schema(spec: QuerySpec) -> pl.Schema:
    """Polars schema of the frame answering ``spec`` (also the schema of an empty answer)."""
    types = spec.field_types
    arrow = pa.schema([pa.field(output, types[source]) for source, output in select_items(spec)])
    return pl.DataFrame(empty_table(arrow)).schema


def conform(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """``frame`` cast to ``schema``; tz-aware timestamps are converted (same instant), not relabelled."""
    exprs: list[pl.Expr] = []
    for name, dtype in schema.items():
        column = pl.col(name)
        current = frame.schema[name]
        if isinstance(dtype, pl.Datetime) and dtype.time_zone and isinstance(current, pl.Datetime):
            column = column.dt.convert_time_zone(dtype.time_zone)
        exprs.append(column.cast(dtype))
    return frame.select(exprs)


@dataclass(frozen=True, slots=True)
class Coverage:
    """What the lake holds for a query's data type and symbols, over all its sessions: what a user needs
    to know when an answer is empty."""

    first: dt.date | None
    """First stored session of the data type (``None``: none is stored)."""
    last: dt.date | None
    """Last stored session of the data type."""
    sessions_in_range: int
    """Stored sessions inside the query's range."""
    found: Mapping[str, tuple[dt.date, dt.date]]
    """First and last session of each symbol asked for that the lake holds, in the order asked."""
    missing: tuple[str, ...]
    """Symbols asked for that no stored session holds."""


class QueryEngine:
    """Answers :class:`QuerySpec` questions from the lake below ``data_root``.

    Answers are cached at two levels, both keyed by the normalised query and the identity of every file it
    reads (:mod:`quantmini.query.cache`), so an answer whose inputs changed is never served: the last
    ``cache_size`` answers in this process (least recently used evicted first; ``0``: none), and a cache on
    disk under the lake shared by every process, of ``cache_mb`` megabytes (``None``: ``query.cache_mb``
    from the configuration; ``0``: off). Returned frames are independent copies, so callers may modify
    them freely. ``features`` says which feature sets the lake is configured to build
    (``features.<data type>``); ``None`` reads them from the configuration (config file and environment)
    when a query first asks for a feature of a set.
    """

    def __init__(
        self,
        data_root: Path,
        cache_size: int = 32,
        *,
        features: FeatureSettings | None = None,
        cache_mb: float | None = None,
    ) -> None:
        if cache_size < 0:
            raise QueryError(f"cache_size must be >= 0, got {cache_size}")
        if cache_mb is not None and cache_mb < 0:
            raise QueryError(f"cache_mb must be >= 0, got {cache_mb}")
        self.lake = Lake(Path(data_root))
        self.cache_size = cache_size
        self._features = features
        self._cache: OrderedDict[str, pl.DataFrame] = OrderedDict()
        self._cache_mb = cache_mb
        self._disk: ResultCache | None = None
        self._inputs = InputIdentities(self.lake)
        #: Cache lookups of this engine: ``hits`` (from memory or disk) and ``misses``.
        self.stats: Counter[str] = Counter()
        self._entities: tuple[str, pl.DataFrame] | None = None
        self._lock = threading.Lock()
        self._connection: duckdb.DuckDBPyConnection | None = None

    @property
    def _db(self) -> duckdb.DuckDBPyConnection:
        """One in-process database for the engine's life, opened by the first query that needs it (an
        answer from the cache needs none): Parquet footers read once are reused by later queries (cursors
        share the database; each query gets its own cursor, so threads are safe)."""
        with self._lock:
            if self._connection is None:
                self._connection = duckdb.connect()
                self._connection.execute("SET parquet_metadata_cache = true")
            return self._connection

    @property
    def disk_cache(self) -> ResultCache | None:
        """The lake's shared result cache (``None`` when it is off)."""
        if self._cache_mb is None:
            from quantmini.config import load_settings

            self._cache_mb = load_settings().query.cache_mb
        if self._disk is None and self._cache_mb > 0:
            self._disk = ResultCache(self.lake.root / "_cache" / "query", int(self._cache_mb * 1e6))
        return self._disk

    def resolve(self, spec: QuerySpec) -> Resolution | None:
        """Which companies ``spec``'s symbols name (stocks, once the lake has entities); ``None``: the
        symbols are read as given."""
        path = self.lake.silver_reference("entities")
        if not spec.dataset.adjustable or not spec.symbols or not path.exists():
            return None
        identity = self._inputs.of([path])[0]
        with self._lock:
            known = self._entities
        if known is None or known[0] != identity:  # read once, again only when the file changes
            known = (identity, read_parquet_files([path]))
            with self._lock:
                self._entities = known
        return resolve(known[1], spec.symbols, spec.start, spec.end)

    def query(self, spec: QuerySpec) -> pl.DataFrame:
        """The bars ``spec`` asks for, sorted by (ticker, window_start); empty when none match. A stock
        symbol names a company: its bars under every ticker it traded as (see :meth:`resolve`)."""
        read, resolution = self._by_ticker(spec)
        if resolution is None:
            return self._query(spec)
        return resolution.keep(self._query(read)).select(output_schema(spec).names())

    def _by_ticker(self, spec: QuerySpec) -> tuple[QuerySpec, Resolution | None]:
        """``spec`` over the tickers its companies traded as (with the columns that tell their rows apart)
        and the resolution that keeps the companies' rows; ``spec`` itself and ``None`` when its symbols
        are read as given."""
        resolution = self.resolve(spec)
        if resolution is None or resolution.tickers == spec.symbols:
            return spec, None
        fields = spec.fields
        if fields is not None:
            fields = (*(f for f in ("ticker", "session_date") if f not in fields), *fields)
        return dataclasses.replace(spec, symbols=resolution.tickers, fields=fields), resolution

    def batches(self, spec: QuerySpec, batch_rows: int = 131_072) -> Iterator[pa.RecordBatch]:
        """The answer to ``spec`` as Arrow record batches streamed from DuckDB, in order, never held whole
        in memory (for answers larger than memory: :func:`quantmini.query.output.write_batches` writes
        them to a file). Not cached."""
        read, resolution = self._by_ticker(spec)
        schema, read_schema = output_schema(spec), output_schema(read)
        files = self.files_for(read)
        if not files:
            return
        sql, params = build_query(read, files, self._factors(read), self.feature_joins(read, files))
        try:
            with self._db.cursor() as con:
                for batch in con.sql(sql, params=params).to_arrow_reader(batch_rows):
                    frame = pl.from_arrow(batch)
                    assert isinstance(frame, pl.DataFrame)
                    frame = conform(frame, read_schema)
                    if resolution is not None:
                        frame = resolution.keep(frame).select(schema.names())
                    yield from frame.to_arrow().to_batches()
        except duckdb.Error as exc:
            raise QueryError(f"query on {spec.data_type} failed: {exc}") from exc

    def explain(self, spec: QuerySpec) -> Explanation:
        """Answer ``spec`` with DuckDB's profiler on and say what was read: the partitions handed to
        DuckDB (of those stored) and, per Parquet scan, the files and row groups it scanned (never from the
        cache)."""
        spec = self._by_ticker(spec)[0]
        files = self.files_for(spec)
        joins = self.feature_joins(spec, files)
        everything = dataclasses.replace(spec, start=dt.date.min, end=dt.date.max)
        stored = len(self.files_for(everything))  # the partitions the same query could read at all
        if not files:
            return Explanation(spec.data_type, stored, [], [], 0, "(nothing to read)", "")
        sql, params = build_query(spec, files, self._factors(spec), joins)
        try:
            with self._db.cursor() as con:
                rows, scans, plan = profiled(con, sql, params, self.lake.root)
        except duckdb.Error as exc:
            raise QueryError(f"query on {spec.data_type} failed: {exc}") from exc
        return Explanation(spec.data_type, stored, files, scans, rows, plan, sql)

    def _query(self, spec: QuerySpec) -> pl.DataFrame:
        files = self.files_for(spec)
        joins = self.feature_joins(spec, files)
        schema = output_schema(spec)
        if not files:
            return pl.DataFrame(schema=schema)
        factors = self._factors(spec)
        features = [Path(f) for join in joins for f in join.files]
        read = [*files, *features, *([factors] if factors is not None else [])]
        key = cache_key((__version__, spec), self._inputs.of(read))
        cached = self._cache_get(key)
        disk = self.disk_cache
        if cached is None and disk is not None:
            cached = disk.get(key)
            if cached is not None:
                self._cache_put(key, cached)
        self.stats["hits" if cached is not None else "misses"] += 1
        if cached is not None:
            return cached.clone()
        frame = conform(self._run(spec, files, factors, joins), schema)
        self._cache_put(key, frame)
        if disk is not None:
            disk.put(key, frame)
        return frame.clone()

    def files_for(self, spec: QuerySpec) -> list[Path]:
        """The partition files a query reads: one per ingested session in ``[start, end]``.

        Silver is read when the query needs it (features); otherwise each session's silver partition
        when present, else its bronze one. Adjusted prices are computed from the factor table.
        """
        dataset = spec.dataset
        bronze_dir, silver_dir = self.lake.bronze_dir(dataset), self.lake.silver_dir(dataset)
        any_silver = has_silver(dataset) and bool(_dated(silver_dir))
        if not any_silver and not _dated(bronze_dir):
            raise QueryError(
                f"nothing was ingested for data type {dataset.name} under {self.lake.root} "
                "(no bronze partitions): run the pipeline for it first"
            )
        if spec.needs_silver and not any_silver:
            raise QueryError(
                f"{dataset.name} has no silver partitions under {self.lake.root} yet (the features come "
                f"with them): run `quantmini data enrich --data-type {dataset.name}`"
            )
        silver_in_range = set(partition_sessions(silver_dir, spec.start, spec.end) if any_silver else [])
        if spec.needs_silver:
            return [self.lake.silver_partition(dataset, d) for d in sorted(silver_in_range)]
        sessions = sorted(silver_in_range.union(partition_sessions(bronze_dir, spec.start, spec.end)))
        return [
            self.lake.silver_partition(dataset, d)
            if d in silver_in_range
            else self.lake.bronze_partition(dataset, d)
            for d in sessions
        ]

    def feature_joins(self, spec: QuerySpec, files: list[Path]) -> list[FeatureJoin]:
        """The feature set tables ``spec`` reads besides the bars in ``files`` (:meth:`files_for`): per
        set, its fields and its partitions of the same sessions.

        :class:`QueryError` when a field's set is not configured, not built yet, or lacks a session of
        ``files`` (each with the command that fixes it).
        """
        if not spec.feature_fields:
            return []
        configured = self._configured_features().of(spec.data_type)
        built = [s.name for s in sets_of(spec.data_type).values() if self.lake.silver_dir(s.table()).is_dir()]
        sessions = [_session_of(f) for f in files]
        joins = []
        for read in feature_reads(spec, configured, built):
            table = self.lake.silver_dir(read.table)
            held = set(partition_sessions(table, spec.start, spec.end))
            missing = [d for d in sessions if d not in held]
            built_any = bool(held) or bool(_dated(table))
            if not built_any or missing:
                raise QueryError(not_built_message(read, spec.data_type, missing if built_any else ()))
            paths = tuple(str(self.lake.silver_partition(read.table, d)) for d in sessions)
            joins.append(FeatureJoin(read.fields, paths))
        return joins

    def _configured_features(self) -> FeatureSettings:
        if self._features is None:
            from quantmini.config import load_settings

            self._features = load_settings().features
        return self._features

    def coverage(self, spec: QuerySpec) -> Coverage:
        """What the lake holds for ``spec``'s symbols over every stored session (the layer the query
        reads); it reads the ticker and date columns of every partition, so it is for explaining an
        empty answer, not for every query."""
        everything = dataclasses.replace(spec, start=dt.date.min, end=dt.date.max)
        files = self.files_for(everything)
        sessions = [dt.date.fromisoformat(f.parent.name.removeprefix("date=")) for f in files]
        found: dict[str, tuple[dt.date, dt.date]] = {}
        if files:
            sql, params = build_coverage_query(spec, files)
            try:
                with self._db.cursor() as con:
                    rows = con.execute(sql, params).fetchall()
            except duckdb.Error as exc:
                raise QueryError(f"reading what the lake holds for {spec.data_type} failed: {exc}") from exc
            spans = {str(ticker): (first, last) for ticker, first, last in rows}
            found = {s: spans[s] for s in spec.match[1] if s in spans}
        return Coverage(
            first=sessions[0] if sessions else None,
            last=sessions[-1] if sessions else None,
            sessions_in_range=len(_between(sessions, spec)),
            found=found,
            missing=tuple(s for s in spec.match[1] if s not in found),
        )

    def clear_cache(self) -> None:
        """Forget every result cached in this process (the lake's shared cache keeps its entries; they
        are never served once their inputs change)."""
        with self._lock:
            self._cache.clear()

    def _factors(self, spec: QuerySpec) -> Path | None:
        """The compact factor table, when the query reads adjustment columns and the lake has one."""
        path = self.lake.adjustment_factors()
        return path if spec.dataset.adjustable and needs_factors(spec) and path.exists() else None

    def _run(
        self, spec: QuerySpec, files: list[Path], factors: Path | None, joins: list[FeatureJoin]
    ) -> pl.DataFrame:
        sql, params = build_query(spec, files, factors, joins)
        logger.debug(
            "query %s over %d partition(s), %d feature table(s)", spec.data_type, len(files), len(joins)
        )
        try:
            with self._db.cursor() as con:
                frame: pl.DataFrame = con.sql(sql, params=params).pl()
        except duckdb.Error as exc:
            raise QueryError(f"query on {spec.data_type} failed: {exc}") from exc
        return frame

    def _cache_get(self, key: str) -> pl.DataFrame | None:
        with self._lock:
            frame = self._cache.get(key)
            if frame is not None:
                self._cache.move_to_end(key)
            return frame

    def _cache_put(self, key: str, frame: pl.DataFrame) -> None:
        if self.cache_size == 0:
            return
        with self._lock:
            self._cache[key] = frame
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)


def _between(sessions: Iterable[dt.date], spec: QuerySpec) -> list[dt.date]:
    return [d for d in sessions if spec.start <= d <= spec.end]


def _session_of(partition: Path) -> dt.date:
    """The session of a ``date=YYYY-MM-DD/part.parquet`` file."""
    return dt.date.fromisoformat(partition.parent.name.removeprefix("date="))


Output = Literal["polars", "pandas", "arrow"]


def _as(frame: pl.DataFrame, output: Output) -> Any:
    """``frame`` as the caller asked: Polars (the default), pandas or an Arrow table."""
    if output == "polars":
        return frame
    if output == "arrow":
        return frame.to_arrow()
    if output == "pandas":
        return frame.to_pandas()
    raise QueryError(f"output must be polars, pandas or arrow, got {output!r}")


def _engine(data_root: Path | str, features: FeatureSettings | None, cache: bool) -> QueryEngine:
    """A one-shot engine: no answers kept in memory; the lake's shared cache unless ``cache`` is off."""
    return QueryEngine(Path(data_root), cache_size=0, features=features, cache_mb=None if cache else 0)


def query(
    data_root: Path | str,
    data_type: str,
    symbols: Iterable[str] | str,
    start: dt.date,
    end: dt.date,
    fields: Iterable[str] | None = None,
    adjusted: bool | None = None,
    *,
    session: str = "all",
    bar: str | None = None,
    underlying: str | None = None,
    expiration: dt.date | None = None,
    features: FeatureSettings | None = None,
    adjustment: str | None = None,
    cache: bool = True,
    output: Output = "polars",
) -> Any:
    """One query: see :class:`QuerySpec` and :class:`QueryEngine`. Returns a Polars frame, or with
    ``output="pandas"`` / ``"arrow"`` a pandas frame or an Arrow table. Answers come from the lake's
    shared result cache when their inputs have not changed (``cache=False``: never).

    For minute data types, ``session`` keeps the ``"regular"`` session's bars (09:30 to the close) or the
    ``"extended"`` hours' ones, and ``bar="5min"`` resamples to 5-minute bars (with ``vwap`` and
    ``bar_count``). ``adjusted=None`` means adjusted where splits and dividends apply (stocks), raw
    otherwise; ``adjustment`` chooses how: ``"total_return"`` (splits and dividends, the default),
    ``"split"`` (splits only) or ``"none"`` (raw). Options take ``underlying`` (the delivered stock: that
    underlying's chain, ``symbols`` may then be empty) and ``expiration``.

    ``fields`` may name features of the data type's feature sets (``KMID``, ``ROC5``, ``RSI14``: see
    ``quantmini features list``), read as stored (never adjusted) from the tables of the sets configured
    in ``features`` (default: the configuration's ``features.<data type>``).
    """
    spec = QuerySpec(
        data_type=data_type,
        symbols=(symbols,) if isinstance(symbols, str) else tuple(symbols),
        start=start,
        end=end,
        fields=None if fields is None else ((fields,) if isinstance(fields, str) else tuple(fields)),
        adjusted=adjusted,
        session=session,
        bar=bar,
        underlying=underlying,
        expiration=expiration,
        adjustment=adjustment,
    )
    return _as(_engine(data_root, features, cache).query(spec), output)


def cross_section(
    data_root: Path | str,
    data_type: str,
    session: dt.date,
    fields: Iterable[str] | None = None,
    *,
    adjustment: str | None = None,
    features: FeatureSettings | None = None,
    cache: bool = True,
    output: Output = "polars",
) -> Any:
    """Every symbol's bar of one ``session`` (minute data types: every bar of that session), sorted by
    ticker: the shape a factor is ranked in. ``fields`` as in :func:`query` (features included)."""
    spec = QuerySpec(
        data_type=data_type,
        symbols=(),
        start=session,
        end=session,
        fields=None if fields is None else tuple(fields),
        adjustment=adjustment,
        all_symbols=True,
    )
    return _as(_engine(data_root, features, cache).query(spec), output)


def panel(
    data_root: Path | str,
    data_type: str,
    field: str,
    start: dt.date,
    end: dt.date,
    symbols: Iterable[str] | None = None,
    *,
    adjustment: str | None = None,
    features: FeatureSettings | None = None,
    cache: bool = True,
    output: Output = "polars",
) -> Any:
    """One ``field`` as a wide panel: a row per session (``session_date``; minute data types: per bar,
    ``ts``), a column per symbol (sorted), null where a symbol has no bar. ``symbols=None`` takes every
    symbol that traded in the range (by ticker as traded; name symbols to follow companies across a
    rename: a renamed company's column then holds its bars under every ticker)."""
    names = None if symbols is None else ((symbols,) if isinstance(symbols, str) else tuple(symbols))
    index = "session_date" if get_spec(data_type).frequency == "day" else "ts"
    spec = QuerySpec(
        data_type=data_type,
        symbols=names or (),
        start=start,
        end=end,
        fields=tuple(dict.fromkeys(("ticker", "session_date", index, field))),
        adjustment=adjustment,
        all_symbols=names is None,
    )
    engine = _engine(data_root, features, cache)
    long = engine.query(spec)
    resolution = engine.resolve(spec)
    if resolution is not None:  # a company's column holds its bars under every ticker it used
        long = long.with_columns(resolution.symbol_of(long))
    columns = sorted(names) if names is not None else sorted(long["ticker"].unique().to_list())
    wide = long.pivot(on="ticker", index=index, values=field, aggregate_function="first", sort_columns=True)
    for name in columns:
        if name not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=long.schema[field]).alias(name))
    return _as(wide.select(index, *columns).sort(index), output)
