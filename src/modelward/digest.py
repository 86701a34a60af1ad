"""Content addressing: every artifact is ``sha256:<hex>`` of its canonical content.

* a file: its bytes (prompts: UTF-8 text with the BOM dropped and CRLF folded to LF;
  configs: canonical JSON when the file is JSON);
* a directory: the bytes of its manifest, one line ``<relative/posix/path>\\t<sha256:hex>\\n``
  per regular file, sorted by path (empty directories and symlinks outside are not content);
* a hosted model: the UTF-8 bytes of its vendor id, e.g. ``openai:gpt-4o-2024-08-06``.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import orjson

from .errors import ValidationError

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_CHUNK = 1 << 20


def is_digest(value: object) -> bool:
    return isinstance(value, str) and len(value) == 71 and DIGEST_RE.match(value) is not None


def check_digest(value: object, field: str = "digest") -> str:
    if not isinstance(value, str):
        raise ValidationError(
            f"expected a sha256:<64 hex> digest, got {type(value).__name__}", field=field
        )
    if not is_digest(value):
        raise ValidationError(
            f"not a sha256:<64 hex> digest: {value[:80]!r}", field=field,
            hint="digests look like sha256:9f86d08…; an alias must be resolved first",
        )
    return value


def of_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def of_text(text: str) -> str:
    return of_bytes(canonical_text(text))


def canonical_text(text: str) -> bytes:
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").encode("utf-8")


def canonical_json(value: object) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same value always gives the same bytes.
    (orjson writes NaN and infinities as ``null``: inputs are checked with
    :func:`non_finite_path` where they enter.)"""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def non_finite_path(value: object, path: str = "") -> str | None:
    """The dotted path of the first NaN or infinite float inside ``value``, else None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, dict):
        for k, v in value.items():
            found = non_finite_path(v, f"{path}.{k}" if path else str(k))
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = non_finite_path(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def of_json(value: object) -> str:
    return of_bytes(canonical_json(value))


def of_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    digest: str
    size: int


def walk_directory(root: Path) -> list[ManifestEntry]:
    entries: list[ManifestEntry] = []
    root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            full = Path(dirpath) / name
            if full.is_symlink() and not full.resolve().is_relative_to(root):
                continue
            if not full.is_file():
                continue
            rel = full.relative_to(root).as_posix()
            entries.append(ManifestEntry(rel, of_file(full), full.stat().st_size))
    entries.sort(key=lambda e: e.path)
    return entries


def manifest_bytes(entries: list[ManifestEntry]) -> bytes:
    return "".join(f"{e.path}\t{e.digest}\n" for e in entries).encode("utf-8")


def parse_manifest(data: bytes) -> list[tuple[str, str]]:
    out = []
    for line in data.decode("utf-8").splitlines():
        path, _, digest = line.partition("\t")
        out.append((path, digest))
    return out


def is_canonicalised(kind: str, path: Path) -> bool:
    """Whether a file of this kind is digested as canonical text/JSON rather than its bytes."""
    return kind == "prompt" or (kind in ("config", "policy") and path.suffix.lower() == ".json")


def canonical_payload(kind: str, path: Path) -> bytes:
    """The canonical bytes of a single-file artifact of this kind."""
    return canonical_bytes(kind, path.read_bytes(), path)


def canonical_bytes(kind: str, raw: bytes, path: Path, field: str = "path") -> bytes:
    """The canonical form of ``raw``, the bytes of a single-file artifact of this kind held
    in a file named ``path`` (its suffix decides whether a config is JSON)."""
    if kind == "prompt":
        try:
            return canonical_text(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ValidationError(f"{path} is not UTF-8 text", field=field) from None
    if kind in ("config", "policy") and path.suffix.lower() == ".json":
        try:
            return canonical_json(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"{path} is not valid JSON: {exc}", field=field) from None
    return raw
