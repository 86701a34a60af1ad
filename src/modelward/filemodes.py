"""The modes of the files modelward creates: ``umask`` (setting, default ``077``) applied
to 0666 for files and 0777 for directories, whatever the process umask is. The ledger
holds raw decision text, so by default only its owner reads ledger.db (SQLite gives its
WAL and SHM files the database file's mode), the spool segments and the blobs."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError


def parse_umask(value: str) -> int:
    """``"077"`` as an int; ConfigError naming the setting otherwise."""
    text = str(value).strip()
    try:
        bits = int(text, 8)
    except ValueError:
        bits = -1
    if not 0 <= bits <= 0o777:
        raise ConfigError(f"umask is {value!r}; give three octal digits such as 077 or 027")
    return bits


def file_mode(umask: int) -> int:
    return 0o666 & ~umask


def dir_mode(umask: int) -> int:
    return 0o777 & ~umask


def make_dirs(path: Path, umask: int) -> None:
    """``mkdir -p`` whose new directories get exactly ``dir_mode(umask)``."""
    missing = []
    for parent in (path, *path.parents):
        if parent.exists():
            break
        missing.append(parent)
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            continue
        os.chmod(directory, dir_mode(umask))


def create_file(path: Path, umask: int) -> None:
    """Create ``path`` empty with exactly ``file_mode(umask)`` unless it exists (an existing
    file keeps the mode its owner gave it)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode(umask))
    except FileExistsError:
        return
    try:
        os.fchmod(fd, file_mode(umask))
    finally:
        os.close(fd)


def open_append(path: Path, umask: int):
    """``open(path, "ab", buffering=0)``, a new file created with ``file_mode(umask)``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, file_mode(umask))
    try:
        os.fchmod(fd, file_mode(umask))
        return os.fdopen(fd, "ab", buffering=0)
    except BaseException:
        os.close(fd)
        raise
