"""Which feature set tables a query reads: each asked-for feature mapped to the set whose table holds it.

The features of a data type's ``base`` set are columns of its main silver table. Every other set
(``alpha158``, ``alpha360``, ``ta`` …, declared in :mod:`quantmini.features.library`) is a silver table
of its own, ``silver/<data type>_<set>/date=…/part.parquet`` with ``ticker``, ``session_date`` and the
set's features; a query reads its partitions of the sessions asked for and joins them to the bars on
``(ticker, session_date)``. A set is built only when listed in the ``features.<data type>`` setting, so
a feature of a set that is neither listed nor built is an error saying how to list and build it (a set
taken off the list keeps its table, read as it is but no longer updated).

A name two sets hold (``OPEN0``: alpha158 and alpha360, one definition) is read from a set the query
reads anyway, else from a configured one. Feature values are scale-free or in the session's own share
basis: they are read as stored, never adjusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from quantmini._exceptions import QueryError
from quantmini.features.library import FeatureSet, sets_of
from quantmini.query.spec import QuerySpec


@dataclass(frozen=True, slots=True)
class FeatureRead:
    """The fields a query reads from one feature set's silver table."""

    feature_set: str
    """The set's name (``alpha158``)."""
    table: str
    """Its silver table (``stocks_daily_alpha158``)."""
    fields: tuple[str, ...]
    """The set's features the query asks for, in the order asked."""


def feature_reads(
    spec: QuerySpec, configured: Sequence[str], built: Sequence[str] = ()
) -> tuple[FeatureRead, ...]:
    """The feature set tables answering ``spec``'s :attr:`~QuerySpec.feature_fields`, given the sets
    ``configured`` for its data type (``features.<data type>``) and those ``built`` in the lake (a set no
    longer configured keeps its table, no longer updated), in the order their fields are asked.

    Raises :class:`QueryError` naming the set, the setting and the command that builds it when a field
    belongs only to sets that are neither configured nor built.
    """
    holders = _holders(spec.data_type)
    chosen: dict[str, FeatureSet] = {}
    # Fields of one set first, so that a name several sets hold joins a table already read.
    ordered = sorted(spec.feature_fields, key=lambda name: len(holders[name]))
    for name in ordered:
        candidates = holders[name]
        reading = {s.name for s in chosen.values()}
        pick = next((s for s in candidates if s.name in reading), None)
        pick = pick or next((s for s in candidates if s.name in configured), None)
        pick = pick or next((s for s in candidates if s.name in built), None)
        if pick is None:
            raise QueryError(_not_configured(spec.data_type, name, candidates, configured))
        chosen[name] = pick
    reads: dict[str, list[str]] = {}
    for name in spec.feature_fields:
        reads.setdefault(chosen[name].name, []).append(name)
    tables = {s.name: s.table() for s in chosen.values()}
    return tuple(FeatureRead(s, tables[s], tuple(fields)) for s, fields in reads.items())


def _holders(data_type: str) -> dict[str, list[FeatureSet]]:
    """Feature name → the sets (``base`` excepted) whose tables hold it, in library order."""
    holders: dict[str, list[FeatureSet]] = {}
    for feature_set in sets_of(data_type).values():
        if not feature_set.is_base:
            for name in feature_set.names:
                holders.setdefault(name, []).append(feature_set)
    return holders


def _not_configured(
    data_type: str, name: str, candidates: list[FeatureSet], configured: Sequence[str]
) -> str:
    wanted = candidates[0].name
    sets = " or ".join(s.name for s in candidates)
    listed = ",".join(dict.fromkeys([*configured, wanted]))
    return (
        f"{name} is a feature of the {sets} set, which is not configured for {data_type} "
        f"(features.{data_type} = {','.join(configured)}): add it with "
        f"`quantmini config set features.{data_type} {listed}` (or QUANTMINI_FEATURES_{data_type.upper()}="
        f"{listed}), then build it with `quantmini data enrich --data-type {data_type}`"
    )


def not_built_message(read: FeatureRead, data_type: str, missing: Sequence[object] = ()) -> str:
    """Why a configured set cannot answer: its table has no partition yet, or lacks some of the sessions
    of the query's range that the main silver table holds (``missing``)."""
    build = f"build it with `quantmini data enrich --data-type {data_type}`"
    if not missing:
        return (
            f"feature set {read.feature_set} of {data_type} ({', '.join(read.fields)}) is configured but not "
            f"built yet (no partitions in silver/{read.table}): {build}"
        )
    shown = ", ".join(str(d) for d in missing[:3]) + (
        f" and {len(missing) - 3} more" if len(missing) > 3 else ""
    )
    return (
        f"feature set {read.feature_set} of {data_type} ({', '.join(read.fields)}) lacks {len(missing)} "
        f"session(s) of the range that silver holds ({shown}): {build}"
    )
