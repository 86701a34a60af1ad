"""Promotion requests with their evidence. Opening the evidence from the dashboard is a
POST that records an open (``ledger.promotions.record_open``, via ``dashboard``) for the
logged-in token's e-mail: the approval gate asks whether the approver opened the eval."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse
from markupsafe import Markup

from ...errors import ValidationError
from ...ledger import evals as ledger_evals
from ...ledger import people
from ...ledger import promotions as ledger_promotions
from ...registry import promotion
from ...timefmt import now_us
from . import charts
from ._base import env, labels, page, store_of, when


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
    events = timeline_events(req, reviews, opens, run_id)
    chart = timeline_chart(events, req.digest)
    return "promotion.html", {"req": req, "reviews": reviews, "run": run, "why": why,
                              "opens": opens, "names": names, "gates": gates,
                              "stamps": stamps, "chart": chart, "events": events,
                              "now": now_us(),
                              "run_ids": [run_id] + [r.evidence_run_id for r in reviews]}


LANES = ("request", "opens", "reviews", "approval")
MIN_SPAN = 10 * 60 * 1_000_000  # a request decided in seconds still gets a readable axis


def timeline_events(req, reviews, opens, run_id) -> list[dict]:
    """The request's events in time order: its filing, each open of its evidence, each
    review (a refusal, or the approval that moved the alias): {at, lane, cls, what, who,
    run}."""
    out = [{"at": req.requested_at, "lane": "request", "cls": "request", "what": "requested",
            "who": req.requester, "run": req.evidence_run_id}]
    out += [{"at": at, "lane": "opens", "cls": "open", "what": f"opened the evidence ({via})",
             "who": email, "run": run_id} for email, at, via in opens]
    for r in reviews:
        approved = r.outcome in ("approved", "overridden")
        what = {"approved": "approved", "overridden": "approved with an override",
                "refused": "refused"}.get(r.outcome, r.outcome)
        if r.failed_gates:
            what += f" ({', '.join(r.gates)})"
        out.append({"at": r.at, "lane": "approval" if approved else "reviews",
                    "cls": "approval" if approved else "review", "what": what,
                    "who": r.approver, "run": r.evidence_run_id or run_id})
    out.sort(key=lambda e: e["at"])
    for e in out:
        e["after"] = e["at"] - req.requested_at
    return out


def run_links(text, run_ids) -> Markup:
    """``text`` escaped, each of ``run_ids`` in it a link to its eval run page (a gate's or
    MW203's message names the run it judged)."""
    out = charts.escape(text)
    for rid in sorted({r for r in run_ids if r}, key=len, reverse=True):
        safe = str(charts.escape(rid))
        out = Markup(str(out).replace(
            safe, f'<a class="run-link" href="/evals/{quote(rid, safe="")}">{safe}</a>'))
    return out


def elapsed(us: int) -> str:
    """A time after the request, to the two largest units: ``at filing``, ``+45s``,
    ``+4m 10s``, ``+2d 3h``."""
    secs = round(us / 1e6)
    if secs <= 0:
        return "at filing"
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if secs >= size or parts:
            parts.append(f"{secs // size}{unit}")
            secs %= size
    return "+" + " ".join(p for p in parts[:2] if not p.startswith("0") or p == parts[0])


env.filters.update(run_links=run_links, elapsed=elapsed)


def timeline_chart(events: list[dict], digest: str):
    """One lane per kind of event, each event a mark; the axis spans the events (from the
    request to the last of them, at least ten minutes), so an approval four minutes after
    the request is four minutes away, not a pixel at the end of "until now"."""
    t0, t1 = events[0]["at"], events[-1]["at"]
    short = max(MIN_SPAN - (t1 - t0), 0) // 2  # widen a short span on both sides
    t0, t1 = t0 - short, t1 + short
    pad = (t1 - t0) // 20
    rows = []
    for lane in LANES:  # every lane, even empty: "nobody opened it" shows as a blank lane
        mine = [e for e in events if e["lane"] == lane]
        rows.append({"label": lane, "points": [{
            "at": e["at"], "cls": e["cls"], "title": f"{when(e['at'])}: {e['who']} {e['what']}"}
            for e in mine]})
    first, last = events[0], events[-1]
    rows[0]["spans"] = [{"start": first["at"], "end": last["at"], "cls": "span pending",
                         "color": charts.color_of(digest),
                         "title": f"{when(first['at'])} – {when(last['at'])}"}]
    return charts.lanes(rows, t0 - pad, t1 + pad, label="the request: filed, opens of its "
                        "evidence, reviews and the approval", lane_h=34, width=720,
                        left=90)


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
