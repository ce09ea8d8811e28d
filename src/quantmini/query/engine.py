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
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl
import pyarrow as pa

from quantmini._exceptions import QueryError
from quantmini.features.library import sets_of
from quantmini.io.lake import PARTITION_FILE, Lake
from quantmini.io.parquet import empty_table, read_parquet_files
from quantmini.query.explain import Explanation, profiled
from quantmini.query.feature_sets import feature_reads, not_built_message
from quantmini.query.identity import Resolution, resolve
from quantmini.query.spec import QuerySpec, has_silver
from quantmini.query.sql import FeatureJoin, build_coverage_query, build_query, needs_factors, select_items

if TYPE_CHECKING:
    from quantmini.config.settings import FeatureSettings

logger = logging.getLogger(__name__)

_PARTITION_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")

FileIdentity = tuple[str, int, int]
_CacheKey = tuple[QuerySpec, tuple[FileIdentity, ...]]


def partition_sessions(directory: Path) -> list[dt.date]:
    """Sessions with a ``date=YYYY-MM-DD/part.parquet`` file below ``directory``, sorted.

    Temporaries (``.<name>.tmp-*``) and any other names are ignored; a missing directory has none.
    """
    if not directory.is_dir():
        return []
    found: list[dt.date] = []
    for child in directory.iterdir():
        match = _PARTITION_DIR.match(child.name)
        if match is None or not (child / PARTITION_FILE).is_file():
            continue
        try:
            found.append(dt.date.fromisoformat(match.group(1)))
        except ValueError:
            continue
    return sorted(found)


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

    ``cache_size`` results are kept (least recently used evicted first); ``0`` disables the cache.
    Returned frames are independent copies, so callers may modify them freely. ``features`` says which
    feature sets the lake is configured to build (``features.<data type>``); ``None`` reads them from the
    configuration (config file and environment) when a query first asks for a feature of a set.
    """

    def __init__(
        self, data_root: Path, cache_size: int = 32, *, features: FeatureSettings | None = None
    ) -> None:
        if cache_size < 0:
            raise QueryError(f"cache_size must be >= 0, got {cache_size}")
        self.lake = Lake(Path(data_root))
        self.cache_size = cache_size
        self._features = features
        self._cache: OrderedDict[_CacheKey, pl.DataFrame] = OrderedDict()
        self._entities: tuple[FileIdentity, pl.DataFrame] | None = None
        self._lock = threading.Lock()
        # One in-process database for the engine's life: Parquet footers read once are reused by later
        # queries (cursors share the database; each query gets its own cursor, so threads are safe).
        self._db = duckdb.connect()
        self._db.execute("SET parquet_metadata_cache = true")

    def resolve(self, spec: QuerySpec) -> Resolution | None:
        """Which companies ``spec``'s symbols name (stocks, once the lake has entities); ``None``: the
        symbols are read as given."""
        path = self.lake.silver_reference("entities")
        if not spec.dataset.adjustable or not spec.symbols or not path.exists():
            return None
        identity = _identity(path)
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
        resolution = self.resolve(spec)
        if resolution is None or resolution.tickers == spec.symbols:
            return self._query(spec)
        frame = self._query(_by_ticker(spec, resolution))
        return resolution.keep(frame).select(output_schema(spec).names())

    def explain(self, spec: QuerySpec) -> Explanation:
        """Answer ``spec`` with DuckDB's profiler on and say what was read: the partitions handed to
        DuckDB (of those stored) and, per Parquet scan, the files and row groups it scanned (never from the
        cache)."""
        resolution = self.resolve(spec)
        if resolution is not None and resolution.tickers != spec.symbols:
            spec = _by_ticker(spec, resolution)
        files = self.files_for(spec)
        joins = self.feature_joins(spec, files)
        dataset = spec.dataset
        silver = partition_sessions(self.lake.silver_dir(dataset)) if has_silver(dataset) else []
        stored = len(
            set(silver)
            if spec.needs_silver
            else set(silver) | set(partition_sessions(self.lake.bronze_dir(dataset)))
        )
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
        key: _CacheKey = (spec, tuple(_identity(f) for f in read))
        cached = self._cache_get(key)
        if cached is not None:
            return cached.clone()
        frame = conform(self._run(spec, files, factors, joins), schema)
        self._cache_put(key, frame)
        return frame.clone()

    def files_for(self, spec: QuerySpec) -> list[Path]:
        """The partition files a query reads: one per ingested session in ``[start, end]``.

        Silver is read when the query needs it (features); otherwise each session's silver partition
        when present, else its bronze one. Adjusted prices are computed from the factor table.
        """
        dataset = spec.dataset
        bronze = partition_sessions(self.lake.bronze_dir(dataset))
        silver = partition_sessions(self.lake.silver_dir(dataset)) if has_silver(dataset) else []
        if not bronze and not silver:
            raise QueryError(
                f"nothing was ingested for data type {dataset.name} under {self.lake.root} "
                "(no bronze partitions): run the pipeline for it first"
            )
        if spec.needs_silver and not silver:
            raise QueryError(
                f"{dataset.name} has no silver partitions under {self.lake.root} yet (the features come "
                f"with them): run `quantmini data enrich --data-type {dataset.name}`"
            )
        silver_in_range = set(_between(silver, spec))
        if spec.needs_silver:
            return [self.lake.silver_partition(dataset, d) for d in sorted(silver_in_range)]
        sessions = sorted(silver_in_range.union(_between(bronze, spec)))
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
            held = set(partition_sessions(self.lake.silver_dir(read.table)))
            missing = [d for d in sessions if d not in held]
            if not held or missing:
                raise QueryError(not_built_message(read, spec.data_type, missing if held else ()))
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
        """Forget every cached result."""
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

    def _cache_get(self, key: _CacheKey) -> pl.DataFrame | None:
        with self._lock:
            frame = self._cache.get(key)
            if frame is not None:
                self._cache.move_to_end(key)
            return frame

    def _cache_put(self, key: _CacheKey, frame: pl.DataFrame) -> None:
        if self.cache_size == 0:
            return
        with self._lock:
            self._cache[key] = frame
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)


def _by_ticker(spec: QuerySpec, resolution: Resolution) -> QuerySpec:
    """``spec`` over the tickers its companies traded as (with the columns that tell their rows apart)."""
    fields = spec.fields
    if fields is not None:
        fields = (*(f for f in ("ticker", "session_date") if f not in fields), *fields)
    return dataclasses.replace(spec, symbols=resolution.tickers, fields=fields)


def _between(sessions: Iterable[dt.date], spec: QuerySpec) -> list[dt.date]:
    return [d for d in sessions if spec.start <= d <= spec.end]


def _session_of(partition: Path) -> dt.date:
    """The session of a ``date=YYYY-MM-DD/part.parquet`` file."""
    return dt.date.fromisoformat(partition.parent.name.removeprefix("date="))


def _identity(path: Path) -> FileIdentity:
    try:
        stat = path.stat()
    except OSError as exc:
        raise QueryError(f"partition {path} vanished while querying: {exc.strerror or exc}") from exc
    return (str(path), stat.st_size, stat.st_mtime_ns)


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
) -> pl.DataFrame:
    """One-shot query (no cache kept between calls): see :class:`QuerySpec` and :class:`QueryEngine`.

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
    return QueryEngine(Path(data_root), cache_size=0, features=features).query(spec)
