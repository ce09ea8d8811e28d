"""The frozen settings model. Every key is declared here; unknown keys are rejected.

Precedence (lowest first): defaults < system profile < user config file < environment < command line.
Loading and merging live in :mod:`quantmini.config.loader`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from quantmini.core.adjustment_names import ADJUSTMENTS, Adjustment

PipelineMode = Literal["streaming", "batch", "parallel"]
ExecutorName = Literal["local", "dask"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


def _list_of_names(value: object) -> object:
    """A list setting given as a comma-separated string (environment, ``config set``), a JSON list or a
    list."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class PipelineSettings(_Frozen):
    """How stages run."""

    mode: PipelineMode = Field(default="streaming", description="streaming | batch | parallel")
    workers: int = Field(default=2, ge=1, le=256, description="processes used by parallel mode")
    batch_sessions: int = Field(default=5, ge=1, le=250, description="sessions per step in batch mode")
    memory_budget_gb: float = Field(default=4.0, gt=0, description="peak memory target of one stage")
    executor: ExecutorName = Field(
        default="local", description="local (the mode above) | dask (tasks on a Dask cluster)"
    )
    scheduler: str | None = Field(
        default=None, description="Dask scheduler address; unset: a LocalCluster is started for the run"
    )
    data_types: tuple[str, ...] = Field(
        default=("stocks_daily", "stocks_minute", "options_daily", "options_minute"),
        description="data types `pipeline daily` keeps current",
    )
    daily_lookback_sessions: int = Field(
        default=5,
        ge=0,
        le=250,
        description="complete sessions `pipeline daily` lists again (republished or late vendor files)",
    )

    @field_validator("data_types", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        return _list_of_names(value)

    @field_validator("data_types")
    @classmethod
    def _known_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from quantmini.datasets import DATASETS

        unknown = [name for name in value if name not in DATASETS]
        if unknown:
            raise ValueError(f"unknown data type(s) {', '.join(unknown)} (choose from {', '.join(DATASETS)})")
        return tuple(dict.fromkeys(value))


class GoldSettings(_Frozen):
    """How the Qlib roots are laid out."""

    qlib_minute_session: Literal["regular", "extended"] = Field(
        default="regular",
        description="hours of the 1min Qlib root: regular (09:30 to close) | extended (04:00 to close+4h)",
    )
    adjustment: tuple[Adjustment, ...] = Field(
        default=("total_return",),
        description="Qlib roots built per data type, one per adjustment: total_return (splits and dividends, "
        'gold/qlib) | split (splits only, gold/qlib_split), e.g. ["total_return", "split"]',
    )

    @field_validator("adjustment", mode="before")
    @classmethod
    def _adjustments(cls, value: object) -> object:
        """A list of known adjustments, at least one, each once (order kept)."""
        names = _list_of_names(value)
        if not isinstance(names, list | tuple):
            return names
        unknown = [repr(n) for n in names if n not in ADJUSTMENTS]
        if unknown:
            raise ValueError(
                f"unknown adjustment {', '.join(unknown)} (choose from {', '.join(ADJUSTMENTS)})"
            )
        if not names:
            raise ValueError(f"choose at least one adjustment ({', '.join(ADJUSTMENTS)})")
        return tuple(dict.fromkeys(names))


class OptionsSettings(_Frozen):
    """Pricing inputs of option implied volatility and greeks (silver)."""

    risk_free_rate: float = Field(
        default=0.04,
        ge=-0.05,
        le=0.5,
        description="annual continuously compounded risk-free rate, one constant for every session",
    )
    dividend_yield: float = Field(
        default=0.0, ge=0, le=0.5, description="annual continuous dividend yield of every underlying"
    )
    dividend_yields: dict[str, float] = Field(
        default_factory=dict,
        description="per-underlying dividend yields overriding dividend_yield, e.g. {SPX = 0.013}",
    )
    minute_iv: bool = Field(
        default=False, description="implied volatility and greeks on option minute bars too (slower)"
    )


class FeatureSettings(_Frozen):
    """Feature sets computed into silver, per data type (see ``quantmini features list``)."""

    stocks_daily: tuple[str, ...] = Field(
        default=("base",), description='feature sets of daily stock bars, e.g. ["base", "alpha158", "ta"]'
    )
    stocks_minute: tuple[str, ...] = Field(default=("base",), description="feature sets of minute stock bars")
    market_proxy: str = Field(
        default="SPY", description="ticker whose returns the ta set's market beta and correlation use"
    )

    @field_validator("stocks_daily", "stocks_minute", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        """A comma-separated string (environment, ``config set``) or a list."""
        return _list_of_names(value)

    @model_validator(mode="after")
    def _known(self) -> FeatureSettings:
        from quantmini.features.library import sets_of

        for data_type in ("stocks_daily", "stocks_minute"):
            known = sets_of(data_type)
            unknown = [name for name in getattr(self, data_type) if name not in known]
            if unknown:
                raise ValueError(
                    f"unknown feature set(s) {', '.join(unknown)} for {data_type} (sets: {', '.join(known)})"
                )
        return self

    def of(self, data_type: str) -> tuple[str, ...]:
        """The sets configured for ``data_type`` (``base`` always included)."""
        configured = getattr(self, data_type, ())
        return ("base", *(name for name in configured if name != "base"))


class UniverseSettings(_Frozen):
    """Point-in-time universes of daily stocks (the silver universes table, the Qlib market files)."""

    liquidity_sizes: tuple[int, ...] = Field(
        default=(500, 1000, 3000),
        description="N of each topN universe: the N tickers of highest 20-session median dollar volume",
    )

    @field_validator("liquidity_sizes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _list_of_names(value)

    @field_validator("liquidity_sizes")
    @classmethod
    def _positive_and_distinct(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(n < 1 for n in value):
            raise ValueError(f"universe sizes must be at least 1, got {list(value)}")
        if len(set(value)) != len(value):
            raise ValueError(f"universe sizes must be distinct, got {list(value)}")
        return tuple(sorted(value))


class QuerySettings(_Frozen):
    """The query layer (``data query``, ``quantmini.query``)."""

    cache_mb: float = Field(
        default=256.0,
        ge=0,
        description="size of the result cache under <data_root>/_cache/query (shared by processes); 0: off",
    )


class MonitoringSettings(_Frozen):
    """What runs record beyond their run record (``<data_root>/_runs/``)."""

    profiling: bool = Field(
        default=False,
        description="profile every stage (cProfile files beside the run record) and keep "
        "logs/performance/performance_metrics.json",
    )
    performance_runs: int = Field(
        default=50, ge=1, le=10_000, description="runs kept in logs/performance/performance_metrics.json"
    )


class SourceSettings(_Frozen):
    """Where flat files come from when not from S3."""

    dir: Path | None = Field(
        default=None, description="local mirror of the vendor bucket (contains flatfiles/)"
    )


class S3Settings(_Frozen):
    """The vendor's S3-compatible flat-file endpoint."""

    endpoint: str = Field(default="https://files.massive.com", description="S3 endpoint URL")
    bucket: str = Field(default="flatfiles", description="bucket name")
    region: str = Field(default="us-east-1", description="SigV4 signing region")
    path_style: bool = Field(default=True, description="path-style addressing (required by the vendor)")
    concurrency: int = Field(default=4, ge=1, le=64, description="parallel downloads")


class ApiSettings(_Frozen):
    """The vendor's REST API."""

    base_url: str = Field(default="https://api.massive.com", description="REST base URL")
    requests_per_minute: float = Field(default=5.0, gt=0, description="pacing (free tier allows 5/min)")


class Credentials(_Frozen):
    """Secrets: only from the environment or the git-ignored credentials file; never printed."""

    s3_access_key_id: SecretStr | None = Field(default=None, description="S3 flat-file access key id")
    s3_secret_access_key: SecretStr | None = Field(default=None, description="S3 flat-file secret access key")
    api_key: SecretStr | None = Field(default=None, description="REST API key")


class Settings(_Frozen):
    """All of quantmini's configuration."""

    data_root: Path = Field(default=Path("data"), description="root directory of the lake")
    pipeline: PipelineSettings = PipelineSettings()
    gold: GoldSettings = GoldSettings()
    options: OptionsSettings = OptionsSettings()
    features: FeatureSettings = FeatureSettings()
    universes: UniverseSettings = UniverseSettings()
    query: QuerySettings = QuerySettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    source: SourceSettings = SourceSettings()
    s3: S3Settings = S3Settings()
    api: ApiSettings = ApiSettings()
    credentials: Credentials = Credentials()
