"""Feedback on decisions: rating, intent, surface and author kind, so curation can be a
policy instead of a guess about why somebody clicked."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..digest import canonical_json, non_finite_path
from ..errors import ValidationError
from ..ids import is_uuid, uuid7
from ..timefmt import iso, now_us, parse_time
from . import records
from .fits import check_fits
from .schema import dataset_feedback, decision_payloads, decisions, feedback

INTENTS = ("incorrect", "unsafe", "unhelpful", "style", "test", "other", "unknown")
SURFACES = ("production", "staging", "internal")
AUTHOR_KINDS = ("customer", "employee", "system")
FIELDS = {"id", "decision_id", "at", "rating", "intent", "surface", "author_kind", "author",
          "comment", "correction", "meta"}


@dataclass
class Feedback:
    id: str
    decision_id: str
    at: int
    rating: float | None
    intent: str
    surface: str
    author_kind: str
    author: str | None
    comment: str | None
    correction: str | None
    meta: dict

    @classmethod
    def from_row(cls, row) -> Feedback:
        m = dict(row._mapping)
        m["meta"] = orjson.loads(m["meta"]) if m["meta"] else {}
        return cls(**m)

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["at"] = iso(self.at)
        return out


def _choice(value, allowed, field, line, default=None):
    if value is None and default is not None:
        return default
    if value not in allowed:
        raise ValidationError(f"{value!r} is not one of {', '.join(allowed)}", field=field,
                              line=line)
    return value


def _text(value, field, line):
    if value is None:
        return None
    if not isinstance(value, str) or "\x00" in value:
        raise ValidationError("expected text", field=field, line=line)
    return value


def normalize(d: Mapping, *, line: int | None = None) -> dict:
    """Validate one feedback event into a row dict (the decision's existence is checked on
    write)."""
    if not isinstance(d, Mapping):
        raise ValidationError("a feedback event must be an object", line=line)
    unknown = d.keys() - FIELDS
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(sorted(unknown))}",
                              field=sorted(unknown)[0], line=line)
    fid = d.get("id") or uuid7()
    if not is_uuid(fid):
        raise ValidationError(f"not a lowercase UUID: {str(fid)[:60]!r}", field="id", line=line)
    did = d.get("decision_id")
    if not is_uuid(did):
        raise ValidationError(f"not a decision id: {str(did)[:60]!r}", field="decision_id",
                              line=line)
    rating = d.get("rating")
    if rating is not None:
        if type(rating) not in (int, float):
            raise ValidationError(f"expected a number, got {rating!r}", field="rating", line=line)
        if not math.isfinite(rating):
            raise ValidationError(f"expected a finite number, got {rating!r}", field="rating",
                                  line=line)
        rating = float(rating) + 0.0  # -0.0 + 0.0 == 0.0, as SQLite stores it
    at = d.get("at")
    try:
        at = now_us() if at is None else parse_time(at, field="at")
    except ValidationError as exc:
        raise ValidationError(exc.detail, field="at", line=line) from None
    meta = d.get("meta")
    if meta is not None and not isinstance(meta, Mapping):
        raise ValidationError("expected an object", field="meta", line=line)
    if meta is not None and (where := non_finite_path(meta)) is not None:
        raise ValidationError("NaN and infinity are not numbers JSON can hold",
                              field=f"meta.{where}", line=line)
    return dict(
        id=fid, decision_id=did, at=at, rating=rating,
        intent=_choice(d.get("intent"), INTENTS, "intent", line, default="unknown"),
        surface=_choice(d.get("surface"), SURFACES, "surface", line),
        author_kind=_choice(d.get("author_kind"), AUTHOR_KINDS, "author_kind", line),
        author=_text(d.get("author"), "author", line),
        comment=_text(d.get("comment"), "comment", line),
        correction=_text(d.get("correction"), "correction", line),
        meta=canonical_json(meta).decode() if meta else None,
    )


def add(conn: Connection, rows: list[dict], lines: list[int | None] | None = None) -> int:
    """Insert validated feedback rows in the caller's transaction. Every decision id must be
    in the ledger: an unknown one raises ValidationError naming it (and its line) and the
    caller's transaction writes nothing. Repeated feedback ids are skipped."""
    if not rows:
        return 0
    wanted = sorted({r["decision_id"] for r in rows})
    known: set[str] = set()
    for i in range(0, len(wanted), 500):
        known.update(conn.execute(sa.select(decisions.c.id)
                                  .where(decisions.c.id.in_(wanted[i:i + 500]))).scalars())
    for i, r in enumerate(rows):
        if r["decision_id"] not in known:
            raise ValidationError(f"no decision {r['decision_id']} in the ledger",
                                  field="decision_id", line=(lines[i] if lines else None))
    ids = [r["id"] for r in rows]
    existing: set[str] = set()
    for i in range(0, len(ids), 500):
        existing.update(conn.execute(sa.select(feedback.c.id)
                                     .where(feedback.c.id.in_(ids[i:i + 500]))).scalars())
    fresh, seen = [], set()
    for r in rows:
        if r["id"] in existing or r["id"] in seen:
            continue
        seen.add(r["id"])
        fresh.append(r)
    if fresh:
        check_fits(feedback, fresh)
        conn.execute(feedback.insert(), fresh)
        records.record(conn, "feedback", [r["id"] for r in fresh])
    return len(fresh)


def list_feedback(conn: Connection, *, since: int | None = None, ids: Iterable[str] | None = None
                  ) -> list[Feedback]:
    q = sa.select(feedback).order_by(feedback.c.at, feedback.c.id)
    if since is not None:
        q = q.where(feedback.c.at >= since)
    if ids is not None:
        wanted = list(ids)
        out: list[Feedback] = []
        for i in range(0, len(wanted), 500):
            out += [Feedback.from_row(r) for r in
                    conn.execute(q.where(feedback.c.id.in_(wanted[i:i + 500]))).all()]
        return sorted(out, key=lambda f: (f.at, f.id))
    return [Feedback.from_row(r) for r in conn.execute(q).all()]


def link_dataset(conn: Connection, dataset_digest: str, feedback_ids: Iterable[str]) -> None:
    existing = set(conn.execute(sa.select(dataset_feedback.c.feedback_id)
                                .where(dataset_feedback.c.dataset_digest == dataset_digest)).scalars())
    rows = [{"dataset_digest": dataset_digest, "feedback_id": f}
            for f in sorted(set(feedback_ids) - existing)]
    if rows:
        conn.execute(dataset_feedback.insert(), rows)
        records.record(conn, "dataset_feedback",
                     [(r["dataset_digest"], r["feedback_id"]) for r in rows])


def dataset_feedback_ids(conn: Connection, dataset_digest: str) -> list[str]:
    return list(conn.execute(sa.select(dataset_feedback.c.feedback_id)
                             .where(dataset_feedback.c.dataset_digest == dataset_digest)
                             .order_by(dataset_feedback.c.feedback_id)).scalars())


def datasets_with_feedback(conn: Connection) -> list[str]:
    return list(conn.execute(sa.select(dataset_feedback.c.dataset_digest).distinct()
                             .order_by(dataset_feedback.c.dataset_digest)).scalars())


_YIELD = 1000


def curation_rows(conn: Connection, *, since: int | None = None, until: int | None = None,
                  dataset: str | None = None):
    """Feedback joined with its decision and stored text, oldest first (ties by id),
    streamed (what curation judges).

    With ``dataset``, the rows of that dataset's lineage instead, outer-joined so a linked
    id that names no feedback still yields a row (its ``id`` is NULL, ``linked_id`` set).
    SELECTs only: ``conn`` may be a guard view (MW304)."""
    f, d, p, df = feedback.c, decisions.c, decision_payloads.c, dataset_feedback.c
    cols = [f.id, f.decision_id, f.at, f.rating, f.intent, f.surface, f.author_kind, f.author,
            f.comment, f.correction, d.id.label("found_decision"), d.segments, p.input_text,
            p.output_text, p.erased_at]
    if dataset is None:
        base = feedback
        q = sa.select(f.id.label("linked_id"), *cols)
    else:
        base = dataset_feedback.outerjoin(feedback, f.id == df.feedback_id)
        q = sa.select(df.feedback_id.label("linked_id"), *cols).where(df.dataset_digest == dataset)
    joined = (base.outerjoin(decisions, d.id == f.decision_id)
              .outerjoin(decision_payloads, p.decision_id == f.decision_id))
    q = q.select_from(joined)
    if since is not None:
        q = q.where(f.at >= since)
    if until is not None:
        q = q.where(f.at < until)
    # linked_id breaks ties and orders lineage rows whose feedback is missing (at NULL)
    return conn.execute(q.order_by(f.at, q.selected_columns.linked_id)
                        .execution_options(yield_per=_YIELD))
