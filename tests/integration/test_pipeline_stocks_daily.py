"""stocks_daily end to end on generated data: landing → bronze → silver → gold, checked against the
generator's own record (sample.json), an independent pandas parse of the CSV files, a plain reference
implementation of the adjustment definition, and real pyqlib."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

from quantmini.core.fundamentals import FINANCIALS_SCHEMA
from quantmini.core.reference import DIVIDENDS_V1_SCHEMA
from quantmini.datasets import get_spec
from quantmini.io.duckdb_catalog import connect_catalog
from quantmini.io.lake import Lake
from quantmini.io.reference_store import store_reference
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.runner import PipelineReport, PipelineRunner
from quantmini.sample import generate_sample
from tests.support.qlib_child import read_with_qlib
from tests.support.reference_factors import reference_factors

SPEC = get_spec("stocks_daily")
START, END = dt.date(2025, 8, 1), dt.date(2025, 12, 31)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, PipelineReport]:
    base = tmp_path_factory.mktemp("pipeline")
    source, root = base / "source", base / "lake"
    generate_sample(source, START, END, tickers=16, seed=11, data_types=("stocks_daily",))
    report = PipelineRunner(Lake(root), SPEC).run(LocalMirrorSource(source), START, END)
    assert report.failures == []
    return source, root, report


def _record(source: Path) -> dict[str, Any]:
    return json.loads((source / "sample.json").read_text())


def _csv_frames(source: Path) -> pd.DataFrame:
    """Every generated file parsed independently with pandas (the vendor CSV, as text)."""
    parts = []
    for path in sorted((source / "flatfiles" / SPEC.prefix).rglob("*.csv.gz")):
        with gzip.open(path) as fh:
            frame = pd.read_csv(fh, dtype={"ticker": str})
        frame["file_session"] = dt.date.fromisoformat(path.name[:10])
        frame["line"] = np.arange(2, len(frame) + 2)
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def _silver(root: Path) -> pd.DataFrame:
    frame = pd.read_parquet(root / "silver" / "stocks_daily")
    frame["session_date"] = pd.to_datetime(frame["session_date"]).dt.date
    return frame.drop(columns=[c for c in ("date",) if c in frame.columns])


def test_rows_are_conserved_and_defects_quarantined(built: tuple[Path, Path, PipelineReport]) -> None:
    source, root, report = built
    record = _record(source)
    files = record["files"]["stocks_daily"]
    assert sorted(files) == [o.session.isoformat() for o in report.ingest]
    for outcome in report.ingest:
        assert outcome.rows_in == files[outcome.session.isoformat()]["rows"]
        assert outcome.rows_in == outcome.rows_bronze + outcome.rows_quarantined + outcome.duplicates

    defects = {d["kind"]: d for d in record["defects"]}
    quarantine = pd.read_parquet(root / "quarantine" / "stocks_daily")
    got = sorted(zip(quarantine["ticker"], quarantine["line"], quarantine["reason"], strict=True))
    assert got == sorted(
        [
            (
                defects["ohlc_violation"]["ticker"],
                defects["ohlc_violation"]["line_number"],
                "ohlc_inconsistent",
            ),
            (
                defects["next_session_row"]["ticker"],
                defects["next_session_row"]["line_number"],
                "outside_session",
            ),
        ]
    )
    assert set(quarantine["raw"]) == {defects["ohlc_violation"]["line"], defects["next_session_row"]["line"]}
    assert report.rows["duplicates"] == 1


def test_bronze_equals_the_csv_minus_defects(built: tuple[Path, Path, PipelineReport]) -> None:
    source, root, _ = built
    csv = _csv_frames(source)
    defects = {
        (d["session"], d["line_number"]) for d in _record(source)["defects"] if d["kind"] != "duplicate_row"
    }
    keep = ~csv.apply(lambda r: (r.file_session.isoformat(), r.line) in defects, axis=1)
    expected = (
        csv[keep].drop_duplicates(subset=list(SPEC.csv_columns)).sort_values(["file_session", "ticker"])
    )
    bronze = pd.read_parquet(root / "bronze" / "stocks_daily").sort_values(["session_date", "ticker"])
    assert len(bronze) == len(expected)
    for col in ("ticker", "open", "high", "low", "close", "volume", "window_start", "transactions"):
        assert bronze[col].tolist() == expected[col].tolist(), col


def _adjusted(root: Path) -> pd.DataFrame:
    """The lake's adjusted bars as DuckDB computes them from the compact factor table (catalog view)."""
    with connect_catalog(root) as con:
        frame = con.execute("SELECT * FROM adjusted_stocks_daily ORDER BY ticker, session_date").df()
    frame["session_date"] = pd.to_datetime(frame["session_date"]).dt.date
    return frame


def _actions(source: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    actions = _record(source)["corporate_actions"]
    splits = pd.DataFrame(actions["splits"]).assign(
        execution_date=lambda f: pd.to_datetime(f.execution_date).dt.date
    )
    dividends = pd.DataFrame(actions["dividends"]).assign(
        ex_dividend_date=lambda f: pd.to_datetime(f.ex_dividend_date).dt.date
    )
    renames = pd.DataFrame(actions["ticker_changes"]).rename(columns={"date": "change_date"})
    renames["change_date"] = pd.to_datetime(renames["change_date"]).dt.date
    return splits, dividends, renames


def test_factors_match_the_definition_and_splits_are_continuous(
    built: tuple[Path, Path, PipelineReport],
) -> None:
    source, root, _ = built
    splits, dividends, renames = _actions(source)
    assert {"forward", "reverse"} <= {
        "forward" if s.split_to > s.split_from else "reverse" for s in splits.itertuples()
    }
    assert len(renames) == 1
    adjusted = _adjusted(root).reset_index(drop=True)
    expected = reference_factors(adjusted[["ticker", "session_date", "close"]], splits, dividends, renames)
    expected = expected.sort_values(["ticker", "session_date"]).reset_index(drop=True)
    assert adjusted.session_date.tolist() == expected.session_date.tolist()
    np.testing.assert_allclose(adjusted["split_factor"], expected["split_factor"], rtol=1e-12)
    np.testing.assert_allclose(adjusted["adj_factor"], expected["adj_factor"], rtol=1e-12)
    np.testing.assert_allclose(adjusted["adj_close"], adjusted["close"] * expected["adj_factor"], rtol=1e-12)
    # The factor table is compact: a few spans per corporate action, not a row per bar.
    factors = pq.read_table(Lake(root).adjustment_factors())
    assert 0 < factors.num_rows <= 2 * (len(splits) + len(dividends))

    for split in splits.itertuples():
        bars = adjusted[adjusted.ticker == split.ticker].set_index("session_date")
        after = bars.index[bars.index >= split.execution_date][0]
        before = bars.index[bars.index < split.execution_date][-1]
        raw_jump = bars.close[after] / bars.close[before]
        adjusted_jump = bars.adj_close[after] / bars.adj_close[before]
        assert raw_jump == pytest.approx(split.split_from / split.split_to, rel=0.3)
        assert abs(adjusted_jump - 1) < 0.15, f"{split.ticker} adjusted price jumps at its split"


def test_rename_links_the_company_history_and_checks_are_clean(
    built: tuple[Path, Path, PipelineReport],
) -> None:
    source, root, report = built
    change = _record(source)["corporate_actions"]["ticker_changes"][0]
    assert report.factors is not None
    assert report.factors.entities.renamed == 1
    assert report.factors.entities.reused == 0
    tables = {o.table: o for o in report.silver}
    # Generated prices are consistent with their split records: no mismatch to report.
    assert tables["corporate_action_checks"].rows == 0
    assert tables["corporate_action_checks"].written == tables["stocks_daily"].written > 0
    with connect_catalog(root) as con:
        assert con.execute("select count(*) from corporate_action_checks").fetchall() == [(0,)]
        adjusted_rows = con.execute("select count(*) from adjusted_stocks_daily").fetchall()
        silver_rows = con.execute("select count(*) from silver_stocks_daily").fetchall()
        assert adjusted_rows == silver_rows == [(report.rows["bronze"],)]
    silver = _silver(root)
    old = silver[silver.ticker == change["old_ticker"]]
    new = silver[silver.ticker == change["new_ticker"]]
    assert old.session_date.max() < dt.date.fromisoformat(change["date"]) <= new.session_date.min()
    # One series across the rename: the new ticker's first return is against the old ticker's last close.
    adjusted = _adjusted(root)
    last_old = adjusted[adjusted.ticker == change["old_ticker"]].sort_values("session_date").iloc[-1]
    first_new = adjusted[adjusted.ticker == change["new_ticker"]].sort_values("session_date").iloc[0]
    first_silver = new.sort_values("session_date").iloc[0]
    assert first_silver.ret_1d == pytest.approx(first_new.adj_close / last_old.adj_close - 1, rel=1e-9)
    entities = pl.read_parquet(Lake(root).silver_reference("entities"))
    company = entities.filter(pl.col("ticker").is_in([change["old_ticker"], change["new_ticker"]]))
    assert company["entity"].n_unique() == 1
    assert set(company["instrument"]) == {change["new_ticker"]}


def _calendar_reference(adjusted: pd.DataFrame, renames: list[dict[str, str]]) -> pd.DataFrame:
    """ret_1d/ret_5d/ret_20d/vol_20d on the XNYS calendar from DuckDB's adjusted closes (pandas only)."""
    import exchange_calendars as xcals

    calendar = pd.Index(
        [ts.date() for ts in xcals.get_calendar("XNYS").sessions_in_range(START, END)], name="session_date"
    )
    out = []
    # A renamed company is one series: its bars under both tickers, in date order.
    companies = {c["old_ticker"]: c["new_ticker"] for c in renames}
    adjusted = adjusted.assign(company=adjusted.ticker.map(lambda t: companies.get(t, t)))
    for _, bars in adjusted.groupby("company"):
        tickers = bars.set_index("session_date").ticker
        g = bars.drop(columns="ticker").set_index("session_date").reindex(calendar)
        for h in (1, 5, 20):
            g[f"ref_ret_{h}d"] = g.adj_close / g.adj_close.shift(h) - 1
        g["ref_vol_20d"] = g.ref_ret_1d.rolling(20, min_periods=20).std(ddof=1)
        g["ticker"] = tickers.reindex(calendar)
        out.append(
            g[g.close.notna()].reset_index()[
                ["ticker", "session_date", *(c for c in g if c.startswith("ref_"))]
            ]
        )
    return pd.concat(out, ignore_index=True)


def test_features_follow_the_session_calendar(built: tuple[Path, Path, PipelineReport]) -> None:
    source, root, _ = built
    silver = _silver(root)
    renames = _record(source)["corporate_actions"]["ticker_changes"]
    reference = _calendar_reference(_adjusted(root), renames)
    joined = silver.merge(reference, on=["ticker", "session_date"], validate="one_to_one")
    assert len(joined) == len(silver)
    for column in ("ret_1d", "ret_5d", "ret_20d", "vol_20d"):
        actual, expected = joined[column].to_numpy(float), joined[f"ref_{column}"].to_numpy(float)
        np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=column)
        np.testing.assert_allclose(actual[~np.isnan(actual)], expected[~np.isnan(expected)], rtol=1e-9)
    # Every ticker trading through a whole 21-session window has all features there.
    assert joined.vol_20d.notna().sum() > 0.5 * len(joined)


@pytest.mark.slow
def test_gold_read_back_with_real_qlib(built: tuple[Path, Path, PipelineReport], tmp_path: Path) -> None:
    source, root, _ = built
    expressions = [
        "$open",
        "$high",
        "$low",
        "$close",
        "$volume",
        "$factor",
        "$vwap",
        "$change",
        "Ref($close,1)",
    ]
    meta, features = read_with_qlib(
        Lake(root).qlib_root("stocks_daily", "day"), "day", expressions, tmp_path, alpha158=True
    )

    calendar = [dt.date.fromisoformat(d[:10]) for d in meta["calendar"]]
    import exchange_calendars as xcals

    xnys = xcals.get_calendar("XNYS")
    assert calendar == [ts.date() for ts in xnys.sessions_in_range(calendar[0], END)]
    assert calendar[0] == START if xnys.is_session(START) else calendar[0] > START

    record = _record(source)
    spans = {sym: [(a[:10], b[:10]) for a, b in v] for sym, v in meta["spans"].items()}
    # Lower-case letters are stored as "_" + the upper-case letter (BApA → BA_PA): qlib is case-blind.
    stored = {t: re.sub("[a-z]", lambda m: "_" + m.group().upper(), t) for t in record["tickers"]}
    # A renamed company is one instrument under its new ticker, from its first bar under the old one.
    renamed = {c["old_ticker"]: c["new_ticker"] for c in record["corporate_actions"]["ticker_changes"]}
    assert renamed
    expected: dict[str, list[tuple[str, str]]] = {}
    for t, info in record["tickers"].items():
        name = stored[renamed.get(t, t)]
        first, last = expected.get(name, [(info["first_session"], info["last_session"])])[0]
        expected[name] = [(min(first, info["first_session"]), max(last, info["last_session"]))]
    assert spans == expected

    silver = _adjusted(root)
    silver["ticker"] = silver["ticker"].map(lambda t: stored[renamed.get(t, t)])
    silver = (
        silver.rename(columns={"ticker": "instrument"}).set_index(["instrument", "session_date"]).sort_index()
    )
    features["session_date"] = pd.to_datetime(features["datetime"]).dt.date
    got = features.set_index(["instrument", "session_date"]).sort_index()
    # Every calendar day inside each span, NaN where the symbol had no valid bar (e.g. the quarantined row).
    expected_rows = sum(
        sum(1 for d in calendar if dt.date.fromisoformat(a) <= d <= dt.date.fromisoformat(b))
        for sym, v in spans.items()
        for a, b in v
    )
    assert len(got) == expected_rows
    joined = got.join(silver, how="left")
    assert len(joined) == len(got)
    f32 = np.float32
    checks = {
        "$close": joined.adj_close,
        "$open": joined.adj_open,
        "$high": joined.adj_high,
        "$low": joined.adj_low,
        "$factor": joined.adj_factor,
        "$volume": joined.volume / joined.adj_factor,
        "$vwap": (joined.adj_high + joined.adj_low + joined.adj_close) / 3,
        "$change": joined.ret_1d,
    }
    for expr, expected in checks.items():
        exp = expected.to_numpy(dtype=np.float64).astype(f32)
        act = joined[expr].to_numpy(dtype=f32)
        np.testing.assert_array_equal(np.isnan(act), np.isnan(exp), err_msg=expr)
        np.testing.assert_allclose(act[~np.isnan(act)], exp[~np.isnan(exp)], rtol=1e-6, err_msg=expr)
    nan_rows = joined[joined.adj_close.isna()]
    assert len(nan_rows) >= 1  # the quarantined OHLC row leaves a hole inside its symbol's span
    # Raw values come back through the factor, as qlib's backtest expects.
    raw = (joined["$close"] / joined["$factor"]).to_numpy(dtype=np.float64)
    mask = ~np.isnan(raw)
    np.testing.assert_allclose(raw[mask], joined.close.to_numpy()[mask], rtol=1e-5)
    assert meta["alpha158"]["rows"] == len(got)
    assert meta["alpha158"]["columns"] == 158
    assert meta["alpha158"]["non_null"] > 0.5 * meta["alpha158"]["rows"] * 158


def _copy(built: tuple[Path, Path, PipelineReport], tmp_path: Path) -> tuple[Path, Path]:
    source, root, _ = built
    shutil.copytree(source, tmp_path / "source")
    shutil.copytree(root, tmp_path / "lake")
    return tmp_path / "source", tmp_path / "lake"


def test_rerun_is_a_noop_and_republished_file_reflows(
    built: tuple[Path, Path, PipelineReport], tmp_path: Path
) -> None:
    source, root = _copy(built, tmp_path)
    runner = PipelineRunner(Lake(root), SPEC)
    again = runner.run(LocalMirrorSource(source), START, END)
    assert again.did_nothing

    session = sorted(_record(source)["files"]["stocks_daily"])[40]
    path = source / "flatfiles" / SPEC.source_key(dt.date.fromisoformat(session))
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    fields = lines[1].split(",")
    fields[3] = f"{float(fields[3]) * 1.01:.2f}"  # the vendor corrects one close
    fields[4] = f"{max(float(fields[4]), float(fields[3])):.2f}"
    lines[1] = ",".join(fields)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    bronze_before = {p: p.stat().st_mtime_ns for p in (root / "bronze" / "stocks_daily").rglob("*.parquet")}
    features = Lake(root).qlib_root("stocks_daily", "day") / "features"
    gold_before = {p: p.stat().st_mtime_ns for p in features.rglob("*.bin")}

    third = runner.run(LocalMirrorSource(source), START, END)
    assert [o.session.isoformat() for o in third.landing if o.status == "republished"] == [session]
    assert [o.session.isoformat() for o in third.ingest if o.status == "ingested"] == [session]
    changed = [p for p, m in bronze_before.items() if p.stat().st_mtime_ns != m]
    assert [p.parent.name for p in changed] == [f"date={session}"]
    tables = {o.table: o for o in third.silver}
    # The corrected close changes that session and the next 20 sessions (the features' lookback).
    assert tables["stocks_daily"].written == 21
    assert tables["corporate_action_checks"].written == 6  # 5 sessions of lookback
    (gold,) = third.gold
    assert gold.status == "updated"
    assert gold.rewound_to == dt.date.fromisoformat(session)
    # Only the corrected symbol's Qlib files are touched; every other symbol keeps its files as they were.
    touched = {p.parent.name for p, m in gold_before.items() if p.stat().st_mtime_ns != m}
    assert touched == {re.sub("[a-z]", lambda m: "_" + m.group(), fields[0]).lower()}
    silver = pq.read_table(Lake(root).silver_partition(SPEC, dt.date.fromisoformat(session))).to_pandas()
    assert silver.loc[silver.ticker == fields[0], "close"].item() == pytest.approx(float(fields[3]))


def test_new_split_rewrites_only_what_depends_on_it(
    built: tuple[Path, Path, PipelineReport], tmp_path: Path
) -> None:
    source, root = _copy(built, tmp_path)
    lake = Lake(root)
    splits_path = source / "rest" / "v3" / "reference" / "splits.json"
    payload = json.loads(splits_path.read_text())
    ticker, day = "BRK.B", dt.date(2025, 10, 1)
    payload["results"] += [
        {"execution_date": day.isoformat(), "split_from": 1, "split_to": 2, "ticker": ticker},
        # Dated after the lake's last session: pending, it must change nothing yet.
        {"execution_date": "2026-01-05", "split_from": 1, "split_to": 3, "ticker": "AAA"},
    ]
    splits_path.write_text(json.dumps(payload))
    files = [p for p in root.rglob("*") if p.is_file() and "_manifests" not in p.parts]
    before = {p: p.read_bytes() for p in files}

    report = PipelineRunner(lake, SPEC).run(LocalMirrorSource(source), START, END)
    assert report.failures == []
    assert report.reference_added == {"splits": 2, "dividends": 0, "tickers": 0, "ticker_events": 0}
    assert report.factors is not None
    assert report.factors.pending == 1
    changed = {p.relative_to(root).as_posix() for p, data in before.items() if p.read_bytes() != data}
    sessions = [s for s in _calendar_reference(_adjusted(root), []).session_date.unique() if s >= day]
    window = {f"date={s}" for s in sorted(sessions)[:20]}
    bronze = {c for c in changed if c.startswith(("bronze/", "landing/", "quarantine/"))}
    assert bronze == {"bronze/reference/splits.parquet"}
    silver = {c.split("/")[2] for c in changed if c.startswith("silver/stocks_daily/")}
    assert silver == window  # the split session and the 19 after it (their windows span it), nothing else
    gold = {c for c in changed if c.startswith("gold/qlib/")}
    stored = ticker.lower()
    assert {c.split("/")[5] for c in gold if "/features/" in c} == {stored}
    # Every field of that symbol: its factors changed, and its return across the split session too.
    assert {c.rsplit("/", 1)[-1] for c in gold if "/features/" in c} == {
        f"{f}.day.bin" for f in ("open", "high", "low", "close", "volume", "vwap", "factor", "change")
    }
    (gold_outcome,) = report.gold
    assert gold_outcome.rewritten == 1
    adjusted = _adjusted(root)
    brk = adjusted[adjusted.ticker == ticker]
    assert set(brk.loc[brk.session_date < day, "split_factor"]) == {0.5}
    assert set(brk.loc[brk.session_date >= day, "split_factor"]) == {1.0}
    assert set(adjusted.loc[adjusted.ticker == "AAA", "split_factor"]) <= {1.0, 0.1, 10.0}
    # Its prices never halved: the reconciliation reports the record.
    checks = pd.read_parquet(root / "silver" / "corporate_action_checks")
    assert checks[["ticker", "check"]].values.tolist() == [[ticker, "split without price jump"]]


def test_dividends_on_a_split_day_are_measured_in_post_split_shares(
    built: tuple[Path, Path, PipelineReport], tmp_path: Path
) -> None:
    """Records of the new dividends endpoint beside the legacy ones: the split-adjusted amount reaches the
    factors, and a dividend on a split's execution date is set against the pre-split close in new shares."""
    source, root = _copy(built, tmp_path)
    lake = Lake(root)
    splits, _, _ = _actions(source)
    forward = splits[splits.split_to > splits.split_from].iloc[0]  # 1:10
    reverse = splits[splits.split_to < splits.split_from].iloc[0]  # 10:1
    records = pl.DataFrame(
        [
            # The vendor's amount (no split after the ex-date: in post-split shares) is what counts; the
            # record's cash amount deliberately disagrees, so only the carried column gives 0.05.
            {
                "ticker": forward.ticker,
                "ex_dividend_date": forward.execution_date,
                "cash_amount": 0.5,
                "split_adjusted_cash_amount": 0.05,
            },
            # Without it, the cash amount is per post-split share too.
            {"ticker": reverse.ticker, "ex_dividend_date": reverse.execution_date, "cash_amount": 0.5},
        ],
        schema=DIVIDENDS_V1_SCHEMA,
    )
    store_reference(lake, "dividends", records, dt.datetime(2026, 1, 5, tzinfo=dt.UTC))

    report = PipelineRunner(lake, SPEC).run(LocalMirrorSource(source), START, END)
    assert report.failures == []
    assert report.factors is not None
    assert report.factors.closes_read > 0
    events = pl.read_parquet(lake.silver_reference("corporate_events"))
    entities = pl.read_parquet(lake.silver_reference("entities"))
    raw = _adjusted(root)
    for split, amount in ((forward, 0.05), (reverse, 0.5)):
        ratio = split.split_from / split.split_to
        bars = raw[raw.ticker == split.ticker]
        previous = bars[bars.session_date < split.execution_date].close.iloc[-1]
        expected = 1 - amount / (previous * ratio)
        (entity,) = entities.filter(pl.col("ticker") == split.ticker)["entity"]
        (got,) = events.filter(
            (pl.col("entity") == entity) & (pl.col("event_date") == split.execution_date)
        ).rows(named=True)
        assert got["split_multiplier"] == ratio
        assert got["total_multiplier"] == pytest.approx(ratio * expected, rel=1e-12)
    # The closes are cached: the next run reads no price and changes nothing.
    again = PipelineRunner(lake, SPEC).run(LocalMirrorSource(source), START, END)
    assert again.factors is not None
    assert again.factors.closes_read == 0
    assert again.did_nothing


def test_financial_statements_give_point_in_time_ratios_in_silver(
    built: tuple[Path, Path, PipelineReport], tmp_path: Path
) -> None:
    source, root = _copy(built, tmp_path)
    filed = dt.date(2025, 10, 15)
    items = {
        "revenues": 4000.0,
        "net_income_loss": 500.0,
        "diluted_earnings_per_share": 2.5,
        "equity": 8000.0,
    }
    frame = pl.DataFrame(
        [
            {
                "ticker": "BRK.B",
                "fiscal_year": 2025,
                "fiscal_period": "FY",
                "timeframe": "annual",
                "period_end": dt.date(2025, 6, 30),
                "filing_date": filed,
                "statement": "income_statement",
                "line_item": name,
                "value": value,
                "source": "test",
            }
            for name, value in items.items()
        ],
        schema=FINANCIALS_SCHEMA,
    )
    store_reference(Lake(root), "financials", frame, dt.datetime.now(dt.UTC))
    report = PipelineRunner(Lake(root), SPEC).run(LocalMirrorSource(source), START, END)
    tables = {o.table: o for o in report.silver}
    assert tables["daily_ratios"].written == tables["daily_ratios"].sessions > 0
    assert tables["stocks_daily"].written == 0  # statements change no feature
    daily = pd.read_parquet(root / "silver" / "daily_ratios")
    daily["session_date"] = pd.to_datetime(daily["session_date"]).dt.date
    silver = _silver(root)
    brk = silver[silver.ticker == "BRK.B"].set_index("session_date")
    assert set(daily.ticker) == {"BRK.B"}
    assert daily[daily.session_date <= filed].pe_ratio.isna().all()
    after = daily[daily.session_date > filed].set_index("session_date")
    assert len(after) == (brk.index > filed).sum()
    # No BRK.B split in the sample: P/E = close / EPS, P/B = close × (500 / 2.5 shares) / equity.
    np.testing.assert_allclose(after.pe_ratio, brk.close[after.index] / 2.5, rtol=1e-12)
    np.testing.assert_allclose(after.price_to_book, brk.close[after.index] * 200 / 8000, rtol=1e-12)
    np.testing.assert_allclose(after.net_margin, 500 / 4000, rtol=1e-12)
