"""Values too long for their column, refused before the database sees them.

PostgreSQL refuses a string longer than its ``VARCHAR(n)`` (a storage error, 503 on the
API) while SQLite stores it: :func:`check_fits` makes both refuse it the same way, as a
ValidationError naming the field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sqlalchemy as sa

from ..errors import ValidationError

_LIMITS: dict[str, dict[str, int]] = {}


def _limits(table: sa.Table) -> dict[str, int]:
    found = _LIMITS.get(table.name)
    if found is None:
        found = _LIMITS[table.name] = {
            c.name: c.type.length for c in table.columns
            if isinstance(c.type, sa.String) and getattr(c.type, "length", None)}
    return found


def check_fits(table: sa.Table, rows: Mapping | Iterable[Mapping], *,
               names: Mapping[str, str] | None = None) -> None:
    """Raise ValidationError for the first string value longer than its column allows;
    ``names`` maps a column to the field name the caller's user knows it by."""
    limits = _limits(table)
    for row in [rows] if isinstance(rows, Mapping) else rows:
        for column, value in row.items():
            limit = limits.get(column)
            if limit is not None and isinstance(value, str) and len(value) > limit:
                field = (names or {}).get(column, column)
                raise ValidationError(f"longer than {limit} characters ({len(value)})",
                                      field=field)
