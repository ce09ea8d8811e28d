"""The data-type spec: everything the pipeline needs to know about one vendor dataset, as data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

Frequency = Literal["day", "1min"]

#: Header of every Polygon aggregates flat file (stocks and options, day and minute), in vendor order.
AGGREGATE_CSV_COLUMNS: tuple[str, ...] = (
    "ticker",
    "volume",
    "open",
    "close",
    "high",
    "low",
    "window_start",
    "transactions",
)

#: Bronze columns shared by every aggregates dataset, in storage order.
AGGREGATE_BRONZE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("ticker", pa.string(), nullable=False),
    pa.field("session_date", pa.date32(), nullable=False),
    pa.field("ts", pa.timestamp("ns", tz="America/New_York"), nullable=False),
    pa.field("window_start", pa.int64(), nullable=False),
    pa.field("open", pa.float64(), nullable=False),
    pa.field("high", pa.float64(), nullable=False),
    pa.field("low", pa.float64(), nullable=False),
    pa.field("close", pa.float64(), nullable=False),
    # float64 on purpose: volumes are fractional (6 dp) in files from 2026-02-23 on.
    pa.field("volume", pa.float64(), nullable=False),
    pa.field("transactions", pa.int64(), nullable=False),
)

#: Extra bronze columns of minute bars.
MINUTE_BRONZE_FIELDS: tuple[pa.Field, ...] = (pa.field("regular_session", pa.bool_(), nullable=False),)

#: Extra bronze columns of options bars, parsed from the OCC ticker.
OPTION_BRONZE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("underlying", pa.string(), nullable=False),
    pa.field("expiration", pa.date32(), nullable=False),
    pa.field("option_type", pa.string(), nullable=False),
    pa.field("strike", pa.float64(), nullable=False),
)


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """One vendor dataset, declared as data.

    ``source_key(date)`` gives the object key inside the vendor bucket; the local mirror keeps the same
    key below ``<mirror>/<bucket>/``. Bronze holds one partition per exchange session, sorted by
    ``sort_columns``.
    """

    name: str
    asset: str
    dataset: str
    description: str
    csv_columns: tuple[str, ...]
    bronze_schema: pa.Schema
    key_columns: tuple[str, ...]
    sort_columns: tuple[str, ...]
    frequency: Frequency
    first_session: dt.date
    is_option: bool = False
    calendar: str = "XNYS"
    partitioning: str = "date"
    features: tuple[str, ...] = ()

    @property
    def has_silver(self) -> bool:
        """Whether a silver layer (adjustment factors and features) is defined: it is when features are."""
        return bool(self.features)

    @property
    def has_qlib_gold(self) -> bool:
        """Whether a Qlib gold root is built: daily, non-option bars only (so far)."""
        return self.frequency == "day" and not self.is_option

    @property
    def prefix(self) -> str:
        """Key prefix of this dataset inside the bucket, e.g. ``us_stocks_sip/day_aggs_v1``."""
        return f"{self.asset}/{self.dataset}"

    def source_key(self, session: dt.date) -> str:
        """Object key of the flat file for ``session`` (``{prefix}/YYYY/MM/YYYY-MM-DD.csv.gz``)."""
        return f"{self.prefix}/{session:%Y}/{session:%m}/{session:%Y-%m-%d}.csv.gz"

    def session_from_key(self, key: str) -> dt.date | None:
        """Inverse of :meth:`source_key`; ``None`` when ``key`` is not a file of this dataset."""
        if not key.startswith(self.prefix + "/") or not key.endswith(".csv.gz"):
            return None
        name = key.rsplit("/", 1)[-1].removesuffix(".csv.gz")
        try:
            session = dt.date.fromisoformat(name)
        except ValueError:
            return None
        return session if self.source_key(session) == key else None


def aggregate_schema(*extra: tuple[pa.Field, ...]) -> pa.Schema:
    """Bronze schema of an aggregates dataset: the shared fields plus ``extra`` groups."""
    fields = list(AGGREGATE_BRONZE_FIELDS)
    for group in extra:
        fields.extend(group)
    return pa.schema(fields)
