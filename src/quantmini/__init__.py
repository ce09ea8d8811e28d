"""quantmini: Polygon.io (Massive) market data to a correct, fast, resumable research lake."""

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

__version__ = "0.1.0"

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
