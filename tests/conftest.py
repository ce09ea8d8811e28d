"""Shared test configuration."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from quantmini.config.redaction import reset_secrets

# Tests must never read the developer's real configuration or credentials.
os.environ.setdefault("QUANTMINI_CONFIG_DIR", os.path.join(os.path.dirname(__file__), ".no-such-config-dir"))


@pytest.fixture(autouse=True)
def _forget_registered_secrets() -> Iterator[None]:
    """Secrets registered for redaction by one test (loading settings, building clients) stay in it."""
    yield
    reset_secrets()
