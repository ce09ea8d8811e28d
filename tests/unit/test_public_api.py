"""The curated public names of each package match what it exports."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

import quantmini


@pytest.mark.parametrize(
    "module", ["quantmini", "quantmini.datasets", "quantmini.query", "quantmini.report", "quantmini.sample"]
)
def test_all_is_sorted_and_resolves(module: str) -> None:
    mod = importlib.import_module(module)
    names = list(mod.__all__)
    assert names == sorted(names)
    for name in names:
        assert hasattr(mod, name), f"{module}.{name}"


def test_every_error_derives_from_the_root() -> None:
    errors = [getattr(quantmini, n) for n in quantmini.__all__ if n.endswith("Error")]
    assert len(errors) == 11
    assert all(issubclass(e, quantmini.QuantminiError) for e in errors)


def test_version_is_the_one_pyproject_declares() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert quantmini.__version__ == pyproject["project"]["version"]
