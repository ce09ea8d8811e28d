"""The quantmini error tree.

Every error the library raises on purpose derives from :class:`QuantminiError`; third-party
errors are mapped at the I/O edge with ``raise ... from exc``. The CLI renders any of them as one
readable line and a non-zero exit code.

    QuantminiError
    ├── ConfigurationError        bad config file / key / value / option
    ├── SourceError               reading from a data source (mirror, S3, REST)
    │   ├── NotEntitledError      credentials valid but not entitled (HTTP 403)
    │   ├── NotFoundError         object / endpoint does not exist (404)
    │   ├── RateLimitedError      the source asks us to slow down (429)
    │   └── DownloadError         transfer failed after retries
    ├── ValidationError           input data that cannot be ingested as a whole (bad header, corrupt gzip)
    ├── StorageError              writing/reading the lake failed (disk, permissions, corrupt partition)
    │   └── LakeLockedError       another process is writing the lake (holds its single-writer lock)
    └── QueryError                a query cannot be answered as asked
"""

from __future__ import annotations

from pathlib import Path


class QuantminiError(Exception):
    """Base class of every error quantmini raises on purpose."""


class ConfigurationError(QuantminiError):
    """A configuration file, key, value or command-line option is invalid."""


class SourceError(QuantminiError):
    """A data source (local mirror, S3 endpoint, REST API) failed."""


class NotEntitledError(SourceError):
    """The credentials are valid but not entitled to the requested data (HTTP 403)."""


class NotFoundError(SourceError):
    """The requested object or endpoint does not exist (HTTP 404, missing file)."""


class RateLimitedError(SourceError):
    """The source rejected the request because of its rate limit (HTTP 429)."""


class DownloadError(SourceError):
    """A transfer failed even after retries."""


class ValidationError(QuantminiError):
    """Input data cannot be ingested as a whole (corrupt gzip, wrong header, rows not conserved)."""


class StorageError(QuantminiError):
    """Reading or writing the lake failed."""


class LakeLockedError(StorageError):
    """Another process holds the lake's single-writer lock.

    ``holder`` describes it (pid, host, start time, command), or is ``None`` when it left no record.
    """

    def __init__(self, root: Path, holder: str | None) -> None:
        self.root = root
        self.holder = holder
        who = holder if holder is not None else "another process (it left no record of itself)"
        super().__init__(f"the lake {root} is locked by {who}; wait with --wait or try later")


class QueryError(QuantminiError):
    """A query cannot be answered as asked (unknown field, bad range, missing data)."""
