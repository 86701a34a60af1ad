"""``modelward audit DECISION_ID``: the full account of one decision."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer

from ..display import inert
from ..errors import ValidationError
from ..registry.audit import AuditReport, audit_decision
from ..timefmt import iso
from ._common import JSON_OPTION, opened, out, print_json

_ALARMS = (" DISAGREES ", " DID NOT EXIST ", "payload MISSING", "payload CORRUPT", "RETIRED at",
           "chain     BROKEN", "links on  BROKEN", "head      DOES NOT", "ALTERED")


def audit_cmd(
    decision_id: str = typer.Argument(..., help="The decision's id (a UUID)."),
    quick: bool = typer.Option(False, "--quick", help="Check payloads for presence and size "
                               "only instead of rehashing them."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Rehash every payload and the whole "
                                  "chain block even if a recent verification is cached."),
    head: Path | None = typer.Option(None, "--head", help="A chain head exported earlier "
                                     "(`modelward chain head`): prove it covers this record."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Which artifacts produced a decision, whether that matches the alias at that moment,
    whether their payloads are still retained, and whether the record verifies. Exit 0 for
    any report (problems included); 2 for an unknown id."""
    exported = None
    if head is not None:
        try:
            exported = orjson.loads(head.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ValidationError(f"cannot read an exported head from {head}: {exc}",
                                  field="--head") from None
    with opened() as store:
        report = audit_decision(store, decision_id, verify_payloads=not quick,
                                use_cache=not no_cache, head=exported)
    if as_json:
        print_json(report.to_dict())
    else:
        for line in render(report):
            # on a terminal the problems stand out; piped output is plain text
            alarm = line.startswith(("PROBLEMS", "  ! ")) or any(
                word in line for word in _ALARMS)
            out.print(inert(line), style="bold red" if alarm else None)


def render(r: AuditReport) -> list[str]:
    """The report as lines of text, problems first."""
    d = r.decision
    lines = [f"decision  {d.id}",
             f"at        {iso(d.at)} (recorded {iso(d.recorded_at)})"]
    if d.process or d.subject:
        lines.append(f"by        process {d.process or '-'}, subject {d.subject or '-'}")
    if r.problems:
        lines.append(f"PROBLEMS  {len(r.problems)}")
        lines += [f"  ! {p['message']}" for p in r.problems]
    else:
        lines.append("problems  none")
    lines.append(_alias_line(r))
    if not r.digests:
        lines.append("digests   none recorded")
    for x in r.digests:
        head = f"{x.field:<9} {x.digest}"
        if x.alias_digest is not None:
            head += ("  (matches the alias)" if x.alias_digest == x.digest
                     else f"  DISAGREES with the alias ({x.alias_digest})")
        lines.append(head)
        a = x.artifact
        if a is None:
            lines.append("          not registered")
            continue
        meta = f"          {_label(a)}"
        if a.owner:
            meta += f", owner {a.owner}"
        lines.append(meta + f", registered {iso(a.created_at)}")
        if a.parents:
            lines.append("          parents " + ", ".join(f"{p} ({rel})" for p, rel in a.parents))
        lines.append(f"          payload {x.payload.describe()}")
    if d.vendor_model_id or d.vendor_fingerprint:
        lines.append(f"vendor    model id {d.vendor_model_id or '-'}, fingerprint "
                     f"{d.vendor_fingerprint or '-'}")
    lines.append(f"text      {_text(r.text)}")
    lines.append(f"chain     {_chain(r)}")
    c = r.chain
    if c.verifies and c.links:
        lines.append(f"links on  BROKEN: {c.forward}" if c.forward else
                     f"links on  to block {c.newest}, signed checkpoint {c.checkpoint['number']}"
                     if c.checkpoint is not None else
                     f"links on  to the newest block ({c.newest})" if c.newest != c.block else
                     "links on  this is the newest block")
    if c.head is not None:
        lines.append(f"head      DOES NOT cover this record: {'; '.join(c.head['problems'])}"
                     if c.head["problems"] else
                     f"head      the exported head (block {c.head['blocks']}) covers this record")
    return lines


def _alias_line(r: AuditReport) -> str:
    a = r.alias
    if a is None:
        return "alias     none recorded"
    if a.state == "unknown":
        return f"alias     {a.name}: never set in this ledger"
    if a.state == "invalid":
        return f"alias     {a.name!r}: not a valid alias name"
    if a.state == "not-yet":
        return (f"alias     {a.name} DID NOT EXIST at {iso(r.decision.at)} "
                f"(first set {iso(a.first_set)})")
    t = a.target
    what = a.artifact_kind if t is None else _label(t)
    return (f"alias     {a.name} pointed at {a.digest} ({what}) at that moment, "
            f"since {iso(a.since)} ({a.event_kind})")


def _label(a) -> str:
    return f"{a.kind} {a.name}@{a.version}" if a.version else f"{a.kind} {a.name}"


def _text(t: dict) -> str:
    if t["status"] == "erased":
        return f"erased at {iso(t['erased_at'])}"
    if t["status"] == "none":
        return "none kept"
    kept = [k for k in ("input", "output") if t[k]]
    text = "kept (" + " and ".join(kept) + ")" if kept else "kept (empty)"
    if t.get("altered"):
        text += ", " + " and ".join(t["altered"]) + " ALTERED since recorded"
    if t.get("unverifiable"):
        text += ", " + " and ".join(t["unverifiable"]) + " UNVERIFIABLE (the subject's key is gone)"
    return text


def _chain(r: AuditReport) -> str:
    c = r.chain
    if not (c.verifies and c.links):
        return f"BROKEN: block {c.block}: {c.problem}"
    prev = f"block {c.block - 1}" if c.block > 1 else "the genesis root"
    text = f"block {c.block} verifies and links to {prev}"
    if c.how == "proof":
        return text + (f" (decision proven against the sealed root; whole block recomputed "
                       f"at {iso(c.verified_at)})")
    return text + " (whole block recomputed now)"


def register(app: typer.Typer) -> None:
    app.command("audit")(audit_cmd)
