"""The query value object and the column knowledge it is validated against.

A :class:`QuerySpec` is validated once, at construction: the data type exists, the range is ordered, at
least one symbol is given, every field is a column of that data type, adjusted prices are only asked of
data types that split and dividend factors apply to, and the minute options (``session``, ``bar``) only of
minute data types.

Which columns a data type offers is derived from its :class:`~quantmini.datasets.DatasetSpec`: the silver
schema (the bronze columns plus features), plus — for adjustable data types — the adjustment columns
(:data:`ADJUSTMENT_COLUMNS`), which are computed from the factor table when read, plus the features of the
data type's feature sets (``KMID``, ``ROC5``, ``RSI14`` …, see :mod:`quantmini.features.library`), which
live in silver tables of their own and are never adjusted.

Each adjustment column says its adjustment by its prefix (see :mod:`quantmini.core.adjustment_names`):
``adj_open`` … ``adj_close`` are raw × ``adj_factor`` (splits and dividends: total return), ``split_open``
… ``split_close`` raw × ``split_factor`` (splits only); the volumes are raw ÷ the same factor
(``adj_volume``, ``split_volume``), so price × volume is the raw traded value in either, as in the Qlib
roots of the same adjustment. A query's ``adjustment`` (``total_return``, ``split`` or ``none``) chooses
which of them its ``open`` … ``volume`` are.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa

from quantmini._exceptions import QuantminiError, QueryError
from quantmini.core.adjustment_names import COLUMN_PREFIXES, QUERY_ADJUSTMENTS
from quantmini.datasets import DATASETS, DatasetSpec, get_spec
from quantmini.features.library import sets_of

#: Price and volume columns an adjusted query reads from their ``adj_`` (total return) or ``split_``
#: (split-only) counterpart.
ADJUSTED_PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")

#: Columns computed from the factor table when an adjustable data type is read: the two factors, then the
#: prices and volume of each adjustment (``adj_open`` … ``adj_volume``, ``split_open`` … ``split_volume``).
ADJUSTMENT_COLUMNS: tuple[str, ...] = (
    "split_factor",
    "adj_factor",
    *(f"{prefix}{name}" for prefix in COLUMN_PREFIXES.values() for name in ADJUSTED_PRICE_COLUMNS),
)

#: Bar columns every default field list ends with.
_DEFAULT_BAR_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "transactions")

#: Time-of-day filters of minute bars: every bar, the regular session (09:30 to the session's close,
#: early closes included) or extended hours (pre-market and after-hours).
SESSIONS: tuple[str, ...] = ("all", "regular", "extended")

#: Sizes, in minutes, minute bars can be resampled to. The divisors of 30 keep one grid through 04:00,
#: 09:30 and the close (16:00, or 13:00 on an early-close day); 60 is aligned to 09:30 in the regular
#: session and to 04:00 outside it, and the buckets the open or the close cuts are shorter.
BAR_MINUTES: tuple[int, ...] = (1, 2, 3, 5, 6, 10, 15, 30, 60)

#: Columns resampled bars add to the data type's columns.
BAR_COLUMNS: dict[str, pa.DataType] = {"vwap": pa.float64(), "bar_count": pa.int64()}

_BAR_PATTERN = re.compile(r"^([0-9]+)min$")


#: Columns an option chain query (``underlying=``) returns by default, where the data type has them.
CHAIN_FIELDS: tuple[str, ...] = (
    "ticker",
    "session_date",
    "ts",
    "expiration",
    "option_type",
    "strike",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "underlying_price",
    "moneyness",
    "iv",
    "delta",
    "gamma",
    "vega",
    "theta",
    "iv_reason",
)

#: Option bronze holds the OCC root in ``underlying``; silver resolves it to the delivered stock.
_RESOLVED_OPTION_COLUMNS = ("underlying",)


def has_silver(dataset: DatasetSpec) -> bool:
    """Whether ``dataset`` has a main silver table (raw bars plus features)."""
    return dataset.main_silver is not None


def silver_only_columns(dataset: DatasetSpec) -> tuple[str, ...]:
    """Columns only silver answers: those bronze lacks (features, option greeks …), for options
    ``underlying``, which silver resolves to the delivered stock (bronze holds the OCC root), and the
    features of the data type's feature sets (:func:`feature_types`)."""
    if dataset.main_silver is None:
        return ()
    bronze = set(dataset.bronze_schema.names)
    extra = tuple(n for n in dataset.silver_schema.names if n not in bronze)
    return (*extra, *(_RESOLVED_OPTION_COLUMNS if dataset.is_option else ()), *feature_types(dataset))


def feature_types(dataset: DatasetSpec) -> dict[str, pa.DataType]:
    """The features of ``dataset``'s feature sets that live in tables of their own (every set but
    ``base``, whose features are columns of the main silver table), mapped to their stored Arrow type.

    Their values are scale-free or in the session's own share basis, so they are read as stored: never
    adjusted, whatever ``adjusted`` says. Empty for a data type without a main silver table.
    """
    return dict(_feature_types(dataset.name)) if dataset.main_silver is not None else {}


@functools.cache
def _feature_types(data_type: str) -> tuple[tuple[str, pa.DataType], ...]:
    found: dict[str, pa.DataType] = {}
    for feature_set in sets_of(data_type).values():
        if not feature_set.is_base:
            stored = pa.float32() if feature_set.precision == 32 else pa.float64()
            found.update(dict.fromkeys(feature_set.names, stored))
    return tuple(found.items())


def column_types(dataset: DatasetSpec) -> dict[str, pa.DataType]:
    """Every queryable column of ``dataset`` mapped to its Arrow type, in storage order: the stored
    columns, then (for adjustable data types) the adjustment columns computed when read."""
    types = {f.name: f.type for f in dataset.silver_schema}
    if dataset.adjustable:
        for name in ADJUSTMENT_COLUMNS:
            types[name] = pa.float64()
    return types


def field_types(dataset: DatasetSpec, resampled: bool = False) -> dict[str, pa.DataType]:
    """Every field a query of ``dataset`` may ask for, mapped to its Arrow type: :func:`column_types` and
    :func:`feature_types`, or for ``resampled`` bars :func:`column_types` without the features (they are
    not resampled) plus :data:`BAR_COLUMNS`."""
    types = column_types(dataset)
    if not resampled:
        return {**types, **feature_types(dataset)}
    features = set(silver_only_columns(dataset))
    return {**{n: t for n, t in types.items() if n not in features}, **BAR_COLUMNS}


def default_fields(dataset: DatasetSpec, resampled: bool = False) -> tuple[str, ...]:
    """Fields returned when a query names none: ticker, session date (+ ``ts`` for minute bars), bars
    (+ ``vwap`` and ``bar_count`` for ``resampled`` bars)."""
    time_fields = ("ts",) if dataset.frequency != "day" else ()
    bar_fields = tuple(BAR_COLUMNS) if resampled else ()
    return ("ticker", "session_date", *time_fields, *_DEFAULT_BAR_FIELDS, *bar_fields)


def minute_data_types() -> tuple[str, ...]:
    """Registered data types with minute bars (the ones ``session`` and ``bar`` apply to)."""
    return tuple(name for name, spec in DATASETS.items() if spec.frequency != "day")


def parse_bar(value: str) -> int:
    """Minutes of a bar size written ``"<N>min"`` (``"5min"``), checked against :data:`BAR_MINUTES`."""
    choices = ", ".join(f"{n}min" for n in BAR_MINUTES)
    match = _BAR_PATTERN.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise QueryError(
            f"bar must be a number of minutes like '5min', got {value!r} (choose one of: {choices})"
        )
    minutes = int(match.group(1))
    if minutes not in BAR_MINUTES:
        raise QueryError(
            f"bar {value.strip()!r} is not supported: bars stay aligned to 09:30 and the close only when "
            f"their minutes divide 30, or are 60 (choose one of: {choices})"
        )
    return minutes


def unknown_field_message(dataset: DatasetSpec, name: str, valid: Iterable[str]) -> str:
    """Why ``name`` is not a field of ``dataset``: the valid columns (the feature sets by name only: they
    hold hundreds of features) and the closest names, features included (``kmid`` → ``KMID``)."""
    valid = tuple(valid)
    features = feature_types(dataset)
    columns = [v for v in valid if v not in features]
    message = f"unknown field {name!r} for {dataset.name} (valid fields: {', '.join(columns)}"
    sets = [s.name for s in sets_of(dataset.name).values() if not s.is_base]
    if features and sets:
        message += (
            f"; and the features of the sets {', '.join(sets)}: "
            f"`quantmini features list --data-type {dataset.name}` names them"
        )
    message += ")"
    folded = {v.casefold(): v for v in valid}
    close = [folded[name.casefold()]] if name.casefold() in folded else []
    close += [c for c in difflib.get_close_matches(name, valid, n=3, cutoff=0.75) if c not in close]
    if close:
        message += f"; did you mean {' or '.join(close)}?"
    return message


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


@dataclass(frozen=True, slots=True)
class QuerySpec:
    """One question to the lake: which bars of which symbols between two sessions, in which adjustment.

    ``symbols`` and ``fields`` are stripped and de-duplicated (order kept); ``fields=None`` means the
    data type's :func:`default_fields`. Symbols are matched exactly (Polygon tickers are case-sensitive).

    Minute data types also take ``session`` (one of :data:`SESSIONS`: ``"regular"`` keeps the bars from
    09:30 to the session's close, ``"extended"`` the others) and ``bar`` (``"5min"``: resample to bars of
    that many minutes, see :mod:`quantmini.query.sql`); ``bar`` is normalised (``"05min"`` → ``"5min"``).
    ``adjustment`` is ``"total_return"`` (prices × ``adj_factor``), ``"split"`` (× ``split_factor``) or
    ``"none"`` (raw bars as traded); volumes are divided by the same factor. ``adjusted=True`` means
    ``"total_return"`` (or, with ``adjustment="split"``, that), ``adjusted=False`` ``"none"``; with neither,
    data types that splits and dividends apply to are read in total return, the others raw. After
    construction both are set (``adjusted`` is whether any factor applies).

    Option data types take ``underlying`` (the delivered stock: its chain, sorted by time, expiration,
    strike and type; ``symbols`` may then be empty or narrow it) and ``expiration``; both read silver,
    where contracts are resolved to their underlying. ``all_symbols=True`` (with no symbols) reads every
    symbol: a cross-section.
    """

    data_type: str
    symbols: tuple[str, ...]
    start: dt.date
    end: dt.date
    fields: tuple[str, ...] | None = None
    adjusted: bool | None = None
    session: str = "all"
    bar: str | None = None
    underlying: str | None = None
    expiration: dt.date | None = None
    adjustment: str | None = None
    all_symbols: bool = False
    dataset: DatasetSpec = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        try:
            dataset = get_spec(self.data_type)
        except QuantminiError as exc:
            raise QueryError(str(exc)) from exc
        object.__setattr__(self, "dataset", dataset)
        self._resolve_adjustment()
        self._check_range()
        self._check_chain()
        self._normalise_symbols()
        self._check_minute_options()
        self._normalise_fields()
        if self.adjusted and not dataset.adjustable:
            raise QueryError(
                f"{self.data_type} has no adjusted prices (splits and dividends do not apply to it): "
                "query raw bars with --raw (adjusted=False) or --adjust none"
            )

    def _resolve_adjustment(self) -> None:
        if self.adjustment is not None and self.adjustment not in QUERY_ADJUSTMENTS:
            choices = ", ".join(QUERY_ADJUSTMENTS)
            raise QueryError(f"adjustment (--adjust) must be one of {choices}, got {self.adjustment!r}")
        if self.adjustment is None:
            adjusted = self.dataset.adjustable if self.adjusted is None else self.adjusted
            adjustment = "total_return" if adjusted else "none"
        elif self.adjusted is not None and self.adjusted != (self.adjustment != "none"):
            flag = "--adjusted (adjusted=True)" if self.adjusted else "--raw (adjusted=False)"
            raise QueryError(
                f"{flag} contradicts --adjust {self.adjustment} (adjustment={self.adjustment!r}): give one"
            )
        else:
            adjustment = self.adjustment
        object.__setattr__(self, "adjustment", adjustment)
        object.__setattr__(self, "adjusted", adjustment != "none")

    def _check_range(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
                raise QueryError(f"{name} must be a date, got {value!r}")
        if self.end < self.start:
            raise QueryError(f"end date {self.end} is before start date {self.start}")

    def _check_chain(self) -> None:
        if self.underlying is None and self.expiration is None:
            return
        if not self.dataset.is_option:
            raise QueryError(
                f"underlying/expiration (--underlying, --expiration) select option chains; {self.data_type} "
                f"is not an options data type ({', '.join(n for n, s in DATASETS.items() if s.is_option)})"
            )
        if self.underlying is not None:
            if not isinstance(self.underlying, str) or not self.underlying.strip():
                raise QueryError(f"underlying must be a non-empty ticker, got {self.underlying!r}")
            object.__setattr__(self, "underlying", self.underlying.strip())
        if self.expiration is not None and (
            isinstance(self.expiration, dt.datetime) or not isinstance(self.expiration, dt.date)
        ):
            raise QueryError(f"expiration must be a date, got {self.expiration!r}")

    def _normalise_symbols(self) -> None:
        raw = (self.symbols,) if isinstance(self.symbols, str) else tuple(self.symbols)
        for symbol in raw:
            if not isinstance(symbol, str) or not symbol.strip():
                raise QueryError(f"symbols must be non-empty strings, got {symbol!r}")
        symbols = _unique(s.strip() for s in raw)
        if self.all_symbols and (symbols or self.underlying is not None):
            raise QueryError("all_symbols reads every symbol: give no symbols (nor an underlying) with it")
        if not symbols and self.underlying is None and not self.all_symbols:
            raise QueryError(
                "at least one symbol is required"
                + (" (or an underlying, for an option chain)" if self.dataset.is_option else "")
            )
        object.__setattr__(self, "symbols", symbols)

    def _check_minute_options(self) -> None:
        if self.session not in SESSIONS:
            raise QueryError(f"session must be one of {', '.join(SESSIONS)}, got {self.session!r}")
        minute = self.dataset.frequency != "day"
        if self.session != "all" and not minute:
            raise QueryError(
                f"--session {self.session} (session=) filters minute bars by time of day; "
                + self._one_bar_per_session()
            )
        if self.bar is None:
            return
        if not minute:
            raise QueryError("--bar (bar=) resamples minute bars; " + self._one_bar_per_session())
        object.__setattr__(self, "bar", f"{parse_bar(self.bar)}min")

    def _one_bar_per_session(self) -> str:
        return (
            f"{self.data_type} has one bar per session (minute data types: {', '.join(minute_data_types())})"
        )

    def _normalise_fields(self) -> None:
        if self.fields is None:
            return
        raw = (self.fields,) if isinstance(self.fields, str) else tuple(self.fields)
        for name in raw:
            if not isinstance(name, str) or not name.strip():
                raise QueryError(f"fields must be non-empty column names, got {name!r}")
        fields = _unique(f.strip() for f in raw)
        if not fields:
            raise QueryError("fields, when given, must name at least one column")
        valid = self.field_types
        silver_only = set(silver_only_columns(self.dataset))
        features = [f for f in fields if f in silver_only]
        if features and self.bar is not None:
            raise QueryError(
                f"features ({', '.join(features)}) are computed on 1-minute bars and are not resampled: "
                "leave them out of --fields or query without --bar"
            )
        for name in fields:
            if name in BAR_COLUMNS and self.bar is None and self.dataset.frequency != "day":
                raise QueryError(
                    f"field {name!r} belongs to resampled bars: add --bar (bar=), e.g. --bar 1min"
                )
            if name not in valid:
                raise QueryError(unknown_field_message(self.dataset, name, valid))
        object.__setattr__(self, "fields", fields)

    def source_of(self, name: str) -> str:
        """The column a selected field ``name`` is read from: its counterpart in the query's adjustment
        for a price or volume (``close`` → ``adj_close`` or ``split_close``), else ``name`` itself."""
        if self.adjustment in COLUMN_PREFIXES and name in ADJUSTED_PRICE_COLUMNS:
            return f"{COLUMN_PREFIXES[self.adjustment]}{name}"
        return name

    @property
    def bar_minutes(self) -> int | None:
        """Minutes of the resampled bars (``None``: the stored bars, not resampled)."""
        return None if self.bar is None else parse_bar(self.bar)

    @property
    def field_types(self) -> dict[str, pa.DataType]:
        """Every field this query may return, mapped to its Arrow type (see :func:`field_types`)."""
        return field_types(self.dataset, resampled=self.bar is not None)

    @property
    def is_chain(self) -> bool:
        """An option chain: the contracts of one underlying (and expiration) rather than named tickers."""
        return self.underlying is not None

    @property
    def selected_fields(self) -> tuple[str, ...]:
        """The output columns, in order: the given fields or the data type's defaults (an option chain's
        defaults are the :data:`CHAIN_FIELDS` the data type has)."""
        if self.fields is not None:
            return self.fields
        if self.is_chain and self.bar is None:
            daily = self.dataset.frequency == "day"
            return tuple(f for f in CHAIN_FIELDS if f in self.field_types and not (daily and f == "ts"))
        return default_fields(self.dataset, resampled=self.bar is not None)

    @property
    def match(self) -> tuple[str, tuple[str, ...]]:
        """The column rows are selected on and its values: ``ticker`` and the symbols, or for a chain
        ``underlying`` and the underlying (then the symbols, if any, narrow it further); no values when
        every symbol is read (``all_symbols``)."""
        if self.underlying is not None:
            return "underlying", (self.underlying,)
        return "ticker", self.symbols

    @property
    def feature_fields(self) -> tuple[str, ...]:
        """The selected fields read from feature set tables (joined to the bars on ticker and session)."""
        features = feature_types(self.dataset)
        return tuple(f for f in self.selected_fields if f in features)

    @property
    def needs_silver(self) -> bool:
        """Whether answering needs silver partitions (features, or what silver resolves)."""
        silver_only = silver_only_columns(self.dataset)
        return (
            self.is_chain
            or self.expiration is not None
            or any(f in silver_only for f in self.selected_fields)
        )
