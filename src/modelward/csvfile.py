"""Reading CSV files strictly: the one CSV reader behind every import of a CSV file.

A lenient reader lets a stray quote swallow the lines that follow it into one cell, so those
rows vanish and the import still succeeds. This reader refuses the file instead, with a
:class:`~modelward.errors.ValidationError` that names the file and the line:

- a quote that is never closed, or a closing quote followed by more text (``"Ann" Smith``);
- a line with more or fewer cells than the header;
- a quoted cell that spans lines, unless its column is declared ``multiline``;
- a NUL byte, text that is not UTF-8, an empty file, an empty or repeated header column.

Blank lines are skipped. A quote inside an unquoted cell (``O"Brien``) is kept as a
character: it cannot swallow anything. Callers read the whole file before writing anything.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import ValidationError

MAX_PROBLEMS = 50


@dataclass
class CsvTable:
    """A CSV file read strictly: its header and its rows as (line number, {column: cell})."""

    name: str
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]


def csv_error(name: str, line: int | None, message: str, *, hint: str | None = None,
              field: str = "FILE") -> ValidationError:
    """A ValidationError naming the file and the line (``.line`` and ``.field`` set)."""
    where = f"{name}, line {line}" if line is not None else name
    error = ValidationError(f"{where}: {message}",
                            hint=hint or "fix the file and run the command again; "
                                         "nothing was written")
    error.line, error.field, error.detail = line, field, f"{where}: {message}"
    return error


def decode(data: bytes | str, name: str) -> str:
    """The text of ``data`` (a leading BOM dropped); a clear error when it is not UTF-8."""
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise csv_error(name, line, f"not UTF-8 text ({exc.reason} at byte {exc.start})") \
            from None


def read_csv(data: bytes | str, *, name: str, delimiter: str = ",",
             multiline: Iterable[str] = (), lower_header: bool = False) -> CsvTable:
    """Read a whole CSV file strictly (see the module docstring); ``name`` names the file in
    errors. ``multiline`` names the columns whose quoted cells may span lines (``"*"``:
    every column)."""
    text = decode(data, name)
    nul = text.find("\0")
    if nul >= 0:
        raise csv_error(name, text.count("\n", 0, nul) + 1, "holds a NUL byte: not a text file")
    allowed = set(multiline)
    anywhere = "*" in allowed
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    header: list[str] | None = None
    rows: list[tuple[int, dict[str, str]]] = []
    problems: list[ValidationError] = []
    while len(problems) < MAX_PROBLEMS:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # the rest of the file cannot be trusted: stop here
            problems.append(_structure_error(name, start, reader.line_num, str(exc)))
            break
        first, start = start, reader.line_num + 1
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue  # a blank line
        if header is None:
            header = [c.strip().lower() if lower_header else c.strip() for c in cells]
            if "" in header:
                raise csv_error(name, first, f"header column {header.index('') + 1} is empty",
                                field="header")
            repeated = sorted({c for c in header if header.count(c) > 1})
            if repeated:
                raise csv_error(name, first, f"header repeats {', '.join(repeated)}",
                                field="header")
            continue
        spans = f" (its quoted cell runs on to line {reader.line_num})" \
            if reader.line_num > first else ""
        if len(cells) != len(header):
            problems.append(csv_error(name, first, f"{len(cells)} cells where the header has "
                                                   f"{len(header)}{spans}"))
            continue
        if spans:
            bad = [c for c, v in zip(header, cells, strict=True)
                   if not anywhere and c not in allowed and ("\n" in v or "\r" in v)]
            if bad:
                problems.append(csv_error(name, first, f"the quoted {bad[0]} cell runs on to "
                                                       f"line {reader.line_num}: a stray quote?",
                                          field=bad[0]))
                continue
        rows.append((first, dict(zip(header, cells, strict=True))))
    if problems:
        more = f" (and {len(problems) - 1} more bad lines)" if len(problems) > 1 else ""
        first = problems[0]
        error = ValidationError(first.message + more, hint=first.hint)
        error.line, error.field, error.detail = first.line, first.field, first.message + more
        error.problems = problems
        raise error
    if header is None:
        raise ValidationError(f"{name} is empty; expected a header line", field="FILE")
    return CsvTable(name, header, rows)


def _structure_error(name: str, first: int, last: int, message: str) -> ValidationError:
    if "end of data" in message:
        return csv_error(name, first, f"a quoted cell opened here is never closed (the file "
                                      f"ends at line {last}): a stray quote?")
    if "expected after" in message:
        return csv_error(name, last, "text after a closing quote (a quote inside a cell "
                                     "must be doubled: \"\")")
    if "field larger than field limit" in message:
        return csv_error(name, first, f"a cell longer than {csv.field_size_limit():,} "
                                      "characters: a stray quote?")
    return csv_error(name, last, f"not valid CSV ({message})")
