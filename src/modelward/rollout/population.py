"""Tables of subjects read from CSV or JSON lines: a pre-period population (a subject column
and numeric covariates) or a set of assignments made elsewhere (subject and arm).

Numbers are read as float64 (an empty cell, ``null``, ``NA`` or ``NaN`` is missing); an
ISO 8601 timestamp column (e.g. ``signup_at``) is read as microseconds since the epoch.
Columns holding anything else are kept as text and are not covariates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from ..csvfile import decode, read_csv
from ..digest import is_digest, of_bytes
from ..display import short_digest
from ..errors import ValidationError
from ..timefmt import parse_time

MISSING = {"", "na", "nan", "null", "none"}


@dataclass
class Table:
    """Rows of a file by column; ``subjects`` in file order, unique."""

    source: str
    digest: str
    subjects: list[str]
    numeric: dict[str, np.ndarray] = field(default_factory=dict)  # float64, NaN missing
    text: dict[str, list[str | None]] = field(default_factory=dict)
    times: set[str] = field(default_factory=set)  # numeric columns read from timestamps

    def __len__(self) -> int:
        return len(self.subjects)

    def covariates(self, names: list[str] | None, *, exclude=()) -> list[str]:
        """The named numeric columns (each checked), or every numeric one but ``exclude``."""
        if not names:
            return [c for c in self.numeric if c not in exclude and c not in self.times]
        for name in names:
            if name not in self.numeric:
                kind = "holds non-numeric values" if name in self.text else "is not a column"
                raise ValidationError(
                    f"{name!r} {kind} in {self.source}", field="covariates",
                    hint="numeric columns: " + (", ".join(self.numeric) or "none"))
        return list(names)


def _cells(data: bytes, source: str) -> tuple[list[str], list[dict], int]:
    """(column names, rows as dicts, first data line number) of CSV or JSONL bytes."""
    text = decode(data, str(source))
    stripped = text.lstrip()
    if stripped.startswith("{"):
        rows, columns = [], {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValidationError(f"{source}: not valid JSON ({exc})", line=number) from None
            if not isinstance(obj, dict):
                raise ValidationError(f"{source}: expected an object per line", line=number)
            obj["\x00line"] = number
            columns.update(dict.fromkeys(obj))
            rows.append(obj)
        columns.pop("\x00line", None)
        return list(columns), rows, 1
    if not text.strip():
        raise ValidationError(f"{source} is empty", field="file")
    table = read_csv(text, name=str(source))
    rows = []
    for number, row in table.rows:
        row["\x00line"] = number
        rows.append(row)
    return table.header, rows, 2


def _number(value) -> float | None:
    """A cell as a float; None when it is not a number (or a bool)."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        s = value.strip()
        if s.lower() in MISSING:
            return math.nan
        try:
            return float(s)
        except ValueError:
            return None
    return None


def parse_table(data: bytes, source: str, *, subject_column: str = "subject",
                text_columns: tuple[str, ...] = ()) -> Table:
    """Parse CSV or JSON lines (detected from the first character); ``text_columns`` are
    kept as text even when they hold numbers (an arm column of 0 and 1)."""
    columns, rows, _ = _cells(data, source)
    if subject_column not in columns:
        raise ValidationError(f"{source} has no {subject_column!r} column", field="subject_column",
                              hint="columns: " + ", ".join(columns)
                              + "; name the subject column with --subject-column")
    subjects, seen = [], {}
    for row in rows:
        value = row.get(subject_column)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(f"{source}: the {subject_column} is missing or not text",
                                  line=row["\x00line"], field=subject_column)
        value = value.strip()
        if value in seen:
            raise ValidationError(f"{source}: subject {value!r} repeats line {seen[value]}",
                                  line=row["\x00line"], field=subject_column)
        seen[value] = row["\x00line"]
        subjects.append(value)
    table = Table(source=source, digest=of_bytes(data), subjects=subjects)
    for col in columns:
        if col == subject_column:
            continue
        raw = [row.get(col) for row in rows]
        if col in text_columns:
            table.text[col] = [None if v is None else _cell_text(v) for v in raw]
            continue
        numbers = [_number(v) for v in raw]
        if all(n is not None for n in numbers):
            table.numeric[col] = np.asarray(numbers, dtype=np.float64)
            continue
        times = _timestamps(raw)
        if times is not None:
            table.numeric[col] = times
            table.times.add(col)
            continue
        table.text[col] = [None if v is None else str(v).strip() for v in raw]
    return table


def _cell_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _timestamps(raw: list) -> np.ndarray | None:
    """An ISO 8601 column as microseconds (NaN missing); None unless every cell parses."""
    out = np.empty(len(raw), dtype=np.float64)
    found = False
    for i, v in enumerate(raw):
        if v is None or (isinstance(v, str) and v.strip().lower() in MISSING):
            out[i] = math.nan
            continue
        if not isinstance(v, str):
            return None
        try:
            out[i] = parse_time(v.strip())
        except ValidationError:
            return None
        found = True
    return out if found else None


def read_table(path: str | Path, *, subject_column: str = "subject",
               text_columns: tuple[str, ...] = ()) -> Table:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}", field="file") from None
    return parse_table(data, str(path), subject_column=subject_column,
                       text_columns=text_columns)


def open_table(ref: str, *, store=None, base: Path | None = None,
               subject_column: str = "subject") -> Table:
    """A table named by file path (relative to ``base``) or by the digest of a registered
    dataset read from the blob store (verified on read)."""
    if is_digest(ref):
        if store is None:
            raise ValidationError(f"{ref} names a stored dataset; no ledger is open", field="file")
        data = store.blobs.get(ref)
        return parse_table(data, ref, subject_column=subject_column)
    path = Path(ref)
    if base is not None and not path.is_absolute():
        path = base / path
    return read_table(path, subject_column=subject_column)


@dataclass(frozen=True)
class PrePeriod:
    """Where an experiment's pre-period population comes from, and how to read it: a file
    or stored dataset named by configuration (``[check.MW402] pre_period``, or a command's
    ``--pre-period``), else the dataset recorded when it was created with
    ``--balance-on``."""

    ref: str  # a CSV/JSONL path (relative to ``base``) or the digest of a stored dataset
    subject_column: str
    covariates: list[str] | None  # None: every numeric column
    configured: bool  # named by configuration, not recorded at creation
    base: Path | None = None
    recorded_source: str | None = None  # what the creation record calls the file

    def open(self, store=None) -> Table:
        table = open_table(self.ref, store=store, base=self.base,
                           subject_column=self.subject_column)
        if not self.configured:
            table.source = f"{self.recorded_source} as stored at creation ({short_digest(self.ref)})"
        return table


def pre_period_of(exp, *, pre_period: str | Path | None = None, subject_column: str = "subject",
                  covariates: list[str] | None = None, base: Path | None = None
                  ) -> PrePeriod | None:
    """The pre-period population MW402, MW403, ``modelward experiment check``, the API and
    the dashboard judge ``exp`` against: ``pre_period`` (with ``subject_column``) when
    configured, else the one its creation recorded (with its subject column and
    covariates); None when there is neither. ``covariates`` overrides the covariates."""
    if pre_period:
        return PrePeriod(str(pre_period), subject_column, covariates or None, True, base)
    recorded = (exp.balance or {}).get("population") or {}
    if not recorded.get("dataset"):
        return None
    return PrePeriod(recorded["dataset"], recorded.get("subject_column", "subject"),
                     covariates or recorded.get("covariates"), False,
                     recorded_source=recorded.get("source"))
