"""/api/v1/findings: the guards over the ledger, as ``modelward check --format json``."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request

from ...guards import run
from ...timefmt import now_us
from ..auth import READ, require
from ._common import query_time, store_of

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
) -> dict:
    """Run the selected guards: the same report ``modelward check --format json`` prints,
    plus ``exit_code`` (0 clean, 1 a finding reaches fail_on)."""
    store = store_of(request)
    now = now_us()
    report = run(store, store.settings, select=select, ignore=ignore, fail_on=fail_on,
                 since=query_time(since, "since", now), now=now)
    return {**report.to_dict(), "exit_code": report.exit_code()}
