"""The gzip inflater used for landed files: ISA-L when it can be imported, the standard zlib otherwise.

Landing inflates every file once to verify it, and bronze inflates it again to parse it. ISA-L's
``isal_zlib`` has zlib's ``decompressobj`` interface and releases the GIL like zlib does, and inflates the
vendor's CSV files about 3.5× faster. Its errors are not ``zlib.error``, so callers catch
:attr:`Inflater.error`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

#: ``wbits`` for a gzip wrapper (header and CRC-32 trailer checked).
GZIP_WBITS = zlib.MAX_WBITS | 16


class Decompressor(Protocol):
    """The part of ``zlib``'s decompression object that the readers use."""

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    @property
    def unconsumed_tail(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes: ...

    def flush(self, length: int = ..., /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Inflater:
    """One implementation of gzip inflation: a factory of decompressors and the error it raises."""

    name: str
    new: Callable[[], Decompressor]
    error: type[Exception]


def _zlib_gzip() -> Decompressor:
    return zlib.decompressobj(GZIP_WBITS)


#: The standard library's zlib: always available, the reference the others are tested against.
ZLIB = Inflater("zlib", _zlib_gzip, zlib.error)


def _isal() -> Inflater | None:
    try:
        from isal import isal_zlib
    except ImportError:  # a platform without a wheel, or an environment that hides it
        return None

    def new() -> Decompressor:
        return isal_zlib.decompressobj(GZIP_WBITS)

    # The stubs declare ``error`` as an instance; at run time it is the exception class.
    return Inflater("isal", new, cast("type[Exception]", isal_zlib.error))


#: ISA-L when importable, else zlib.
ISAL: Inflater | None = _isal()
FASTEST: Inflater = ISAL or ZLIB
