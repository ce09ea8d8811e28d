"""The feature library, declared as data: features (name, expression, description) grouped into sets.

A set is computed into its own silver table (``silver/<data type>_<set>``) when it is listed in the
configuration (``features.stocks_daily = ["base", "alpha158", "ta"]``); ``base`` is the data type's main
silver table and is always built. Adding a feature is one :class:`Feature` line in a set (and its test);
bumping the set's ``version`` rebuilds that set's table only, never bronze or another set.

Definitions are written in Qlib's expression syntax (see :mod:`quantmini.features.expression`) over the
set's input series: ``$open $high $low $close $volume $vwap`` (and ``$mkt_close``, the market proxy's
close, for ``ta``), every value brought into the share basis of the row's own session. Importing this
module imports no dataframe or numeric library (the CLI lists sets from it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from quantmini._exceptions import ConfigurationError

#: Windows of Qlib's Alpha158 rolling features.
ALPHA158_WINDOWS = (5, 10, 20, 30, 60)
#: Days of history Alpha360 normalises.
ALPHA360_DAYS = 60

Mode = Literal["sessions", "bars"]
#: Settings key naming the market proxy whose close is ``$mkt_close``.
MARKET_PROXY = "features.market_proxy"


@dataclass(frozen=True, slots=True)
class Feature:
    """One feature: its column name, its definition (``None``: computed by the data type's main silver
    transform) and a one-line description."""

    name: str
    expression: str | None
    description: str


@dataclass(frozen=True, slots=True)
class FeatureSet:
    """A named group of features of one data type, stored together.

    ``mode``: ``sessions`` — lags count exchange sessions, a session without a bar is a missing value
    (Qlib's global calendar); ``bars`` — lags count the ticker's own bars. ``strict``: a rolling window
    needs all its values (else one suffices, as in Qlib). ``history``: sessions read before each output
    session (at least what the longest definition needs). ``precision``: bits of the stored floats.
    """

    name: str
    data_type: str
    description: str
    features: tuple[Feature, ...]
    history: int = 0
    mode: Mode = "sessions"
    strict: bool = False
    precision: Literal[32, 64] = 64
    version: int = 1
    #: Estimated peak bytes per output row while the set is computed (sizes the silver tasks).
    row_bytes: int = 4000

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def is_base(self) -> bool:
        """The data type's main silver table (always built; computed by its own transform)."""
        return self.name == "base"

    def table(self) -> str:
        """The silver table holding the set."""
        return self.data_type if self.is_base else f"{self.data_type}_{self.name}"

    @property
    def inputs(self) -> tuple[str, ...]:
        """Input series the definitions read (``close``, ``vwap`` …), parsed on first use."""
        from quantmini.features.expression import parse

        found: dict[str, None] = {}
        for feature in self.features:
            if feature.expression is not None:
                found.update(dict.fromkeys(parse(feature.expression).leaves()))
        return tuple(found)


def _kbar() -> list[Feature]:
    rows = [
        ("KMID", "($close-$open)/$open", "body of the bar relative to the open"),
        ("KLEN", "($high-$low)/$open", "range of the bar relative to the open"),
        ("KMID2", "($close-$open)/($high-$low+1e-12)", "body of the bar relative to its range"),
        ("KUP", "($high-Greater($open, $close))/$open", "upper shadow relative to the open"),
        ("KUP2", "($high-Greater($open, $close))/($high-$low+1e-12)", "upper shadow relative to the range"),
        ("KLOW", "(Less($open, $close)-$low)/$open", "lower shadow relative to the open"),
        ("KLOW2", "(Less($open, $close)-$low)/($high-$low+1e-12)", "lower shadow relative to the range"),
        ("KSFT", "(2*$close-$high-$low)/$open", "close's position in the range, relative to the open"),
        (
            "KSFT2",
            "(2*$close-$high-$low)/($high-$low+1e-12)",
            "close's position in the range, relative to it",
        ),
    ]
    return [Feature(*row) for row in rows]


#: Alpha158's rolling families: name, definition with ``{d}`` the window, description.
_ROLLING: tuple[tuple[str, str, str], ...] = (
    ("ROC", "Ref($close, {d})/$close", "close {d} sessions ago over today's close"),
    ("MA", "Mean($close, {d})/$close", "{d}-session mean close over today's close"),
    ("STD", "Std($close, {d})/$close", "{d}-session standard deviation of the close over the close"),
    ("BETA", "Slope($close, {d})/$close", "slope of the close's {d}-session linear trend over the close"),
    ("RSQR", "Rsquare($close, {d})", "R² of the close's {d}-session linear trend"),
    ("RESI", "Resi($close, {d})/$close", "residual of today's close from its {d}-session trend, over it"),
    ("MAX", "Max($high, {d})/$close", "{d}-session highest high over the close"),
    ("MIN", "Min($low, {d})/$close", "{d}-session lowest low over the close"),
    ("QTLU", "Quantile($close, {d}, 0.8)/$close", "80th percentile of {d} closes over the close"),
    ("QTLD", "Quantile($close, {d}, 0.2)/$close", "20th percentile of {d} closes over the close"),
    ("RANK", "Rank($close, {d})", "percentile rank of today's close among {d} closes"),
    (
        "RSV",
        "($close-Min($low, {d}))/(Max($high, {d})-Min($low, {d})+1e-12)",
        "close's position in the {d}-session range",
    ),
    ("IMAX", "IdxMax($high, {d})/{d}", "position of the {d}-session high in its window"),
    ("IMIN", "IdxMin($low, {d})/{d}", "position of the {d}-session low in its window"),
    ("IMXD", "(IdxMax($high, {d})-IdxMin($low, {d}))/{d}", "sessions from the {d}-session low to its high"),
    ("CORR", "Corr($close, Log($volume+1), {d})", "{d}-session correlation of close and log volume"),
    (
        "CORD",
        "Corr($close/Ref($close,1), Log($volume/Ref($volume, 1)+1), {d})",
        "{d}-session correlation of price change and log volume change",
    ),
    ("CNTP", "Mean($close>Ref($close, 1), {d})", "share of up sessions over {d}"),
    ("CNTN", "Mean($close<Ref($close, 1), {d})", "share of down sessions over {d}"),
    (
        "CNTD",
        "Mean($close>Ref($close, 1), {d})-Mean($close<Ref($close, 1), {d})",
        "up share minus down share over {d} sessions",
    ),
    (
        "SUMP",
        "Sum(Greater($close-Ref($close, 1), 0), {d})/(Sum(Abs($close-Ref($close, 1)), {d})+1e-12)",
        "gains over total moves in {d} sessions (RSI-like)",
    ),
    (
        "SUMN",
        "Sum(Greater(Ref($close, 1)-$close, 0), {d})/(Sum(Abs($close-Ref($close, 1)), {d})+1e-12)",
        "losses over total moves in {d} sessions",
    ),
    (
        "SUMD",
        "(Sum(Greater($close-Ref($close, 1), 0), {d})-Sum(Greater(Ref($close, 1)-$close, 0), {d}))"
        "/(Sum(Abs($close-Ref($close, 1)), {d})+1e-12)",
        "gains minus losses over total moves in {d} sessions",
    ),
    ("VMA", "Mean($volume, {d})/($volume+1e-12)", "{d}-session mean volume over today's volume"),
    ("VSTD", "Std($volume, {d})/($volume+1e-12)", "{d}-session volume deviation over today's volume"),
    (
        "WVMA",
        "Std(Abs($close/Ref($close, 1)-1)*$volume, {d})"
        "/(Mean(Abs($close/Ref($close, 1)-1)*$volume, {d})+1e-12)",
        "variation of volume-weighted absolute returns over {d} sessions",
    ),
    (
        "VSUMP",
        "Sum(Greater($volume-Ref($volume, 1), 0), {d})/(Sum(Abs($volume-Ref($volume, 1)), {d})+1e-12)",
        "volume increases over total volume changes in {d} sessions",
    ),
    (
        "VSUMN",
        "Sum(Greater(Ref($volume, 1)-$volume, 0), {d})/(Sum(Abs($volume-Ref($volume, 1)), {d})+1e-12)",
        "volume decreases over total volume changes in {d} sessions",
    ),
    (
        "VSUMD",
        "(Sum(Greater($volume-Ref($volume, 1), 0), {d})-Sum(Greater(Ref($volume, 1)-$volume, 0), {d}))"
        "/(Sum(Abs($volume-Ref($volume, 1)), {d})+1e-12)",
        "volume increases minus decreases over total changes in {d} sessions",
    ),
)


def _alpha158() -> tuple[Feature, ...]:
    features = _kbar()
    for field in ("open", "high", "low", "vwap"):
        features.append(Feature(f"{field.upper()}0", f"${field}/$close", f"today's {field} over the close"))
    for name, text, description in _ROLLING:
        for d in ALPHA158_WINDOWS:
            features.append(Feature(f"{name}{d}", text.format(d=d), description.format(d=d)))
    return tuple(features)


def _alpha360() -> tuple[Feature, ...]:
    features = []
    for field in ("close", "open", "high", "low", "vwap"):
        for i in range(ALPHA360_DAYS - 1, 0, -1):
            features.append(
                Feature(
                    f"{field.upper()}{i}", f"Ref(${field}, {i})/$close", f"{field} {i} sessions ago / close"
                )
            )
        features.append(Feature(f"{field.upper()}0", f"${field}/$close", f"today's {field} over the close"))
    for i in range(ALPHA360_DAYS - 1, 0, -1):
        features.append(
            Feature(f"VOLUME{i}", f"Ref($volume, {i})/($volume+1e-12)", f"volume {i} sessions ago / volume")
        )
    features.append(Feature("VOLUME0", "$volume/($volume+1e-12)", "today's volume over itself"))
    return tuple(features)


_RETURN = "($close/Ref($close, 1)-1)"
_MARKET_RETURN = "($mkt_close/Ref($mkt_close, 1)-1)"
_TRUE_RANGE = "Greater($high-$low, Greater(Abs($high-Ref($close, 1)), Abs($low-Ref($close, 1))))"
_MACD = "(EMA($close, 12)-EMA($close, 26))"


def _ta() -> tuple[Feature, ...]:
    rows = [
        (
            "RSI14",
            "100-100/(1+RMA(Greater($close-Ref($close, 1), 0), 14)"
            "/RMA(Greater(Ref($close, 1)-$close, 0), 14))",
            "relative strength index, 14 bars, Wilder smoothing",
        ),
        ("MACD", _MACD, "EMA(12) − EMA(26) of the close, in the session's price units"),
        ("MACD_SIGNAL", f"EMA({_MACD}, 9)", "EMA(9) of MACD"),
        ("MACD_HIST", f"{_MACD}-EMA({_MACD}, 9)", "MACD − its signal line"),
        ("ATR14", f"RMA({_TRUE_RANGE}, 14)", "average true range, 14 bars, Wilder smoothing, in price units"),
        (
            "BB_PCTB20",
            "($close-Mean($close, 20)+2*StdP($close, 20))/(4*StdP($close, 20))",
            "Bollinger %B: the close's position between the (20, 2) bands",
        ),
        (
            "BB_WIDTH20",
            "4*StdP($close, 20)/Mean($close, 20)",
            "Bollinger band width (20, 2) over the middle band",
        ),
        (
            "OBV",
            "Sum(Sign($close-Ref($close, 1))*$volume, 252)",
            "on-balance volume over the trailing 252 bars (shares, in the session's basis)",
        ),
        (
            "AMIHUD20",
            f"Mean(Abs{_RETURN}/($close*$volume), 20)*1000000",
            "Amihud illiquidity: mean |return| per $1M traded, 20 bars",
        ),
        ("DOLLAR_VOLUME20", "Mean($close*$volume, 20)", "mean dollars traded per bar, 20 bars"),
        ("GAP", "$open/Ref($close, 1)-1", "overnight gap: open over the previous bar's close, minus 1"),
        ("HIGH52W_DIST", "$close/Max($high, 252)-1", "close relative to the 252-bar high, minus 1"),
        (
            "MKT_BETA60",
            f"Cov({_RETURN}, {_MARKET_RETURN}, 60)/Var({_MARKET_RETURN}, 60)",
            "beta of daily returns to the market proxy's, 60 bars",
        ),
        (
            "MKT_CORR60",
            f"Corr({_RETURN}, {_MARKET_RETURN}, 60)",
            "correlation of daily returns to the proxy's, 60 bars",
        ),
    ]
    return tuple(Feature(*row) for row in rows)


def _base(names: dict[str, str]) -> tuple[Feature, ...]:
    return tuple(Feature(name, None, description) for name, description in names.items())


@functools.cache
def feature_sets() -> dict[str, dict[str, FeatureSet]]:
    """Every set, by data type and name."""
    sets = [
        FeatureSet(
            "base",
            "stocks_daily",
            "total returns, volatility, volume z-score and the price return (null when a window has a "
            "missing session)",
            _base(
                {
                    "ret_1d": "total return since the previous session",
                    "ret_5d": "total return over 5 sessions",
                    "ret_20d": "total return over 20 sessions",
                    "vol_20d": "sample standard deviation of ret_1d over 20 sessions",
                    "volume_z_20d": "z-score of today's split-adjusted volume among 20 sessions",
                    "price_ret_1d": "price return since the previous session (split-adjusted, no dividends)",
                }
            ),
        ),
        FeatureSet(
            "alpha158",
            "stocks_daily",
            "Qlib's Alpha158 factors, computed exactly as qlib's Alpha158 handler does",
            _alpha158(),
            # 60 sessions for the longest window; 120 more to tell a ticker's listing from a halt (qlib
            # counts sessions without a bar inside an instrument's span, not before it).
            history=180,
            precision=32,
            row_bytes=3500,
        ),
        FeatureSet(
            "alpha360",
            "stocks_daily",
            "Qlib's Alpha360: 60 sessions of prices over today's close and volumes over today's volume",
            _alpha360(),
            history=ALPHA360_DAYS - 1,
            precision=32,
            row_bytes=6000,
        ),
        FeatureSet(
            "ta",
            "stocks_daily",
            "classic indicators over the ticker's own bars (RSI, MACD, ATR, Bollinger, OBV, liquidity, beta)",
            _ta(),
            history=252,
            mode="bars",
            strict=True,
            row_bytes=1500,
        ),
        FeatureSet(
            "base",
            "stocks_minute",
            "intraday returns, realised volatility, VWAP distance and relative volume",
            _base(
                {
                    "ret_1m": "return over 1 minute slot",
                    "ret_5m": "return over 5 minute slots",
                    "ret_15m": "return over 15 minute slots",
                    "ret_30m": "return over 30 minute slots",
                    "rv_30m": "realised volatility of 1-minute returns over 30 slots",
                    "vwap_dist": "close over the session's running VWAP, minus 1",
                    "volume_rel_20d": "volume over the mean volume of the same slot in 20 sessions",
                }
            ),
        ),
    ]
    found: dict[str, dict[str, FeatureSet]] = {}
    for s in sets:
        found.setdefault(s.data_type, {})[s.name] = s
    return found


def sets_of(data_type: str) -> dict[str, FeatureSet]:
    """The sets of ``data_type`` (empty when it has none)."""
    return feature_sets().get(data_type, {})


def feature_set(data_type: str, name: str) -> FeatureSet:
    """One set; :class:`ConfigurationError` naming the sets there are."""
    sets = sets_of(data_type)
    if name not in sets:
        known = ", ".join(sets) or "none"
        raise ConfigurationError(f"no feature set {name!r} for {data_type} (sets: {known})")
    return sets[name]


def set_of_column(data_type: str, column: str) -> FeatureSet | None:
    """The set whose table holds feature ``column`` (``None``: not a feature of ``data_type``)."""
    for s in sets_of(data_type).values():
        if column in s.names:
            return s
    return None
