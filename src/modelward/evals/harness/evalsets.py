"""Eval sets: JSON lines (or a JSON array, or CSV) of items, registered as ``evalset``
artifacts so every run names the exact digest it scored.

An item::

    {"id": "q-17", "input": {"question": "…"} | "…", "expected": "…",
     "segments": {"tier": "enterprise", "topic": "billing"},
     "source": "thumbs_up" | "thumbs_down" | "curated" | "sampled" | …,
     "decision_id": "<uuid of the production decision it came from>"}

CSV columns: id, input, expected, source, decision_id, and ``segment.<name>`` per segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import orjson

from ...csvfile import decode, read_csv
from ...errors import ValidationError

ITEM_FIELDS = {"id", "input", "expected", "segments", "source", "decision_id", "meta"}


@dataclass
class EvalItem:
    id: str
    input: dict | str
    expected: object = None
    segments: dict = field(default_factory=dict)
    source: str | None = None
    decision_id: str | None = None
    meta: dict = field(default_factory=dict)

    def variables(self) -> dict:
        """Template variables: input fields at top level, plus ``input`` and ``item``."""
        base = dict(self.input) if isinstance(self.input, dict) else {}
        base.setdefault("input", self.input)
        base["item"] = {"id": self.id, "input": self.input, "expected": self.expected,
                        "segments": self.segments}
        return base

    def text(self) -> str:
        """The item's text as a contamination scan reads it (input values in key order)."""
        if isinstance(self.input, dict):
            return "\n".join(str(self.input[k]) for k in sorted(self.input)
                             if self.input[k] is not None)
        return str(self.input)


def _item(obj, line: int) -> EvalItem:
    if not isinstance(obj, dict):
        raise ValidationError("an eval item must be an object", line=line)
    unknown = obj.keys() - ITEM_FIELDS
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(sorted(unknown))}",
                              field=sorted(unknown)[0], line=line)
    if "input" not in obj:
        raise ValidationError("missing", field="input", line=line)
    if not isinstance(obj["input"], (str, dict)):
        raise ValidationError("must be a string or an object", field="input", line=line)
    segments = obj.get("segments") or {}
    if not isinstance(segments, dict):
        raise ValidationError("must be an object", field="segments", line=line)
    return EvalItem(
        id=str(obj.get("id", line)), input=obj["input"], expected=obj.get("expected"),
        segments={str(k): v for k, v in segments.items()}, source=obj.get("source"),
        decision_id=obj.get("decision_id"), meta=obj.get("meta") or {},
    )


def parse_evalset(data: bytes, *, name: str = "eval set") -> list[EvalItem]:
    text = decode(data, name)
    stripped = text.lstrip()
    items: list[EvalItem] = []
    if stripped.startswith("["):
        try:
            arr = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"{name} is not valid JSON: {exc}") from None
        items = [_item(obj, i) for i, obj in enumerate(arr, start=1)]
    elif stripped.startswith("{"):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValidationError(f"not valid JSON ({exc})", line=number) from None
            items.append(_item(obj, number))
    else:
        table = read_csv(text, name=name, multiline="*")
        if "input" not in table.header:
            raise ValidationError(f"{name}: CSV needs an 'input' column", field="input")
        for number, row in table.rows:
            segs = {k[len("segment."):]: v for k, v in row.items()
                    if k and k.startswith("segment.") and v not in (None, "")}
            obj = {k: v for k, v in row.items() if k in ITEM_FIELDS and v not in (None, "")}
            obj["input"] = row.get("input") or ""
            obj["segments"] = segs
            items.append(_item(obj, number))
    if not items:
        raise ValidationError(f"{name} holds no items")
    seen: dict[str, int] = {}
    for i, it in enumerate(items, start=1):
        if it.id in seen:
            raise ValidationError(f"item id {it.id!r} repeats item {seen[it.id]}", field="id",
                                  line=i)
        seen[it.id] = i
    return items


def load_evalset_file(path: Path) -> list[EvalItem]:
    if not path.is_file():
        raise ValidationError(f"{path} does not exist", field="evalset")
    return parse_evalset(path.read_bytes(), name=str(path))


def load_evalset(store, digest: str) -> list[EvalItem]:
    """Items of a registered eval set, read from the blob store (verified on read)."""
    return parse_evalset(store.blobs.get(digest), name=digest)
