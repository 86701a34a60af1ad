"""``modelward promote request|approve|list|show``: promotions with real gates."""

from __future__ import annotations

import typer

from ..display import plural, short_digest
from ..ledger import promotions as ledger_promotions
from ..registry import promotion
from ..registry.promotion import Evaluation, GateFailure
from ..timefmt import iso
from ._common import JSON_OPTION, identity, opened, out, print_json
from ._group import typer_app

promote_app = typer_app(help="Promote a digest to an alias through gates: a reviewer of "
                          "record who opened fresh evidence on exactly that digest.",
                          no_args_is_help=True)
AS = typer.Option(None, "--as", help="Your e-mail (as in the roster); default "
                  "MODELWARD_ACTOR, `actor` in modelward.toml, or git's user.email.")


def _print(lines: list[str]) -> None:
    out.print("\n".join(lines))


def _gate_lines(failures: list[GateFailure] | list[dict], indent: str = "  ") -> list[str]:
    pairs = [(f.gate, f.message) if isinstance(f, GateFailure) else (f["gate"], f["message"])
             for f in failures]
    return [f"{indent}{gate:<9}  {message}" for gate, message in pairs]


@promote_app.command("request")
def request_cmd(
    alias: str = typer.Argument(..., help="The alias to move, e.g. chat/v1."),
    digest: str = typer.Argument(..., help="sha256: digest of the registered artifact."),
    requester: str = AS,
    evidence: str = typer.Option(None, "--evidence", help="The eval run backing it (default: "
                                 "the latest completed task eval run on this digest when it "
                                 "is approved)."),
    reason: str = typer.Option(None, "--reason", help="Why (kept with the alias move)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """File a request to point ALIAS at DIGEST; a reviewer of record approves it."""
    requester = identity(requester, "--as")
    with opened() as store:
        req = promotion.request(store, alias, digest, requester, evidence_run_id=evidence,
                                reason=reason)
        with store.read() as conn:
            what = promotion.label(conn, req.digest)
    if as_json:
        print_json(req.to_dict())
        return
    lines = [f"request    {req.id}", f"promote    {req.alias} -> {what}",
             f"requested  {iso(req.requested_at)} by {req.requester}"]
    if req.reason:
        lines.append(f"reason     {req.reason}")
    lines.append("evidence   " + (f"eval run {req.evidence_run_id}" if req.evidence_run_id else
                                  "the latest completed task eval run on this digest, when "
                                  "approved"))
    lines.append(f"approve with `modelward promote approve {req.id} --as REVIEWER`")
    _print(lines)


@promote_app.command("approve")
def approve_cmd(
    request_id: str = typer.Argument(..., help="The request id (`modelward promote list`)."),
    approver: str = AS,
    override: bool = typer.Option(False, "--override", help="Approve despite failed gates "
                                  "(recorded, and reported by MW203); needs --reason."),
    reason: str = typer.Option(None, "--reason", help="Why the gates may be overridden."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Judge every gate and, when all pass (or --override), move the alias.

    Exit 0 when approved, 1 when refused (each failed gate on its own line, the refusal
    recorded), 2 on bad input."""
    approver = identity(approver, "--as")
    with opened() as store:
        res = promotion.approve(store, request_id, approver, override=override, reason=reason)
        with store.read() as conn:
            what = promotion.label(conn, res.evaluation.request.digest)
    if as_json:
        print_json(res.to_dict())
    else:
        _print(_approval_lines(res, what, override))
    if res.outcome == "refused":
        raise typer.Exit(1)


def _approval_lines(res, what: str, override: bool) -> list[str]:
    ev, req = res.evaluation, res.evaluation.request
    target = f"{req.alias} -> {what} (request {req.id})"
    if res.outcome == "refused":
        n = len(ev.failures)
        return [f"refused: {ev.approver} cannot approve {target}; "
                f"{plural(n, 'gate')} failed:", *_gate_lines(ev.failures),
                f"recorded as review {res.review.id}; fix the gates, or approve despite them "
                "with --override --reason TEXT"]
    lines = [("approved with an override" if res.outcome == "overridden" else "approved")
             + f": {target} by {ev.approver}"]
    if ev.evidence is not None:
        lines.append(f"evidence   eval run {ev.evidence.id}"
                     + (f", opened {iso(ev.opened_at)}" if ev.opened_at else ""))
    if res.outcome == "overridden":
        lines += ["overridden", *_gate_lines(ev.failures),
                  f"reason     {res.review.override_reason}"]
    elif override:
        lines.append("every gate passed; --override was not needed")
    lines.append(f"alias      {req.alias} moved (alias event {res.event.id}, kind promote)")
    return lines


@promote_app.command("list")
def list_cmd(
    status: str = typer.Option(None, "--status", help="pending, approved, overridden or "
                               "withdrawn."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Promotion requests, newest first."""
    with opened() as store, store.read() as conn:
        found = ledger_promotions.list_requests(conn, status=status)
    if as_json:
        print_json([r.to_dict() for r in found])
        return
    if not found:
        _print(["no promotion requests" + (f" are {status}" if status else "")])
        return
    _print([f"{r.id}  {r.status:<10}  {iso(r.requested_at)}  {r.alias} -> "
            f"{short_digest(r.digest)}  by {r.requester}" for r in found])


@promote_app.command("show")
def show_cmd(
    request_id: str = typer.Argument(..., help="The request id."),
    approver: str = typer.Option(None, "--as", help="Also judge every gate for this approver "
                                 "now (records nothing)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """A request, its reviews (refusals with their failed gates, approvals, overrides) and
    what MW203 finds in its approval."""
    with opened() as store:
        found = promotion.detail(store, request_id, approver)
    if as_json:
        print_json(found.to_dict())
        return
    req, reviews, default, gates = (found.request, found.reviews, found.default_evidence,
                                    found.gates)
    what = found.label
    lines = [f"request    {req.id}", f"promote    {req.alias} -> {what}",
             f"status     {req.status}",
             f"requested  {iso(req.requested_at)} by {req.requester}"]
    if req.reason:
        lines.append(f"reason     {req.reason}")
    granted = next((r for r in reviews if r.outcome != "refused"), None)
    if req.evidence_run_id:
        evidence = f"eval run {req.evidence_run_id}"
    elif granted is not None:
        evidence = (f"eval run {granted.evidence_run_id} (the latest completed task eval run "
                    "on this digest when approved)" if granted.evidence_run_id else "none")
    else:
        evidence = ("the latest completed task eval run on this digest, when approved (now "
                    + (f"eval run {default.id})" if default else "none)"))
    lines.append(f"evidence   {evidence}")
    lines.append("reviews" + ("" if reviews else "    none"))
    for r in reviews:
        line = f"  {iso(r.at)}  {r.outcome:<10}  {r.approver}"
        if r.failed_gates:
            line += f"  failed: {', '.join(r.gates)}"
        if r.override_reason:
            line += f"  reason: {r.override_reason}"
        if r.alias_event_id is not None:
            line += f"  alias event {r.alias_event_id}"
        lines.append(line)
    if found.rubber_stamp:
        lines += ["rubber stamp (MW203)", *[f"  {p['message']}" for p in found.rubber_stamp]]
    if gates is not None:
        lines += _preview_lines(gates)
    _print(lines)


def _preview_lines(ev: Evaluation) -> list[str]:
    if ev.passed:
        return [f"gates for {ev.approver} now: every gate passes"]
    return [f"gates for {ev.approver} now: {len(ev.failures)} failed",
            *_gate_lines(ev.failures)]


def register(app: typer.Typer) -> None:
    app.add_typer(promote_app, name="promote")
