"""REST reference responses in the vendor's legacy JSON shapes (splits, dividends, tickers, events).

Files mirror the REST paths below ``<out>/rest/``: ``v3/reference/splits.json``,
``v3/reference/dividends.json``, ``v3/reference/tickers.json`` and
``vX/reference/tickers/<TICKER>/events.json`` for the renamed ticker and
``v3/reference/options/contracts.json`` for the option contracts in the flat files, less a few left out
on purpose (recorded in ``sample.json``) so a reader must fall back to the OCC root for them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from quantmini.io.atomic import write_bytes_atomic
from quantmini.sample.option_files import RootSpec
from quantmini.sample.universe import TickerSpec, Universe, stable_hex

JsonObject = dict[str, Any]

SPLITS_PATH = "rest/v3/reference/splits.json"
DIVIDENDS_PATH = "rest/v3/reference/dividends.json"
TICKERS_PATH = "rest/v3/reference/tickers.json"
OPTIONS_CONTRACTS_PATH = "rest/v3/reference/options/contracts.json"
_OCC = re.compile(r"^O:([A-Z0-9.]+?)(\d{6})([CP])(\d{8})$")


def events_path(ticker: str) -> str:
    """Where the ticker-change events of ``ticker`` are kept below the output directory."""
    return f"rest/vX/reference/tickers/{ticker}/events.json"


def envelope(results: Any, seed: int, endpoint: str, *, with_count: bool = True) -> JsonObject:
    """The vendor envelope: ``results``, ``status: "OK"``, a ``request_id`` and (lists) ``count``."""
    payload: JsonObject = {"results": results, "status": "OK", "request_id": stable_hex(seed, endpoint)}
    if with_count:
        payload["count"] = len(results)
    return payload


def split_records(universe: Universe, sessions: list[dt.date]) -> list[JsonObject]:
    """Legacy split records, newest first like the vendor's default order."""
    records = [
        {
            "execution_date": sessions[s.index].isoformat(),
            "split_from": s.split_from,
            "split_to": s.split_to,
            "ticker": universe.tickers[s.ticker].symbol_at(s.index),
            "id": "E" + stable_hex("split", universe.tickers[s.ticker].symbol, sessions[s.index], length=63),
        }
        for s in universe.splits
    ]
    return sorted(records, key=lambda r: (r["execution_date"], r["ticker"]), reverse=True)


def dividend_records(
    universe: Universe, sessions: list[dt.date], cash: dict[tuple[int, int], float]
) -> list[JsonObject]:
    """Legacy cash-dividend records (quarterly, T+1 settlement: record date = ex-date), newest first."""
    records: list[JsonObject] = []
    for d in universe.dividends:
        ex = sessions[d.index]
        symbol = universe.tickers[d.ticker].symbol_at(d.index)
        records.append(
            {
                "cash_amount": cash[(d.ticker, d.index)],
                "currency": "USD",
                "declaration_date": (ex - dt.timedelta(days=21)).isoformat(),
                "dividend_type": "CD",
                "ex_dividend_date": ex.isoformat(),
                "frequency": 4,
                "pay_date": (ex + dt.timedelta(days=14)).isoformat(),
                "record_date": ex.isoformat(),
                "ticker": symbol,
                "id": "E" + stable_hex("dividend", symbol, ex, length=63),
            }
        )
    return sorted(records, key=lambda r: (r["ex_dividend_date"], r["ticker"]), reverse=True)


def _identity(spec: TickerSpec) -> JsonObject:
    key = spec.new_symbol or spec.symbol
    return {
        "cik": f"{int(stable_hex('cik', key, length=12), 16) % 10**10:010d}",
        "composite_figi": "BBG" + stable_hex("figi", key, length=9).upper(),
        "share_class_figi": "BBG" + stable_hex("share", key, length=9).upper(),
    }


def ticker_records(universe: Universe, sessions: list[dt.date]) -> list[JsonObject]:
    """Every symbol of the sample, active and delisted (a renamed ticker's old symbol is inactive)."""
    updated = f"{sessions[-1].isoformat()}T00:00:00Z"
    records: list[JsonObject] = []
    for spec in universe.tickers:
        spans = [(spec.symbol, spec.first, spec.last, spec.delisted)]
        if spec.new_symbol is not None:
            spans = [
                (spec.symbol, spec.first, spec.rename_at - 1, True),
                (spec.new_symbol, spec.rename_at, spec.last, spec.delisted),
            ]
        for symbol, _first, last, delisted in spans:
            record: JsonObject = {
                "ticker": symbol,
                "name": spec.name,
                "market": "stocks",
                "locale": "us",
                "primary_exchange": spec.primary_exchange,
                "type": spec.type,
                "active": not delisted,
                "currency_name": "usd",
                **_identity(spec),
                "list_date": spec.list_date.isoformat(),
                "last_updated_utc": updated,
            }
            if delisted:
                # The vendor documents delisted_utc as the last date the asset traded.
                record["delisted_utc"] = f"{sessions[last].isoformat()}T00:00:00Z"
            records.append(record)
    return sorted(records, key=lambda r: str(r["ticker"]))


def ticker_events(spec: TickerSpec, new_symbol: str, sessions: list[dt.date]) -> JsonObject:
    """``/vX/reference/tickers/{new}/events`` results for a renamed ticker: both ticker changes."""
    return {
        "name": spec.name,
        "composite_figi": _identity(spec)["composite_figi"],
        "cik": _identity(spec)["cik"],
        "events": [
            {
                "ticker_change": {"ticker": new_symbol},
                "type": "ticker_change",
                "date": sessions[spec.rename_at].isoformat(),
            },
            {
                "ticker_change": {"ticker": spec.symbol},
                "type": "ticker_change",
                "date": spec.list_date.isoformat(),
            },
        ],
    }


def _number(value: float) -> float | int:
    """Whole numbers as JSON integers, like the vendor prints strikes and share counts."""
    return int(value) if float(value).is_integer() else value


def contract_record(ticker: str, spec: RootSpec) -> JsonObject:
    """One ``/v3/reference/options/contracts`` result for OCC ``ticker`` on a root described by ``spec``."""
    match = _OCC.match(ticker)
    if match is None:
        raise ValueError(f"{ticker}: not an OCC option ticker")
    _root, yymmdd, kind, strike = match.groups()
    expiration = dt.datetime.strptime(yymmdd, "%y%m%d").date()
    # CFI: option, call/put, American/European, stock/index underlying, physical/cash delivery, standard
    # or non-standard (adjusted) deliverable.
    cfi = "O" + kind + ("EICS" if spec.index else "ASPS" if not spec.adjusted else "ASPN")
    record: JsonObject = {
        "cfi": cfi,
        "contract_type": "call" if kind == "C" else "put",
        "exercise_style": "european" if spec.index else "american",
        "expiration_date": expiration.isoformat(),
        "primary_exchange": "CBOE" if spec.index else "BATO",
        "shares_per_contract": spec.shares_per_contract,
        "strike_price": _number(int(strike) / 1000),
        "ticker": ticker,
        "underlying_ticker": spec.underlying,
    }
    if spec.adjusted:
        record["additional_underlyings"] = [
            {"amount": spec.shares_per_contract, "type": "equity", "underlying": spec.underlying}
        ]
    return dict(sorted(record.items()))


def unlisted_contracts(tickers: set[str], roots: dict[str, RootSpec], seed: int) -> list[str]:
    """Contracts left out of the REST table: one each of an ordinary, a class-share (dotted
    underlying), an adjusted and an index-weekly root, whichever of them exist."""

    def kind(root: str) -> str:
        spec = roots[root]
        if spec.adjusted:
            return "adjusted"
        if spec.index:
            return "index" if root != spec.underlying else "index_monthly"
        return "class_share" if "." in spec.underlying else "ordinary"

    picks: dict[str, str] = {}
    for ticker in sorted(tickers, key=lambda t: stable_hex(seed, "unlisted", t)):
        match = _OCC.match(ticker)
        group = kind(match.group(1)) if match is not None else "unknown"
        if group in {"adjusted", "index", "class_share", "ordinary"}:
            picks.setdefault(group, ticker)
    return sorted(picks.values())


def options_contract_records(
    tickers: set[str], roots: dict[str, RootSpec], omit: set[str]
) -> list[JsonObject]:
    """Every contract of ``tickers`` not in ``omit``, sorted by ticker."""
    records = []
    for ticker in sorted(tickers - omit):
        match = _OCC.match(ticker)
        if match is not None:
            records.append(contract_record(ticker, roots[match.group(1)]))
    return records


def write_json(target: Path, payload: Any) -> None:
    """Write ``payload`` as indented, key-stable JSON, atomically."""
    write_bytes_atomic(target, (json.dumps(payload, indent=2) + "\n").encode("utf-8"))


def write_reference(
    out: Path,
    universe: Universe,
    sessions: list[dt.date],
    cash: dict[tuple[int, int], float],
    seed: int,
    contracts: list[JsonObject] | None = None,
) -> list[str]:
    """Write every REST response below ``out``; return the relative paths written.

    ``contracts`` (options-contracts results) is written only when given, i.e. when option files are.
    """
    written = {
        SPLITS_PATH: envelope(split_records(universe, sessions), seed, "splits"),
        DIVIDENDS_PATH: envelope(dividend_records(universe, sessions, cash), seed, "dividends"),
        TICKERS_PATH: envelope(ticker_records(universe, sessions), seed, "tickers"),
    }
    if contracts is not None:
        # The vendor's options-contracts envelope carries no ``count``.
        written[OPTIONS_CONTRACTS_PATH] = envelope(contracts, seed, "options_contracts", with_count=False)
    for spec in universe.tickers:
        if spec.new_symbol is not None:
            events = ticker_events(spec, spec.new_symbol, sessions)
            written[events_path(spec.new_symbol)] = envelope(events, seed, "events", with_count=False)
    for relative, payload in written.items():
        write_json(out / relative, payload)
    return sorted(written)
