"""Importing feedback events from JSON lines or CSV, all or nothing.

Fields (JSON keys or CSV columns): ``decision_id`` (required), ``rating``, ``intent``,
``surface``, ``author_kind``, ``author``, ``comment``, ``correction``, ``at``, ``id``
(and ``meta``, a JSON object). Every line is validated first and every bad line named;
the good file is then written in one transaction, in which an unknown decision id rejects
the whole file. Feedback ids already recorded are skipped, so importing twice is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from ...csvfile import decode, read_csv
from ...errors import ValidationError
from ...ledger import feedback as ledger_feedback
from ...ledger.engine import Store

MAX_PROBLEMS = 50


@dataclass
class ImportResult:
    imported: int
    duplicates: int


def _records(data: bytes, name: str):
    """(line number, object) pairs; JSON lines when the first character is ``{``, else CSV."""
    text = decode(data, name)
    head = text.lstrip()[:1]
    if not head:
        raise ValidationError(f"{name} holds no feedback events", field="FILE")
    if head == "{":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield number, orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield number, ValidationError(f"not valid JSON ({exc})", line=number)
        return
    if head == "[":
        raise ValidationError(f"{name} is a JSON array; write one JSON object per line",
                              field="FILE")
    table = read_csv(text, name=name, multiline=("comment", "correction", "meta"))
    fields = table.header
    if "decision_id" not in fields:
        raise ValidationError(f"{name}: expected JSON lines, or CSV with a decision_id column",
                              field="decision_id", line=1)
    unknown = [f for f in fields if f not in ledger_feedback.FIELDS]
    if unknown:
        raise ValidationError(f"unknown column(s): {', '.join(unknown)}", field=unknown[0],
                              line=1, hint="columns: " + ", ".join(sorted(ledger_feedback.FIELDS)))
    for number, row in table.rows:
        yield number, _from_csv(row, number)


def _from_csv(row: dict, number: int):
    obj = {k: v for k, v in row.items() if v != ""}
    if "rating" in obj:
        try:
            obj["rating"] = float(obj["rating"])
        except ValueError:
            return ValidationError(f"expected a number, got {obj['rating']!r}", field="rating",
                                   line=number)
    if "meta" in obj:
        try:
            obj["meta"] = orjson.loads(obj["meta"])
        except orjson.JSONDecodeError:
            return ValidationError("expected a JSON object", field="meta", line=number)
    return obj


def parse_feedback(data: bytes, *, name: str = "feedback file") -> tuple[list[dict], list[int]]:
    """Validated rows and their line numbers; a ValidationError listing every bad line."""
    rows: list[dict] = []
    lines: list[int] = []
    problems: list[ValidationError] = []
    seen: dict[str, int] = {}
    for number, obj in _records(data, name):
        try:
            if isinstance(obj, ValidationError):
                raise obj
            row = ledger_feedback.normalize(obj, line=number)
            if row["id"] in seen:
                raise ValidationError(f"repeats the id of line {seen[row['id']]}", field="id",
                                      line=number)
            seen[row["id"]] = number
        except ValidationError as exc:
            problems.append(exc)
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        rows.append(row)
        lines.append(number)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more bad lines)" if len(problems) > 1 else ""
        error = ValidationError(f"{first.message}{more}; nothing was imported",
                                hint="fix the lines named and import the file again")
        error.problems = problems
        raise error
    if not rows:
        raise ValidationError(f"{name} holds no feedback events", field="FILE")
    return rows, lines


def import_feedback(store: Store, data: bytes, *, name: str = "feedback file") -> ImportResult:
    """Validate every line, then write the file in one transaction (or nothing)."""
    rows, lines = parse_feedback(data, name=name)
    try:
        with store.write() as conn:
            n = ledger_feedback.add(conn, rows, lines)
    except ValidationError as exc:  # an unknown decision id: the transaction wrote nothing
        raise ValidationError(f"{exc.detail}; nothing was imported", field=exc.field,
                              line=exc.line, hint="record the decision first, or fix the id") \
            from None
    return ImportResult(imported=n, duplicates=len(rows) - n)
