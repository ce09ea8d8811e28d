"""Layered loading: precedence, unknown keys, bad values naming their source, credentials, redaction."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

import quantmini.config as config_pkg
from quantmini import ConfigurationError
from quantmini.config import (
    SETTINGS_KEYS,
    Settings,
    config_paths,
    load_config,
    load_settings,
    redacted_settings,
    redacted_values,
)

SECRET = "s3cr3t-VALUE-that-must-never-show"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return tmp_path / "cfg"


def test_all_lists_exactly_the_public_names() -> None:
    # The package imports its names on first use: dir() lists them, getattr() loads them.
    public = {
        name
        for name in dir(config_pkg)
        if not name.startswith("_") and not isinstance(getattr(config_pkg, name), types.ModuleType)
    }
    assert set(config_pkg.__all__) == public
    assert len(config_pkg.__all__) == len(public)


def test_defaults_when_nothing_is_configured(cfg: Path) -> None:
    loaded = load_config(environ={}, config_dir=cfg)
    assert loaded.settings == Settings()
    assert {o.kind for o in loaded.origins.values()} == {"default"}
    assert set(loaded.origins) == set(SETTINGS_KEYS)


def test_each_layer_beats_the_one_below(cfg: Path) -> None:
    # pipeline.mode is set in all four layers, workers in three, batch_sessions in two, memory in one.
    write(
        cfg / "profile.toml", "[pipeline]\nmode='batch'\nworkers=3\nbatch_sessions=7\nmemory_budget_gb=9.5\n"
    )
    write(cfg / "config.toml", "[pipeline]\nmode='parallel'\nworkers=4\nbatch_sessions=8\n")
    environ = {"PIPELINE_MODE": "batch", "QUANTMINI_PIPELINE_WORKERS": "5"}
    loaded = load_config({"pipeline.mode": "streaming"}, environ=environ, config_dir=cfg)
    p = loaded.settings.pipeline
    assert (p.mode, p.workers, p.batch_sessions, p.memory_budget_gb) == ("streaming", 5, 8, 9.5)
    assert loaded.origin("pipeline.mode").kind == "cli"
    assert loaded.origin("pipeline.workers").describe() == "env QUANTMINI_PIPELINE_WORKERS"
    assert loaded.origin("pipeline.batch_sessions").describe() == f"file {cfg / 'config.toml'}"
    assert loaded.origin("pipeline.memory_budget_gb").describe() == f"profile {cfg / 'profile.toml'}"
    assert loaded.origin("s3.bucket").kind == "default"


def test_env_beats_file_and_cli_beats_env(cfg: Path) -> None:
    write(cfg / "config.toml", "data_root = '/from/file'\n")
    assert load_settings(environ={}, config_dir=cfg).data_root == Path("/from/file")
    env = {"DATA_ROOT": "/from/env"}
    assert load_settings(environ=env, config_dir=cfg).data_root == Path("/from/env")
    assert load_settings({"data_root": Path("/cli")}, environ=env, config_dir=cfg).data_root == Path("/cli")


def test_none_overrides_are_ignored(cfg: Path) -> None:
    settings = load_settings(
        {"data_root": None, "pipeline.mode": None, "source.dir": None},
        environ={"PIPELINE_MODE": "batch"},
        config_dir=cfg,
    )
    assert settings.pipeline.mode == "batch"
    assert settings.source.dir is None


def test_quantmini_name_wins_over_conventional_alias(cfg: Path) -> None:
    env = {"DATA_ROOT": "/generic", "QUANTMINI_DATA_ROOT": "/specific"}
    loaded = load_config(environ=env, config_dir=cfg)
    assert loaded.settings.data_root == Path("/specific")
    assert loaded.origin("data_root").detail == "QUANTMINI_DATA_ROOT"


@pytest.mark.parametrize(
    ("name", "value", "key", "expected"),
    [
        ("POLYGON_S3_ENDPOINT", "http://127.0.0.1:9000", "s3.endpoint", "http://127.0.0.1:9000"),
        ("POLYGON_S3_BUCKET", "mirror", "s3.bucket", "mirror"),
        ("POLYGON_API_BASE_URL", "http://localhost:8080", "api.base_url", "http://localhost:8080"),
        ("QUANTMINI_SOURCE_DIR", "/mirror", "source.dir", Path("/mirror")),
        ("QUANTMINI_S3_CONCURRENCY", "16", "s3.concurrency", 16),
        ("QUANTMINI_S3_PATH_STYLE", "false", "s3.path_style", False),
        ("QUANTMINI_API_REQUESTS_PER_MINUTE", "100", "api.requests_per_minute", 100.0),
        ("QUANTMINI_PIPELINE_MEMORY_BUDGET_GB", "2.5", "pipeline.memory_budget_gb", 2.5),
    ],
)
def test_environment_variables(cfg: Path, name: str, value: str, key: str, expected: object) -> None:
    loaded = load_config(environ={name: value}, config_dir=cfg)
    section, _, field = key.rpartition(".")
    assert getattr(getattr(loaded.settings, section), field) == expected
    assert loaded.origin(key).describe() == f"env {name}"


def test_empty_environment_variable_counts_as_unset(cfg: Path) -> None:
    write(cfg / "config.toml", "[pipeline]\nmode = 'batch'\n")
    assert load_settings(environ={"PIPELINE_MODE": ""}, config_dir=cfg).pipeline.mode == "batch"


def test_paths_expand_the_home_directory(cfg: Path) -> None:
    settings = load_settings({"source.dir": "~/mirror"}, environ={}, config_dir=cfg)
    assert settings.source.dir == Path("~/mirror").expanduser()


# --- config directory -------------------------------------------------------------------------------


def test_config_dir_resolution(tmp_path: Path) -> None:
    assert config_paths({"QUANTMINI_CONFIG_DIR": str(tmp_path / "a")}).config_dir == tmp_path / "a"
    xdg = config_paths({"XDG_CONFIG_HOME": str(tmp_path / "x")})
    assert xdg.config_file == tmp_path / "x" / "quantmini" / "config.toml"
    home = config_paths({"HOME": str(tmp_path / "h")})
    assert home.config_dir == tmp_path / "h" / ".config" / "quantmini"
    assert home.credentials_file == home.config_dir / "credentials.toml"
    assert config_paths({"QUANTMINI_CONFIG_DIR": "/ignored"}, tmp_path / "arg").config_dir == tmp_path / "arg"


def test_config_dir_from_environment_is_used(tmp_path: Path) -> None:
    write(tmp_path / "c" / "config.toml", "[s3]\nbucket = 'mine'\n")
    settings = load_settings(environ={"QUANTMINI_CONFIG_DIR": str(tmp_path / "c")})
    assert settings.s3.bucket == "mine"


# --- unknown keys --------------------------------------------------------------------------------------


def test_unknown_key_in_file_names_key_and_file(cfg: Path) -> None:
    path = write(cfg / "config.toml", "[pipline]\nmode = 'batch'\n")
    with pytest.raises(ConfigurationError) as err:
        load_settings(environ={}, config_dir=cfg)
    assert str(err.value) == f"unknown key 'pipline.mode' in {path} (did you mean 'pipeline.mode'?)"


@pytest.mark.parametrize(
    "text", ["[pipeline]\nmod = 'batch'\n", "data_rot = 'x'\n", "[s3.extra]\nx = 1\n", "pipeline = 3\n"]
)
def test_unknown_or_misshaped_keys_in_file(cfg: Path, text: str) -> None:
    path = write(cfg / "config.toml", text)
    with pytest.raises(ConfigurationError, match=re.escape(str(path))):
        load_settings(environ={}, config_dir=cfg)


def test_unknown_key_in_profile_names_profile(cfg: Path) -> None:
    path = write(cfg / "profile.toml", "[pipeline]\nturbo = true\n")
    with pytest.raises(ConfigurationError, match=re.escape(f"unknown key 'pipeline.turbo' in {path}")):
        load_settings(environ={}, config_dir=cfg)


def test_unknown_quantmini_variable_is_an_error(cfg: Path) -> None:
    with pytest.raises(ConfigurationError) as err:
        load_settings(environ={"QUANTMINI_PIPELINE_MOD": "batch"}, config_dir=cfg)
    assert "QUANTMINI_PIPELINE_MOD" in str(err.value)
    assert "QUANTMINI_PIPELINE_MODE" in str(err.value)


def test_reserved_quantmini_variables_are_accepted(cfg: Path, tmp_path: Path) -> None:
    creds = write(tmp_path / "creds.toml", "")
    env = {"QUANTMINI_CONFIG_DIR": str(cfg), "QUANTMINI_CREDENTIALS_FILE": str(creds)}
    assert load_settings(environ=env) == Settings()


def test_unknown_override_key(cfg: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"unknown key 'pipeline\.workrs' from the command line"):
        load_settings({"pipeline.workrs": 3}, environ={}, config_dir=cfg)


# --- bad values ------------------------------------------------------------------------------------------


def test_bad_env_value_names_variable(cfg: Path) -> None:
    with pytest.raises(ConfigurationError) as err:
        load_settings(environ={"PIPELINE_MODE": "fast"}, config_dir=cfg)
    assert str(err.value) == (
        "pipeline.mode: 'fast' is not one of streaming, batch, parallel (from env PIPELINE_MODE)"
    )


def test_bad_file_value_names_file(cfg: Path) -> None:
    path = write(cfg / "config.toml", "[pipeline]\nworkers = 0\n")
    with pytest.raises(ConfigurationError) as err:
        load_settings(environ={}, config_dir=cfg)
    assert str(err.value) == f"pipeline.workers: 0 is below the minimum 1 (in {path})"


def test_bad_value_in_lower_layer_is_reported_even_if_overridden(cfg: Path) -> None:
    write(cfg / "config.toml", "[s3]\nconcurrency = 'many'\n")
    with pytest.raises(ConfigurationError, match=r"s3\.concurrency: 'many' is not a whole number"):
        load_settings(environ={"QUANTMINI_S3_CONCURRENCY": "8"}, config_dir=cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pipeline.workers": 999}, "pipeline.workers: 999 is above the maximum 256 (from the command line)"),
        ({"pipeline.memory_budget_gb": 0}, "pipeline.memory_budget_gb: 0 must be greater than 0"),
        ({"s3.path_style": "maybe"}, "s3.path_style: 'maybe' is not a boolean (use true or false)"),
        ({"api.requests_per_minute": "x"}, "api.requests_per_minute: 'x' is not a number"),
        ({"data_root": 5}, "data_root: 5 is not a path"),
    ],
)
def test_bad_override_values(cfg: Path, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        load_settings(overrides, environ={}, config_dir=cfg)
    assert str(err.value).startswith(message)


def test_malformed_toml_names_file_and_line(cfg: Path) -> None:
    path = write(cfg / "config.toml", "[pipeline]\nmode = 'batch'\nworkers = = 3\n")
    with pytest.raises(ConfigurationError) as err:
        load_settings(environ={}, config_dir=cfg)
    assert str(err.value).startswith(f"cannot parse {path}: ")
    assert "line 3" in str(err.value)


def test_non_utf8_file(cfg: Path) -> None:
    (cfg).mkdir()
    (cfg / "config.toml").write_bytes(b"data_root = '\xff'\n")
    with pytest.raises(ConfigurationError, match="not UTF-8"):
        load_settings(environ={}, config_dir=cfg)


# --- credentials -----------------------------------------------------------------------------------------


def test_credentials_from_environment(cfg: Path) -> None:
    env = {
        "POLYGON_S3_ACCESS_KEY_ID": "AKID",
        "POLYGON_S3_SECRET_ACCESS_KEY": SECRET,
        "POLYGON_API_KEY": "api-" + SECRET,
    }
    creds = load_settings(environ=env, config_dir=cfg).credentials
    assert creds.s3_access_key_id is not None
    assert creds.s3_access_key_id.get_secret_value() == "AKID"
    assert creds.s3_secret_access_key is not None
    assert creds.s3_secret_access_key.get_secret_value() == SECRET
    assert creds.api_key is not None
    assert creds.api_key.get_secret_value() == "api-" + SECRET


@pytest.mark.parametrize("section", ["", "[credentials]\n"])
def test_credentials_file(cfg: Path, section: str) -> None:
    path = write(cfg / "credentials.toml", f"{section}api_key = '{SECRET}'\ns3_access_key_id = 'AKID'\n")
    loaded = load_config(environ={}, config_dir=cfg)
    assert loaded.settings.credentials.api_key is not None
    assert loaded.settings.credentials.api_key.get_secret_value() == SECRET
    assert loaded.origin("credentials.api_key").describe() == f"file {path}"


def test_environment_beats_credentials_file(cfg: Path) -> None:
    write(cfg / "credentials.toml", "api_key = 'from-file'\n")
    loaded = load_config(environ={"POLYGON_API_KEY": "from-env"}, config_dir=cfg)
    assert loaded.settings.credentials.api_key is not None
    assert loaded.settings.credentials.api_key.get_secret_value() == "from-env"
    assert loaded.origin("credentials.api_key").describe() == "env POLYGON_API_KEY"


def test_credentials_file_location_from_environment(cfg: Path, tmp_path: Path) -> None:
    creds = write(tmp_path / "elsewhere" / "secrets.toml", "[credentials]\napi_key = 'k'\n")
    settings = load_settings(environ={"QUANTMINI_CREDENTIALS_FILE": str(creds)}, config_dir=cfg)
    assert settings.credentials.api_key is not None


def test_named_credentials_file_must_exist(cfg: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigurationError, match=re.escape(f"QUANTMINI_CREDENTIALS_FILE names {missing}")):
        load_settings(environ={"QUANTMINI_CREDENTIALS_FILE": str(missing)}, config_dir=cfg)


def test_unknown_key_in_credentials_file(cfg: Path) -> None:
    path = write(cfg / "credentials.toml", f"api_kee = '{SECRET}'\n")
    with pytest.raises(ConfigurationError) as err:
        load_settings(environ={}, config_dir=cfg)
    assert f"unknown key 'api_kee' in {path}" in str(err.value)
    assert SECRET not in str(err.value)


def test_bad_secret_value_is_not_echoed(cfg: Path) -> None:
    write(cfg / "credentials.toml", "api_key = 12345678\n")
    with pytest.raises(ConfigurationError) as err:
        load_settings(environ={}, config_dir=cfg)
    assert "credentials.api_key: the value is not a string" in str(err.value)
    assert "12345678" not in str(err.value)


@pytest.mark.parametrize(
    "text",
    [
        f"[credentials]\napi_key = '{SECRET}'\n",
        f"api_key = '{SECRET}'\n",
        f"[s3]\nsecret_access_key = '{SECRET}'\n",
    ],
)
def test_secret_in_config_file_is_refused_with_directions(cfg: Path, text: str) -> None:
    path = write(cfg / "config.toml", text)
    with pytest.raises(ConfigurationError) as err:
        load_settings(environ={}, config_dir=cfg)
    message = str(err.value)
    assert str(path) in message
    assert "environment" in message
    assert "credentials" in message
    assert SECRET not in message


def test_secret_override_is_refused(cfg: Path) -> None:
    with pytest.raises(ConfigurationError) as err:
        load_settings({"credentials.api_key": SECRET}, environ={}, config_dir=cfg)
    assert "POLYGON_API_KEY" in str(err.value)
    assert SECRET not in str(err.value)


# --- redaction -------------------------------------------------------------------------------------------


def test_repr_and_str_never_reveal_secrets(cfg: Path) -> None:
    env = {"POLYGON_API_KEY": SECRET, "POLYGON_S3_SECRET_ACCESS_KEY": SECRET}
    loaded = load_config(environ=env, config_dir=cfg)
    for text in (repr(loaded.settings), str(loaded.settings), repr(loaded), str(loaded.settings.credentials)):
        assert SECRET not in text


def test_redacted_values(cfg: Path) -> None:
    settings = load_settings(environ={"POLYGON_API_KEY": SECRET}, config_dir=cfg)
    flat = redacted_values(settings)
    assert list(flat) == list(SETTINGS_KEYS)
    assert flat["credentials.api_key"] == "***"
    assert flat["credentials.s3_access_key_id"] is None
    assert flat["data_root"] == "data"
    nested = redacted_settings(settings)
    assert nested["credentials"] == {"s3_access_key_id": None, "s3_secret_access_key": None, "api_key": "***"}
    assert nested["pipeline"]["mode"] == "streaming"
    assert SECRET not in repr(nested)
