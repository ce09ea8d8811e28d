"""Where an effective setting came from: default, system profile, a file, the environment, the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OriginKind = Literal["default", "profile", "file", "env", "cli"]

#: Layers from lowest to highest precedence.
PRECEDENCE: tuple[OriginKind, ...] = ("default", "profile", "file", "env", "cli")


@dataclass(frozen=True)
class Origin:
    """The layer a value came from, and which file, variable or option inside that layer."""

    kind: OriginKind
    detail: str = ""

    def describe(self) -> str:
        """Short label for tables: ``default``, ``file /path``, ``env PIPELINE_MODE``, ``command line``."""
        if self.kind == "cli":
            return f"command line ({self.detail})" if self.detail else "command line"
        if self.kind == "default" or not self.detail:
            return self.kind
        return f"{self.kind} {self.detail}"

    def where(self) -> str:
        """Phrase for error messages: ``in /path``, ``from env PIPELINE_MODE``, ``from the command line``."""
        if self.kind in ("file", "profile"):
            return f"in {self.detail}"
        if self.kind == "env":
            return f"from env {self.detail}"
        if self.kind == "cli":
            return f"from {self.detail}" if self.detail else "from the command line"
        return "by default"


DEFAULT = Origin("default")
COMMAND_LINE = Origin("cli")
