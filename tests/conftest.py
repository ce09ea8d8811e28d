"""Shared test configuration."""

from __future__ import annotations

import os

# Tests must never read the developer's real configuration or credentials.
os.environ.setdefault("QUANTMINI_CONFIG_DIR", os.path.join(os.path.dirname(__file__), ".no-such-config-dir"))
