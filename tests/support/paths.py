"""Paths shared by tests: every one of them inside the repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: The repository root (the folder holding ``pyproject.toml``).
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Response bodies in the vendor's REST shapes, written for the tests (see the folder's README).
REST_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "polygon-rest"


def rest_fixture(name: str) -> Any:
    """The decoded JSON body of ``tests/fixtures/polygon-rest/<name>`` (a fresh copy on every call)."""
    return json.loads((REST_FIXTURES / name).read_text())
