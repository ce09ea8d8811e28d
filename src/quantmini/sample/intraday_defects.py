"""Deliberate defects of a sample's minute and options files, as seen in real vendor files (opt-in).

* ``outside_window_bar`` (``stocks_minute``): a bar stamped 03:59 ET, before the 04:00-20:00 window,
  placed just before its ticker's first bar of the session;
* ``bad_option_ticker`` (``options_daily``, ``options_minute``): a copy of a contract's row whose OCC
  ticker has ``X`` where ``C``/``P`` belongs, placed right after the row it copies.

One defect per file type, in the middle session of the range, each recorded like the daily defects
(key, session, ticker, kind, line text and 1-based line number, header = line 1).
"""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path
from typing import Any

from quantmini.io.atomic import write_bytes_atomic
from quantmini.sample.csvformat import GzipBuffer
from quantmini.sample.stock_files import FileLog
from quantmini.sample.timeline import midnight_ns
from quantmini.sample.universe import position

OUTSIDE_WINDOW_BAR = "outside_window_bar"
BAD_OPTION_TICKER = "bad_option_ticker"
#: 03:59 ET: one minute before vendor minute files start.
_BEFORE_WINDOW_NS = (3 * 60 + 59) * 60 * 1_000_000_000


def inject_intraday_defects(out: Path, logs: dict[str, FileLog], sessions: list[dt.date]) -> None:
    """Add the defects above to the files of ``logs`` (minute and option types only) and record them."""
    session = sessions[position(0.5, len(sessions))]
    for name, log in logs.items():
        if name not in ("stocks_minute", "options_daily", "options_minute"):
            continue
        key = log.keys.get(session.isoformat())
        if key is None:
            continue
        path = out / key
        lines = gzip.decompress(path.read_bytes()).decode().split("\n")
        header, data = lines[0], [line for line in lines[1:] if line]
        if not data:
            continue
        middle = data[len(data) // 2].split(",")
        if name == "stocks_minute":
            at = next(i for i, line in enumerate(data) if line.split(",", 1)[0] == middle[0])
            fields = data[at].split(",")
            fields[6] = str(midnight_ns(session) + _BEFORE_WINDOW_NS)
            kind = OUTSIDE_WINDOW_BAR
        else:
            at = len(data) // 2 + 1
            fields = list(middle)
            fields[0] = fields[0][:-9] + "X" + fields[0][-8:]
            kind = BAD_OPTION_TICKER
        text = ",".join(fields)
        data.insert(at, text)
        buffer = GzipBuffer()
        buffer.write(header + "\n" + "\n".join(data) + "\n")
        write_bytes_atomic(path, buffer.finish())
        log.rows[session.isoformat()] = len(data)
        log.defects.append(_record(name, key, session, fields[0], kind, text, at + 2))


def _record(
    name: str, key: str, session: dt.date, ticker: str, kind: str, line: str, number: int
) -> dict[str, Any]:
    return {
        "data_type": name,
        "key": key,
        "session": session.isoformat(),
        "ticker": ticker,
        "kind": kind,
        "line": line,
        "line_number": number,
    }
