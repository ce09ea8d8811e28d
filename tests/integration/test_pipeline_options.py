"""Options end to end on generated data: contracts resolved to their deliverable, IV and greeks in silver,
per-underlying aggregates, the stocks daily Qlib root's option fields (read back with real pyqlib), the
minute as-of join, option chains through the CLI and DuckDB views.

Expected values come from the vendor-shaped files and ``sample.json`` (the surface that generated every
premium), parsed here with pandas, never from the code under test.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from click.testing import CliRunner
from scipy.optimize import brentq

from quantmini.cli.main import cli
from quantmini.config.settings import OptionsSettings, Settings
from quantmini.datasets import get_spec
from quantmini.io.duckdb_catalog import connect_catalog
from quantmini.io.lake import Lake
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.runner import PipelineReport, PipelineRunner
from quantmini.sample import generate_sample
from tests.support.qlib_child import read_with_qlib

pytestmark = pytest.mark.slow

START, END = dt.date(2025, 11, 24), dt.date(2025, 12, 5)
TYPES = ("stocks_daily", "stocks_minute", "options_daily", "options_minute")
OCC = re.compile(r"^O:([A-Z0-9.]+?)(\d{6})([CP])(\d{8})$")
OPTION_FIELDS = ["$opt_volume", "$pcr", "$iv30", "$skew25"]


def _record(source: Path) -> dict[str, Any]:
    return dict(json.loads((source / "sample.json").read_text()))


def _settings(source: Path, **changes: Any) -> Settings:
    pricing = _record(source)["options"]["pricing"]
    options = OptionsSettings(risk_free_rate=pricing["rate"], dividend_yields=pricing["dividend_yield"])
    return Settings(options=options.model_copy(update=changes))


def _run(
    root: Path, source: Path, settings: Settings, types: tuple[str, ...] = TYPES
) -> list[PipelineReport]:
    reports = []
    for name in types:
        runner = PipelineRunner(Lake(root), get_spec(name), settings=settings)
        reports.append(runner.run(LocalMirrorSource(source), START, END))
        assert reports[-1].failures == [], (name, reports[-1].failures)
    return reports


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("options")
    source, root = base / "source", base / "lake"
    generate_sample(
        source, START, END, tickers=10, seed=11, data_types=TYPES, option_underlyings=4, minute_tickers=6
    )
    _run(root, source, _settings(source))
    return source, root


def _day_files(source: Path, prefix: str) -> pd.DataFrame:
    parts = []
    for path in sorted((source / "flatfiles" / prefix).rglob("*.csv.gz")):
        with gzip.open(path) as fh:
            frame = pd.read_csv(fh, dtype={"ticker": str})
        frame["session"] = dt.date.fromisoformat(path.name[:10])
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def _silver(root: Path, table: str) -> pl.DataFrame:
    return pl.read_parquet(root / "silver" / table / "*" / "part.parquet")


def _pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """``frame`` in pandas with ``session_date`` as Python dates (as the file parsers here give them)."""
    out = frame.to_pandas()
    out["session_date"] = frame["session_date"].to_list()
    return out


def test_contracts_resolve_to_the_recorded_deliverables(built: tuple[Path, Path]) -> None:
    source, root = built
    roots = _record(source)["options"]["roots"]
    silver = _silver(root, "options_daily")
    for (root_name, underlying, shares, adjusted), _ in silver.group_by(
        ["root", "underlying", "shares_per_contract", "adjusted"]
    ):
        spec = roots[root_name]
        assert (underlying, shares, adjusted) == (
            spec["underlying"],
            spec["shares_per_contract"],
            spec["adjusted"],
        )
    # The contracts the reference table leaves out still resolve, through their root's other contracts.
    unlisted = set(_record(source)["options"]["unlisted_contracts"])
    sources = dict(
        silver.filter(pl.col("ticker").is_in(unlisted)).select("ticker", "contract_source").iter_rows()
    )
    assert set(sources) == unlisted
    assert set(sources.values()) == {"root_map"}
    # The index has no stock bars in the lake: no IV, and it says why.
    index = silver.filter(pl.col("underlying") == "SPX")
    assert index.height > 0
    assert set(index["iv_reason"].unique()) <= {"no_underlying_price"}


def test_iv_recovers_the_generating_vol_and_greeks_obey_parity(built: tuple[Path, Path]) -> None:
    source, root = built
    record = _record(source)["options"]
    pricing = record["pricing"]
    silver = _pandas(_silver(root, "options_daily").filter(pl.col("iv").is_not_null()))
    assert len(silver) > 500
    checked = 0
    for row in silver.itertuples():
        name = row.underlying
        surface = pricing["surfaces"][name]
        s, k, t = row.underlying_price, row.strike, row.years
        r, q = pricing["rate"], pricing["dividend_yield"][name]
        x = math.log(k / (s * math.exp((r - q) * t)))
        t_surface = max(t, pricing.get("surface_min_years", 0.0))
        sigma = (
            pricing["atm_vol"][name][row.session_date.isoformat()]
            * (1 + surface["term"] * math.log(t_surface / pricing["reference_years"]))
            * (1 + surface["skew"] * x + surface["curvature"] * x * x)
        )
        # The close is the model premium rounded to the tick: |Δprice| <= tick/2, so |Δvol| <= tick/2/vega.
        if row.close < 5 * pricing["tick"] or row.vega * 0.01 < pricing["tick"]:
            continue
        # Vega is unimodal in the vol: on the interval between the two vols it is smallest at an end.
        slope = min(row.vega, _vega(s, k, t, r, q, sigma))
        tolerance = pricing["tick"] / 2 / slope + 1e-9
        assert abs(row.iv - sigma) <= tolerance, (row.ticker, row.session_date, row.iv, sigma, tolerance)
        checked += 1
    assert checked > 300
    # Greeks at the row's own IV, against the textbook closed forms evaluated here one row at a time.
    for row in silver.sample(n=200, random_state=3).itertuples():
        s, k, t, v = row.underlying_price, row.strike, row.years, row.iv
        r, q, call = row.risk_free_rate, row.dividend_yield, row.option_type == "call"
        d1 = (math.log(s / k) + (r - q + v * v / 2) * t) / (v * math.sqrt(t))
        d2 = d1 - v * math.sqrt(t)
        pdf = math.exp(-d1 * d1 / 2) / math.sqrt(2 * math.pi)
        delta = math.exp(-q * t) * (_cdf(d1) if call else _cdf(d1) - 1)
        gamma = math.exp(-q * t) * pdf / (s * v * math.sqrt(t))
        vega = s * math.exp(-q * t) * pdf * math.sqrt(t)
        sign = 1 if call else -1
        theta = (
            -s * math.exp(-q * t) * pdf * v / (2 * math.sqrt(t))
            - sign * r * k * math.exp(-r * t) * _cdf(sign * d2)
            + sign * q * s * math.exp(-q * t) * _cdf(sign * d1)
        ) / 365
        got = (row.delta, row.gamma, row.vega, row.theta)
        assert got == pytest.approx((delta, gamma, vega, theta), rel=1e-7, abs=1e-10), row.ticker


def _vega(s: float, k: float, t: float, r: float, q: float, v: float) -> float:
    d1 = (math.log(s / k) + (r - q + v * v / 2) * t) / (v * math.sqrt(t))
    return s * math.exp(-q * t) * math.exp(-d1 * d1 / 2) / math.sqrt(2 * math.pi) * math.sqrt(t)


def _surface_skew25(pricing: dict[str, Any], name: str, session: str, spot: float) -> float:
    """The generating surface's 30-day vol at its -0.25-delta put strike minus at its 0.25-delta call."""
    t, r, q = 30 / 365, pricing["rate"], pricing["dividend_yield"][name]
    surface, atm = pricing["surfaces"][name], pricing["atm_vol"][name][session]
    level = atm * (1 + surface["term"] * math.log(t / pricing["reference_years"]))

    def sigma(k: float) -> float:
        x = math.log(k / (spot * math.exp((r - q) * t)))
        return level * (1 + surface["skew"] * x + surface["curvature"] * x * x)

    def delta_gap(k: float, target: float) -> float:
        v = sigma(k)
        d1 = (math.log(spot / k) + (r - q + v * v / 2) * t) / (v * math.sqrt(t))
        delta = math.exp(-q * t) * (_cdf(d1) if target > 0 else _cdf(d1) - 1)
        return delta - target

    put = brentq(delta_gap, spot * 0.3, spot, args=(-0.25,))
    call = brentq(delta_gap, spot, spot * 3, args=(0.25,))
    return sigma(put) - sigma(call)


def _cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_aggregates_match_the_flat_files_and_reach_qlib(built: tuple[Path, Path], tmp_path: Path) -> None:
    source, root = built
    roots = _record(source)["options"]["roots"]
    files = _day_files(source, "us_options_opra/day_aggs_v1")
    files["root"] = files["ticker"].str.extract(OCC)[0]
    files["kind"] = files["ticker"].str.extract(OCC)[2]
    files["underlying"] = files["root"].map(lambda r: roots[r]["underlying"])
    expected = files.groupby(["underlying", "session"]).agg(
        calls=("volume", lambda v: v[files.loc[v.index, "kind"] == "C"].sum()),
        puts=("volume", lambda v: v[files.loc[v.index, "kind"] == "P"].sum()),
        contracts=("ticker", "nunique"),
    )
    aggregates = _pandas(_silver(root, "options_underlying_daily")).set_index(["ticker", "session_date"])
    assert len(aggregates) == len(expected)
    for (name, session), row in expected.iterrows():
        got = aggregates.loc[(name, session)]
        assert got["call_volume"] == row["calls"]
        assert got["put_volume"] == row["puts"]
        assert got["contract_count"] == row["contracts"]
        assert got["pcr"] == pytest.approx(row["puts"] / row["calls"])
    # iv30 against the surface's own 30-day ATM vol (x = 0): off only by the strike grid and interpolation.
    pricing = _record(source)["options"]["pricing"]
    stocks = [n for n in pricing["surfaces"] if n != "SPX"]
    with_iv30 = aggregates.dropna(subset=["iv30"])
    assert set(with_iv30.index.get_level_values(0)) == set(stocks)
    for (name, session), row in with_iv30.iterrows():
        surface = pricing["surfaces"][name]
        atm = pricing["atm_vol"][name][session.isoformat()]
        truth = atm * (1 + surface["term"] * math.log(30 / 365 / pricing["reference_years"]))
        assert row["iv30"] == pytest.approx(truth, rel=0.03), (name, session)
    # skew25 against the surface's vols at the strikes where its own 30-day delta is -0.25 and +0.25; the
    # silver value is interpolated in delta between listed strikes and in time between expirations, and
    # far strikes' IVs carry the tick rounding: a loose band, but one a wrong sign or definition misses.
    closes = _day_files(source, "us_stocks_sip/day_aggs_v1").set_index(["ticker", "session"])["close"]
    with_skew = aggregates.dropna(subset=["skew25"])
    assert len(with_skew) >= len(with_iv30) // 2
    for (name, session), row in with_skew.iterrows():
        spot = float(closes.loc[(name, session)])
        truth = _surface_skew25(pricing, name, session.isoformat(), spot)
        assert abs(row["skew25"] - truth) <= 0.2 * abs(truth) + 0.003, (name, session, row["skew25"], truth)
    # The stocks daily root carries them; NaN on every stock without options.
    _, read = read_with_qlib(root / "gold" / "qlib" / "stocks_daily" / "day", "day", OPTION_FIELDS, tmp_path)
    read["datetime"] = pd.to_datetime(read["datetime"]).dt.date
    by_key = read.set_index(["instrument", "datetime"])
    # The index has aggregates in silver but no stock series: no instrument for it in the stocks root.
    assert "SPX" in aggregates.index.get_level_values(0)
    assert "SPX" not in set(read["instrument"])
    for (name, session), row in aggregates.drop(index="SPX", level=0).iterrows():
        got = by_key.loc[(name, session)]
        assert got["$opt_volume"] == pytest.approx(row["opt_volume"], rel=1e-6)
        assert got["$pcr"] == pytest.approx(row["pcr"], rel=1e-6)
        for field in ("iv30", "skew25"):
            if pd.isna(row[field]):
                assert np.isnan(got[f"${field}"])
            else:
                assert got[f"${field}"] == pytest.approx(row[field], rel=1e-6)
    underlyings = set(aggregates.index.get_level_values(0))
    others = read[~read["instrument"].isin(underlyings)]
    assert len(others) > 0
    assert others[OPTION_FIELDS].isna().all().all()


def test_minute_underlying_is_the_last_stock_bar_at_or_before(built: tuple[Path, Path]) -> None:
    source, root = built
    minute = _silver(root, "options_minute").filter(pl.col("underlying_close").is_not_null())
    assert minute.height > 100
    stocks = _day_files(source, "us_stocks_sip/minute_aggs_v1")
    stocks = stocks[stocks["ticker"].isin(set(minute["underlying"].unique()))].sort_values("window_start")
    sample = _pandas(minute.sample(n=min(300, minute.height), seed=1))
    for row in sample.itertuples():
        bars = stocks[
            (stocks["ticker"] == row.underlying)
            & (stocks["session"] == row.session_date)
            & (stocks["window_start"] <= row.window_start)
        ]
        last = bars.iloc[-1]
        assert row.underlying_window_start == last["window_start"]
        assert row.underlying_close == last["close"]
    assert set(minute["iv_reason"].unique()) == {"not_computed"}


def test_reruns_are_no_ops_and_a_setting_rebuilds_every_option_partition(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    source, root = built
    # Options, then stocks, then options again: the stocks daily root both update is left alone (the
    # options run brings the same adjustment factors as the stocks run).
    for name in ("options_daily", "stocks_daily", "options_daily"):
        again = _run(root, source, _settings(source), (name,))[0]
        assert again.did_nothing, (name, again.gold)
    assert [(o.table, o.written) for o in again.silver] == [
        ("options_daily", 0),
        ("options_underlying_daily", 0),
    ]
    assert [(g.root.parent.name, g.status) for g in again.gold] == [("stocks_daily", "unchanged")]
    copy = tmp_path / "lake"
    shutil.copytree(root, copy)
    changed = _run(copy, source, _settings(source, risk_free_rate=0.01), ("options_daily",))[0]
    sessions = len(list((root / "silver" / "options_daily").iterdir()))
    assert [(o.table, o.written) for o in changed.silver] == [
        ("options_daily", sessions),
        ("options_underlying_daily", sessions),
    ]
    before, after = _silver(root, "options_daily"), _silver(copy, "options_daily")
    assert set(after["risk_free_rate"].unique()) == {0.01}
    assert not before["iv"].drop_nulls().equals(after["iv"].drop_nulls())


def test_a_republished_stock_day_rebuilds_that_session_of_options_only(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    source, root = built
    mirror, lake = tmp_path / "source", tmp_path / "lake"
    shutil.copytree(source, mirror)
    shutil.copytree(root, lake)
    day = dt.date(2025, 12, 2)
    path = next((mirror / "flatfiles" / "us_stocks_sip/day_aggs_v1").rglob(f"{day}.csv.gz"))
    with gzip.open(path) as fh:
        frame = pd.read_csv(fh, dtype={"ticker": str}, keep_default_na=False)
    frame.loc[frame["ticker"] == "BRK.B", "close"] = frame.loc[frame["ticker"] == "BRK.B", "close"] * 1.01
    path.write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    _, options = _run(lake, mirror, _settings(source), ("stocks_daily", "options_daily"))
    assert [(o.table, o.written) for o in options.silver] == [
        ("options_daily", 1),
        ("options_underlying_daily", 1),
    ]
    before = _silver(root, "options_daily").filter(pl.col("session_date") == day)
    after = _silver(lake, "options_daily").filter(pl.col("session_date") == day)
    moved = after.filter(pl.col("underlying") == "BRK.B")["underlying_close"].unique().to_list()
    was = before.filter(pl.col("underlying") == "BRK.B")["underlying_close"].unique().to_list()
    assert moved == pytest.approx([was[0] * 1.01])


def test_chain_query_and_duckdb_views(built: tuple[Path, Path]) -> None:
    _, root = built
    day = dt.date(2025, 12, 1)
    silver = _silver(root, "options_daily").filter(
        (pl.col("underlying") == "BRK.B") & (pl.col("session_date") == day)
    )
    expiration = silver["expiration"].min()
    result = CliRunner().invoke(
        cli,
        [
            "data", "query", "--data-type", "options_daily", "--underlying", "BRK.B",
            "--expiration", str(expiration), "--start-date", str(day), "--end-date", str(day),
            "--format", "csv", "--data-root", str(root),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    chain = pl.read_csv(result.stdout.encode(), try_parse_dates=True)
    want = silver.filter(pl.col("expiration") == expiration).sort(["strike", "option_type"])
    assert chain["ticker"].to_list() == want["ticker"].to_list()
    assert chain["strike"].to_list() == sorted(chain["strike"].to_list())
    con = connect_catalog(root)
    try:
        views = {
            row[0]
            for row in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        }
        assert {"silver_options_daily", "options_underlying_daily", "silver_options_minute"} <= views
        count = con.execute(
            "SELECT count(*) FROM silver_options_daily WHERE underlying = 'BRK.B' AND session_date = ?", [day]
        ).fetchone()
        assert count is not None
        assert count[0] == silver.height
    finally:
        con.close()
