"""The CLI starts without the data stack: ``--help``, ``--version`` and every group's ``--help`` import click
and the command modules only, in a fresh interpreter, and still list every command with its help text."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Modules whose import costs a noticeable part of a second each; none is needed to show help.
HEAVY = (
    "aiobotocore",
    "botocore",
    "duckdb",
    "exchange_calendars",
    "httpx",
    "numpy",
    "pandas",
    "polars",
    "pyarrow",
    "pydantic",
    "rich",
)

#: Every top-level command and a fragment of its one-line help, as a user reads them in ``--help``.
COMMANDS = {
    "api": "Ad-hoc downloads from the vendor's REST API",
    "config": "Show and change settings",
    "data": "Run single stages, query the lake and show its status.",
    "demo": "Generate sample data and run landing",
    "features": "List the feature library: sets, features and their definitions.",
    "pipeline": "Run the whole pipeline.",
    "polygon": "Pull reference data from the vendor's REST API",
    "report": "Write an HTML report of the lake",
    "runs": "Show what past pipeline runs did",
    "sample": "Generate realistic sample data",
    "schema": "Declared table schemas and stored files against them.",
    "sql": "Run one read-only SQL STATEMENT",
    "validate": "Re-check stored layers.",
}

#: The subcommands each group lists.
GROUPS = {
    "api": ("bars",),
    "config": ("get", "init", "profile", "set", "show", "unset"),
    "data": ("catalog", "convert", "download", "enrich", "ingest", "query", "status"),
    "features": ("list",),
    "pipeline": ("daily", "run"),
    "runs": ("list", "show"),
    "polygon": (
        "bars",
        "corporate-actions",
        "events",
        "fundamentals",
        "market-status",
        "news",
        "options-contracts",
        "tickers",
    ),
    "sample": ("generate",),
    "schema": ("check", "show"),
    "validate": ("bronze", "gold", "silver"),
}

CHILD = """
import json, sys
from click.testing import CliRunner
import quantmini
from quantmini.cli.main import cli

args = json.loads(sys.argv[1])
result = CliRunner().invoke(cli, args, prog_name="quantmini", catch_exceptions=False)
heavy = json.loads(sys.argv[2])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
print(json.dumps({"code": result.exit_code, "output": result.output, "loaded": loaded}))
"""


def run_child(args: list[str]) -> dict[str, object]:
    """Render ``quantmini ARGS`` in a fresh interpreter: exit code, output and the heavy modules loaded."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def test_help_lists_every_command_without_importing_the_data_stack() -> None:
    answer = run_child(["--help"])
    assert answer["code"] == 0
    assert answer["loaded"] == []
    output = str(answer["output"])
    listed = output.split("Commands:\n", 1)[1]
    names = [line.split()[0] for line in listed.splitlines() if line.strip()]
    assert names == sorted(COMMANDS)
    for name, fragment in COMMANDS.items():
        line = next(line for line in listed.splitlines() if line.split()[:1] == [name])
        # Help text is cut to the terminal width: compare the part that is shown.
        shown = line.split(maxsplit=1)[1].removesuffix("...")
        assert fragment.startswith(shown) or shown.startswith(fragment), (name, line)


def test_version_imports_nothing_heavy() -> None:
    answer = run_child(["--version"])
    assert answer == {"code": 0, "output": f"quantmini, version {_version()}\n", "loaded": []}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_group_help_lists_its_commands_without_importing_the_data_stack(group: str) -> None:
    answer = run_child([group, "--help"])
    assert answer["code"] == 0, answer["output"]
    assert answer["loaded"] == []
    listed = str(answer["output"]).split("Commands:\n", 1)[1]
    names = [line.split()[0] for line in listed.splitlines() if line.startswith("  ") and line.strip()]
    assert names == list(GROUPS[group])


def test_a_command_s_help_still_shows_the_data_types() -> None:
    # The choices come from the dataset registry, loaded when the option is rendered.
    answer = run_child(["data", "ingest", "--help"])
    assert answer["code"] == 0
    output = str(answer["output"])
    for name in ("options_daily", "options_minute", "stocks_daily", "stocks_minute"):
        assert name in output


def _version() -> str:
    from importlib.metadata import version

    return version("quantmini")
