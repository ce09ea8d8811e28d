"""The built wheel, installed with plain pip into a fresh venv, gives a ``quantmini`` whose demo works.

This is the install path of a user without uv: it proves the wheel carries every module and data file the
product needs (nothing is imported from the source tree) and that its dependencies resolve from the package
index. It needs the index (https://pypi.org), and fails, never skips, without it.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import exchange_calendars as xcals
import pytest

ROOT = Path(__file__).parents[2]
PIP_TIMEOUT_S = 900
# The demo's default sample range (see `quantmini demo --help`).
DEMO_START, DEMO_END = dt.date(2025, 6, 2), dt.date(2026, 5, 29)


def uv_command() -> list[str]:
    found = shutil.which("uv")
    if found is not None:
        return [found]
    probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [sys.executable, "-m", "uv"]
    pytest.fail("building the wheel needs uv: put it on PATH or `pip install uv`")


def clean_env(home: Path) -> dict[str, str]:
    """The environment of a user shell: nothing pointing at this project's venv or sources."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["COLUMNS"] = "200"  # one summary line per line of output
    env["QUANTMINI_CONFIG_DIR"] = str(home / "config")
    return env


def build_wheel(out: Path) -> Path:
    done = subprocess.run(
        [*uv_command(), "build", "--wheel", "--out-dir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = out.glob("quantmini-*.whl")
    return wheel


def package_files() -> set[str]:
    """Every file of the package in the source tree, as wheel paths (``quantmini/...``)."""
    src = ROOT / "src"
    return {
        path.relative_to(src).as_posix()
        for path in (src / "quantmini").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


@pytest.mark.slow
def test_pip_installed_wheel_runs_the_demo(tmp_path: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    wheel = build_wheel(tmp_path / "dist")
    assert wheel.name == f"quantmini-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = package_files() - names
    assert not missing, f"the wheel lacks {sorted(missing)}"
    assert "quantmini/py.typed" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / "bin"
    env = clean_env(tmp_path)
    try:
        pip = subprocess.run(
            [str(bin_dir / "python"), "-m", "pip", "install", str(wheel)],
            capture_output=True,
            text=True,
            check=False,
            timeout=PIP_TIMEOUT_S,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"pip install took more than {PIP_TIMEOUT_S} s: is the package index reachable?")
    assert pip.returncode == 0, (
        "plain `pip install <wheel>` failed; this test needs the package index (https://pypi.org):\n"
        + pip.stderr[-3000:]
    )

    quantmini = bin_dir / "quantmini"
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import quantmini; print(quantmini.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=env,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), "quantmini was not imported from the venv"
    shown = subprocess.run(
        [str(quantmini), "--version"], capture_output=True, text=True, check=True, env=env, cwd=tmp_path
    )
    assert shown.stdout.strip() == f"quantmini, version {version}"

    work = tmp_path / "work"
    work.mkdir()
    demo = subprocess.run(
        [str(quantmini), "demo"], capture_output=True, text=True, check=False, env=env, cwd=work, timeout=600
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "example query" in demo.stdout
    assert "lake at quantmini-demo/lake" in demo.stdout

    # The README's promise: everything lands in ./quantmini-demo/ of the working directory.
    assert sorted(p.name for p in work.iterdir()) == ["quantmini-demo"]
    lake = work / "quantmini-demo" / "lake"
    sessions = xcals.get_calendar("XNYS").sessions_in_range(DEMO_START.isoformat(), DEMO_END.isoformat())
    expected_days = [s.date().isoformat() for s in sessions]
    bronze = sorted(p.name for p in (lake / "bronze" / "stocks_daily").glob("date=*"))
    assert bronze == [f"date={day}" for day in expected_days]
    day_root = lake / "gold" / "qlib" / "stocks_daily" / "day"
    assert (day_root / "calendars" / "day.txt").read_text().split() == expected_days
    instruments = (day_root / "instruments" / "all.txt").read_text().splitlines()
    features = {p.name for p in (day_root / "features").iterdir()}
    assert len(instruments) == len(features) == 300  # one instrument per company (the renamed one once)
    assert (lake / "gold" / "quantmini.duckdb").is_file()
