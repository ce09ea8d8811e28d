"""Option contracts → the stock or index they deliver, shares per contract and adjustment, vectorised.

An OCC root is not a stock ticker: ``SPXW`` delivers the index ``SPX``, ``BRKB`` the class share ``BRK.B``
and ``XYZ1`` (a contract adjusted by a corporate action) maybe 150 shares of ``XYZ`` plus cash. The
options-contracts reference table knows; string rules alone would guess. Each contract resolves, in
order, from

1. ``reference``: its own rows in the table;
2. ``root_map``: the deliverable shared by every reference row of its root (a root whose rows disagree
   is a conflict, never a vote);
3. ``occ_root``: the root itself, 100 shares, standard, only for a plain root (letters only) on which
   the table says nothing, neither as a root nor as a dotted underlying with the same letters;

and is otherwise left unresolved with a reason. Nothing is guessed: a digit-suffixed (adjusted) root
without reference evidence stays unresolved, with the reason in ``unresolved_reason``.
"""

from __future__ import annotations

import polars as pl

from quantmini.core.options import contract_columns

#: Columns of :func:`resolve_contracts`' result.
RESOLVED_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "root": pl.String(),
    "underlying": pl.String(),
    "shares_per_contract": pl.Float64(),
    "adjusted": pl.Boolean(),
    "source": pl.String(),
    "unresolved_reason": pl.String(),
}
#: Shares delivered by a standard equity option.
STANDARD_SHARES = 100.0
_PLAIN_ROOT = r"^[A-Z]+$"
_DIGIT_END = r"\d$"
#: ISO 10962 option CFI, sixth letter: ``S`` standardised, ``N`` non-standard deliverable.
_CFI_NON_STANDARD = "N"


def _root(ticker: str = "ticker") -> pl.Expr:
    """The OCC root of ``ticker`` (null when it does not parse), as bronze's ``underlying`` holds it."""
    return contract_columns(ticker)[0]


def _shares_text(shares: pl.Expr) -> pl.Expr:
    """``100`` rather than ``100.0`` in messages; fractional deliverables keep their decimals."""
    whole = shares == shares.round(0)
    return pl.when(whole).then(shares.cast(pl.Int64).cast(pl.String)).otherwise(shares.cast(pl.String))


def _has_additional(reference: pl.DataFrame) -> pl.Expr:
    """Whether a row lists ``additional_underlyings`` (only when the table kept that vendor field)."""
    if "additional_underlyings" not in reference.columns:
        return pl.lit(False)
    col = pl.col("additional_underlyings")
    if isinstance(reference.schema["additional_underlyings"], pl.List):
        return col.list.len().fill_null(0) > 0
    return col.is_not_null()


def reference_deliverables(reference: pl.DataFrame) -> pl.DataFrame:
    """Distinct (ticker, root, underlying, shares, adjusted) of the usable reference rows.

    A row is usable when its ticker parses and it names an underlying and shares per contract. It is
    adjusted when shares differ from 100, it lists additional underlyings, its CFI says non-standard,
    or its root ends in a digit the underlying does not (``XYZ1`` on ``XYZ``). ``deliverable`` describes
    the last four for messages.
    """
    return _deliverables(reference).unique(
        ["ticker", "root", "underlying", "shares_per_contract", "adjusted"]
    )


def _deliverables(reference: pl.DataFrame) -> pl.DataFrame:
    """:func:`reference_deliverables` with repeated rows kept (:func:`_agreeing` reads past them)."""
    cfi = pl.col("cfi") if "cfi" in reference.columns else pl.lit(None, dtype=pl.String)
    shares = pl.col("shares_per_contract").cast(pl.Float64, strict=False)
    underlying = pl.col("underlying_ticker").cast(pl.String)
    frame = reference.select(
        pl.col("ticker").cast(pl.String),
        _root().alias("root"),
        underlying.alias("underlying"),
        shares.alias("shares_per_contract"),
        _has_additional(reference).alias("additional"),
        (cfi.str.slice(5, 1) == _CFI_NON_STANDARD).fill_null(False).alias("non_standard"),
    ).drop_nulls(["root", "underlying", "shares_per_contract"])
    digit_root = pl.col("root").str.contains(_DIGIT_END) & ~pl.col("underlying").str.contains(_DIGIT_END)
    adjusted = (
        (pl.col("shares_per_contract") != STANDARD_SHARES)
        | pl.col("additional")
        | pl.col("non_standard")
        | digit_root
    )
    return (
        frame.with_columns(adjusted.alias("adjusted"))
        .select("ticker", "root", "underlying", "shares_per_contract", "adjusted")
        .with_columns(
            pl.format(
                "{} ({} shares{})",
                "underlying",
                _shares_text(pl.col("shares_per_contract")),
                pl.when("adjusted").then(pl.lit(", adjusted")).otherwise(pl.lit("")),
            ).alias("deliverable")
        )
    )


def _agreeing(rows: pl.DataFrame, key: str, prefix: str, what: str) -> pl.DataFrame:
    """Per ``key``: its one deliverable, or a conflict message when its rows hold several.

    Almost every key has one deliverable (a contract nearly always has a single row, and the table has
    a million of them): a key with one row is taken as it is, a key with several rows from the first row
    of each of its distinct deliverables, and only keys left with several deliverables go through the
    group-by that lists them for the message.
    """
    values = ("underlying", "shares_per_contract", "adjusted")
    repeated = _maybe_repeated(rows[key])
    distinct = rows.filter(repeated).unique([key, "deliverable"], keep="first", maintain_order=True)
    several = distinct[key].is_duplicated()
    agreeing = pl.concat([rows.filter(~repeated), distinct.filter(~several)]).select(
        key,
        *(pl.col(name).alias(f"{prefix}_{name}") for name in values),
        pl.lit(None, dtype=pl.String).alias(f"{prefix}_conflict"),
    )
    if not several.any():
        return agreeing
    conflicting = _conflicts(distinct.filter(several), key, prefix, what)
    return pl.concat([agreeing, conflicting.cast(agreeing.schema)])


def _maybe_repeated(values: pl.Series) -> pl.Series:
    """Whether each value occurs more than once, or shares its 64-bit hash with another value (a
    superset: callers treat those rows the exact way). Sorting a million hashes is several times faster
    than ``is_duplicated`` on the strings."""
    hashes = values.hash()
    ordered = hashes.sort()
    return hashes.is_in(ordered.filter(ordered == ordered.shift(1)).implode())


def _conflicts(rows: pl.DataFrame, key: str, prefix: str, what: str) -> pl.DataFrame:
    """:func:`_agreeing` for keys whose rows hold several deliverables: null values and the message."""
    grouped = rows.group_by(key).agg(
        pl.col("underlying").first(),
        pl.col("shares_per_contract").first(),
        pl.col("adjusted").first(),
        pl.col("underlying").unique().sort().alias("underlyings"),
        pl.col("deliverable").unique().sort().alias("deliverables"),
    )
    several = pl.col("deliverables").list.len() > 1
    message = (
        pl.when(pl.col("underlyings").list.len() > 1)
        .then(
            pl.format(
                "{} {} maps to several underlyings in the reference: {}",
                pl.lit(what),
                key,
                pl.col("underlyings").list.join(", "),
            )
        )
        .otherwise(
            pl.format(
                "{} {} has several deliverables in the reference: {}",
                pl.lit(what),
                key,
                pl.col("deliverables").list.join(", "),
            )
        )
    )
    return grouped.select(
        key,
        *(
            pl.when(~several).then(pl.col(name)).alias(f"{prefix}_{name}")
            for name in ("underlying", "shares_per_contract", "adjusted")
        ),
        pl.when(several).then(message).alias(f"{prefix}_conflict"),
    )


def _lookalikes(rows: pl.DataFrame) -> pl.DataFrame:
    """Dotted underlyings by their letters (``BRKB`` → ``BRK.B``): a plain root equal to them is ambiguous."""
    return (
        rows.filter(pl.col("underlying").str.contains(".", literal=True))
        .group_by(pl.col("underlying").str.replace_all(".", "", literal=True).alias("root"))
        .agg(pl.col("underlying").unique().sort().str.join(", ").alias("lookalike"))
    )


def resolve_contracts(contracts: pl.DataFrame, reference: pl.DataFrame | None) -> pl.DataFrame:
    """One row per distinct ``ticker`` of ``contracts``, resolved as the module docstring describes.

    Only ``contracts.ticker`` is read (the root comes from the OCC ticker, as bronze parses it);
    ``reference`` is the options-contracts table (:data:`~quantmini.core.reference.OPTIONS_CONTRACTS_SCHEMA`,
    plus ``additional_underlyings`` when kept) or ``None`` when none was pulled. Columns:
    :data:`RESOLVED_SCHEMA`, sorted by ``ticker``; ``underlying``, ``shares_per_contract``, ``adjusted``
    and ``source`` are null exactly when ``unresolved_reason`` is not.
    """
    frame = contracts.select(pl.col("ticker").cast(pl.String)).unique().with_columns(_root().alias("_root"))
    return (
        _resolved(frame, reference)
        .rename({"_root": "root"})
        .select(list(RESOLVED_SCHEMA))
        .cast(pl.Schema(RESOLVED_SCHEMA))
        .sort("ticker")
    )


def with_deliverables(frame: pl.DataFrame, reference: pl.DataFrame | None) -> pl.DataFrame:
    """``frame`` (a ``ticker`` column among others) with the columns of :func:`resolve_contracts` but
    ``ticker`` and ``root`` added to every row, each row resolved as its ticker is there.

    Bars of one day hold each contract once: their rows are resolved where they stand, which spares
    the distinct tickers, their sort and the join back. Minute bars repeat each contract many times:
    the distinct tickers are resolved and joined back.
    """
    if not _maybe_repeated(frame["ticker"]).any():
        return _with_resolution(frame, reference)
    resolved = _with_resolution(frame.select("ticker").unique(), reference)
    return frame.join(resolved, on="ticker", how="left", nulls_equal=True, maintain_order="left")


def _with_resolution(frame: pl.DataFrame, reference: pl.DataFrame | None) -> pl.DataFrame:
    """:func:`with_deliverables` of every row, each ticker's OCC root parsed where it stands."""
    resolved = _resolved(frame.with_columns(_root().alias("_root")), reference).drop("_root")
    return resolved.cast({name: RESOLVED_SCHEMA[name] for name in _ADDED})


#: Columns :func:`_resolved` adds.
_ADDED = ("underlying", "shares_per_contract", "adjusted", "source", "unresolved_reason")


def _resolved(frame: pl.DataFrame, reference: pl.DataFrame | None) -> pl.DataFrame:
    """``frame`` (``ticker`` and its OCC root ``_root``) with :data:`_ADDED` of each row."""
    empty = pl.DataFrame(
        schema={"ticker": pl.String(), "root": pl.String(), "underlying": pl.String()}
        | {"shares_per_contract": pl.Float64(), "adjusted": pl.Boolean(), "deliverable": pl.String()}
    )
    rows = empty if reference is None or reference.height == 0 else _deliverables(reference)
    by_root = _agreeing(rows, "root", "r", "root").join(
        _lookalikes(rows), on="root", how="full", coalesce=True
    )
    by_ticker = _agreeing(rows, "ticker", "t", "contract")
    frame = frame.join(by_ticker, on="ticker", how="left", maintain_order="left").join(
        by_root.rename({"root": "_root"}), on="_root", how="left", maintain_order="left"
    )
    root = pl.col("_root")
    plain = root.str.contains(_PLAIN_ROOT)
    own = pl.col("t_underlying").is_not_null()
    mapped = pl.col("t_conflict").is_null() & pl.col("r_underlying").is_not_null()
    occ = (
        root.is_not_null()
        & plain
        & pl.col("t_conflict").is_null()
        & pl.col("r_conflict").is_null()
        & pl.col("lookalike").is_null()
    )
    source = (
        pl.when(own)
        .then(pl.lit("reference"))
        .when(mapped)
        .then(pl.lit("root_map"))
        .when(occ)
        .then(pl.lit("occ_root"))
    )
    reason = (
        pl.when(root.is_null())
        .then(pl.lit("not an OCC option ticker"))
        .when(pl.col("t_conflict").is_not_null())
        .then(pl.col("t_conflict"))
        .when(pl.col("r_conflict").is_not_null())
        .then(pl.col("r_conflict"))
        .when(root.str.contains(_DIGIT_END))
        .then(pl.format("adjusted root {} not in the reference", root))
        .when(~plain)
        .then(pl.format("root {} is not a plain root and not in the reference", root))
        .otherwise(
            pl.format(
                "root {} not in the reference, which lists the underlying {} with the same letters",
                root,
                pl.col("lookalike"),
            )
        )
    )

    def pick(name: str, occ_value: pl.Expr) -> pl.Expr:
        return (
            pl.when(own)
            .then(pl.col(f"t_{name}"))
            .when(mapped)
            .then(pl.col(f"r_{name}"))
            .when(occ)
            .then(occ_value)
            .alias(name)
        )

    values = ("underlying", "shares_per_contract", "adjusted", "conflict")
    temporary = [f"{prefix}_{name}" for prefix in ("t", "r") for name in values] + ["lookalike"]
    return frame.with_columns(
        pick("underlying", root),
        pick("shares_per_contract", pl.lit(STANDARD_SHARES)),
        pick("adjusted", pl.lit(False)),
        source.alias("source"),
        pl.when(own | mapped | occ).then(None).otherwise(reason).alias("unresolved_reason"),
    ).drop(temporary)
