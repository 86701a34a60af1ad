"""/api/v1/findings: the guards over the ledger, as ``modelward check --format json``, or
the findings' lifecycle (``state=``); /api/v1/findings/latest: the latest recorded run,
ranked and filtered (the findings page); POST/DELETE /api/v1/findings/{key}/ack:
acknowledge or snooze a finding, as ``modelward findings ack|unack``."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ...guards import acks, run
from ...guards.history import Filters, listing
from ...ledger import findings as ledger_findings
from ...timefmt import iso, now_us
from .. import checkruns
from ..auth import READ, WRITE, require
from . import finding_events
from ._common import JSON, Text, acting_as, query_time, store_of

ACK_ROLES = (*WRITE, "approver")  # any token that names a person

router = APIRouter(tags=["findings"])


@router.get("/findings", dependencies=[Depends(require(*READ))])
def findings(
    request: Request,
    select: str | None = Query(None, description="Code prefixes to run, comma-separated "
                               "(replaces check.select), e.g. MW1,MW301."),
    ignore: str | None = Query(None, description="Code prefixes to skip, comma-separated "
                               "(added to check.ignore)."),
    fail_on: Literal["info", "warning", "error"] | None = Query(
        None, description="Severity counted as failing (default: check.fail_on)."),
    since: str | None = Query(None, description="Only decisions since this ISO 8601 time or "
                              "this long ago (7d); default check.window, else all."),
    state: Literal["open", "resolved", "acknowledged", "all"] | None = Query(
        None, description="Instead of running the guards: the findings' lifecycle as the "
        "recorded runs left it (open and not acknowledged, acknowledged, resolved or all), "
        "with first and last seen and who acknowledged it."),
    limit: int = Query(1000, ge=1, le=10_000, description="With state: at most this many."),
) -> dict:
    """Run the selected guards: the same report ``modelward check --format json`` prints,
    plus ``exit_code`` (0 clean, 1 a finding reaches fail_on). With ``state``, run nothing:
    the lifecycle of the findings the recorded runs saw (``select`` narrows it by code
    prefix)."""
    store = store_of(request)
    if state is not None:
        return _lifecycle(store, state, select, limit)
    now = now_us()
    report = run(store, store.settings, select=select, ignore=ignore, fail_on=fail_on,
                 since=query_time(since, "since", now), now=now)
    return {**report.to_dict(), "exit_code": report.exit_code()}


@router.get("/findings/latest", dependencies=[Depends(require(*READ))])
def latest_findings(
    request: Request,
    severity: str | None = Query(None, description="Only this severity: info, warning or "
                                 "error."),
    guard: str | None = Query(None, description="Only guards whose code starts with this "
                              "(MW105, MW1)."),
    alias: str | None = Query(None, description="Only findings naming this alias."),
    since: str | None = Query(None, description="Only findings last seen (else opened) at "
                              "or after this ISO 8601 time or this long ago (7d)."),
    q: str | None = Query(None, description="Words that must all appear in the code, name, "
                          "subject, message or the ids a finding names (case-insensitive)."),
    new: bool = Query(False, description="Only findings new since the previous run."),
    state: str | None = Query(None, description="Only open (nobody acknowledged them) or "
                              "acknowledged findings."),
) -> dict:
    """The latest recorded guard run, ranked by guard, filtered, each finding marked
    ``new`` when the previous run did not show it: what the dashboard's findings page
    shows. Starts a run in the background when the latest is older than
    ``findings_max_age``; ``state`` says whether one is running."""
    store = store_of(request)
    filters = Filters.parse(severity=severity, guard=guard, alias=alias,
                            since=query_time(since, "since"), q=q, new=new, state=state)
    checkruns.ensure_fresh(request.app)
    shown = listing(store, filters)
    return {
        "state": checkruns.state(request.app),
        "run": shown.run.to_dict() if shown.run else None,
        "previous_run": shown.previous.to_dict() if shown.previous else None,
        "filters": {"severity": filters.severity, "guard": filters.guard,
                    "alias": filters.alias, "since": iso(filters.since), "q": filters.q,
                    "new": filters.new, "state": filters.state},
        "total": shown.total,
        "shown": shown.shown,
        "summary": shown.counts(),
        "groups": [g.to_dict() for g in shown.groups],
        "findings": [i.to_dict() for g in shown.groups for i in g.items],
    }


def _lifecycle(store, state: str, select: str | None, limit: int) -> dict:
    guard = None
    if select:
        guard = Filters.parse(guard=select).guard  # one prefix; a bad one is a 422
    with store.read() as conn:
        rows = ledger_findings.by_state(conn, state, guard=guard, limit=limit)
    return {"state": state, "count": len(rows), "findings": [acks.lifecycle_item(r) for r in rows]}


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(..., description="Why this finding may be silenced (required, at "
                         f"most {acks.MAX_REASON} characters).")
    until: Text | None = Field(None, description="Snooze until this ISO 8601 time or for "
                               "this long from now (7d, at most 365d); without it the ack "
                               "lasts until the finding resolves.")
    actor: Text | None = Field(None, description="Who acknowledges: always the token's "
                               "e-mail; naming anybody else is refused (403).")


@router.post("/findings/{key}/ack", dependencies=[Depends(require(*ACK_ROLES))])
def acknowledge(key: str, body: AckBody, request: Request) -> dict:
    """Acknowledge (or, with ``until``, snooze) an open finding as the token's person:
    ``modelward check`` then counts it as suppressed and no alert announces it. 404 for a
    finding no run showed, 409 when it is resolved or already acknowledged."""
    actor = acting_as(request, body.actor, "actor")
    ack = acks.acknowledge(store_of(request), key, actor=actor, reason=body.reason,
                           until=body.until)
    return JSON(ack.to_dict())


@router.delete("/findings/{key}/ack", dependencies=[Depends(require(*ACK_ROLES))])
def unacknowledge(key: str, request: Request) -> dict:
    """Revoke a finding's active acknowledgement (recorded with the token's e-mail); 404
    when it has none."""
    actor = acting_as(request, None, "actor")
    return JSON(acks.unacknowledge(store_of(request), key, actor=actor).to_dict())


router.include_router(finding_events.router)  # GET /findings/events
