"""Run a training command as a real subprocess, streaming its output and keeping the tail."""

from __future__ import annotations

import os
import subprocess
from collections import deque
from collections.abc import Callable
from pathlib import Path

TAIL_LINES = 200
MAX_TAIL_LINE = 2000


class _Tail:
    """The last lines of a byte stream, decoded leniently."""

    def __init__(self, lines: int) -> None:
        self.lines: deque[bytes] = deque(maxlen=lines)
        self.partial = b""

    def feed(self, chunk: bytes) -> None:
        *done, self.partial = (self.partial + chunk).split(b"\n")
        self.lines.extend(line[-MAX_TAIL_LINE * 4:] for line in done)
        self.partial = self.partial[-MAX_TAIL_LINE * 4:]

    def text(self) -> str:
        lines = list(self.lines) + ([self.partial] if self.partial else [])
        lines = lines[-self.lines.maxlen:]
        return "\n".join(ln.decode("utf-8", "replace").rstrip("\r")[-MAX_TAIL_LINE:]
                         for ln in lines)


def run_streamed(command: list[str], cwd: Path, env: dict, *, tail_lines: int = TAIL_LINES,
                 sink: Callable[[bytes], None] | None = None) -> tuple[int, str, bool]:
    """Run ``command``, passing its merged stdout/stderr to ``sink`` as it comes; returns
    (exit code, the last ``tail_lines`` lines, interrupted). A command that cannot start
    exits 127 with the reason as its output."""
    tail = _Tail(tail_lines)
    try:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as exc:
        message = f"modelward: cannot run {command[0]}: {exc.strerror or exc}\n".encode()
        tail.feed(message)
        if sink:
            sink(message)
        return 127, tail.text(), False
    interrupted = False
    fd = proc.stdout.fileno()
    try:
        while chunk := os.read(fd, 65536):
            tail.feed(chunk)
            if sink:
                sink(chunk)
    except KeyboardInterrupt:  # the child got the same SIGINT; let it finish dying
        interrupted = True
    finally:
        proc.stdout.close()
        code = proc.wait()
    return code, tail.text(), interrupted
