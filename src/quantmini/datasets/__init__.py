"""Data-type specs and their registry."""

from quantmini.datasets.base import DatasetSpec
from quantmini.datasets.registry import DATASETS, DatasetRegistry, get_spec

__all__ = ["DATASETS", "DatasetRegistry", "DatasetSpec", "get_spec"]
