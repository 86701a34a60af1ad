"""Sentinel probes: the fixed texts an embedder is fingerprinted on.

The shipped set (``sentinels.jsonl``) holds 72 texts written for modelward: two words to a
paragraph, twelve languages, and domains from code and contracts to chat and product
support, so a change that touches one kind of text only still moves some probes.
``--probes FILE`` replaces it with a JSONL file (``{"id": …, "text": …}`` per line, or a
JSON string per line) or a plain text file (one probe per line).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from ..digest import of_json
from ..errors import ValidationError

SHIPPED = Path(__file__).with_name("sentinels.jsonl")
MIN_PROBES = 3  # the similarity-matrix correlation needs at least three pairs


@dataclass(frozen=True)
class Probes:
    ids: list[str]
    texts: list[str]
    digest: str  # of the canonical JSON [[id, text], …]: the same set gives the same digest
    source: str

    def __len__(self) -> int:
        return len(self.ids)


def _parse_line(raw: str, line: int, path: Path) -> tuple[str | None, str]:
    if not raw.lstrip().startswith(("{", '"')):
        return None, raw
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"{path} is not valid JSON: {exc}", field="--probes",
                              line=line) from None
    if isinstance(value, str):
        return None, value
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        raise ValidationError(f"{path}: a probe is an object with a \"text\" string",
                              field="--probes", line=line)
    pid = value.get("id")
    return (str(pid) if pid is not None else None), value["text"]


def load_probes(path: str | Path | None = None) -> Probes:
    """The shipped sentinel set, or the probes in ``path``."""
    file = Path(path) if path is not None else SHIPPED
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(f"{file} does not exist", field="--probes") from None
    except UnicodeDecodeError:
        raise ValidationError(f"{file} is not UTF-8 text", field="--probes") from None
    ids: list[str] = []
    texts: list[str] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        pid, body = _parse_line(raw, n, file)
        if not body.strip():
            raise ValidationError(f"{file}: empty probe text", field="--probes", line=n)
        pid = pid or f"p{len(texts) + 1:03d}"
        if pid in ids:
            raise ValidationError(f"{file}: probe id {pid!r} appears twice", field="--probes",
                                  line=n)
        ids.append(pid)
        texts.append(body)
    if len(texts) < MIN_PROBES:
        raise ValidationError(f"{file} holds {len(texts)} probes; a fingerprint needs at "
                              f"least {MIN_PROBES}", field="--probes")
    source = "shipped:sentinels-v1" if path is None else str(file)
    return Probes(ids, texts, of_json([[i, t] for i, t in zip(ids, texts, strict=True)]),
                  source)
