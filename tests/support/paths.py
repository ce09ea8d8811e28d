"""Paths shared by tests."""

from __future__ import annotations

from pathlib import Path

#: The vendor's REST response shapes (MIT), in ``../shared`` beside the repository.
VENDOR_FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "polygon-rest"
