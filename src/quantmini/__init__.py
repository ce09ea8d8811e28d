"""quantmini: Polygon.io (Massive) market data to a correct, fast, resumable research lake."""

from importlib.metadata import version as _distribution_version

from quantmini._exceptions import (
    ConfigurationError,
    DownloadError,
    LakeLockedError,
    NotEntitledError,
    NotFoundError,
    QuantminiError,
    QueryError,
    RateLimitedError,
    SourceError,
    StorageError,
    ValidationError,
)

# The version is declared once, in pyproject.toml; the installed distribution's metadata carries it.
__version__ = _distribution_version("quantmini")

__all__ = [
    "ConfigurationError",
    "DownloadError",
    "LakeLockedError",
    "NotEntitledError",
    "NotFoundError",
    "QuantminiError",
    "QueryError",
    "RateLimitedError",
    "SourceError",
    "StorageError",
    "ValidationError",
    "__version__",
]
