"""config.toml: the documented template and line edits that keep the user's other keys and comments."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from quantmini import ConfigurationError
from quantmini.config import SETTINGS_KEYS, Settings, config_paths, load_config
from quantmini.config.config_file import (
    remove_line,
    render_template,
    set_config_value,
    set_line,
    unset_config_value,
)


def test_template_is_valid_toml_that_changes_nothing(tmp_path: Path) -> None:
    text = render_template()
    assert tomllib.loads(text) == {
        "pipeline": {},
        "gold": {},
        "options": {},
        "features": {},
        "universes": {},
        "query": {},
        "monitoring": {},
        "source": {},
        "s3": {},
        "api": {},
    }
    (tmp_path / "config.toml").write_text(text)
    assert load_config(environ={}, config_dir=tmp_path).settings == Settings()


def test_template_lists_every_public_key_with_default_and_description() -> None:
    text = render_template()
    for spec in SETTINGS_KEYS.values():
        if spec.secret:
            assert f"{spec.name} =" not in text
            continue
        assert f"# {spec.name} =" in text
        assert spec.description in text
        for env in spec.env_names:
            assert env in text
    assert '# mode = "streaming"' in text
    assert "# workers = 2" in text
    assert "POLYGON_API_KEY" in text


def test_set_line_uncomments_next_to_the_commented_default() -> None:
    text = render_template()
    edited = set_line(text, SETTINGS_KEYS["pipeline.mode"], 'mode = "batch"')
    assert '# mode = "streaming"\nmode = "batch"\n' in edited
    assert tomllib.loads(edited)["pipeline"] == {"mode": "batch"}


def test_set_line_replaces_an_active_line_and_keeps_comments() -> None:
    text = "# my notes\ndata_root = 'old'  # lake\n\n[pipeline]\nworkers = 3 # mine\n"
    edited = set_line(text, SETTINGS_KEYS["pipeline.workers"], "workers = 6")
    assert edited == "# my notes\ndata_root = 'old'  # lake\n\n[pipeline]\nworkers = 6\n"
    edited = set_line(text, SETTINGS_KEYS["data_root"], 'data_root = "/new"')
    assert tomllib.loads(edited) == {"data_root": "/new", "pipeline": {"workers": 3}}


def test_set_line_adds_sections_and_top_level_keys() -> None:
    text = "[pipeline]\nworkers = 3\n"
    edited = set_line(text, SETTINGS_KEYS["s3.bucket"], 'bucket = "b"')
    edited = set_line(edited, SETTINGS_KEYS["data_root"], 'data_root = "/d"')
    edited = set_line(edited, SETTINGS_KEYS["pipeline.mode"], 'mode = "batch"')
    assert tomllib.loads(edited) == {
        "data_root": "/d",
        "pipeline": {"workers": 3, "mode": "batch"},
        "s3": {"bucket": "b"},
    }
    assert set_line("", SETTINGS_KEYS["s3.bucket"], 'bucket = "b"') == '[s3]\nbucket = "b"\n'


def test_remove_line() -> None:
    text = "[pipeline]\nmode = 'batch'\nworkers = 3\n[s3]\nworkers = 1\n"
    assert (
        remove_line(text, SETTINGS_KEYS["pipeline.workers"])
        == "[pipeline]\nmode = 'batch'\n[s3]\nworkers = 1\n"
    )


def test_set_round_trip_preserves_other_keys(tmp_path: Path) -> None:
    paths = config_paths({}, tmp_path)
    (tmp_path / "config.toml").write_text("# keep me\n[s3]\nbucket = 'mine'\n")
    assert set_config_value(paths, "pipeline.workers", "8") == 8
    assert set_config_value(paths, "pipeline.memory_budget_gb", "2") == 2.0
    text = (tmp_path / "config.toml").read_text()
    assert "# keep me" in text
    assert tomllib.loads(text) == {
        "s3": {"bucket": "mine"},
        "pipeline": {"workers": 8, "memory_budget_gb": 2.0},
    }
    settings = load_config(environ={}, config_dir=tmp_path).settings
    assert (settings.pipeline.workers, settings.s3.bucket) == (8, "mine")


def test_set_falls_back_to_a_rewrite_when_the_layout_defeats_line_edits(tmp_path: Path) -> None:
    paths = config_paths({}, tmp_path)
    (tmp_path / "config.toml").write_text("pipeline.workers = 3\n")  # dotted key at top level
    set_config_value(paths, "pipeline.workers", "5")
    text = (tmp_path / "config.toml").read_text()
    assert tomllib.loads(text)["pipeline"] == {"workers": 5}
    assert "# quantmini configuration." in text
    assert load_config(environ={}, config_dir=tmp_path).settings.pipeline.workers == 5


def test_set_creates_the_file_from_the_template(tmp_path: Path) -> None:
    paths = config_paths({}, tmp_path / "new")
    set_config_value(paths, "source.dir", "/mirror")
    text = paths.config_file.read_text()
    assert "# quantmini configuration." in text
    assert tomllib.loads(text)["source"] == {"dir": "/mirror"}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("pipeline.mod", "batch", "unknown key 'pipeline.mod'"),
        ("pipeline.mode", "fast", "pipeline.mode: 'fast' is not one of streaming, batch, parallel"),
        ("s3.concurrency", "65", "s3.concurrency: '65' is above the maximum 64"),
        ("credentials.api_key", "k", "secret.*POLYGON_API_KEY"),
    ],
)
def test_set_rejects_bad_keys_and_values_without_writing(
    tmp_path: Path, key: str, value: str, message: str
) -> None:
    paths = config_paths({}, tmp_path)
    with pytest.raises(ConfigurationError, match=message):
        set_config_value(paths, key, value)
    assert not paths.config_file.exists()


def test_set_refuses_to_edit_a_broken_file(tmp_path: Path) -> None:
    paths = config_paths({}, tmp_path)
    paths.config_file.write_text("[pipeline]\nturbo = 1\n")
    with pytest.raises(ConfigurationError, match=r"unknown key 'pipeline\.turbo'"):
        set_config_value(paths, "pipeline.workers", "3")
    assert paths.config_file.read_text() == "[pipeline]\nturbo = 1\n"


def test_unset(tmp_path: Path) -> None:
    paths = config_paths({}, tmp_path)
    set_config_value(paths, "pipeline.mode", "batch")
    assert unset_config_value(paths, "pipeline.mode") is True
    assert unset_config_value(paths, "pipeline.mode") is False
    assert load_config(environ={}, config_dir=tmp_path).settings.pipeline.mode == "streaming"


def test_a_table_valued_key_from_the_file_the_environment_and_config_set(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[options]\ndividend_yields = { SPX = 0.013, "BRK.B" = 0.0 }\n')
    settings = load_config(environ={}, config_dir=tmp_path).settings
    assert settings.options.dividend_yields == {"SPX": 0.013, "BRK.B": 0.0}
    env = {"QUANTMINI_OPTIONS_DIVIDEND_YIELDS": '{"XYZ": 0.02}'}
    assert load_config(environ=env, config_dir=tmp_path).settings.options.dividend_yields == {"XYZ": 0.02}
    with pytest.raises(ConfigurationError, match="QUANTMINI_OPTIONS_DIVIDEND_YIELDS"):
        load_config(environ={"QUANTMINI_OPTIONS_DIVIDEND_YIELDS": "{oops"}, config_dir=tmp_path)
    paths = config_paths(environ={}, config_dir=tmp_path / "set")
    set_config_value(paths, "options.dividend_yields", '{"SPX": 0.01}')
    assert tomllib.loads(paths.config_file.read_text())["options"]["dividend_yields"] == {"SPX": 0.01}
