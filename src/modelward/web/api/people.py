"""/api/v1/people: the roster owners and reviewers are judged against (``modelward people
list``). Syncing the roster stays a CLI command."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request

from ...ledger import people as ledger_people
from ..auth import READ, require
from ._common import JSON, store_of

router = APIRouter(tags=["people"])


@router.get("/people", dependencies=[Depends(require(*READ))])
def list_people(request: Request, status: Literal["active", "left"] | None = None) -> list[dict]:
    """Everyone in the roster: e-mail, name, status, team."""
    with store_of(request).read() as conn:
        return JSON([p.to_dict() for p in ledger_people.list_people(conn, status)])
