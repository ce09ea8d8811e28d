"""Qlib's on-disk conventions as pure functions: symbol → directory, symbol renames, field names,
calendar lines and the ``.bin`` float32 encoding.

Symbol renames, deterministic and independent of which other symbols exist (so a symbol's name never
changes when another one appears later), reported to the caller (:func:`plan_symbols`), which must tell
the user:

* Qlib reads ``instruments/all.txt`` with pandas' default NA strings, so a ticker spelled like a missing
  value (``NA``, ``NULL``, ``N/A``, ``None``, ``nan`` … in any case) would come back as NaN and break
  ``D.instruments('all')``. Such a symbol is stored as :data:`NA_RENAME_PREFIX` followed by its upper-case
  form with every character other than ``A–Z`` and ``0–9`` replaced by ``_``: ``NA → _NA_NA``,
  ``None → _NA_NONE``, ``N/A → _NA_N_A``, ``nan → _NA_NAN``.
* Qlib lower-cases directory names, so ``BApA`` (a preferred share) and ``BAPA`` would share one. A
  symbol with lower-case letters is stored with each of them written ``_`` + the upper-case letter:
  ``BApA → BA_PA``, ``NMCOr → NMCO_R``. Vendor tickers never contain ``_``, so no real ticker is hit.

A symbol that still cannot be stored (a ``/``, whitespace, a quote, ``.``/``..``) or that would share a
directory with another is skipped with a reason: it never stops the rest of a root.

A ``.bin`` file is raw little-endian float32: element 0 is the index of the symbol's first bar in the
calendar, then one value per calendar bar up to its last bar, NaN for bars it has no row for.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from quantmini._exceptions import ValidationError

Freq = Literal["day", "1min"]

#: Calendar line format per frequency (the frequency string is also the ``.bin`` file suffix).
CALENDAR_FORMATS: Final[Mapping[str, str]] = {"day": "%Y-%m-%d", "1min": "%Y-%m-%d %H:%M:%S"}

#: Names Windows reserves for devices; qlib prefixes them with ``_qlib_`` (compared upper-case).
RESERVED_NAMES: Final[frozenset[str]] = frozenset(
    ["CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))]
)
RESERVED_PREFIX: Final = "_qlib_"

#: Upper-case forms of the strings pandas' CSV reader turns into NaN by default (whitespace-free ones).
NA_LIKE_SYMBOLS: Final[frozenset[str]] = frozenset(
    ["NA", "N/A", "NULL", "NONE", "NAN", "-NAN", "<NA>", "#NA", "#N/A", "1.#IND", "-1.#IND", "1.#QNAN",
     "-1.#QNAN"]
)  # fmt: skip
NA_RENAME_PREFIX: Final = "_NA_"

#: Largest start index float32 holds exactly.
MAX_EXACT_INDEX: Final = 2**24
#: Largest finite float32; a larger finite value would silently become infinite.
FLOAT32_MAX: Final = float(np.finfo(np.float32).max)

_FIELD_RE = re.compile(r"[A-Za-z0-9_]+")
_MARKET_RE = re.compile(r"[a-z0-9_]+")
_NOT_ALNUM_RE = re.compile(r"[^A-Z0-9]")
_LOWER_RE = re.compile(r"[a-z]")
# Characters that would break the tab-separated all.txt, pandas' quoting or a path component.
_FORBIDDEN_CHARS = frozenset('/\\"\t\n\r\x00')


def qlib_dir_name(symbol: str) -> str:
    """The ``features/<dir>`` name qlib looks up for ``symbol``: lower-case, device names prefixed."""
    if symbol.upper() in RESERVED_NAMES:
        return (RESERVED_PREFIX + symbol).lower()
    return symbol.lower()


def is_na_like(symbol: str) -> bool:
    """Whether qlib's pandas reader would read ``symbol`` from ``all.txt`` as NaN."""
    return symbol.upper() in NA_LIKE_SYMBOLS


def stored_symbol(symbol: str) -> str:
    """The name ``symbol`` is stored under in the Qlib root (see the module docstring)."""
    if is_na_like(symbol):
        return NA_RENAME_PREFIX + _NOT_ALNUM_RE.sub("_", symbol.upper())
    if symbol != symbol.upper():
        return _LOWER_RE.sub(lambda m: "_" + m.group(0).upper(), symbol)
    return symbol


def check_symbol(symbol: str) -> None:
    """Refuse a symbol qlib cannot store (empty, whitespace, ``/``, ``\\``, quote, ``.``/``..``)."""
    bad = sorted(c for c in set(symbol) if c in _FORBIDDEN_CHARS or c.isspace())
    if not symbol or symbol in (".", "..") or bad:
        why = f" (contains {', '.join(repr(c) for c in bad)})" if bad else ""
        raise ValidationError(f"symbol {symbol!r} cannot be stored in a Qlib root{why}")


@dataclass(frozen=True, slots=True)
class SymbolPlan:
    """Input symbol → stored name, and the symbols skipped (input symbol → reason)."""

    stored: dict[str, str]
    skipped: dict[str, str]

    @property
    def renamed(self) -> dict[str, str]:
        """Input → stored name, for symbols stored under another name."""
        return {s: n for s, n in self.stored.items() if s != n}


def plan_symbols(symbols: Iterable[str]) -> SymbolPlan:
    """Map each input symbol to its stored name; skip (with a reason) the ones that cannot be stored.

    Symbols are taken in sorted order, so when two would share a features directory (a rename hitting a
    real name, or symbols outside the vendor's conventions) the first in that order keeps it.
    """
    stored: dict[str, str] = {}
    skipped: dict[str, str] = {}
    owner_of_dir: dict[str, str] = {}
    for symbol in sorted(set(symbols)):
        name = stored_symbol(symbol)
        try:
            check_symbol(name)
        except ValidationError as exc:
            skipped[symbol] = str(exc)
            continue
        directory = qlib_dir_name(name)
        other = owner_of_dir.get(directory)
        if other is not None:
            skipped[symbol] = (
                f"symbol {symbol!r} would share features/{directory}/ with {other!r} "
                "(qlib is case-insensitive); it is left out"
            )
            continue
        owner_of_dir[directory] = symbol
        stored[symbol] = name
    return SymbolPlan(stored, skipped)


def check_market(market: str) -> str:
    """Return ``market`` if it can name a market file: lower-case letters, digits and ``_`` (qlib reads
    ``instruments/<market lower-cased>.txt``), and not ``all`` (the root's own list of instruments)."""
    if not _MARKET_RE.fullmatch(market) or market == "all":
        raise ValidationError(
            f"market name {market!r} is invalid: use lower-case letters, digits and '_' (and not 'all')"
        )
    return market


def check_fields(fields: Sequence[str]) -> tuple[str, ...]:
    """Return ``fields`` as a tuple after refusing bad or case-insensitively repeated names."""
    if isinstance(fields, str):
        raise ValidationError(f"fields must be a sequence of names, not the string {fields!r}")
    if not fields:
        raise ValidationError("at least one field is needed to write a Qlib root")
    seen: dict[str, str] = {}
    for field in fields:
        if not _FIELD_RE.fullmatch(field):
            raise ValidationError(f"field name {field!r} is invalid: use letters, digits and '_' only")
        if field.lower() in seen:
            raise ValidationError(
                f"fields {seen[field.lower()]!r} and {field!r} collide (qlib lower-cases field names)"
            )
        seen[field.lower()] = field
    return tuple(fields)


def check_freq(freq: str) -> Freq:
    """Return ``freq`` if qlib can read it (``day`` or ``1min``), else raise."""
    if freq == "day":
        return "day"
    if freq == "1min":
        return "1min"
    raise ValidationError(f"frequency {freq!r} is not supported: use 'day' or '1min'")


def calendar_line(value: dt.date | dt.datetime, freq: Freq) -> str:
    """One ``calendars/<freq>.txt`` line: a date for ``day``, a naive bar-start time for ``1min``."""
    if freq == "day":
        if isinstance(value, dt.datetime) and value.timetz() != dt.time(0):
            raise ValidationError(f"day calendar entry {value!r} has a time of day")
        return value.strftime(CALENDAR_FORMATS["day"])
    if not isinstance(value, dt.datetime):
        raise ValidationError(f"1min calendar entry {value!r} is a date; minute bars need a datetime")
    if value.tzinfo is not None:
        raise ValidationError(f"1min calendar entry {value!r} must be naive exchange-local time")
    return value.strftime(CALENDAR_FORMATS["1min"])


def calendar_lines(calendar: Sequence[dt.date | dt.datetime], freq: Freq) -> list[str]:
    """All calendar lines, refusing an empty, unsorted or repeated calendar."""
    if not calendar:
        raise ValidationError("the calendar is empty")
    lines = [calendar_line(v, freq) for v in calendar]
    for i in range(1, len(lines)):
        if not lines[i - 1] < lines[i]:  # fixed-width, zero-padded: text order is time order
            raise ValidationError(
                f"the calendar must be strictly increasing: {lines[i - 1]} is followed by {lines[i]}"
            )
    return lines


def bin_array(
    start_index: int,
    length: int,
    offsets: npt.NDArray[np.integer] | None = None,
    values: npt.ArrayLike = (),
) -> npt.NDArray[np.float32]:
    """A ``.bin`` payload as a little-endian float32 array of ``length + 1`` elements.

    Element 0 is ``start_index``; ``values`` are scattered to bars ``offsets`` (0 = the first bar);
    other bars are NaN. With ``offsets=None`` the values fill the bars in order. A 2-D ``values``
    (one row per field, one column per bar) gives one payload per row.
    """
    if not 0 <= start_index < MAX_EXACT_INDEX:
        raise ValidationError(f"calendar start index {start_index} does not fit a float32 .bin header")
    array = np.asarray(values)
    check_float32_range(array)
    out = np.full((*array.shape[:-1], length + 1), np.nan, dtype="<f4")
    out[..., 0] = start_index
    if offsets is None:
        out[..., 1:] = array
    else:
        out[..., 1 + offsets] = array
    return out


def check_float32_range(values: npt.ArrayLike) -> None:
    """Refuse finite values beyond float32's range (they would be stored as ±inf)."""
    if isinstance(values, np.ndarray) and values.dtype == np.float32:
        return
    array = np.asarray(values, dtype=np.float64)
    too_big = np.isfinite(array) & (np.abs(array) > FLOAT32_MAX)
    if too_big.any():
        raise ValidationError(f"value {array[too_big][0]!r} is beyond float32's range (±{FLOAT32_MAX:.4g})")


def encode_bin(start_index: int, values: npt.ArrayLike) -> bytes:
    """The bytes of a ``.bin`` file whose first bar is calendar bar ``start_index``."""
    array = np.asarray(values, dtype=np.float64)
    return bin_array(start_index, len(array), None, array).tobytes()


def decode_bin(data: bytes) -> tuple[int, npt.NDArray[np.float32]]:
    """Split ``.bin`` bytes into (start index, float32 values)."""
    if len(data) < 4 or len(data) % 4:
        raise ValidationError(f".bin payload of {len(data)} bytes is not a whole number of float32s")
    array = np.frombuffer(data, dtype="<f4")
    head = float(array[0])
    if not (head.is_integer() and head >= 0):
        raise ValidationError(f".bin header {head!r} is not a calendar index")
    return int(head), array[1:].astype(np.float32)
