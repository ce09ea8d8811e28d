"""Option contracts → underlying, shares per contract and adjustment, through the contracts reference.

Reference rows are written by hand in the vendor's ``/v3/reference/options/contracts`` shape and parsed by
the project's parser; every expected resolution is written out by hand. The sample test checks against
what the generator recorded in ``sample.json`` (its roots and the contracts it left out of the table).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest

from quantmini.core.option_contracts import RESOLVED_SCHEMA, resolve_contracts, with_deliverables
from quantmini.core.reference import options_contracts_from_payload
from quantmini.sample import generate_sample

OCC = re.compile(r"^O:([A-Z0-9.]+?)(\d{6})([CP])(\d{8})$")


def record(ticker: str, underlying: str, shares: float = 100, **extra: Any) -> dict[str, Any]:
    """One vendor-shaped contracts result (fields as the vendor documents them)."""
    match = OCC.match(ticker)
    assert match is not None
    index = underlying == "SPX"
    row: dict[str, Any] = {
        "cfi": "OCEICS" if index else "OCASPS",
        "contract_type": "call" if match.group(3) == "C" else "put",
        "exercise_style": "european" if index else "american",
        "expiration_date": dt.datetime.strptime(match.group(2), "%y%m%d").date().isoformat(),
        "primary_exchange": "CBOE" if index else "BATO",
        "shares_per_contract": shares,
        "strike_price": int(match.group(4)) / 1000,
        "ticker": ticker,
        "underlying_ticker": underlying,
    }
    return row | extra


def reference_of(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """The options_contracts table of ``rows``, keeping ``additional_underlyings`` when rows carry it."""
    frame = options_contracts_from_payload({"status": "OK", "results": rows})
    if any("additional_underlyings" in row for row in rows):
        extra = [row.get("additional_underlyings") for row in rows]
        frame = frame.with_columns(pl.Series("additional_underlyings", extra, strict=False))
    return frame


CASH_AND_SHARES = [
    {"amount": 150, "type": "equity", "underlying": "XYZ"},
    {"amount": 12.5, "type": "currency", "underlying": "USD"},
]
ROWS = [
    record("O:SPX250117C04500000", "SPX"),
    record("O:SPXW250110C04500000", "SPX"),
    record("O:SPXW250110P04400000", "SPX"),
    record("O:BRKB250117C00450000", "BRK.B"),
    record("O:XYZ1250117C00100000", "XYZ", 150, additional_underlyings=CASH_AND_SHARES, cfi="OCASPN"),
    record("O:XYZ1250117P00090000", "XYZ", 150, additional_underlyings=CASH_AND_SHARES, cfi="OCASPN"),
    record("O:XYZ250117C00070000", "XYZ", additional_underlyings=None),
    # 100 shares, but a cash component: a non-standard deliverable all the same.
    record("O:CSH250117C00020000", "CSH", additional_underlyings=[{"amount": 3, "type": "currency"}]),
    # Only the CFI says non-standard.
    record("O:NSD250117C00020000", "NSD", cfi="OCASPN"),
    # Only the digit the root adds to its underlying says adjusted.
    record("O:LMN1250117C00040000", "LMN"),
    # A root reused for two underlyings.
    record("O:FOO250117C00010000", "FOO"),
    record("O:FOO250221C00010000", "FOOB"),
    # One underlying, two deliverables under one root.
    record("O:BAR1250117C00050000", "BAR", 150),
    record("O:BAR1250221C00050000", "BAR", 200),
    # A class share whose only listed root is adjusted: the plain root ``CLSA`` is not known.
    record("O:CLSA1250117C00030000", "CLS.A", 50),
]


def resolved_rows(frame: pl.DataFrame) -> dict[str, tuple[Any, ...]]:
    return {row[0]: row[1:] for row in frame.iter_rows()}


def resolve(tickers: list[str], reference: pl.DataFrame | None) -> dict[str, tuple[Any, ...]]:
    frame = resolve_contracts(pl.DataFrame({"ticker": tickers}), reference)
    assert dict(frame.schema) == RESOLVED_SCHEMA
    assert frame["ticker"].to_list() == sorted(set(tickers))
    return resolved_rows(frame)


def test_listed_contracts_resolve_from_their_own_rows() -> None:
    got = resolve([row["ticker"] for row in ROWS[:10]], reference_of(ROWS))
    assert got == {
        "O:SPX250117C04500000": ("SPX", "SPX", 100.0, False, "reference", None),
        "O:SPXW250110C04500000": ("SPXW", "SPX", 100.0, False, "reference", None),
        "O:SPXW250110P04400000": ("SPXW", "SPX", 100.0, False, "reference", None),
        "O:BRKB250117C00450000": ("BRKB", "BRK.B", 100.0, False, "reference", None),
        "O:XYZ1250117C00100000": ("XYZ1", "XYZ", 150.0, True, "reference", None),
        "O:XYZ1250117P00090000": ("XYZ1", "XYZ", 150.0, True, "reference", None),
        "O:XYZ250117C00070000": ("XYZ", "XYZ", 100.0, False, "reference", None),
        "O:CSH250117C00020000": ("CSH", "CSH", 100.0, True, "reference", None),
        "O:NSD250117C00020000": ("NSD", "NSD", 100.0, True, "reference", None),
        "O:LMN1250117C00040000": ("LMN1", "LMN", 100.0, True, "reference", None),
    }


def test_unlisted_contracts_resolve_through_the_root_map() -> None:
    tickers = ["O:SPXW250117C04600000", "O:BRKB250221P00400000", "O:XYZ1250221C00110000"]
    assert resolve(tickers, reference_of(ROWS)) == {
        "O:SPXW250117C04600000": ("SPXW", "SPX", 100.0, False, "root_map", None),
        "O:BRKB250221P00400000": ("BRKB", "BRK.B", 100.0, False, "root_map", None),
        "O:XYZ1250221C00110000": ("XYZ1", "XYZ", 150.0, True, "root_map", None),
    }


def test_conflicting_roots_are_reported_not_voted() -> None:
    tickers = ["O:FOO250321C00010000", "O:FOO250117C00010000", "O:BAR1250321C00050000"]
    assert resolve(tickers, reference_of(ROWS)) == {
        "O:BAR1250321C00050000": (
            "BAR1",
            None,
            None,
            None,
            None,
            "root BAR1 has several deliverables in the reference:"
            " BAR (150 shares, adjusted), BAR (200 shares, adjusted)",
        ),
        # The contract's own row still decides for a listed contract.
        "O:FOO250117C00010000": ("FOO", "FOO", 100.0, False, "reference", None),
        "O:FOO250321C00010000": (
            "FOO",
            None,
            None,
            None,
            None,
            "root FOO maps to several underlyings in the reference: FOO, FOOB",
        ),
    }


def test_roots_absent_from_the_reference() -> None:
    tickers = [
        "O:AAPL250117C00200000",  # plain root, nothing known: the root is the ticker
        "O:XYZ2250117C00100000",  # adjusted root never listed: no guess from XYZ1
        "O:CLSA250117C00030000",  # letters of CLS.A: ambiguous, not silently CLSA
        "O:A.B250117C00030000",  # not a plain root
        "O:SPY251313C00500000",  # month 13: not a contract
    ]
    assert resolve(tickers, reference_of(ROWS)) == {
        "O:AAPL250117C00200000": ("AAPL", "AAPL", 100.0, False, "occ_root", None),
        "O:XYZ2250117C00100000": (
            "XYZ2",
            None,
            None,
            None,
            None,
            "adjusted root XYZ2 not in the reference",
        ),
        "O:CLSA250117C00030000": (
            "CLSA",
            None,
            None,
            None,
            None,
            "root CLSA not in the reference, which lists the underlying CLS.A with the same letters",
        ),
        "O:A.B250117C00030000": (
            "A.B",
            None,
            None,
            None,
            None,
            "root A.B is not a plain root and not in the reference",
        ),
        "O:SPY251313C00500000": (None, None, None, None, None, "not an OCC option ticker"),
    }


def test_disagreeing_rows_of_one_contract_are_reported() -> None:
    rows = [record("O:QRS250117C00010000", "QRS"), record("O:QRS250117C00010000", "QRS", 150)]
    got = resolve(["O:QRS250117C00010000", "O:QRS250221C00010000"], reference_of(rows))
    conflict = "several deliverables in the reference: QRS (100 shares), QRS (150 shares, adjusted)"
    assert got == {
        "O:QRS250117C00010000": (
            "QRS",
            None,
            None,
            None,
            None,
            f"contract O:QRS250117C00010000 has {conflict}",
        ),
        "O:QRS250221C00010000": ("QRS", None, None, None, None, f"root QRS has {conflict}"),
    }


def test_bars_resolve_row_by_row_and_keep_their_columns() -> None:
    """``with_deliverables`` adds the resolution to every row, whether tickers repeat (minute bars) or
    not (day bars)."""
    bars = pl.DataFrame(
        {
            "ticker": [
                "O:XYZ1250117C00100000",
                "O:SPXW250117C04600000",
                "O:XYZ1250117C00100000",
                "O:FOO250321C00010000",
                "O:AAPL250117C00200000",
                "O:SPY251313C00500000",
            ],
            "close": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    frame = with_deliverables(bars, reference_of(ROWS))
    assert frame.columns == ["ticker", "close", *list(RESOLVED_SCHEMA)[2:]]
    assert [frame.schema[c] for c in frame.columns[2:]] == list(RESOLVED_SCHEMA.values())[2:]
    expected = [
        ("O:XYZ1250117C00100000", 1.0, "XYZ", 150.0, True, "reference", None),
        ("O:SPXW250117C04600000", 2.0, "SPX", 100.0, False, "root_map", None),
        ("O:XYZ1250117C00100000", 3.0, "XYZ", 150.0, True, "reference", None),
        (
            "O:FOO250321C00010000",
            4.0,
            None,
            None,
            None,
            None,
            "root FOO maps to several underlyings in the reference: FOO, FOOB",
        ),
        ("O:AAPL250117C00200000", 5.0, "AAPL", 100.0, False, "occ_root", None),
        ("O:SPY251313C00500000", 6.0, None, None, None, None, "not an OCC option ticker"),
    ]
    assert frame.rows() == expected
    once = with_deliverables(bars.filter(pl.col("close") != 3.0), reference_of(ROWS))
    assert once.schema == frame.schema
    assert once.rows() == [row for row in expected if row[1] != 3.0]


@pytest.mark.parametrize("reference", [None, reference_of(ROWS).clear()])
def test_without_reference_plain_roots_resolve_and_adjusted_are_reported(
    reference: pl.DataFrame | None,
) -> None:
    tickers = [
        "O:SPY250117C00500000",
        "O:SPY250117C00500000",
        "O:BRKB250117C00450000",
        "O:TSLA1250117C00200000",
    ]
    assert resolve(tickers, reference) == {
        "O:SPY250117C00500000": ("SPY", "SPY", 100.0, False, "occ_root", None),
        # Nothing says BRKB is BRK.B: the root is all there is.
        "O:BRKB250117C00450000": ("BRKB", "BRKB", 100.0, False, "occ_root", None),
        "O:TSLA1250117C00200000": (
            "TSLA1",
            None,
            None,
            None,
            None,
            "adjusted root TSLA1 not in the reference",
        ),
    }


START, END = dt.date(2025, 11, 24), dt.date(2025, 12, 2)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("contracts")
    generate_sample(
        out,
        START,
        END,
        tickers=10,
        seed=5,
        data_types=("options_daily",),
        option_underlyings=3,
        intraday_defects=True,
    )
    return out


def traded_tickers(out: Path) -> set[str]:
    tickers: set[str] = set()
    for path in sorted((out / "flatfiles/us_options_opra/day_aggs_v1").rglob("*.csv.gz")):
        frame = pd.read_csv(io.StringIO(gzip.decompress(path.read_bytes()).decode()), usecols=["ticker"])
        tickers.update(frame["ticker"].astype(str))
    return tickers


def test_sample_contracts_resolve_to_the_recorded_deliverables(sample: Path) -> None:
    truth = json.loads((sample / "sample.json").read_text())["options"]
    roots, unlisted = truth["roots"], set(truth["unlisted_contracts"])
    payload = json.loads((sample / "rest/v3/reference/options/contracts.json").read_text())
    listed = {row["ticker"] for row in payload["results"]}
    traded = traded_tickers(sample)
    parsed = {t: m.group(1) for t in traded if (m := OCC.match(t)) is not None}
    bad = traded - set(parsed)
    assert len(bad) == 1
    assert len(unlisted) == 4
    assert unlisted <= set(parsed)
    assert {"SPX", "SPXW", "BRKB"} <= set(roots)
    assert any(spec["adjusted"] for spec in roots.values())

    frame = resolve_contracts(
        pl.DataFrame({"ticker": sorted(traded)}), options_contracts_from_payload(payload)
    )
    got = resolved_rows(frame)
    assert set(got) == traded
    for ticker, root in parsed.items():
        spec = roots[root]
        source = "reference" if ticker in listed else "root_map"
        assert ticker in listed or ticker in unlisted
        assert got[ticker] == (
            root,
            spec["underlying"],
            float(spec["shares_per_contract"]),
            spec["adjusted"],
            source,
            None,
        )
    assert got[bad.pop()][1:] == (None, None, None, None, "not an OCC option ticker")
    sources = frame["source"].value_counts()
    assert dict(sources.iter_rows()) == {"reference": len(listed), "root_map": 4, None: 1}

    # Without the table: index-weekly and class-share roots read as their own letters;
    # adjusted roots are reported.
    bare = resolved_rows(resolve_contracts(pl.DataFrame({"ticker": sorted(parsed)}), None))
    for ticker, root in parsed.items():
        if re.search(r"\d$", root):
            assert bare[ticker][1:] == (None, None, None, None, f"adjusted root {root} not in the reference")
        else:
            assert bare[ticker][1:] == (root, 100.0, False, "occ_root", None)
