"""Re-read a Qlib root with the project's own codec and check it exactly against what the gold stage recorded.

Like qlib's ``check_data_health`` but exact, because the lake knows what each file must hold:

* the calendar equals the bars of the sessions the gold state records: strictly increasing (so sorted
  and unique) and every session an exchange session;
* ``instruments/all.txt`` names each instrument of the state once, with the state's span, on the calendar;
* every field file of an instrument starts at its span's first bar and holds exactly its span's bars;
* no value is infinite; the bar fields are NaN exactly where the raw history beside the root
  (:mod:`quantmini.io.qlib_history`) has no bar, and every field is NaN there;
* the adjusted prices and volume divided (multiplied) by ``$factor`` give the raw values back;
* ``$factor`` changes only at a session where the factor table
  (``silver/reference/adjustment_factors.parquet``) starts a new interval for one of the instrument's
  tickers (a corporate action took effect);
* a warning (not an error), as qlib's check does, for steps in an adjusted price of more than 50 % or in
  the volume of more than 300 % between consecutive bars where the factor did not change (one line per
  file: how many, and the session of the largest).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from quantmini._exceptions import ValidationError
from quantmini.core.adjustment_names import Adjustment
from quantmini.core.calendar import sessions as exchange_sessions
from quantmini.core.qlib_encoding import check_freq, decode_bin, qlib_dir_name
from quantmini.datasets.base import DatasetSpec, QlibTarget
from quantmini.io.lake import Lake
from quantmini.io.manifest import read_manifest
from quantmini.io.qlib_history import history_file, read_history
from quantmini.pipeline.gold import BarCalendar, bar_calendar, root_name

#: Fields NaN exactly where an instrument has no bar (the others may be NaN on a bar too).
BAR_FIELDS = ("open", "high", "low", "close", "volume", "vwap", "factor")
#: Relative difference allowed between an adjusted value divided by its factor and the raw value
#: (both went through float32).
RAW_TOLERANCE = 1e-5
#: qlib's ``check_data_health`` thresholds: |relative step| between consecutive bars.
PRICE_STEP = 0.5
VOLUME_STEP = 3.0

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class GoldFinding:
    """One problem: the file (relative to the root) or instrument it concerns, and the session if any."""

    severity: Severity
    where: str
    message: str
    session: str | None = None

    def line(self) -> str:
        """``<where> <session>: <message>``."""
        return f"{self.where}{'' if self.session is None else ' ' + self.session}: {self.message}"


@dataclass(frozen=True, slots=True)
class GoldCheck:
    """One Qlib root and what was found in it."""

    name: str
    root: Path
    instruments: int = 0
    files: int = 0
    findings: list[GoldFinding] = field(default_factory=list)

    @property
    def errors(self) -> list[GoldFinding]:
        """The findings that fail the check (warnings excluded)."""
        return [f for f in self.findings if f.severity == "error"]


def check_gold(lake: Lake, spec: DatasetSpec, adjustment: Adjustment = "total_return") -> list[GoldCheck]:
    """Check every Qlib root ``spec`` declares for ``adjustment`` that the lake holds."""
    checks = []
    for declared in spec.gold:
        target = declared.for_adjustment(adjustment)
        root = lake.qlib_root(spec.name, target.freq, adjustment)
        state_dir = lake.gold_state_dir(spec.name, target.freq, adjustment)
        if not root.exists() and not state_dir.exists():
            continue
        name = root_name(spec.name, target.freq, adjustment)
        check = GoldCheck(name, root)
        findings = check.findings
        meta = read_manifest(state_dir / "state.json")
        symbols_path = state_dir / "symbols.parquet"
        if meta is None or not symbols_path.exists():
            findings.append(
                GoldFinding("error", str(state_dir), "no gold state (the root was not built here)")
            )
            checks.append(check)
            continue
        sessions = sorted(dt.date.fromisoformat(s) for s in meta.get("sessions", {}))
        freq = check_freq(target.freq)
        cal = bar_calendar(sessions, freq, spec.calendar, meta.get("hours", "regular"))
        if not _check_calendar(root, cal, spec.calendar, findings):
            checks.append(check)
            continue
        state = pl.read_parquet(symbols_path)
        spans = {r["stored"]: (r["symbol"], r["first"], r["last"]) for r in state.iter_rows(named=True)}
        listed = _check_instruments(root, cal, spans, findings)
        naming = _naming(state_dir / "instruments.parquet")
        changes = _factor_changes(lake, naming)
        files = 0
        for stored, (symbol, first, last) in sorted(spans.items()):
            if stored not in listed:
                continue
            files += _check_instrument(
                root, state_dir, target, cal, stored, (first, last), changes.get(symbol, set()), findings
            )
        features = root / "features"
        present = {p.name for p in features.iterdir()} if features.is_dir() else set()
        extra = present - {qlib_dir_name(s) for s in spans}
        findings += [
            GoldFinding("error", f"features/{d}", "features directory of no instrument of the gold state")
            for d in sorted(extra)
        ]
        checks.append(GoldCheck(name, root, len(listed), files, findings))
    return checks


def _check_calendar(root: Path, cal: BarCalendar, exchange: str, findings: list[GoldFinding]) -> bool:
    """Compare ``calendars/<freq>.txt`` with the state's bars; ``False`` when it differs (every position
    after that would be measured against the wrong bars)."""
    where = f"calendars/{cal.freq}.txt"
    path = root / where
    if not path.exists():
        findings.append(GoldFinding("error", where, "missing"))
        return False
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
    ok = True
    for number in range(1, len(lines)):
        if not lines[number - 1] < lines[number]:
            findings.append(
                GoldFinding(
                    "error",
                    f"{where}:{number + 1}",
                    f"{lines[number]} does not come after {lines[number - 1]}",
                )
            )
            ok = False
    if cal.sessions:
        known = set(exchange_sessions(cal.sessions[0], cal.sessions[-1], exchange))
        for session in cal.sessions:
            if session not in known:
                findings.append(GoldFinding("error", where, f"not a {exchange} session", session.isoformat()))
                ok = False
    expected = cal.lines()
    if lines != expected:
        ok = False
        first = next((i for i, (a, b) in enumerate(zip(lines, expected, strict=False)) if a != b), None)
        if first is None:
            message = f"{len(lines)} bars but the gold state's sessions give {len(expected)}"
        else:
            message = f"line {first + 1} is {lines[first]}, the gold state's sessions give {expected[first]}"
        findings.append(GoldFinding("error", where, message))
    return ok


def _check_instruments(
    root: Path, cal: BarCalendar, spans: dict[str, tuple[str, int, int]], findings: list[GoldFinding]
) -> set[str]:
    """Check ``instruments/all.txt`` against the state's spans; the instruments it lists soundly."""
    where = "instruments/all.txt"
    path = root / where
    if not path.exists():
        findings.append(GoldFinding("error", where, "missing"))
        return set()
    index = {line: i for i, line in enumerate(cal.lines())}
    listed: set[str] = set()
    text = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(text, start=1):
        parts = line.split("\t")
        at = f"{where}:{number}"
        if len(parts) != 3:
            findings.append(GoldFinding("error", at, f"expected SYMBOL<TAB>start<TAB>end, got {line!r}"))
            continue
        symbol, start, end = parts
        if start not in index or end not in index or index[end] < index[start]:
            findings.append(
                GoldFinding("error", at, f"span {start}..{end} of {symbol} is not within the calendar")
            )
        elif symbol in listed:
            findings.append(GoldFinding("error", at, f"{symbol} is listed twice"))
        elif symbol not in spans:
            findings.append(GoldFinding("error", at, f"{symbol} is not an instrument of the gold state"))
        elif (index[start], index[end]) != spans[symbol][1:]:
            first, last = spans[symbol][1:]
            findings.append(
                GoldFinding(
                    "error",
                    at,
                    f"{symbol} spans {start}..{end}, the gold state records {_span_text(cal, first, last)}",
                )
            )
        else:
            listed.add(symbol)
    named = {line.split("\t")[0] for line in text}
    findings += [
        GoldFinding("error", where, f"{stored} (of the gold state) is not listed")
        for stored in sorted(set(spans) - named)
    ]
    return listed


def _span_text(cal: BarCalendar, first: int, last: int) -> str:
    """``first..last`` as calendar lines (positions when off the calendar)."""
    lines = cal.lines(np.array([first, last], dtype=np.int64)) if 0 <= first <= last < len(cal.ints) else []
    return f"{lines[0]}..{lines[1]}" if lines else f"bars {first}..{last}"


def _check_instrument(
    root: Path,
    state_dir: Path,
    target: QlibTarget,
    cal: BarCalendar,
    stored: str,
    span: tuple[int, int],
    changes: set[dt.date],
    findings: list[GoldFinding],
) -> int:
    """Check one instrument's field files; return how many were read."""
    first, last = span
    length = last - first + 1
    directory = qlib_dir_name(stored)
    values: dict[str, npt.NDArray[np.float32]] = {}
    for name in target.fields:
        where = f"features/{directory}/{name}.{cal.freq}.bin"
        path = root / where
        if not path.exists():
            findings.append(GoldFinding("error", where, f"missing ({stored} lacks ${name})"))
            continue
        try:
            start, array = decode_bin(path.read_bytes())
        except ValidationError as exc:
            findings.append(GoldFinding("error", where, str(exc)))
            continue
        if start != first or len(array) != length:
            findings.append(
                GoldFinding(
                    "error",
                    where,
                    f"covers bars {start}..{start + len(array) - 1} but {stored} spans {first}..{last}",
                )
            )
            continue
        if (infinite := np.flatnonzero(np.isinf(array))).size:
            findings.append(
                GoldFinding(
                    "error", where, f"{infinite.size} infinite values", _session(cal, first + infinite[0])
                )
            )
        values[name] = array
    history = read_history(history_file(state_dir / "history", directory), span, len(target.values))
    if history is None:
        findings.append(GoldFinding("warning", stored, "no raw history beside the root: bars not checked"))
        return len(values)
    bars = ~np.isnan(history[:, target.values.index("close")])
    _check_bars(stored, cal, first, bars, values, findings)
    _check_raw(stored, cal, first, bars, values, history, target, findings)
    _check_factor(stored, cal, first, bars, values, changes, findings)
    return len(values)


def _check_bars(
    stored: str,
    cal: BarCalendar,
    first: int,
    bars: npt.NDArray[np.bool_],
    values: dict[str, npt.NDArray[np.float32]],
    findings: list[GoldFinding],
) -> None:
    """NaN in a bar field exactly where the instrument has no bar; every field NaN there."""
    for name, array in values.items():
        nan = np.isnan(array)
        where = f"features/{qlib_dir_name(stored)}/{name}.{cal.freq}.bin"
        if name in BAR_FIELDS and (holes := np.flatnonzero(nan & bars)).size:
            findings.append(
                GoldFinding(
                    "error", where, f"NaN on {holes.size} bars that exist", _session(cal, first + holes[0])
                )
            )
        if (ghosts := np.flatnonzero(~nan & ~bars)).size:
            findings.append(
                GoldFinding(
                    "error",
                    where,
                    f"values on {ghosts.size} bars without a bar",
                    _session(cal, first + ghosts[0]),
                )
            )


def _check_raw(
    stored: str,
    cal: BarCalendar,
    first: int,
    bars: npt.NDArray[np.bool_],
    values: dict[str, npt.NDArray[np.float32]],
    history: npt.NDArray[np.float64],
    target: QlibTarget,
    findings: list[GoldFinding],
) -> None:
    """Adjusted values and ``$factor`` give the raw values back (prices divided, volume multiplied)."""
    factor = values.get("factor")
    if factor is None:
        return
    for name in ("open", "high", "low", "close", "volume"):
        if name not in values or name not in target.values:
            continue
        raw = history[:, target.values.index(name)]
        with np.errstate(divide="ignore", invalid="ignore"):
            back = values[name] * factor if name == "volume" else values[name] / factor
            wrong = bars & ~(np.abs(back - raw) <= RAW_TOLERANCE * np.maximum(np.abs(raw), 1e-12))
        if (bad := np.flatnonzero(wrong)).size:
            i = bad[0]
            op = "×" if name == "volume" else "/"
            findings.append(
                GoldFinding(
                    "error",
                    f"features/{qlib_dir_name(stored)}/{name}.{cal.freq}.bin",
                    f"${name} {op} $factor = {back[i]:.6g} on {bad.size} bars, the raw value is {raw[i]:.6g}",
                    _session(cal, first + i),
                )
            )


def _check_factor(
    stored: str,
    cal: BarCalendar,
    first: int,
    bars: npt.NDArray[np.bool_],
    values: dict[str, npt.NDArray[np.float32]],
    changes: set[dt.date],
    findings: list[GoldFinding],
) -> None:
    """``$factor`` changes only where a corporate action took effect; large steps where it did not."""
    factor = values.get("factor")
    if factor is None:
        return
    positions = np.flatnonzero(bars & ~np.isnan(factor))
    if positions.size < 2:
        return
    session_of = np.searchsorted(np.array(cal.starts), positions + first, side="right") - 1
    # An action took effect between two consecutive bars when one of its dates d has
    # previous bar's session < d <= this bar's session.
    dates = np.array(sorted(changes), dtype="datetime64[D]")
    days = np.array(cal.sessions, dtype="datetime64[D]")[session_of]
    seen = np.searchsorted(dates, days, side="right")
    action = seen[1:] > seen[:-1]
    moved = factor[positions[1:]] != factor[positions[:-1]]
    for i in np.flatnonzero(moved & ~action):
        findings.append(
            GoldFinding(
                "error",
                f"features/{qlib_dir_name(stored)}/factor.{cal.freq}.bin",
                f"$factor changes from {factor[positions[i]]:.6g} to {factor[positions[i + 1]]:.6g} "
                "without a corporate action in the factor table",
                _session(cal, first + positions[i + 1]),
            )
        )
    for name, limit in (
        ("open", PRICE_STEP),
        ("high", PRICE_STEP),
        ("low", PRICE_STEP),
        ("close", PRICE_STEP),
        ("volume", VOLUME_STEP),
    ):
        if name not in values:
            continue
        series = values[name][positions].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.abs(series[1:] / series[:-1] - 1)
        jumps = np.flatnonzero((step > limit) & ~moved)
        if jumps.size:
            i = jumps[np.argmax(step[jumps])]
            findings.append(
                GoldFinding(
                    "warning",
                    f"features/{qlib_dir_name(stored)}/{name}.{cal.freq}.bin",
                    f"{jumps.size} steps over {limit:.0%} from the previous bar without a factor change, "
                    f"the largest {step[i]:.0%}",
                    _session(cal, first + positions[i + 1]),
                )
            )


def _session(cal: BarCalendar, position: int) -> str:
    """The calendar line of bar ``position``."""
    return cal.lines(np.array([position], dtype=np.int64))[0]


def _naming(path: Path) -> pl.DataFrame:
    """The instrument spans the root was written with (ticker, valid_from, valid_to, instrument)."""
    return pl.read_parquet(path) if path.exists() else pl.DataFrame()


def _factor_changes(lake: Lake, naming: pl.DataFrame) -> dict[str, set[dt.date]]:
    """Per instrument: the dates its factors may change (an interval of one of its tickers starts or
    ends, or the instrument changes ticker)."""
    path = lake.adjustment_factors()
    intervals = pl.read_parquet(path) if path.exists() else pl.DataFrame()
    by_ticker: dict[str, set[dt.date]] = {}
    if intervals.height:
        for ticker, start, end in intervals.select("ticker", "valid_from", "valid_to").iter_rows():
            by_ticker.setdefault(ticker, set()).update((start, end))
    changes: dict[str, set[dt.date]] = {}
    tickers: dict[str, set[str]] = {}
    if naming.height:
        for ticker, start, end, instrument in naming.select(
            "ticker", "valid_from", "valid_to", "instrument"
        ).iter_rows():
            tickers.setdefault(instrument, set()).add(ticker)
            changes.setdefault(instrument, set()).update((start, end))
    for instrument in set(tickers) | set(by_ticker):
        for ticker in tickers.get(instrument, {instrument}):
            changes.setdefault(instrument, set()).update(by_ticker.get(ticker, set()))
    return changes
