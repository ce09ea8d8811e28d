"""The query value object and the column knowledge it is validated against.

A :class:`QuerySpec` is validated once, at construction: the data type exists, the range is ordered, at
least one symbol is given, every field is a column of that data type, and adjusted prices are only asked
of data types that have a silver (adjusted) layer.

Which columns a data type offers is derived from its :class:`~quantmini.datasets.DatasetSpec`: the silver
schema (the bronze columns plus features), plus — for adjustable data types — the adjustment columns
(``split_factor``, ``adj_factor``, ``adj_open`` …), which are computed from the factor table when read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa

from quantmini._exceptions import QuantminiError, QueryError
from quantmini.datasets import DatasetSpec, get_spec

#: Columns computed from the factor table when an adjustable data type is read.
ADJUSTMENT_COLUMNS: tuple[str, ...] = (
    "split_factor",
    "adj_factor",
    "adj_open",
    "adj_high",
    "adj_low",
    "adj_close",
    "adj_volume",
)

#: Price and volume columns an adjusted query reads from their ``adj_`` counterpart.
ADJUSTED_PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")

#: Bar columns every default field list ends with.
_DEFAULT_BAR_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "transactions")


def has_silver(dataset: DatasetSpec) -> bool:
    """Whether ``dataset`` has a main silver table (raw bars plus features)."""
    return dataset.main_silver is not None


def silver_only_columns(dataset: DatasetSpec) -> tuple[str, ...]:
    """Columns that exist in silver but not in bronze (the features; empty without a silver layer)."""
    return dataset.features


def column_types(dataset: DatasetSpec) -> dict[str, pa.DataType]:
    """Every queryable column of ``dataset`` mapped to its Arrow type, in storage order: the stored
    columns, then (for adjustable data types) the adjustment columns computed when read."""
    types = {f.name: f.type for f in dataset.silver_schema}
    if dataset.adjustable:
        for name in ADJUSTMENT_COLUMNS:
            types[name] = pa.float64()
    return types


def default_fields(dataset: DatasetSpec) -> tuple[str, ...]:
    """Fields returned when a query names none: ticker, session date (+ ``ts`` for minute bars), bars."""
    time_fields = ("ts",) if dataset.frequency != "day" else ()
    return ("ticker", "session_date", *time_fields, *_DEFAULT_BAR_FIELDS)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


@dataclass(frozen=True, slots=True)
class QuerySpec:
    """One question to the lake: which bars of which symbols between two sessions, adjusted or raw.

    ``symbols`` and ``fields`` are stripped and de-duplicated (order kept); ``fields=None`` means the
    data type's :func:`default_fields`. Symbols are matched exactly (Polygon tickers are case-sensitive).
    """

    data_type: str
    symbols: tuple[str, ...]
    start: dt.date
    end: dt.date
    fields: tuple[str, ...] | None = None
    adjusted: bool = True
    dataset: DatasetSpec = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        try:
            dataset = get_spec(self.data_type)
        except QuantminiError as exc:
            raise QueryError(str(exc)) from exc
        object.__setattr__(self, "dataset", dataset)
        self._check_range()
        self._normalise_symbols()
        self._normalise_fields()
        if self.adjusted and not dataset.adjustable:
            raise QueryError(
                f"{self.data_type} has no adjusted prices (splits and dividends do not apply to it): "
                "query raw bars with --raw (adjusted=False)"
            )

    def _check_range(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
                raise QueryError(f"{name} must be a date, got {value!r}")
        if self.end < self.start:
            raise QueryError(f"end date {self.end} is before start date {self.start}")

    def _normalise_symbols(self) -> None:
        raw = (self.symbols,) if isinstance(self.symbols, str) else tuple(self.symbols)
        for symbol in raw:
            if not isinstance(symbol, str) or not symbol.strip():
                raise QueryError(f"symbols must be non-empty strings, got {symbol!r}")
        symbols = _unique(s.strip() for s in raw)
        if not symbols:
            raise QueryError("at least one symbol is required")
        object.__setattr__(self, "symbols", symbols)

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
        valid = column_types(self.dataset)
        for name in fields:
            if name not in valid:
                raise QueryError(
                    f"unknown field {name!r} for {self.data_type} (valid fields: {', '.join(valid)})"
                )
        object.__setattr__(self, "fields", fields)

    @property
    def selected_fields(self) -> tuple[str, ...]:
        """The output columns, in order: the given fields or the data type's defaults."""
        return self.fields if self.fields is not None else default_fields(self.dataset)

    @property
    def needs_silver(self) -> bool:
        """Whether answering needs silver partitions (it asks for features)."""
        return any(f in silver_only_columns(self.dataset) for f in self.selected_fields)
