"""The code and the tests read nothing outside the repository: a clone alone is enough to run everything.

A static scan of every Python file under ``src/``, ``tests/`` and ``benchmarks/``: ``__file__``-relative
paths (``.parents[n]``, ``.parent.parent…``) must stay inside the repository, and no string may start with
a parent-directory step (``../``). A bare ``".."`` is allowed: the code compares symbols with it.
Fixture names given to :func:`~tests.support.paths.rest_fixture` must exist in the repository's own
fixtures.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT, REST_FIXTURES

SCANNED = ("src", "tests", "benchmarks")
#: A string that starts with a parent-directory step.
OUTSIDE = re.compile(r"^\.\.[/\\]")


def python_files() -> list[Path]:
    return sorted(p for top in SCANNED for p in (REPO_ROOT / top).rglob("*.py") if ".venv" not in p.parts)


def mentions_file(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "__file__" for n in ast.walk(node))


def climbs(tree: ast.AST) -> Iterator[tuple[int, int]]:
    """(line, levels above the file's folder) of each ``__file__`` ``.parents[n]`` / ``.parent`` chain."""
    inner_links: set[int] = set()  # ast.walk goes outside in: a chain's inner links are not chains
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "parents"
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, int)
            and mentions_file(node.value)
        ):
            yield node.lineno, node.slice.value
        if isinstance(node, ast.Attribute) and node.attr == "parent" and id(node) not in inner_links:
            depth, inner = 0, node
            while isinstance(inner, ast.Attribute) and inner.attr == "parent":
                inner_links.add(id(inner))
                depth, inner = depth + 1, inner.value
            if mentions_file(inner):
                yield node.lineno, depth - 1


def escapes(path: Path, level: int) -> bool:
    parents = path.resolve().parents
    return level >= len(parents) or not parents[level].is_relative_to(REPO_ROOT)


@pytest.mark.parametrize("path", python_files(), ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_no_path_leaves_the_repository(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    climbing = [line for line, level in climbs(tree) if escapes(path, level)]
    assert climbing == [], f"{path}: __file__-relative path above the repository at lines {climbing}"
    strings = [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and OUTSIDE.search(node.value)
    ]
    assert strings == [], f"{path}: strings naming a folder outside the repository: {strings}"


def test_the_scan_catches_what_it_is_for(tmp_path: Path) -> None:
    # The checks above on known-bad snippets (placed as if they were tests/support/paths.py).
    fake = REPO_ROOT / "tests" / "support" / "paths.py"
    bad = ast.parse('ROOT = Path(__file__).resolve().parents[3] / "fixtures"')
    assert [escapes(fake, level) for _, level in climbs(bad)] == [True]
    chained = ast.parse("ROOT = Path(__file__).parent.parent.parent.parent")
    assert [escapes(fake, level) for _, level in climbs(chained)] == [True]
    inside = ast.parse("ROOT = Path(__file__).parent.parent")
    assert [escapes(fake, level) for _, level in climbs(inside)] == [False]
    up = "".join([".", "./"])  # spelled apart so the scan passes here
    assert OUTSIDE.search(f"{up}fixtures")
    assert not OUTSIDE.search("fixtures/a..b")
    assert not OUTSIDE.search("..")


def test_every_named_rest_fixture_is_in_the_repository() -> None:
    assert REST_FIXTURES.is_relative_to(REPO_ROOT)
    named = {
        node.args[0].value
        for path in python_files()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("rest_fixture", "fixture", "_fixture")
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    }
    assert named, "the scan found no fixture names: the call pattern changed"
    missing = sorted(name for name in named if not (REST_FIXTURES / name).is_file())
    assert missing == []
