"""The ``quantmini config`` group, invoked directly with an explicit environment."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from quantmini import ConfigurationError
from quantmini.cli.config_cmd import config
from quantmini.config import SETTINGS_KEYS

SECRET = "s3cr3t-VALUE-that-must-never-show"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str | None]:
    # Explicit, isolated environment: the config dir is a temp dir; the real credentials never leak in.
    cleared: dict[str, str | None] = {
        name: None for spec in SETTINGS_KEYS.values() for name in spec.env_names
    }
    return {
        **cleared,
        "QUANTMINI_CONFIG_DIR": str(tmp_path / "cfg"),
        "QUANTMINI_CREDENTIALS_FILE": None,
        "HOME": str(tmp_path / "home"),
        "POLYGON_API_KEY": SECRET,
        "POLYGON_S3_SECRET_ACCESS_KEY": SECRET,
    }


def run(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner().invoke(config, list(args), env=env)


def ok(env: dict[str, str | None], *args: str) -> str:
    result = run(env, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def error(env: dict[str, str | None], *args: str) -> str:
    result = run(env, *args)
    assert isinstance(result.exception, ConfigurationError), (result.output, result.exception)
    return str(result.exception)


def test_init_writes_template_and_refuses_to_overwrite(env: dict[str, str | None], tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "config.toml"
    assert str(path) in ok(env, "init")
    assert '# mode = "streaming"' in path.read_text()
    path.write_text("[pipeline]\nmode = 'batch'\n")
    message = error(env, "init")
    assert "already exists" in message
    assert "--force" in message
    assert path.read_text() == "[pipeline]\nmode = 'batch'\n"
    ok(env, "init", "--force")
    assert "mode = 'batch'" not in path.read_text()


def test_show_table_names_sources_and_redacts(env: dict[str, str | None]) -> None:
    env = {**env, "PIPELINE_MODE": "batch"}
    ok(env, "set", "s3.bucket", "mine")
    out = ok(env, "show")
    assert SECRET not in out
    assert "***" in out
    assert "env PIPELINE_MODE" in out
    assert "mine" in out
    assert "default" in out


def test_show_json(env: dict[str, str | None], tmp_path: Path) -> None:
    ok(env, "set", "pipeline.workers", "7")
    out = ok(env, "show", "--format", "json")
    assert SECRET not in out
    data = json.loads(out)
    assert data["settings"]["pipeline"]["workers"] == 7
    assert data["settings"]["credentials"]["api_key"] == "***"
    assert data["settings"]["credentials"]["s3_access_key_id"] is None
    assert data["sources"]["pipeline.workers"] == f"file {tmp_path / 'cfg' / 'config.toml'}"
    assert data["sources"]["credentials.api_key"] == "env POLYGON_API_KEY"
    assert data["sources"]["s3.bucket"] == "default"


def test_show_toml_is_valid_and_keeps_secrets_out(env: dict[str, str | None]) -> None:
    out = ok(env, "show", "--format", "toml")
    assert SECRET not in out
    data = tomllib.loads(out)
    assert data["pipeline"]["mode"] == "streaming"
    assert data["credentials"] == {}  # secrets appear only as comments
    assert "# api_key = ***  # env POLYGON_API_KEY" in out


def test_get(env: dict[str, str | None]) -> None:
    assert ok(env, "get", "pipeline.mode") == "streaming\n"
    assert ok(env, "get", "s3.path_style") == "true\n"
    assert ok(env, "get", "source.dir") == "\n"
    assert ok(env, "get", "credentials.api_key") == "***\n"
    assert ok(env, "get", "credentials.s3_access_key_id") == "\n"
    assert "unknown key 'pipeline.mod'" in error(env, "get", "pipeline.mod")


def test_set_round_trip(env: dict[str, str | None], tmp_path: Path) -> None:
    assert "set pipeline.mode = batch" in ok(env, "set", "pipeline.mode", "batch")
    ok(env, "set", "data_root", str(tmp_path / "lake"))
    assert ok(env, "get", "pipeline.mode") == "batch\n"
    assert ok(env, "get", "data_root") == f"{tmp_path / 'lake'}\n"
    data = tomllib.loads((tmp_path / "cfg" / "config.toml").read_text())
    assert data["pipeline"] == {"mode": "batch"}
    ok(env, "unset", "pipeline.mode")
    assert ok(env, "get", "pipeline.mode") == "streaming\n"


def test_lists_print_as_set_takes_them(env: dict[str, str | None], tmp_path: Path) -> None:
    assert ok(env, "get", "features.stocks_daily") == "base\n"
    assert "set features.stocks_daily = base,alpha158,ta" in ok(
        env, "set", "features.stocks_daily", "base,alpha158,ta"
    )
    assert ok(env, "get", "features.stocks_daily") == "base,alpha158,ta\n"
    data = tomllib.loads((tmp_path / "cfg" / "config.toml").read_text())
    assert data["features"] == {"stocks_daily": ["base", "alpha158", "ta"]}


def test_gold_adjustment_is_a_list_of_known_adjustments(env: dict[str, str | None], tmp_path: Path) -> None:
    assert ok(env, "get", "gold.adjustment") == "total_return\n"
    ok(env, "set", "gold.adjustment", "total_return, split")
    assert ok(env, "get", "gold.adjustment") == "total_return,split\n"
    data = tomllib.loads((tmp_path / "cfg" / "config.toml").read_text())
    assert data["gold"] == {"adjustment": ["total_return", "split"]}
    assert error(env, "set", "gold.adjustment", "split,dividends") == (
        "gold.adjustment: 'split,dividends' is invalid: unknown adjustment 'dividends' (choose from "
        "total_return, split) (from `quantmini config set`)"
    )
    assert "choose at least one adjustment" in error(env, "set", "gold.adjustment", "")
    shown = ok({**env, "QUANTMINI_GOLD_ADJUSTMENT": "split"}, "get", "gold.adjustment")
    assert shown == "split\n"


def test_set_notes_an_environment_override(env: dict[str, str | None]) -> None:
    result = CliRunner().invoke(
        config, ["set", "pipeline.mode", "batch"], env={**env, "PIPELINE_MODE": "parallel"}
    )
    assert result.exit_code == 0
    assert "PIPELINE_MODE" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "pipline.mode", "batch"), "unknown key 'pipline.mode'"),
        (("set", "pipeline.mode", "fast"), "'fast' is not one of streaming, batch, parallel"),
        (("set", "pipeline.workers", "-1"), "'-1' is below the minimum 1"),
        (("set", "credentials.api_key", SECRET), "credentials.toml"),
    ],
)
def test_set_rejections(
    env: dict[str, str | None], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    text = error(env, *args)
    assert message in text
    assert SECRET not in text
    assert not (tmp_path / "cfg" / "config.toml").exists()


def test_secret_key_set_points_to_environment(env: dict[str, str | None]) -> None:
    message = error(env, "set", "credentials.s3_secret_access_key", SECRET)
    assert "POLYGON_S3_SECRET_ACCESS_KEY" in message
    assert SECRET not in message


def test_errors_name_the_source(env: dict[str, str | None]) -> None:
    message = error({**env, "PIPELINE_MODE": "fast"}, "show")
    assert (
        message == "pipeline.mode: 'fast' is not one of streaming, batch, parallel (from env PIPELINE_MODE)"
    )
    assert "QUANTMINI_PIPELINE_WORKRS" in error({**env, "QUANTMINI_PIPELINE_WORKRS": "3"}, "get", "data_root")


def test_profile_prints_facts_without_writing(env: dict[str, str | None], tmp_path: Path) -> None:
    out = ok(env, "profile")
    assert "usable CPU cores" in out
    assert "pipeline.mode" in out
    assert not (tmp_path / "cfg" / "profile.toml").exists()


def test_profile_write_never_overrides_user_values(env: dict[str, str | None], tmp_path: Path) -> None:
    # Whatever this machine's recommendation is, the user's choices in config.toml must still win.
    ok(env, "set", "pipeline.mode", "parallel")
    ok(env, "set", "pipeline.workers", "200")
    ok(env, "set", "pipeline.memory_budget_gb", "123.5")
    ok(env, "profile", "--write")
    profile = tomllib.loads((tmp_path / "cfg" / "profile.toml").read_text())
    assert set(profile["pipeline"]) == {"mode", "workers", "memory_budget_gb"}
    data = json.loads(ok(env, "show", "--format", "json"))
    assert data["settings"]["pipeline"]["mode"] == "parallel"
    assert data["settings"]["pipeline"]["workers"] == 200
    assert data["settings"]["pipeline"]["memory_budget_gb"] == 123.5
    assert data["sources"]["pipeline.mode"].startswith("file ")
    ok(env, "unset", "pipeline.workers")
    data = json.loads(ok(env, "show", "--format", "json"))
    assert data["sources"]["pipeline.workers"].startswith("profile ")
    assert data["settings"]["pipeline"]["workers"] == profile["pipeline"]["workers"]
