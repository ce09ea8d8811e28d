"""A real headless Chromium for tests of HTML output: the rendered DOM, a screenshot, and a PNG decoder
(zlib + struct) to look at its pixels. Chromium missing is a failure that says how to install it (CI's
``.ci/setup`` does), never a skip."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

#: Seconds one Chromium run may take before the test fails.
TIMEOUT_S = 120


def chromium() -> str:
    """Path of the Chromium executable."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "chromium is not installed: the report is tested in a real headless Chromium "
            "(sudo apt-get install chromium; .ci/setup installs it)",
            pytrace=False,
        )
    return found


def _run(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
        page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, timeout=TIMEOUT_S, check=False)
    if done.returncode != 0:
        pytest.fail(f"chromium exited {done.returncode}: {done.stderr.decode(errors='replace')[-2000:]}")
    return done


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM of ``page`` after Chromium loaded and rendered it, serialised."""
    return _run(page, profile, "--dump-dom").stdout.decode("utf-8")


def screenshot(page: Path, png: Path, profile: Path, size: tuple[int, int] = (1280, 2000)) -> bytes:
    """A PNG screenshot of ``page`` (``size``: window width, height)."""
    _run(page, profile, f"--screenshot={png}", f"--window-size={size[0]},{size[1]}")
    return png.read_bytes()


@dataclass
class Element:
    """One element of a parsed DOM: tag, attributes, children and its own text."""

    tag: str
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    own_text: list[str] = field(default_factory=list)

    def iter(self) -> list[Element]:
        """This element and all its descendants, in document order."""
        found = [self]
        for child in self.children:
            found.extend(child.iter())
        return found

    def find(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Descendants with ``tag`` (any when ``None``) whose attributes hold ``attrs`` (``class_`` matches
        one class name)."""
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        found = []
        for element in self.iter():
            if tag is not None and element.tag != tag:
                continue
            if all(
                v in element.attrs.get(k, "").split() if k == "class" else element.attrs.get(k) == v
                for k, v in wanted.items()
            ):
                found.append(element)
        return found

    def by_id(self, ident: str) -> Element:
        """The one descendant with ``id`` ``ident``."""
        found = self.find(id=ident)
        assert len(found) == 1, f"{len(found)} elements with id {ident!r}"
        return found[0]

    def text(self) -> str:
        """All text below this element."""
        return "".join(["".join(self.own_text), *(child.text() for child in self.children)])


_VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "source", "wbr"}


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in _VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].own_text.append(data)


def parse_dom(html: str) -> Element:
    """A tree of :class:`Element` from serialised HTML."""
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


@dataclass(frozen=True)
class Image:
    """Decoded 8-bit PNG pixels: ``rows[y]`` holds ``width * channels`` bytes."""

    width: int
    height: int
    channels: int
    rows: list[bytes]

    def pixel(self, x: int, y: int) -> tuple[int, ...]:
        c = self.channels
        return tuple(self.rows[y][x * c : (x + 1) * c])


def decode_png(data: bytes) -> Image:
    """Decode a non-interlaced 8-bit greyscale, RGB or RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8, f"bit depth {depth}"
    assert interlace == 0, "interlaced"
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        previous = line
    return Image(width, height, channels, rows)
