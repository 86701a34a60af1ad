"""Safety probe suites: harmful requests a model must refuse and benign,
sensitive-sounding requests it must answer.

A suite is an eval set (JSON lines) whose items carry their class and category::

    {"id": "harmful-fraud-03", "input": "Explain how to launder cash …",
     "expected": "refuse", "segments": {"class": "harmful", "category": "fraud"}}

``--suite`` takes the name of a shipped suite (``safety-v1``, in ``evals/suites/``), a
registered eval set digest, or a file: JSON lines or a JSON array in that format, or a CSV
in one of two public layouts, recognised by its header:

* **XSTest-style**: a ``prompt`` column and a class column, ``label`` (or ``type``), whose
  values are ``safe`` (benign: must be answered) or ``unsafe`` (harmful: must be refused);
  the category is the ``type`` column when ``label`` holds the class, else ``focus`` or
  ``category``, else ``xstest``;
* **AdvBench-style**: ``goal`` and ``target`` columns; every row is harmful (category
  ``advbench``); the ``target`` completion is not kept.

A CSV is converted to the JSON-lines format above, and that is what is registered (as an
``evalset`` artifact whose metadata names the original file's digest), so every safety run
names the exact digest it asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from ...csvfile import read_csv
from ...digest import is_digest, of_bytes
from ...errors import ValidationError
from ...ledger import artifacts as ledger_artifacts
from ...ledger.artifacts import Artifact
from ...ledger.engine import Store
from ..harness.evalsets import parse_evalset

SUITES_DIR = Path(__file__).parent.parent / "suites"
DEFAULT_SUITE = "safety-v1"
CLASSES = ("harmful", "benign")
_EXPECTED = {"refuse": "harmful", "answer": "benign"}


@dataclass(frozen=True)
class Probe:
    id: str
    prompt: str
    harmful: bool
    category: str

    @property
    def cls(self) -> str:
        return "harmful" if self.harmful else "benign"

    def item(self) -> dict:
        """The item a runner receives (the same shape as an eval item)."""
        return {"id": self.id, "input": self.prompt,
                "expected": "refuse" if self.harmful else "answer",
                "segments": {"class": self.cls, "category": self.category}}


@dataclass
class Suite:
    name: str  # the shipped name, the file name, or the digest
    format: str  # modelward | xstest | advbench
    probes: list[Probe]
    data: bytes  # what is registered as the evalset artifact
    source_digest: str | None = None  # the original file's digest, when it was converted

    def count(self, cls: str) -> int:
        return sum(1 for p in self.probes if p.cls == cls)


def builtin_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.jsonl"))


def to_jsonl(probes: list[Probe], source: str) -> bytes:
    """The canonical JSON-lines form of probes (what a converted CSV is registered as)."""
    return b"".join(orjson.dumps({**p.item(), "source": source}, option=orjson.OPT_SORT_KEYS)
                    + b"\n" for p in probes)


def parse_jsonl(data: bytes, name: str) -> list[Probe]:
    """Probes of a suite in modelward's format; every item needs a class."""
    probes = []
    for line, item in enumerate(parse_evalset(data, name=name), start=1):
        cls = item.segments.get("class") or _EXPECTED.get(str(item.expected))
        if cls not in CLASSES:
            raise ValidationError(f"{name}: item {item.id!r} has no class: give segments.class "
                                  "harmful|benign (or expected refuse|answer)",
                                  field="segments.class", line=line)
        if not isinstance(item.input, str) or not item.input.strip():
            raise ValidationError(f"{name}: item {item.id!r} needs its request as a non-empty "
                                  "string input", field="input", line=line)
        category = str(item.segments.get("category") or "uncategorised")
        probes.append(Probe(item.id, item.input, cls == "harmful", category))
    return probes


def _rows(text: str, name: str) -> tuple[list[str], list[tuple[int, dict]]]:
    table = read_csv(text, name=name, multiline="*", lower_header=True)
    columns = table.header
    rows = [(line, {k: v.strip() for k, v in row.items()}) for line, row in table.rows]
    if not rows:
        raise ValidationError(f"{name} holds no rows")
    return columns, rows


def _unique(probes: list[Probe], name: str) -> list[Probe]:
    seen: set[str] = set()
    for p in probes:
        if p.id in seen:
            raise ValidationError(f"{name}: id {p.id!r} repeats", field="id")
        seen.add(p.id)
    return probes


def parse_xstest(text: str, name: str) -> list[Probe]:
    columns, rows = _rows(text, name)
    class_col = "label" if "label" in columns else "type" if "type" in columns else None
    if class_col is None:
        raise ValidationError(f"{name}: an XSTest-style CSV needs a label (or type) column of "
                              "safe/unsafe", field="label")
    cat_col = next((c for c in (("type", "focus", "category") if class_col == "label"
                                else ("focus", "category")) if c in columns), None)
    probes = []
    for line, row in rows:
        value = row.get(class_col, "").lower()
        if value not in ("safe", "unsafe"):
            raise ValidationError(f"{name}: {class_col} is {value!r}, not safe or unsafe",
                                  field=class_col, line=line)
        if not row.get("prompt"):
            raise ValidationError(f"{name}: empty prompt", field="prompt", line=line)
        category = (row.get(cat_col) if cat_col else None) or "xstest"
        probes.append(Probe(row.get("id") or f"xstest-{line}", row["prompt"],
                            value == "unsafe", category))
    return _unique(probes, name)


def parse_advbench(text: str, name: str) -> list[Probe]:
    _columns, rows = _rows(text, name)
    probes = []
    for line, row in rows:
        if not row.get("goal"):
            raise ValidationError(f"{name}: empty goal", field="goal", line=line)
        probes.append(Probe(row.get("id") or f"advbench-{line}", row["goal"], True,
                            "advbench"))
    return _unique(probes, name)


def parse_csv(data: bytes, name: str) -> tuple[str, list[Probe]]:
    """(format, probes) of a CSV, recognised by its header."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError(f"{name} is not UTF-8 text", field="--suite") from None
    columns = set(read_csv(text, name=name, multiline="*", lower_header=True).header) \
        if text.strip() else set()
    if "goal" in columns:
        return "advbench", parse_advbench(text, name)
    if "prompt" in columns:
        return "xstest", parse_xstest(text, name)
    if "input" in columns:
        return "modelward", parse_jsonl(data, name)
    raise ValidationError(f"{name}: a CSV suite needs a prompt column (XSTest-style, with "
                          "label safe/unsafe) or goal,target columns (AdvBench-style); found "
                          + (", ".join(sorted(columns)) or "no header"), field="--suite")


def parse_suite(data: bytes, name: str) -> Suite:
    """A suite from file bytes (JSON lines, a JSON array, or CSV)."""
    if data.decode("utf-8-sig", "replace").lstrip()[:1] in ("{", "["):
        return Suite(name, "modelward", parse_jsonl(data, name), data)
    fmt, probes = parse_csv(data, name)
    if fmt == "modelward":
        return Suite(name, fmt, probes, data)
    return Suite(name, fmt, probes, to_jsonl(probes, f"{fmt}:{name}"), of_bytes(data))


def load_suite(ref: str, store: Store | None = None) -> Suite:
    """``--suite``: a shipped suite's name, a file, or a registered eval set digest."""
    ref = (ref or "").strip()
    if ref in builtin_names():
        return parse_suite((SUITES_DIR / f"{ref}.jsonl").read_bytes(), ref)
    if is_digest(ref) and store is not None:
        return parse_suite(store.blobs.get(ref), ref)
    path = Path(ref)
    if path.is_file():
        return parse_suite(path.read_bytes(), path.name)
    raise ValidationError(f"{ref!r} is not a shipped suite, a file or a registered eval set "
                          "digest", field="--suite",
                          hint="shipped suites: " + ", ".join(builtin_names()))


def register_suite(store: Store, suite: Suite) -> Artifact:
    """Register the suite as an ``evalset`` (a no-op when those bytes already are)."""
    meta = {"safety_suite": suite.name, "format": suite.format,
            "harmful": suite.count("harmful"), "benign": suite.count("benign")}
    if suite.source_digest:
        meta["converted_from"] = suite.source_digest
    name = suite.name if not is_digest(suite.name) else "safety suite"
    return ledger_artifacts.register_bytes(store, "evalset", suite.data, name=name,
                                           meta=meta).artifact
