"""Orchestration: draw the universe and its bars, write the flat files, REST responses and ``sample.json``.

``sample.json`` is the generator's record of truth, for tests of the pipeline to compare against:
parameters, sessions, files and rows per data type and session, every corporate action, each symbol's
first/last session, option underlyings, roots and pricing inputs (rate, dividend yields, volatility
surfaces, index levels), the contracts left out of the REST contracts table and every injected defect
(with its exact line and number).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from quantmini._exceptions import ConfigurationError
from quantmini.core.calendar import EXCHANGE_TZ
from quantmini.core.calendar import sessions as exchange_sessions
from quantmini.datasets import get_spec
from quantmini.sample.bars import DailyBars, daily_bars
from quantmini.sample.defects import plan_defects
from quantmini.sample.intraday_defects import inject_intraday_defects
from quantmini.sample.option_files import OptionPlan, plan_options, write_options
from quantmini.sample.reference import (
    dividend_records,
    options_contract_records,
    split_records,
    unlisted_contracts,
    write_json,
    write_reference,
)
from quantmini.sample.stock_files import FileLog, write_stocks_daily, write_stocks_minute
from quantmini.sample.timeline import Timeline, build_timeline
from quantmini.sample.universe import Universe, build_universe

DEFAULT_DATA_TYPES: tuple[str, ...] = ("stocks_daily", "stocks_minute", "options_daily", "options_minute")
RECORD_FILE = "sample.json"
FLATFILES_DIR = "flatfiles"
RECORD_FORMAT = "quantmini-sample/1"


@dataclass(frozen=True, slots=True)
class SampleSummary:
    """What :func:`generate_sample` wrote."""

    out: Path
    sessions: int
    #: Files written per data type.
    files: Mapping[str, int]
    #: Data rows (header excluded, defect rows included) per data type.
    rows: Mapping[str, int]
    #: Counts of ``splits``, ``dividends`` and ``ticker_changes``.
    corporate_actions: Mapping[str, int]
    #: Defects injected (``stocks_daily``, and minute/options files when asked).
    defects: int


def generate_sample(
    out: Path,
    start: dt.date,
    end: dt.date,
    *,
    tickers: int = 50,
    seed: int = 0,
    data_types: Sequence[str] = DEFAULT_DATA_TYPES,
    minute_tickers: int | None = None,
    minute_sessions: int | None = None,
    option_underlyings: int = 5,
    intraday_defects: bool = False,
) -> SampleSummary:
    """Write a deterministic, vendor-shaped sample below ``out`` and return a summary.

    ``out/flatfiles/<key>`` mirrors the vendor bucket, ``out/rest/...`` the REST reference responses and
    ``out/sample.json`` records the truth. The same arguments give byte-identical files. Daily stock
    files always carry their defects; ``intraday_defects`` adds those of
    :mod:`quantmini.sample.intraday_defects` to the minute and options files.
    """
    names = list(dict.fromkeys(get_spec(name).name for name in data_types))
    if minute_tickers is not None and minute_tickers < 0:
        raise ConfigurationError(f"minute_tickers: {minute_tickers} must not be negative")
    if minute_sessions is not None and minute_sessions < 1:
        raise ConfigurationError(f"minute_sessions: {minute_sessions} must be at least 1")
    if option_underlyings < 0:
        raise ConfigurationError(f"option_underlyings: {option_underlyings} must not be negative")
    timeline = build_timeline(start, end)
    universe = build_universe(tickers, timeline.sessions, seed)
    bars = daily_bars(universe, timeline.decimal, seed)
    minute_count = min(tickers, 20) if minute_tickers is None else minute_tickers
    flat = out / FLATFILES_DIR

    logs: dict[str, FileLog] = {}
    if "stocks_daily" in names:
        plans = plan_defects(universe, bars)
        logs["stocks_daily"] = write_stocks_daily(flat, universe, bars, timeline, plans)
    if "stocks_minute" in names:
        logs["stocks_minute"] = write_stocks_minute(
            flat, universe, bars, timeline, minute_count, seed, last_sessions=minute_sessions
        )
    option_plan = plan_options(universe, option_underlyings, seed)
    contracts: list[dict[str, Any]] | None = None
    unlisted: list[str] = []
    if {"options_daily", "options_minute"} & set(names):
        option_logs, traded = write_options(flat, universe, bars, timeline, option_plan, set(names), seed)
        logs.update(option_logs)
        unlisted = unlisted_contracts(traded, option_plan.roots, seed)
        contracts = options_contract_records(traded, option_plan.roots, set(unlisted))
    if intraday_defects:
        inject_intraday_defects(flat, logs, timeline.sessions)
    _stamp_publication(flat, logs)

    reference_files = write_reference(out, universe, timeline.sessions, bars.cash, seed, contracts)
    parameters = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "tickers": tickers,
        "seed": seed,
        "data_types": names,
        "minute_tickers": min(minute_count, tickers),
        "minute_sessions": minute_sessions,
        "option_underlyings": option_underlyings,
    }
    record = _record(parameters, universe, bars, timeline, option_plan, logs)
    record["options"]["unlisted_contracts"] = unlisted
    record["reference_files"] = reference_files
    write_json(out / RECORD_FILE, record)
    actions = record["corporate_actions"]
    return SampleSummary(
        out=out,
        sessions=len(timeline.sessions),
        files={name: len(log.keys) for name, log in logs.items()},
        rows={name: sum(log.rows.values()) for name, log in logs.items()},
        corporate_actions={kind: len(items) for kind, items in actions.items()},
        defects=len(record["defects"]),
    )


#: When the vendor publishes a session's files: this time (exchange time) on the next session.
PUBLISHED_AT = dt.time(11, 0)


def _stamp_publication(flat: Path, logs: Mapping[str, FileLog]) -> None:
    """Give every day file the modification time the vendor's object would have: :data:`PUBLISHED_AT` on
    the next session (a local mirror's ``last_modified``; ``data status`` judges lateness by it)."""
    days = sorted({dt.date.fromisoformat(day) for log in logs.values() for day in log.keys})
    if not days:
        return
    calendar = exchange_sessions(days[0], days[-1] + dt.timedelta(days=15))
    following = dict(itertools.pairwise(calendar))
    zone = ZoneInfo(EXCHANGE_TZ)
    for log in logs.values():
        for day, key in log.keys.items():
            published = dt.datetime.combine(following[dt.date.fromisoformat(day)], PUBLISHED_AT, tzinfo=zone)
            stamp = published.timestamp()
            os.utime(flat / key, (stamp, stamp))


def _record(
    parameters: dict[str, Any],
    universe: Universe,
    bars: DailyBars,
    timeline: Timeline,
    option_plan: OptionPlan,
    logs: dict[str, FileLog],
) -> dict[str, Any]:
    sessions = timeline.sessions
    spans: dict[str, dict[str, Any]] = {}
    changes: list[dict[str, str]] = []
    for spec in universe.tickers:
        parts = [(spec.symbol, spec.first, spec.last)]
        if spec.new_symbol is not None:
            parts = [
                (spec.symbol, spec.first, spec.rename_at - 1),
                (spec.new_symbol, spec.rename_at, spec.last),
            ]
            changes.append(
                {
                    "old_ticker": spec.symbol,
                    "new_ticker": spec.new_symbol,
                    "date": sessions[spec.rename_at].isoformat(),
                }
            )
        for symbol, first, last in parts:
            spans[symbol] = {
                "first_session": sessions[first].isoformat(),
                "last_session": sessions[last].isoformat(),
                "type": spec.type,
                "ipo": first > 0 and symbol == spec.symbol,
                "delisted": spec.delisted and last == spec.last,
            }
    dividends = dividend_records(universe, sessions, bars.cash)
    return {
        "format": RECORD_FORMAT,
        "parameters": parameters,
        "sessions": [s.isoformat() for s in sessions],
        "next_session": timeline.next_session.isoformat(),
        "files": {
            name: {
                session: {"key": f"{FLATFILES_DIR}/{log.keys[session]}", "rows": rows}
                for session, rows in log.rows.items()
            }
            for name, log in logs.items()
        },
        "corporate_actions": {
            "splits": split_records(universe, sessions),
            "dividends": dividends,
            "ticker_changes": changes,
        },
        "tickers": spans,
        "roles": {role: universe.tickers[i].symbol for role, i in universe.roles.items()},
        "options": {
            "underlyings": [universe.tickers[i].symbol for i in option_plan.underlyings],
            "adjusted_roots": sorted(option_plan.adjusted),
            **option_plan.record(sessions),
        },
        "defects": [defect for log in logs.values() for defect in log.defects],
    }
