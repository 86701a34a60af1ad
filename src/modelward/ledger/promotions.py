"""Promotion requests and their reviews, who opened which eval evidence, and deprecated
eval sets: every read and write of those tables. The gates that judge a promotion live in
:mod:`modelward.registry.promotion`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import digest as dg
from ..errors import NotFoundError, ValidationError
from ..ids import is_uuid, uuid7
from ..timefmt import iso, now_us
from . import records
from .fits import check_fits
from .schema import eval_opens, evalset_deprecations, promotion_requests, promotion_reviews

REQUEST_STATUSES = ("pending", "approved", "overridden", "withdrawn")
OUTCOMES = ("approved", "refused", "overridden")
OPEN_VIA = ("cli", "dashboard", "api")


@dataclass(frozen=True)
class PromotionRequest:
    id: str
    alias: str
    digest: str
    requester: str
    requested_at: int
    evidence_run_id: str | None
    status: str
    reason: str | None
    token_id: str | None = None  # the API token that filed it (None from the CLI)

    def to_dict(self) -> dict:
        return {**self.__dict__, "requested_at": iso(self.requested_at)}


@dataclass(frozen=True)
class Review:
    """One approval attempt: ``failed_gates`` is ``[{"gate", "message"}, …]``."""

    id: int
    request_id: str
    approver: str
    at: int
    outcome: str
    failed_gates: list[dict] = field(default_factory=list)
    override_reason: str | None = None
    alias_event_id: int | None = None
    evidence_run_id: str | None = None
    token_id: str | None = None  # the API token that approved (None from the CLI)

    @property
    def gates(self) -> list[str]:
        return [g["gate"] for g in self.failed_gates]

    def to_dict(self) -> dict:
        return {**self.__dict__, "at": iso(self.at)}


@dataclass(frozen=True)
class Deprecation:
    digest: str
    at: int
    actor: str | None
    reason: str | None

    def to_dict(self) -> dict:
        return {**self.__dict__, "at": iso(self.at)}


# --- requests -------------------------------------------------------------------------------
def _request(r) -> PromotionRequest:
    return PromotionRequest(**dict(r._mapping))


def insert_request(conn: Connection, *, alias: str, digest: str, requester: str,
                   evidence_run_id: str | None = None, reason: str | None = None,
                   at: int | None = None, token_id: str | None = None) -> PromotionRequest:
    req = PromotionRequest(id=uuid7(), alias=alias, digest=digest, requester=requester,
                           requested_at=now_us() if at is None else at,
                           evidence_run_id=evidence_run_id, status="pending", reason=reason,
                           token_id=token_id)
    check_fits(promotion_requests, req.__dict__)
    conn.execute(promotion_requests.insert().values(**req.__dict__))
    records.record(conn, "promotion_requests", [req.id])
    return req


def get_request(conn: Connection, request_id: str, *, lock: bool = False) -> PromotionRequest:
    """The request ``request_id``; ``lock`` holds its row until the transaction ends
    (PostgreSQL; SQLite's write transaction already excludes other writers)."""
    if not is_uuid(request_id):
        raise ValidationError(f"not a request id: {request_id!r}", field="REQUEST_ID",
                              hint="list requests with `modelward promote list`")
    q = sa.select(promotion_requests).where(promotion_requests.c.id == request_id)
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise NotFoundError(f"no promotion request {request_id}",
                            hint="list requests with `modelward promote list`")
    return _request(row)


def list_requests(conn: Connection, *, status: str | None = None, alias: str | None = None,
                  digest: str | None = None, ids: Iterable[str] | None = None,
                  limit: int | None = None) -> list[PromotionRequest]:
    """Requests, newest first."""
    c = promotion_requests.c
    q = sa.select(promotion_requests).order_by(c.requested_at.desc(), c.id.desc())
    if status is not None:
        if status not in REQUEST_STATUSES:
            raise ValidationError(f"unknown status {status!r}; choose one of "
                                  + ", ".join(REQUEST_STATUSES), field="status")
        q = q.where(c.status == status)
    if alias is not None:
        q = q.where(c.alias == alias)
    if digest is not None:
        q = q.where(c.digest == digest)
    if ids is not None:
        q = q.where(c.id.in_(sorted(set(ids))))
    if limit is not None:
        q = q.limit(limit)
    return [_request(r) for r in conn.execute(q).all()]


def set_status(conn: Connection, request_id: str, status: str) -> None:
    if status not in REQUEST_STATUSES:
        raise ValueError(status)
    conn.execute(promotion_requests.update().where(promotion_requests.c.id == request_id)
                 .values(status=status))
    records.record(conn, "promotion_requests", [request_id])


# --- reviews -------------------------------------------------------------------------------
def _review(r) -> Review:
    m = dict(r._mapping)
    m["failed_gates"] = orjson.loads(m["failed_gates"]) if m["failed_gates"] else []
    return Review(**m)


def add_review(conn: Connection, *, request_id: str, approver: str, at: int, outcome: str,
               failed_gates: list[dict], override_reason: str | None = None,
               alias_event_id: int | None = None,
               evidence_run_id: str | None = None, token_id: str | None = None) -> Review:
    if outcome not in OUTCOMES:
        raise ValueError(outcome)
    values = dict(request_id=request_id, approver=approver, at=at, outcome=outcome,
                  failed_gates=dg.canonical_json(failed_gates).decode() if failed_gates
                  else None, override_reason=override_reason,
                  alias_event_id=alias_event_id, evidence_run_id=evidence_run_id,
                  token_id=token_id)
    check_fits(promotion_reviews, values)
    new_id = conn.execute(promotion_reviews.insert().values(**values)).inserted_primary_key[0]
    records.record(conn, "promotion_reviews", [new_id])
    return Review(id=new_id, **{**values, "failed_gates": failed_gates})


def reviews(conn: Connection, *, request_ids: Iterable[str] | None = None,
            outcomes: Iterable[str] | None = None) -> list[Review]:
    """Reviews in the order they happened."""
    c = promotion_reviews.c
    q = sa.select(promotion_reviews).order_by(c.at, c.id)
    if request_ids is not None:
        q = q.where(c.request_id.in_(sorted(set(request_ids))))
    if outcomes is not None:
        q = q.where(c.outcome.in_(sorted(set(outcomes))))
    return [_review(r) for r in conn.execute(q).all()]


# --- who opened the evidence ------------------------------------------------------------------
def record_open(conn: Connection, run_id: str, email: str, *, via: str = "cli",
                at: int | None = None, token_id: str | None = None) -> int:
    """Record that ``email`` opened eval run ``run_id`` (``modelward eval show --as``, the
    dashboard's or the API's explicit POST; ``token_id``: the API token that did); returns
    the time recorded."""
    if via not in OPEN_VIA:
        raise ValueError(via)
    at = now_us() if at is None else at
    new_id = conn.execute(eval_opens.insert().values(
        run_id=run_id, email=email, at=at, via=via, token_id=token_id)).inserted_primary_key[0]
    records.record(conn, "eval_opens", [new_id])
    return at


def first_open(conn: Connection, run_id: str | None, email: str, *,
               until: int | None = None) -> int | None:
    """When ``email`` first opened ``run_id`` (at or before ``until``), or None."""
    if run_id is None:
        return None
    c = eval_opens.c
    q = sa.select(sa.func.min(c.at)).where(c.run_id == run_id, c.email == email)
    if until is not None:
        q = q.where(c.at <= until)
    return conn.execute(q).scalar()


def opens(conn: Connection, run_id: str) -> list[tuple[str, int, str]]:
    """(email, at, via) of every open of ``run_id``, oldest first."""
    c = eval_opens.c
    return [tuple(r) for r in conn.execute(sa.select(c.email, c.at, c.via)
                                           .where(c.run_id == run_id)
                                           .order_by(c.at, c.id)).all()]


# --- deprecated eval sets --------------------------------------------------------------------
def deprecate(conn: Connection, digest: str, *, reason: str, actor: str | None = None,
              at: int | None = None) -> tuple[Deprecation, bool]:
    """Deprecate eval set ``digest``; (deprecation, False) when it already was."""
    found = deprecations(conn, [digest]).get(digest)
    if found is not None:
        return found, False
    dep = Deprecation(digest, now_us() if at is None else at, actor, reason)
    conn.execute(evalset_deprecations.insert().values(**dep.__dict__))
    records.record(conn, "evalset_deprecations", [digest])
    return dep, True


def deprecations(conn: Connection, digests: Iterable[str] | None = None, *,
                 until: int | None = None) -> dict[str, Deprecation]:
    """Deprecated eval sets (among ``digests``, deprecated at or before ``until``)."""
    c = evalset_deprecations.c
    q = sa.select(evalset_deprecations)
    if digests is not None:
        q = q.where(c.digest.in_(sorted({d for d in digests if d})))
    if until is not None:
        q = q.where(c.at <= until)
    return {r.digest: Deprecation(**dict(r._mapping)) for r in conn.execute(q).all()}
