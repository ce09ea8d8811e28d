"""How a query's answer reads in a terminal: rounded numbers, identifying columns never cut, and what the
lake holds when nothing matched.

The table is for reading: prices are rounded (two decimals, four below one), volumes and counts are whole
numbers with thousands separators, and a table wider than the terminal leaves out its last numeric columns
(and says which). ``--format csv``, ``json`` and ``parquet`` keep full precision.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import polars as pl
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from quantmini.core.adjustment_names import FACTOR_COLUMNS, LABELS
from quantmini.query.spec import ADJUSTED_PRICE_COLUMNS

if TYPE_CHECKING:
    from quantmini.query import QuerySpec
    from quantmini.query.engine import Coverage

#: Symbols named one by one in the "no rows matched" explanation; more are counted.
_SYMBOLS_SHOWN = 8


def number_format(name: str, values: pl.Series) -> Callable[[object], str]:
    """How the numeric column ``name`` is shown: integers and volumes as whole numbers with thousands
    separators; other floats with two decimals, or four when the column's typical (median) magnitude is
    below one (returns, factors, sub-dollar prices)."""
    if values.dtype.is_integer():
        return lambda v: f"{v:,}"
    if name.endswith("volume"):
        decimals = 0
    else:
        finite = values.drop_nulls()
        median = finite.filter(finite.is_finite()).abs().median()
        decimals = 2 if isinstance(median, int | float) and median >= 1 else 4

    def show(value: object) -> str:
        if isinstance(value, float) and not math.isfinite(value):
            return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return f"{value:,.{decimals}f}"

    return show


def adjustment_note(spec: QuerySpec) -> str | None:
    """The line under a table saying how its prices and volume are adjusted (``None`` when it shows none
    of them, or the data type has no adjusted prices)."""
    shown = [name for name in spec.selected_fields if name in ADJUSTED_PRICE_COLUMNS]
    if not shown or not spec.dataset.adjustable:
        return None
    if spec.adjustment not in FACTOR_COLUMNS:
        return f"{', '.join(shown)}: raw, as traded"
    factor = FACTOR_COLUMNS[str(spec.adjustment)]
    return f"{', '.join(shown)}: {LABELS[str(spec.adjustment)]} (prices × {factor}, volume ÷ {factor})"


def cell_texts(name: str, values: pl.Series) -> list[str]:
    """Every value of one column as the table shows it; nulls are blank."""
    show = number_format(name, values) if values.dtype.is_numeric() else _plain
    return ["" if value is None else show(value) for value in values.to_list()]


def _plain(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def render_table(frame: pl.DataFrame, console: Console, limit: int) -> None:
    """Print up to ``limit`` rows of ``frame`` as a table that fits the console, then what was left out.

    Identifying columns (text, dates, times) are never shortened; numeric columns that do not fit beside
    them are left out, last first, and named below the table.
    """
    shown = frame.head(limit)
    columns = {name: cell_texts(name, shown[name]) for name in frame.columns}
    keys = [name for name, dtype in frame.schema.items() if not dtype.is_numeric()]
    names = list(frame.columns)
    while True:
        table = _table(shown, names, columns, keys)
        hideable = [n for n in names if n not in keys]
        if _width(console, table) <= console.width or not hideable:
            break
        names.remove(hideable[-1])
    console.print(table)
    hidden = [n for n in frame.columns if n not in names]
    if hidden:
        console.print(
            f"… {len(hidden)} more {'column' if len(hidden) == 1 else 'columns'} not shown at this width "
            f"({', '.join(hidden)}): "
            "choose fewer --fields or use --format csv",
        )
    if frame.height > limit:
        console.print(f"… {frame.height - limit} more rows (use --format csv or --output to see all)")


def _table(frame: pl.DataFrame, names: Sequence[str], cells: dict[str, list[str]], keys: list[str]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for name in names:
        width = max([len(name), *(len(c) for c in cells[name])])
        table.add_column(
            name,
            justify="left" if name in keys else "right",
            no_wrap=True,
            min_width=width,
        )
    for row in range(frame.height):
        table.add_row(*(Text(cells[name][row]) for name in names))
    return table


def _width(console: Console, table: Table) -> int:
    """The width ``table`` wants, not capped at the console's."""
    unbounded = console.options.update(width=10_000, max_width=10_000)
    return Measurement.get(console, unbounded, table).maximum


def no_rows_message(spec: QuerySpec, coverage: Coverage) -> list[str]:
    """Why nothing matched, in two lines: what was asked (the time-of-day filter included), then what the
    lake holds for that data type and for each symbol asked for, at any time of day."""
    what = _symbols(spec.symbols)
    if spec.is_chain:
        expiring = "" if spec.expiration is None else f" expiring {spec.expiration}"
        what = f"options on {spec.underlying}{expiring}" + (f" among {what}" if spec.symbols else "")
    asked = f"no rows matched: {what} between {spec.start} and {spec.end}"
    if spec.session != "all":
        asked += f" in the {spec.session} {'session' if spec.session == 'regular' else 'hours'}"
    if coverage.first is None or coverage.last is None:
        return [f"{asked}.", f"the lake holds no {spec.data_type} sessions."]
    held = f"the lake holds {spec.data_type} from {coverage.first} to {coverage.last}"
    if coverage.sessions_in_range == 0:
        asked += f" (no {spec.data_type} session is stored in that range)"
    found = [f"{s} {first} to {last}" for s, (first, last) in coverage.found.items()]
    missing = coverage.missing
    parts = found[:_SYMBOLS_SHOWN]
    if len(found) > _SYMBOLS_SHOWN:
        parts.append(f"{len(found) - _SYMBOLS_SHOWN} more symbols held")
    if missing:
        parts.append(f"not in the lake: {_symbols(missing)}")
    return [f"{asked}.", f"{held}; {'; '.join(parts)}."]


def _symbols(symbols: Sequence[str]) -> str:
    if len(symbols) <= _SYMBOLS_SHOWN:
        return ", ".join(symbols)
    return f"{', '.join(symbols[:_SYMBOLS_SHOWN])} and {len(symbols) - _SYMBOLS_SHOWN} more"
