"""The sample universe: tickers, their lifecycles (IPO, delisting, rename) and corporate actions.

Everything is decided by position inside the session range, so the required events (a forward split,
a reverse split, a symbol with both a split and a dividend, quarterly dividends, an IPO, a delisting,
a rename) are present even for a handful of tickers over a few weeks. Prices are not known here: the
cash amount of a dividend is set as a *yield* and turned into dollars by :mod:`quantmini.sample.bars`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from dataclasses import dataclass, field

import numpy as np

from quantmini._exceptions import ConfigurationError

#: Smallest universe that can carry every required role (3 fixed symbols + 5 role tickers).
MIN_TICKERS = 8
#: Tickers the sample always holds: a class share, a preferred and a reserved Windows file name.
FIXED_TICKERS: tuple[tuple[str, str, str, str, float], ...] = (
    ("BRK.B", "Berkshire Hathaway Inc. Class B", "CS", "XNYS", 460.0),
    ("BApA", "Bank of America Corp. Preferred Series A", "PFD", "XNYS", 24.5),
    ("PRN", "Invesco Dorsey Wright Industrials Momentum ETF", "ETF", "XNAS", 150.0),
)
_LETTERS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
_LENGTHS = np.array([1, 2, 3, 4, 5])
_LENGTH_WEIGHTS = np.array([0.02, 0.08, 0.35, 0.45, 0.10])
_SYLLABLES = ("ar", "co", "ven", "tra", "li", "mo", "nex", "sol", "qua", "ter", "vi", "on", "da", "ri")
_SUFFIXES = ("Inc.", "Corp.", "Holdings Inc.", "Technologies Inc.", "Group Ltd.", "Therapeutics Inc.")
_EXCHANGES = ("XNYS", "XNAS", "XNAS", "ARCX")


@dataclass(frozen=True, slots=True)
class TickerSpec:
    """One security of the sample: symbols, lifetime (session indices, inclusive) and price dynamics."""

    symbol: str
    name: str
    type: str
    primary_exchange: str
    first: int
    last: int
    list_date: dt.date
    delisted: bool
    price: float
    daily_vol: float
    mean_volume: float
    trade_size: float
    #: Symbol used from ``rename_at`` on (``symbol`` before it); ``None`` when never renamed.
    new_symbol: str | None = None
    rename_at: int = -1

    def symbol_at(self, index: int) -> str:
        """The flat-file symbol on session ``index``."""
        if self.new_symbol is not None and index >= self.rename_at:
            return self.new_symbol
        return self.symbol


@dataclass(frozen=True, slots=True)
class SplitEvent:
    """A split executed on session ``index`` (bars on that session are already post-split)."""

    ticker: int
    index: int
    split_from: int
    split_to: int


@dataclass(frozen=True, slots=True)
class DividendEvent:
    """A quarterly cash dividend going ex on session ``index``; ``yield_`` of the previous raw close."""

    ticker: int
    index: int
    yield_: float


@dataclass(frozen=True, slots=True)
class Universe:
    """Tickers and their corporate actions over ``n_sessions`` sessions."""

    tickers: tuple[TickerSpec, ...]
    splits: tuple[SplitEvent, ...]
    dividends: tuple[DividendEvent, ...]
    n_sessions: int
    roles: dict[str, int] = field(default_factory=dict)

    def action_sessions(self, ticker: int) -> set[int]:
        """Session indices on which ``ticker`` has a split or goes ex-dividend."""
        days = {s.index for s in self.splits if s.ticker == ticker}
        return days | {d.index for d in self.dividends if d.ticker == ticker}


def position(fraction: float, n_sessions: int) -> int:
    """A session index at ``fraction`` of the range, kept off the first session when possible."""
    if n_sessions < 2:
        return 0
    return min(max(round(fraction * n_sessions), 1), n_sessions - 1)


def stable_hex(*parts: object, length: int = 32) -> str:
    """A deterministic hex string derived from ``parts`` (ids, request ids, FIGIs)."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:length]


def build_universe(n_tickers: int, sessions: list[dt.date], seed: int) -> Universe:
    """Draw ``n_tickers`` tickers and place the required lifecycle events and corporate actions."""
    if n_tickers < MIN_TICKERS:
        raise ConfigurationError(f"tickers: {n_tickers} is below the minimum of {MIN_TICKERS}")
    rng = np.random.default_rng([seed, 1])
    n = len(sessions)
    start = sessions[0] if sessions else dt.date(2000, 1, 3)
    symbols = _draw_symbols(rng, n_tickers - len(FIXED_TICKERS) + 1, {t[0] for t in FIXED_TICKERS})
    rename_to = symbols.pop()
    specs: list[TickerSpec] = []
    for symbol, name, kind, exchange, price in FIXED_TICKERS:
        specs.append(_spec(rng, symbol, name, kind, exchange, price, n, start))
    for symbol in symbols:
        price = float(np.clip(np.exp(rng.normal(np.log(45.0), 1.0)), 2.0, 800.0))
        name = _draw_name(rng)
        specs.append(_spec(rng, symbol, name, "CS", str(rng.choice(_EXCHANGES)), price, n, start))

    roles = {"split_and_dividend": 3, "reverse_split": 4, "ipo": 5, "delisted": 6, "renamed": 7}
    g = roles
    splits: list[SplitEvent] = []
    dividends: list[DividendEvent] = []
    if n >= 2:
        specs[g["split_and_dividend"]] = dataclasses.replace(
            specs[g["split_and_dividend"]], price=rng.uniform(300, 800)
        )
        specs[g["reverse_split"]] = dataclasses.replace(
            specs[g["reverse_split"]], price=rng.uniform(0.55, 0.95)
        )
        splits.append(SplitEvent(g["split_and_dividend"], position(0.35, n), 1, 10))
        splits.append(SplitEvent(g["reverse_split"], position(0.55, n), 10, 1))
        ipo_at = position(0.25, n)
        specs[g["ipo"]] = dataclasses.replace(specs[g["ipo"]], first=ipo_at, list_date=sessions[ipo_at])
        specs[g["delisted"]] = dataclasses.replace(
            specs[g["delisted"]], last=min(position(0.75, n), n - 2), delisted=True
        )
        specs[g["renamed"]] = dataclasses.replace(
            specs[g["renamed"]], new_symbol=rename_to, rename_at=position(0.5, n)
        )
        _random_lifecycles(rng, specs, sessions, first_free=8)
    payers = [1, 2, g["split_and_dividend"]] + [
        i for i in range(8, len(specs)) if rng.random() < 0.3 and specs[i].first == 0
    ]
    if n >= 2:
        for i in payers:
            taken = {s.index for s in splits if s.ticker == i}
            phase = int(rng.integers(1, max(2, min(63, n))))
            if i == g["split_and_dividend"]:
                phase = position(0.7, n)
            for index in range(phase, n, 63):
                if index in taken or not specs[i].first < index <= specs[i].last:
                    continue
                yield_ = 0.015 if specs[i].type == "PFD" else float(rng.uniform(0.008, 0.02))
                dividends.append(DividendEvent(i, index, yield_))
    return Universe(tuple(specs), tuple(splits), tuple(dividends), n, dict(roles))


def _random_lifecycles(
    rng: np.random.Generator, specs: list[TickerSpec], sessions: list[dt.date], first_free: int
) -> None:
    """A few more IPOs and delistings among the ordinary tickers."""
    n = len(sessions)
    for i in range(first_free, len(specs)):
        draw = rng.random()
        if draw < 0.04 and n >= 3:
            first = int(rng.integers(1, n - 1))
            specs[i] = dataclasses.replace(specs[i], first=first, list_date=sessions[first])
        elif draw < 0.08 and n >= 3:
            specs[i] = dataclasses.replace(specs[i], last=int(rng.integers(1, n - 1)), delisted=True)


def _spec(
    rng: np.random.Generator,
    symbol: str,
    name: str,
    kind: str,
    exchange: str,
    price: float,
    n: int,
    start: dt.date,
) -> TickerSpec:
    listed = start - dt.timedelta(days=int(rng.integers(400, 12000)))
    daily_vol = float(rng.uniform(0.004, 0.008) if kind == "PFD" else rng.uniform(0.01, 0.035))
    volume = float(np.exp(rng.normal(np.log(1.5e6), 1.3)))
    return TickerSpec(
        symbol=symbol,
        name=name,
        type=kind,
        primary_exchange=exchange,
        first=0,
        last=max(n - 1, 0),
        list_date=listed,
        delisted=False,
        price=price,
        daily_vol=daily_vol,
        mean_volume=volume,
        trade_size=float(rng.uniform(60.0, 250.0)),
    )


def _draw_symbols(rng: np.random.Generator, count: int, taken: set[str]) -> list[str]:
    seen = set(taken)
    out: list[str] = []
    while len(out) < count:
        length = int(rng.choice(_LENGTHS, p=_LENGTH_WEIGHTS))
        symbol = "".join(rng.choice(_LETTERS, size=length))
        if symbol not in seen:
            seen.add(symbol)
            out.append(symbol)
    return out


def _draw_name(rng: np.random.Generator) -> str:
    parts = rng.choice(np.array(_SYLLABLES), size=int(rng.integers(2, 4)))
    return f"{''.join(parts).capitalize()} {rng.choice(np.array(_SUFFIXES))}"
