"""System profiler: pure recommendation thresholds with hand-chosen facts, and the measuring helpers."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from quantmini.config import SystemFacts, detect_facts, load_config, recommend
from quantmini.config.profile import (
    existing_ancestor,
    parse_cpu_max,
    parse_meminfo,
    render_profile,
    write_profile,
)


def facts(memory_gb: float, cores: int = 8, available_gb: float | None = None) -> SystemFacts:
    return SystemFacts(
        cpu_count=cores,
        memory_total_gb=memory_gb,
        memory_available_gb=memory_gb if available_gb is None else available_gb,
        disk_free_gb=100.0,
        disk_path=Path("/"),
    )


@pytest.mark.parametrize(
    ("memory_gb", "mode"),
    [
        (8, "streaming"),
        (31.9, "streaming"),
        (32, "batch"),
        (63.9, "batch"),
        (64, "parallel"),
        (512, "parallel"),
    ],
)
def test_mode_thresholds(memory_gb: float, mode: str) -> None:
    assert recommend(facts(memory_gb))["pipeline.mode"] == mode


@pytest.mark.parametrize(
    ("memory_gb", "available_gb", "budget"),
    [
        (8.0, 8.0, 4.0),  # half of memory
        (31.9, 31.9, 15.5),  # 15.95 rounded down to a 0.5 GB step
        (64.0, 64.0, 32.0),
        (64.0, 20.0, 15.0),  # at most three quarters of what is available now
        (0.5, 0.5, 0.5),  # never below 0.5 GB
    ],
)
def test_memory_budget(memory_gb: float, available_gb: float, budget: float) -> None:
    assert recommend(facts(memory_gb, available_gb=available_gb))["pipeline.memory_budget_gb"] == budget


@pytest.mark.parametrize(
    ("cores", "memory_gb", "workers"),
    [
        (1, 64, 1),  # one core: one worker
        (2, 64, 1),  # one core left for the parent
        (16, 64, 15),
        (16, 8, 4),  # budget 4 GB: at least 1 GB per worker
        (1024, 4096, 256),  # the model's upper bound
    ],
)
def test_workers(cores: int, memory_gb: float, workers: int) -> None:
    assert recommend(facts(memory_gb, cores=cores))["pipeline.workers"] == workers


def test_recommendation_is_valid_for_the_model(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "profile.toml"
    written = write_profile(path, facts(48, cores=12))
    assert written == {"pipeline.mode": "batch", "pipeline.workers": 11, "pipeline.memory_budget_gb": 24.0}
    loaded = load_config(environ={}, config_dir=tmp_path / "cfg")
    assert loaded.settings.pipeline.mode == "batch"
    assert loaded.settings.pipeline.workers == 11
    assert loaded.origin("pipeline.workers").kind == "profile"


def test_profile_file_keeps_facts_as_comments() -> None:
    text = render_profile(facts(48, cores=12), recommend(facts(48, cores=12)))
    assert "12 usable cores" in text
    assert "48.0 GB memory" in text
    assert tomllib.loads(text) == {"pipeline": {"mode": "batch", "workers": 11, "memory_budget_gb": 24.0}}


def test_profile_never_overrides_the_user_file(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "config.toml").write_text("[pipeline]\nmode = 'streaming'\n")
    write_profile(cfg / "profile.toml", facts(128, cores=32))
    loaded = load_config(environ={}, config_dir=cfg)
    assert loaded.settings.pipeline.mode == "streaming"
    assert loaded.origin("pipeline.mode").kind == "file"
    assert loaded.origin("pipeline.workers").kind == "profile"


def test_parse_meminfo() -> None:
    text = "MemTotal:       32791612 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\n"
    assert parse_meminfo(text) == (32791612 * 1024, 20000000 * 1024)
    assert parse_meminfo("MemTotal: 1000 kB\nMemFree: 10 kB\n") == (1024000, 10240)
    assert parse_meminfo("nothing here\n") is None


@pytest.mark.parametrize(
    ("text", "cores"), [("max 100000\n", None), ("200000 100000\n", 2.0), ("50000 100000", 0.5), ("x", None)]
)
def test_parse_cpu_max(text: str, cores: float | None) -> None:
    assert parse_cpu_max(text) == cores


def test_existing_ancestor(tmp_path: Path) -> None:
    assert existing_ancestor(tmp_path / "a" / "b" / "c") == tmp_path
    assert existing_ancestor(tmp_path) == tmp_path


def test_detect_facts_on_this_machine(tmp_path: Path) -> None:
    measured = detect_facts(tmp_path / "lake" / "not-yet")
    assert measured.cpu_count >= 1
    assert 0 < measured.memory_available_gb <= measured.memory_total_gb
    assert measured.disk_free_gb >= 0
    assert measured.disk_path == tmp_path
