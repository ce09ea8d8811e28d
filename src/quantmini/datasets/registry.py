"""Name → :class:`DatasetSpec` registry. CLI ``--data-type`` choices come from here."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from quantmini._exceptions import ConfigurationError
from quantmini.datasets import options_daily, options_minute, stocks_daily, stocks_minute
from quantmini.datasets.base import DatasetSpec, SilverPart


class DatasetRegistry(Mapping[str, DatasetSpec]):
    """A mapping of data-type names to specs that refuses duplicate registrations."""

    def __init__(self, specs: tuple[DatasetSpec, ...] = ()) -> None:
        self._specs: dict[str, DatasetSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: DatasetSpec) -> None:
        """Add ``spec``; a second spec with the same name is an error."""
        if spec.name in self._specs:
            raise ConfigurationError(f"data type {spec.name!r} is already registered")
        self._specs[spec.name] = spec

    def get_spec(self, name: str) -> DatasetSpec:
        """The spec called ``name``, or a :class:`ConfigurationError` listing the valid names."""
        try:
            return self._specs[name]
        except KeyError:
            choices = ", ".join(sorted(self._specs))
            raise ConfigurationError(f"unknown data type {name!r} (choose one of: {choices})") from None

    def silver_table(self, table: str) -> tuple[DatasetSpec, SilverPart]:
        """The data type declaring silver ``table``, and its part (``ConfigurationError`` when none does)."""
        for spec in self._specs.values():
            for part in spec.silver:
                if part.table(spec.name) == table:
                    return spec, part
        raise ConfigurationError(f"no data type declares the silver table {table!r}")

    def __getitem__(self, name: str) -> DatasetSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)


DATASETS = DatasetRegistry(
    (
        stocks_daily.SPEC,
        stocks_minute.SPEC,
        options_daily.SPEC,
        options_minute.SPEC,
    )
)


def get_spec(name: str) -> DatasetSpec:
    """Look ``name`` up in the default registry."""
    return DATASETS.get_spec(name)
