"""Landing's whole-file gzip check, its run warnings and how the summary shows kept versions."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
from pathlib import Path

import pytest

from quantmini import ValidationError
from quantmini.cli.common import render_report
from quantmini.datasets import get_spec
from quantmini.pipeline.landing import LandingOutcome, landing_warnings, verify_gzip
from quantmini.pipeline.landing_versions import KeptVersion
from quantmini.pipeline.runner import PipelineReport

SPEC = get_spec("stocks_daily")
SEP = [dt.date(2025, 9, d) for d in (2, 3, 4)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"f\.csv\.gz: empty file \(0 bytes\), not gzip data"),
        (b"ticker,volume\n", r"f\.csv\.gz: corrupt gzip data"),
        (gzip.compress(b"a,b\n1,2\n")[:-9], r"f\.csv\.gz: truncated gzip data"),
    ],
    ids=["zero_bytes", "not_gzip", "truncated"],
)
def test_verify_gzip_refuses(data: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(data)
    with pytest.raises(ValidationError, match=message):
        verify_gzip(path, "f.csv.gz")


@pytest.mark.parametrize("data", [gzip.compress(b""), gzip.compress(b"a\n") + gzip.compress(b"b\n")])
def test_verify_gzip_accepts_empty_content_and_several_members(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(data)
    assert verify_gzip(path, "f") == hashlib.sha256(data).hexdigest()


def _outcome(day: dt.date, status: str) -> LandingOutcome:
    return LandingOutcome(day, SPEC.source_key(day), status)  # type: ignore[arg-type]


def test_nothing_listed_for_any_session_names_source_and_prefix() -> None:
    outcomes = [_outcome(d, "missing") for d in SEP]
    assert landing_warnings(SPEC, SEP, outcomes, "local mirror /m") == [
        "local mirror /m lists no stocks_daily file for any of the 3 sessions in the range "
        "(listed us_stocks_sip/day_aggs_v1/2025/09/): does this source hold the data type?"
    ]


def test_many_month_prefixes_are_shortened() -> None:
    days = [dt.date(2025, m, 2) for m in range(1, 7)]
    [warning] = landing_warnings(SPEC, days, [_outcome(d, "missing") for d in days], "S3 x")
    assert (
        "(listed us_stocks_sip/day_aggs_v1/2025/01/ … us_stocks_sip/day_aggs_v1/2025/06/ (6 month prefixes))"
        in warning
    )


def test_deleted_sessions_are_named_and_one_listed_file_silences_the_listing_warning() -> None:
    outcomes = [
        _outcome(SEP[0], "deleted_upstream"),
        _outcome(SEP[1], "unchanged"),
        _outcome(SEP[2], "deleted_upstream"),
    ]
    assert landing_warnings(SPEC, SEP, outcomes, "local mirror /m") == [
        "2 sessions deleted upstream after landing; the landed files and everything built from them are "
        "kept: 2025-09-02, 2025-09-04"
    ]


def test_failed_fetches_are_not_taken_for_an_empty_listing() -> None:
    # Two sessions failed to land (they are failures, not outcomes); one is missing upstream.
    assert landing_warnings(SPEC, SEP, [_outcome(SEP[0], "missing")], "local mirror /m") == []


def test_no_session_no_warning() -> None:
    assert landing_warnings(SPEC, [], [], "local mirror /m") == []


def test_summary_lists_kept_versions_then_summarises_many(capsys: pytest.CaptureFixture[str]) -> None:
    area = Path("/lake/landing/.versions/us_stocks_sip/day_aggs_v1/2025")
    days = [dt.date(2025, 9, 1) + dt.timedelta(days=i) for i in range(12)]
    kept = [KeptVersion(d, area / f"{d:%m}" / f"{d}.csv.gz.0123456789ab", "0123456789ab") for d in days]

    render_report(PipelineReport("stocks_daily", kept_versions=kept[:2]))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("kept:")]
    assert lines == [
        f"kept: the previous raw file of 2025-09-0{d} is kept at {area}/09/2025-09-0{d}.csv.gz.0123456789ab "
        "until bronze accepts a new version"
        for d in (1, 2)
    ]

    render_report(PipelineReport("stocks_daily", kept_versions=kept))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("kept:")]
    assert lines == [
        f"kept: the previous raw files of 12 sessions (2025-09-01 … 2025-09-12) are kept below {area}/09 "
        "until bronze accepts new versions"
    ]
