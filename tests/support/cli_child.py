"""``python -m quantmini ARGS`` in a child process whose output is read as it comes, so a test can wait
for a line (a run waiting for the lake's lock) before it acts."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass

#: Long enough for a cold interpreter on a busy machine; only a guard against hanging, never asserted.
PATIENCE_S = 300


@dataclass
class Finished:
    pid: int
    code: int
    stdout: str
    stderr: str


class Child:
    """``python -m quantmini ARGS`` with its output read as it comes (so a test can wait for a line)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "quantmini", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "250"},
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._err_lines: queue.Queue[str | None] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out, None), daemon=True),
            threading.Thread(
                target=self._read, args=(self.proc.stderr, self.err, self._err_lines), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: object, into: list[str], lines: queue.Queue[str | None] | None) -> None:
        assert hasattr(stream, "readline")
        for line in iter(stream.readline, ""):
            into.append(line)
            if lines is not None:
                lines.put(line.rstrip("\n"))
        if lines is not None:
            lines.put(None)

    def next_stderr_line(self) -> str:
        """The next line the child writes to stderr (fails if it exits first)."""
        line = self._err_lines.get(timeout=PATIENCE_S)
        assert line is not None, f"exited with {self.proc.wait()}: {''.join(self.err)}"
        return line

    def finish(self) -> Finished:
        code = self.proc.wait(timeout=PATIENCE_S)
        for reader in self._readers:
            reader.join(timeout=PATIENCE_S)
        for stream in (self.proc.stdout, self.proc.stderr):
            assert stream is not None
            stream.close()
        return Finished(self.proc.pid, code, "".join(self.out), "".join(self.err))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish()
