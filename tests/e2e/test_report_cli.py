"""``quantmini report`` on no lake (one error line) and on an empty one (every section, nothing in them)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from quantmini.cli.main import cli


def test_no_lake_is_one_error_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--data-root", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == f"error: no lake at {tmp_path / 'nowhere'} (is --data-root / DATA_ROOT right?)"
    )


def test_an_empty_lake_gets_every_section(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--data-root", str(tmp_path), "--symbol", "AAPL"])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "report.html").read_text()
    for ident in ("summary", "coverage", "quarantine", "anomalies", "corporate-actions", "symbols"):
        assert f"<section id='{ident}'" in html
    assert "<article id='symbol-AAPL' data-symbol='AAPL' data-sessions='0'>" in html
    assert "No quarantined rows." in html
