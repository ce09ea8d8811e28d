"""Where everything lives inside a lake root. Paths encode what a file holds.

<root>/landing/<asset>/<dataset>/YYYY/MM/YYYY-MM-DD.csv.gz        raw bytes, byte-identical to source
<root>/landing/.versions/<key>.<sha12>                           a replaced raw file, kept until bronze
                                                                 has ingested its replacement
<root>/bronze/<data_type>/date=YYYY-MM-DD/part.parquet           validated, unadjusted
<root>/bronze/reference/<table>.parquet                          splits, dividends, tickers ...
<root>/quarantine/<data_type>/date=YYYY-MM-DD/part.parquet       rejected rows with file, line, reason
<root>/silver/<table>/date=YYYY-MM-DD/part.parquet               raw bars + features (table = data type),
                                                                 or another per-session silver table
<root>/silver/reference/adjustment_factors.parquet               compact factor table (spans per ticker)
<root>/gold/qlib/<data_type>/<freq>/                             Qlib provider root (total return)
<root>/gold/qlib_split/<data_type>/<freq>/                       Qlib provider root (split-only)
<root>/gold/quantmini.duckdb                                     views over every layer
<root>/_manifests/<stage>/<table>/YYYY-MM-DD.json                one manifest per partition and stage
<root>/_manifests/gold/<data_type>/<freq>/                       gold state (sessions, symbol spans)
<root>/_manifests/gold_split/<data_type>/<freq>/                 gold state of the split-only root
<root>/_manifests/markets/<qlib root>/                           market files' state (membership spans)
<root>/_manifests/.index/<stage>/<table>.json                    compact index of a manifest directory
                                                                 (``data status``; rebuilt at will)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from quantmini.core.adjustment_names import Adjustment
from quantmini.datasets.base import DatasetSpec

PARTITION_FILE = "part.parquet"


@dataclass(frozen=True, slots=True)
class Lake:
    """Path layout of one lake root."""

    root: Path

    def landing_file(self, key: str) -> Path:
        """Landing copy of the source object ``key``."""
        return self.root / "landing" / key

    def landing_versions_dir(self) -> Path:
        """Where replaced landed files are kept until bronze has ingested their replacement."""
        return self.root / "landing" / ".versions"

    def landing_version(self, key: str, sha256: str) -> Path:
        """Kept copy of the landed version of ``key`` whose SHA-256 is ``sha256``."""
        return self.landing_versions_dir() / f"{key}.{sha256[:12]}"

    def bronze_dir(self, spec: DatasetSpec) -> Path:
        """Directory holding every bronze partition of ``spec``."""
        return self.root / "bronze" / spec.name

    def bronze_partition(self, spec: DatasetSpec, session: dt.date) -> Path:
        """Bronze Parquet file of one session."""
        return self.bronze_dir(spec) / f"date={session:%Y-%m-%d}" / PARTITION_FILE

    def quarantine_partition(self, spec: DatasetSpec, session: dt.date) -> Path:
        """Quarantined rows of one session's file."""
        return self.root / "quarantine" / spec.name / f"date={session:%Y-%m-%d}" / PARTITION_FILE

    def quarantine_dir(self, spec: DatasetSpec) -> Path:
        """Directory holding every quarantine partition of ``spec``."""
        return self.root / "quarantine" / spec.name

    def silver_dir(self, spec: DatasetSpec | str) -> Path:
        """Directory holding every partition of a silver table (a data type's main table by default)."""
        return self.root / "silver" / (spec if isinstance(spec, str) else spec.name)

    def silver_partition(self, spec: DatasetSpec | str, session: dt.date) -> Path:
        """Silver Parquet file of one session of a table."""
        return self.silver_dir(spec) / f"date={session:%Y-%m-%d}" / PARTITION_FILE

    def silver_reference(self, name: str) -> Path:
        """A lake-wide silver table (adjustment factors, corporate events …)."""
        return self.root / "silver" / "reference" / f"{name}.parquet"

    def reference_table(self, name: str) -> Path:
        """Bronze reference table (splits, dividends, tickers ...)."""
        return self.root / "bronze" / "reference" / f"{name}.parquet"

    def adjustment_factors(self) -> Path:
        """Per-ticker, per-session adjustment factor table."""
        return self.root / "silver" / "reference" / "adjustment_factors.parquet"

    def qlib_root(self, data_type: str, freq: str, adjustment: Adjustment = "total_return") -> Path:
        """Qlib provider root of one data type, frequency (``day`` or ``1min``) and adjustment: the
        total-return roots under ``gold/qlib``, the split-only ones in the same layout under
        ``gold/qlib_split``."""
        return self.root / "gold" / _suffixed("qlib", adjustment) / data_type / freq

    def gold_state_dir(self, data_type: str, freq: str, adjustment: Adjustment = "total_return") -> Path:
        """Where the gold stage records what a Qlib root holds (one directory per root)."""
        return self.root / "_manifests" / _suffixed("gold", adjustment) / data_type / freq

    def markets_state_dir(self, qlib_root: Path) -> Path:
        """Where the market files of the Qlib root at ``qlib_root`` (below ``gold/``, e.g.
        ``gold/qlib_split/stocks_daily/day``) record their membership spans."""
        return self.root / "_manifests" / "markets" / qlib_root.relative_to(self.root / "gold")

    def duckdb_file(self) -> Path:
        """The DuckDB database with views over the lake."""
        return self.root / "gold" / "quantmini.duckdb"

    def manifest(self, stage: str, spec: DatasetSpec | str, session: dt.date) -> Path:
        """Manifest of one partition produced by ``stage`` (landing, bronze, silver) of a data type or
        silver table."""
        return self.manifest_dir(stage, spec) / f"{session:%Y-%m-%d}.json"

    def manifest_index(self, manifest_dir: Path) -> Path:
        """Where the compact index of the manifest directory ``manifest_dir`` is kept
        (:mod:`quantmini.io.manifest_index`)."""
        relative = manifest_dir.relative_to(self.root / "_manifests")
        return self.root / "_manifests" / ".index" / f"{relative.as_posix()}.json"

    def manifest_dir(self, stage: str, spec: DatasetSpec | str) -> Path:
        """Directory holding every per-partition manifest of ``stage``."""
        return self.root / "_manifests" / stage / (spec if isinstance(spec, str) else spec.name)


def _suffixed(name: str, adjustment: Adjustment) -> str:
    """``name`` for the default (total-return) adjustment, else ``name_<adjustment>``."""
    return name if adjustment == "total_return" else f"{name}_{adjustment}"
