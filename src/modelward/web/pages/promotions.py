"""Promotion requests with their evidence. Opening the evidence from the dashboard is a
POST that records an open (``ledger.promotions.record_open``, via ``dashboard``) for the
logged-in token's e-mail: the approval gate asks whether the approver opened the eval."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse

from ...errors import ValidationError
from ...ledger import evals as ledger_evals
from ...ledger import people
from ...ledger import promotions as ledger_promotions
from ...registry import promotion
from ...timefmt import now_us
from . import charts
from ._base import labels, page, store_of, when


@page("/promotions")
def promotions_page(request: Request, status: str | None = None):
    with store_of(request).read() as conn:
        found = ledger_promotions.list_requests(conn, status=status or None)
        names = labels(conn, {r.digest for r in found})
    return "promotions.html", {"requests": found, "names": names, "status": status or ""}


@page("/promotions/{request_id}")
def promotion_page(request: Request, request_id: str):
    store, token = store_of(request), request.state.token
    found = promotion.detail(store, request_id, token.email)
    req, reviews, stamps, gates = found.request, found.reviews, found.rubber_stamp, found.gates
    run_id = found.evidence_run_id
    why = ("named by the request" if req.evidence_run_id else
           "the latest completed task run on the digest" if run_id else "")
    with store.read() as conn:
        run = ledger_evals.get_run(conn, run_id) if run_id else None
        opens = ledger_promotions.opens(conn, run_id) if run_id else []
        names = labels(conn, {req.digest, run.model_digest if run else None,
                              run.prompt_digest if run else None})
    marks = [{"at": at, "cls": "open", "title": f"{email} opened the evidence ({via}) at "
                                                 f"{when(at)}"} for email, at, via in opens]
    marks += [{"at": r.at, "cls": "review", "title": f"{r.approver}: {r.outcome} at "
               f"{when(r.at)}"} for r in reviews]
    t1 = max([now_us()] + [m["at"] for m in marks])
    chart = charts.lanes(
        [{"label": "request", "spans": [{"start": req.requested_at, "end": t1,
                                         "color": charts.color_of(req.digest),
                                         "title": f"requested by {req.requester} at "
                                                  f"{when(req.requested_at)}"}],
          "points": marks}],
        req.requested_at - max((t1 - req.requested_at) // 20, 1), t1,
        label="the request: opens of its evidence and reviews", lane_h=34)
    return "promotion.html", {"req": req, "reviews": reviews, "run": run, "why": why,
                              "opens": opens, "names": names, "gates": gates,
                              "stamps": stamps, "chart": chart}


@page("/promotions/{request_id}/evidence", methods=("POST",))
def open_evidence(request: Request, request_id: str):
    """Record that the logged-in token's holder opened the evidence, then show it."""
    token = request.state.token
    if not token.email:
        raise ValidationError("this token carries no e-mail, so an open cannot be recorded "
                              "for anybody", field="token",
                              hint="log in with `modelward login-url --email you@…`")
    email = people.check_email(token.email, "token")
    store = store_of(request)
    with store.write() as conn:
        req = ledger_promotions.get_request(conn, request_id)
        default = (promotion.select_evidence(conn, req.digest, now_us())
                   if req.evidence_run_id is None else None)
        run_id = req.evidence_run_id or (default.id if default else None)
        if run_id is None:
            raise ValidationError(f"request {req.id} has no evidence to open",
                                  field="evidence_run_id")
        ledger_promotions.record_open(conn, run_id, email, via="dashboard", token_id=token.id)
    return RedirectResponse(f"/evals/{run_id}?request={req.id}", 303)


@page("/evals/{run_id}")
def eval_page(request: Request, run_id: str, request_id: str | None = None):
    with store_of(request).read() as conn:
        run = ledger_evals.get_run(conn, run_id)
        opens = ledger_promotions.opens(conn, run_id)
        names = labels(conn, {run.model_digest, run.prompt_digest, run.evalset_digest})
    scorers = run.summary.get("scorers") or {}
    rows = [{"label": name, "value": float(s.get("pass_rate") or s.get("mean") or 0.0),
             "color": charts.GOOD, "key": name}
            for name, s in scorers.items() if isinstance(s, dict)]
    if run.summary.get("pass_rate") is not None:
        rows.insert(0, {"label": "overall pass rate", "value": float(run.summary["pass_rate"]),
                        "color": charts.PALETTE[0], "key": "overall"})
    chart = charts.bars(rows, label="scores of this eval run", fmt=lambda v: f"{v:.2f}") \
        if rows else None
    mine = [o for o in opens if o[0] == (request.state.token.email or "").lower()]
    return "eval.html", {"run": run, "opens": opens, "names": names, "chart": chart,
                         "mine": mine, "request_id": request.query_params.get("request")}
