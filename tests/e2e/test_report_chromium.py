"""``quantmini report`` on a small lake with quarantined rows, a split, dividends and a renamed company,
rendered in a real headless Chromium: the DOM holds every section with the figures computed here
independently (pandas and pyarrow over the lake's Parquet files, the generator's record), and a screenshot
of the page is not blank."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from quantmini.cli.main import cli
from quantmini.sample import generate_sample
from tests.support.chromium import Element, chromium, decode_png, dump_dom, parse_dom, screenshot

pytestmark = pytest.mark.slow

START, END = dt.date(2025, 8, 1), dt.date(2025, 12, 31)
EARLIER_RUN = "20000103T220000Z-00a1b2"  # run ids sort by start time: older than any real run
#: A split record the prices do not show (BRK.B never halved): the reconciliation reports it.
BOGUS_SPLIT = {"execution_date": "2025-10-01", "split_from": 1, "split_to": 2, "ticker": "BRK.B"}


@dataclass(frozen=True)
class Built:
    root: Path
    page: Path
    record: dict[str, Any]
    dom: Element
    profile: Path
    #: The run id of the newest run record (the pipeline run that built the lake).
    last_run: str

    @property
    def split_ticker(self) -> str:
        return str(self.record["roles"]["split_and_dividend"])

    @property
    def renamed(self) -> dict[str, str]:
        return dict(self.record["corporate_actions"]["ticker_changes"][0])


def run(*args: str | Path | dt.date) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    chromium()  # fail first, with how to install it, when it is missing
    base = tmp_path_factory.mktemp("report")
    source, root = base / "source", base / "lake"
    generate_sample(source, START, END, tickers=16, seed=11, data_types=("stocks_daily",))
    splits = source / "rest" / "v3" / "reference" / "splits.json"
    payload = json.loads(splits.read_text())
    payload["results"].append(BOGUS_SPLIT)
    splits.write_text(json.dumps(payload))
    run(
        "pipeline",
        "run",
        "--data-type",
        "stocks_daily",
        "--start-date",
        START,
        "--end-date",
        END,
        "--source",
        source,
        "--data-root",
        root,
    )
    (real,) = (root / "_runs").glob("*.json")  # the record of the pipeline run above
    (root / "_runs" / f"{EARLIER_RUN}.json").write_text(json.dumps({"command": "earlier"}))
    record = json.loads((source / "sample.json").read_text())
    page = base / "report.html"
    split, renamed = record["roles"]["split_and_dividend"], record["corporate_actions"]["ticker_changes"][0]
    output = run(
        "report",
        "--data-root",
        root,
        "--output",
        page,
        "--symbol",
        split,
        "--symbol",
        renamed["old_ticker"],
    )
    assert str(page) in output
    profile = base / "chromium-profile"
    last_run = str(json.loads(real.read_text())["run_id"])
    return Built(root, page, record, parse_dom(dump_dom(page, profile)), profile, last_run)


def _quarantine(root: Path) -> pd.DataFrame:
    frame = pd.read_parquet(root / "quarantine" / "stocks_daily")
    frame["session"] = pd.to_datetime(frame["date"].astype(str)).dt.date
    return frame


def _rows_per_partition(directory: Path) -> dict[dt.date, int]:
    """Rows of each ``date=`` partition, from the Parquet footers."""
    return {
        dt.date.fromisoformat(part.parent.name.removeprefix("date=")): pq.ParquetFile(part).metadata.num_rows
        for part in sorted(directory.glob("date=*/part.parquet"))
    }


def test_every_section_is_rendered_and_nothing_is_fetched(built: Built) -> None:
    for ident in ("summary", "coverage", "quarantine", "anomalies", "corporate-actions", "symbols"):
        assert built.dom.by_id(ident).tag == "section"
    assert built.dom.by_id(f"symbol-{built.split_ticker}").tag == "article"
    html = built.page.read_text()
    assert "<script" not in html
    assert "<link" not in html
    assert " src=" not in html
    assert html.count("http") == html.count('xmlns="http://www.w3.org/2000/svg"')
    assert built.page.stat().st_size < 1_000_000
    assert built.dom.by_id("last-run").attrs["data-run-id"] == built.last_run
    (stocks,) = built.dom.by_id("types").find("tbody")[0].find("tr")
    sessions = built.record["sessions"]
    assert [td.text() for td in stocks.find("td")[:4]] == [
        "stocks_daily",
        str(len(sessions)),
        sessions[0],
        sessions[-1],
    ]


def test_quarantined_rows_per_month_and_reason(built: Built) -> None:
    quarantine = _quarantine(built.root)
    assert len(quarantine) == 2  # the generator's two defects (an OHLC violation, a next-session row)
    summary = built.dom.by_id("summary").find("span", data_quarantined_rows=str(len(quarantine)))
    assert len(summary) == 1
    assert built.dom.by_id("quarantine").attrs["data-total"] == str(len(quarantine))
    expected = Counter(
        (f"{s:%Y-%m}", reason) for s, reason in zip(quarantine["session"], quarantine["reason"], strict=True)
    )
    bars = built.dom.by_id("quarantine").find("rect", class_="bar")
    assert (
        Counter({(b.attrs["data-label"], b.attrs["data-series"]): int(b.attrs["data-value"]) for b in bars})
        == expected
    )
    reasons = built.dom.by_id("reasons").find("tr")[1:]
    per_reason = {tr.find("td")[1].text(): int(tr.find("td")[2].text()) for tr in reasons}
    assert per_reason == quarantine["reason"].value_counts().to_dict()


def test_coverage_shows_each_session_and_the_quarantined_ones(built: Built) -> None:
    coverage = built.dom.by_id("coverage")
    assert coverage.attrs["data-granularity"] == "session"
    (bronze,) = coverage.find("g", data_row="stocks_daily / bronze")
    runs = bronze.find("rect", class_="cell")
    assert sum(int(r.attrs["data-cells"]) for r in runs) == len(built.record["sessions"])
    quarantined = {
        dt.date.fromisoformat(r.attrs["data-date"])
        for r in runs
        if "quarantined" in r.attrs["class"].split() and r.attrs["data-date"] == r.attrs["data-last"]
    }
    assert quarantined == set(_quarantine(built.root)["session"])


def test_row_count_anomalies_match_a_trailing_median_of_the_parquet_row_counts(built: Built) -> None:
    charts = built.dom.by_id("anomalies").find("div", class_="chart")
    checked = 0
    for chart in charts:
        data_type, layer = chart.attrs["data-table"].split(" / ")
        if data_type != "stocks_daily":
            continue
        if layer == "bronze":
            directory = built.root / "bronze" / data_type
        else:
            directory = built.root / "silver" / (layer.removeprefix("silver/") if "/" in layer else data_type)
        rows = pd.Series(_rows_per_partition(directory)).sort_index()
        baseline = rows.shift(1).rolling(20, min_periods=5).median()
        ratio = rows / baseline
        flagged = int(((ratio > 2) | (ratio < 0.5)).sum())
        assert int(chart.attrs["data-anomalies"]) == flagged, layer
        checked += 1
    assert checked >= 3  # bronze, silver and the other silver tables


def test_corporate_actions_and_reconciliation_findings(built: Built) -> None:
    actions = built.record["corporate_actions"]
    table = built.dom.by_id("actions-per-year")
    cells = [[td.text() for td in tr.find("td")] for tr in table.find("tbody")[0].find("tr")]
    every_split = [*actions["splits"], BOGUS_SPLIT]
    splits = Counter(s["execution_date"][:4] for s in every_split if s["split_to"] > s["split_from"])
    reverse = Counter(s["execution_date"][:4] for s in every_split if s["split_to"] < s["split_from"])
    dividends = Counter(d["ex_dividend_date"][:4] for d in actions["dividends"])
    years = sorted(set(splits) | set(reverse) | set(dividends))
    assert cells == [[y, str(splits[y]), str(reverse[y]), str(dividends[y])] for y in years]
    findings = built.dom.by_id("findings")
    assert findings.attrs["data-count"] == "1"
    (row,) = findings.find("tbody")[0].find("tr")
    assert [td.text() for td in row.find("td")][:4] == [
        BOGUS_SPLIT["ticker"],
        BOGUS_SPLIT["execution_date"],
        "split without price jump",
        "2",
    ]


def in_range(day: str) -> bool:
    return START < dt.date.fromisoformat(day) <= END


def test_the_split_ticker_chart_has_its_split_and_dividend_markers(built: Built) -> None:
    ticker = built.split_ticker
    article = built.dom.by_id(f"symbol-{ticker}")
    actions = built.record["corporate_actions"]
    splits = {
        s["execution_date"]
        for s in actions["splits"]
        if s["ticker"] == ticker and in_range(s["execution_date"])
    }
    dividends = {
        d["ex_dividend_date"]
        for d in actions["dividends"]
        if d["ticker"] == ticker and in_range(d["ex_dividend_date"])
    }
    assert splits
    assert dividends
    assert {
        g.attrs["data-date"] for g in article.find("g", class_="marker") if "split" in g.attrs["class"]
    } == splits
    assert {
        g.attrs["data-date"] for g in article.find("g", class_="marker") if "dividend" in g.attrs["class"]
    } == dividends
    bronze = pd.read_parquet(built.root / "bronze" / "stocks_daily", filters=[("ticker", "==", ticker)])
    (raw,) = article.find("polyline", data_series="raw close")
    (adjusted,) = article.find("polyline", data_series="adjusted close")
    assert raw.attrs["data-points"] == adjusted.attrs["data-points"] == str(len(bronze))


def test_a_renamed_company_is_charted_under_both_its_tickers(built: Built) -> None:
    renamed = built.renamed
    article = built.dom.by_id(f"symbol-{renamed['old_ticker']}")
    tickers = [renamed["old_ticker"], renamed["new_ticker"]]
    bronze = pd.read_parquet(built.root / "bronze" / "stocks_daily", filters=[("ticker", "in", tickers)])
    assert article.attrs["data-sessions"] == str(len(bronze))
    assert f"traded as {renamed['old_ticker']}, {renamed['new_ticker']}" in article.text()


def test_a_screenshot_of_the_report_is_not_blank(built: Built, tmp_path: Path) -> None:
    image = decode_png(screenshot(built.page, tmp_path / "report.png", built.profile, size=(1280, 1600)))
    assert (image.width, image.height) == (1280, 1600)
    pixels = [image.pixel(x, y) for y in range(0, image.height, 4) for x in range(0, image.width, 4)]
    colours = Counter(p[:3] for p in pixels)
    background, share = colours.most_common(1)[0]
    assert background == (255, 255, 255)
    assert share < 0.95 * len(pixels)  # text, tables and charts cover the rest
    assert len(colours) > 20
    # the heatmap's green (present) cells are on screen
    assert any(abs(r - 0x4C) < 16 and abs(g - 0xAF) < 16 and abs(b - 0x50) < 16 for r, g, b in colours)
