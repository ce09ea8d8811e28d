"""The CI workflows parse and run the scripts ``.ci/run`` runs, which end with the README's test command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def workflow(name: str) -> dict[str, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key ``on`` as the boolean true.
    loaded["on"] = loaded.pop(True, loaded.get("on"))
    return loaded


def commands(script: Path) -> list[str]:
    """The script's command lines: no comments, blanks, shebang or shell options."""
    lines = [line.strip() for line in script.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#") and not line.startswith("set -")]


def run_steps(job: dict[str, Any]) -> list[str]:
    return [step["run"].strip() for step in job["steps"] if "run" in step]


def readme_test_command() -> str:
    quickstart = (ROOT / "README.md").read_text().split("## Quickstart", 1)[1]
    found = re.search(r"^(uv run[^\n#]*?)\s+# the tests$", quickstart, re.MULTILINE)
    assert found is not None, "the README's quickstart names no test command"
    return found.group(1)


@pytest.mark.parametrize("name", ["test.yml", "quality.yml", "publish.yml"])
def test_workflow_parses_with_jobs_and_triggers(name: str) -> None:
    loaded = workflow(name)
    assert loaded["on"], name
    assert loaded["jobs"], name
    assert loaded["permissions"] == {"contents": "read"}


def test_ci_run_is_quality_then_test_and_test_ends_with_the_readme_command() -> None:
    assert commands(ROOT / ".ci" / "run")[-2:] == ['bash "$here/quality"', 'bash "$here/test"']
    assert commands(ROOT / ".ci" / "test")[-1] == readme_test_command() == "uv run pytest"
    assert commands(ROOT / ".ci" / "quality")[-3:] == [
        "uv run ruff check .",
        "uv run ruff format --check .",
        "uv run mypy",
    ]
    for script in ("quality", "test"):
        assert 'source "$(dirname "$0")/setup"' in commands(ROOT / ".ci" / script)
    assert "uv sync --locked" in commands(ROOT / ".ci" / "setup")


@pytest.mark.parametrize(
    ("name", "job", "script"),
    [
        ("test.yml", "test", ".ci/test"),
        ("test.yml", "demo", ".ci/demo"),
        ("quality.yml", "quality", ".ci/quality"),
    ],
)
def test_workflow_job_runs_a_ci_script_only(name: str, job: str, script: str) -> None:
    assert run_steps(workflow(name)["jobs"][job]) == [f"bash {script}"]
    assert "workflow_call" in workflow(name)["on"]


def test_demo_job_covers_the_versions_the_test_matrix_leaves_out() -> None:
    jobs = workflow("test.yml")["jobs"]
    tested = jobs["test"]["strategy"]["matrix"]["python-version"]
    demo_only = jobs["demo"]["strategy"]["matrix"]["python-version"]
    assert not set(tested) & set(demo_only)
    assert commands(ROOT / ".ci" / "demo")[-2] == 'uv run --project "$root" --locked --no-dev quantmini demo'


def test_test_matrix_starts_at_the_lowest_supported_python() -> None:
    job = workflow("test.yml")["jobs"]["test"]
    versions = job["strategy"]["matrix"]["python-version"]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={versions[0]}"
    assert job["env"]["UV_PYTHON"] == "${{ matrix.python-version }}"


def test_publish_builds_with_uv_after_the_checks_and_uses_trusted_publishing() -> None:
    loaded = workflow("publish.yml")
    assert loaded["on"] == {"push": {"tags": ["v*"]}}
    jobs = loaded["jobs"]
    assert jobs["quality"]["uses"] == "./.github/workflows/quality.yml"
    assert jobs["test"]["uses"] == "./.github/workflows/test.yml"
    assert jobs["build"]["needs"] == ["quality", "test"]
    assert "uv build" in run_steps(jobs["build"])
    publish = jobs["publish"]
    assert publish["needs"] == "build"
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "pypi"
    assert [step.get("uses", "").split("@")[0] for step in publish["steps"]][-1] == (
        "pypa/gh-action-pypi-publish"
    )
    # No token: trusted publishing only.
    assert "password" not in str(publish)


def test_ci_scripts_are_executable_bash() -> None:
    for script in ("run", "quality", "test", "demo"):
        path = ROOT / ".ci" / script
        assert path.read_text().startswith("#!/usr/bin/env bash\n"), script
        assert path.stat().st_mode & 0o111, script
