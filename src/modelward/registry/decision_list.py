"""Decisions listed with what their alias pointed at when they were made: the one function
behind the dashboard's decisions page, its CSV/JSON export and ``GET /api/v1/decisions``.

Each row says where its alias pointed at the decision's time (``ledger.aliases.targets_at``,
the one answer to "where did each alias point at t") and whether the recorded digest agrees
with it (:func:`registry.audit.verdict`, the judgement the audit of one decision makes).
``targets_at`` is asked once per stretch between two alias events, not once per row: the
answer cannot change inside such a stretch.

The export walks the filter a batch at a time (keyset paging, one short read per batch), so
it never holds more than a batch in memory."""

from __future__ import annotations

import bisect
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from ..errors import ValidationError
from ..ledger import aliases as ledger_aliases
from ..ledger import artifacts as ledger_artifacts
from ..ledger import decision_pages
from ..ledger.decision_pages import Filter
from ..ledger.decisions import Decision
from ..timefmt import parse_when
from .audit import verdict

UNRESOLVED = "unresolved"  # the alias was not set at that moment (or deleted, or invalid)
EXPORT_BATCH = 1000
CSV_COLUMNS = ("at", "id", "alias", "alias_digest", "alias_verdict", "vendor_model_id",
               "model_digest", "prompt_digest", "embedder_digest", "reranker_digest",
               "config_digest", "process", "subject")


@dataclass(frozen=True)
class Listed:
    """One decision and its alias's target at its time (None: no alias asked for)."""

    decision: Decision
    alias_digest: str | None
    verdict: str | None

    def to_dict(self) -> dict:
        return {**self.decision.to_dict(), "alias_digest": self.alias_digest,
                "alias_verdict": self.verdict}


@dataclass(frozen=True)
class DecisionPage:
    items: list[Listed]
    next_cursor: str | None  # None: this is the last page


class _Judge:
    """Alias targets and verdicts for decisions read on one connection."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.times = sorted(e.at for e in ledger_aliases.all_events(conn))
        self.targets: dict[int, dict[str, str]] = {}
        self.kinds: dict[str, str | None] = {}

    def _target(self, d: Decision) -> str | None:
        stretch = bisect.bisect_right(self.times, d.at)  # alias events at or before d.at
        if stretch not in self.targets:
            self.targets[stretch] = ledger_aliases.targets_at(self.conn, d.at)
        return self.targets[stretch].get(d.alias)

    def judge(self, found: list[Decision]) -> list[Listed]:
        targets = [self._target(d) if d.alias else None for d in found]
        unknown = {t for t in targets if t and t not in self.kinds}
        if unknown:
            arts = ledger_artifacts.find_many(self.conn, unknown)
            self.kinds.update({t: arts[t].kind if t in arts else None for t in unknown})
        return [Listed(d, t, None if not d.alias else UNRESOLVED if t is None
                       else verdict(d, t, self.kinds[t])) for d, t in zip(found, targets, strict=True)]


def filter_of(*, subject: str | None = None, alias: str | None = None,
              process: str | None = None, digest: str | None = None, since: str | None = None,
              until: str | None = None, now: int | None = None) -> Filter:
    """A :class:`Filter` from query or form text: blank fields are absent, times go through
    ``timefmt.parse_when`` (ISO 8601 or a duration back from now, ``7d``)."""
    def text(v):
        return v.strip() or None if isinstance(v, str) else v
    return Filter(subject=text(subject), alias=text(alias), process=text(process),
                  digest=text(digest), since=parse_when(text(since), now=now, field="since"),
                  until=parse_when(text(until), now=now, field="until"))


def list_decisions(store, flt: Filter, *, cursor: str | None = None,
                   limit: int = 50) -> DecisionPage:
    """One page of decisions matching ``flt``, newest first, after ``cursor`` (opaque,
    from the previous page's ``next_cursor``; a cursor not made here is refused)."""
    after = decision_pages.decode_cursor(cursor) if cursor else None
    with store.read() as conn:
        found, more = decision_pages.page(conn, flt, after=after, limit=limit)
        items = _Judge(conn).judge(found)
    return DecisionPage(items, decision_pages.encode_cursor(found[-1]) if more else None)


def stream_listed(store, flt: Filter, *, batch: int = EXPORT_BATCH) -> Iterator[list[Listed]]:
    """Every decision matching ``flt``, judged, newest first, a batch at a time; each batch
    is one short read (a decision recorded meanwhile with an older time may be missed or,
    if newer than the start, is left out: the export is of the filter as the walk finds it)."""
    after = None
    while True:
        with store.read() as conn:
            found, more = decision_pages.page(conn, flt, after=after, limit=batch)
            items = _Judge(conn).judge(found)
        if items:
            yield items
        if not more:
            return
        after = (found[-1].at, found[-1].id)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """A CSV cell a spreadsheet shows and does not evaluate: text starting ``= + - @`` (or
    a tab or carriage return) is prefixed with ``'`` (OWASP's CSV-injection advice)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _csv_row(item: Listed) -> list[str]:
    d, out = item.decision.to_dict(), {"alias_digest": item.alias_digest,
                                       "alias_verdict": item.verdict}
    return [safe_cell(out[c] if c in out else d.get(c)) for c in CSV_COLUMNS]


def export(store, flt: Filter, fmt: str, *, batch: int = EXPORT_BATCH) -> Iterator[bytes]:
    """The decisions of ``flt`` as CSV (a header, then :data:`CSV_COLUMNS`) or JSON lines
    (one :meth:`Listed.to_dict` a line), produced a batch at a time. The format is checked
    here, before the first byte is produced."""
    if fmt not in ("csv", "jsonl"):
        raise ValidationError(f"no export format {fmt!r}", field="format", hint="csv or jsonl")
    return _export(store, flt, fmt, batch)


def _csv(rows) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode()


def _export(store, flt: Filter, fmt: str, batch: int) -> Iterator[bytes]:
    if fmt == "csv":
        yield _csv([CSV_COLUMNS])  # an empty result is still a CSV file with its header
    for items in stream_listed(store, flt, batch=batch):
        if fmt == "csv":
            yield _csv(_csv_row(i) for i in items)
        else:
            yield b"".join(orjson.dumps(i.to_dict()) + b"\n" for i in items)
