"""Audit one decision: what produced it, whether that agrees with the alias at that moment,
whether every payload is still there, and whether its record is what the chain sealed.

:func:`audit_decision` backs ``modelward audit``, guards and the HTTP API alike. It reads
the database once (one connection, a handful of indexed lookups), then checks payload files
outside the transaction: a multi-GB rehash must not hold a read snapshot open.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UnknownAliasError, UnknownDecisionError, ValidationError
from ..ids import decision_id as checked_decision_id
from ..ledger import aliases as ledger_aliases
from ..ledger import artifacts as ledger_artifacts
from ..ledger import chain as ledger_chain
from ..ledger import checkpoints, heads, proofs, subject_keys
from ..ledger import decisions as ledger_decisions
from ..ledger.artifacts import Artifact
from ..ledger.decisions import DIGEST_FIELDS, KIND_FIELD, Decision
from ..timefmt import iso, now_us
from . import archive
from .hosted import served_mismatch
from .payloads import PayloadCheck, check_payload
from .verification import cache_for

# The artifact kinds each digest field may name (a policy can serve as the config).
FIELD_KINDS = {"model_digest": ("model", "adapter"), "prompt_digest": ("prompt",),
               "embedder_digest": ("embedder",), "reranker_digest": ("reranker",),
               "config_digest": ("config", "policy")}


@dataclass
class AliasAudit:
    """What the alias asked for pointed to at the decision's time. ``state``: "resolved",
    "not-yet" (first set after the decision), "unknown" (never set) or "invalid" (not an
    alias name). ``verdict`` compares the matching recorded digest: "agrees", "disagrees",
    "not-recorded" or "not-comparable" (the target's kind is not a decision field)."""

    name: str
    state: str
    digest: str | None = None
    since: int | None = None
    event_id: int | None = None
    event_kind: str | None = None
    artifact_kind: str | None = None
    first_set: int | None = None
    field: str | None = None
    verdict: str | None = None
    recorded_held: tuple[int, int | None] | None = None  # when the alias held the recorded digest
    target: Artifact | None = None  # the artifact it pointed at

    def to_dict(self) -> dict:
        held, t = self.recorded_held, self.target
        return {"name": self.name, "state": self.state, "digest": self.digest,
                "target": None if t is None else {"kind": t.kind, "name": t.name,
                                                  "version": t.version},
                "since": iso(self.since), "event_id": self.event_id,
                "event_kind": self.event_kind, "artifact_kind": self.artifact_kind,
                "first_set": iso(self.first_set), "field": self.field, "verdict": self.verdict,
                "recorded_digest_held": None if held is None else
                {"from": iso(held[0]), "until": iso(held[1])}}


@dataclass
class DigestAudit:
    """One recorded digest, its registration and its payload."""

    field: str
    digest: str
    artifact: Artifact | None
    payload: PayloadCheck | None
    alias_digest: str | None = None  # set on the field compared with the alias
    kind_mismatch: str | None = None  # the registered kind, when it does not fit the field

    def to_dict(self) -> dict:
        a = self.artifact
        return {"field": self.field, "digest": self.digest, "registered": a is not None,
                "artifact": None if a is None else {
                    "kind": a.kind, "name": a.name, "version": a.version, "owner": a.owner,
                    "created_at": iso(a.created_at),
                    "parents": [{"digest": d, "relation": r} for d, r in a.parents]},
                "payload": None if self.payload is None else self.payload.to_dict(),
                "alias_digest": self.alias_digest,
                "agrees_with_alias": None if self.alias_digest is None
                else self.alias_digest == self.digest,
                "kind_mismatch": self.kind_mismatch}


@dataclass
class AuditReport:
    decision: Decision
    alias: AliasAudit | None
    digests: list[DigestAudit]
    text: dict
    chain: proofs.BlockCheck
    payload_mode: str
    problems: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        d = self.decision
        c = self.chain
        return {
            "decision": {"id": d.id, "at": iso(d.at), "recorded_at": iso(d.recorded_at),
                         "alias": d.alias, "subject": d.subject, "process": d.process,
                         "block": d.block, "pos": d.pos},
            "ok": self.ok,
            "problems": self.problems,
            "alias": None if self.alias is None else self.alias.to_dict(),
            "digests": [x.to_dict() for x in self.digests],
            "vendor": {"model_id": d.vendor_model_id, "fingerprint": d.vendor_fingerprint},
            "text": {**self.text, "erased_at": iso(self.text["erased_at"])},
            "chain": {"block": c.block, "verifies": c.verifies, "links": c.links,
                      "problem": c.problem, "how": c.how, "verified_at": iso(c.verified_at),
                      "newest_block": c.newest, "links_forward": c.forward is None,
                      "forward_problem": c.forward, "head": c.head,
                      "checkpoint": c.checkpoint},
            "payload_mode": self.payload_mode,
        }


def audit_decision(store, decision_id: str, *, verify_payloads: bool = True,
                   use_cache: bool = True, now: int | None = None,
                   head: dict | None = None) -> AuditReport:
    """Everything a reviewer needs about one decision (see docs/audit.md).

    ``verify_payloads=False`` checks payload presence and size only; ``use_cache=False``
    rehashes every payload and the whole chain block even when a recent verification of
    unchanged files is cached. The record is proven up to the newest block: its block is
    recomputed, every later block must link to the one before (up to the oldest signed
    checkpoint covering it, whose root must still be its block's, when there is one), and ``head`` (a chain head
    exported earlier, ``modelward chain head``) must be this ledger's and cover the block."""
    decision_id = checked_decision_id(decision_id, "decision_id")
    now = now_us() if now is None else now
    cache = cache_for(store, now, enabled=use_cache)
    with store.read() as conn:
        try:
            d = ledger_decisions.get(conn, decision_id)
            archived = None
        except UnknownDecisionError:
            archived = archive.find(conn, decision_id)  # moved to a Parquet file?
            if archived is None:
                raise
            d = archived.decision
        text_row = ledger_decisions.payload(conn, decision_id) if archived is None else None
        # the key of keyed digests: only needed to re-hash kept text
        key = (subject_keys.key_for(conn, d.subject) if text_row is not None and (
            subject_keys.is_keyed(d.input_digest) or subject_keys.is_keyed(d.output_digest))
            else None)
        alias = _alias_at(conn, d) if d.alias else None
        recorded = [(f[:-7], getattr(d, f)) for f in DIGEST_FIELDS if getattr(d, f)]
        found = ledger_artifacts.find_many(
            conn, {dig for _f, dig in recorded} | {alias.digest if alias else None})
        if archived is None:
            chain_check = proofs.check_block(conn, d.block, d.id, d.pos, store.paramstyle,
                                             kept=cache.block(d.block), at=now)
        else:
            chain_check = proofs.BlockCheck(
                d.block, archived.verifies, ledger_chain.links_into(conn, d.block),
                archived.problem, "archive " + archived.file)
        keys = heads.keys_from(store.settings)
        anchor, anchor_problem = checkpoints.covering(conn, keys, d.block)
        chain_check.newest, chain_check.forward = ledger_chain.links_forward(
            conn, d.block, until=anchor.block if anchor is not None else None)
        if anchor is not None:
            chain_check.checkpoint = anchor.to_dict()
            chain_check.forward = chain_check.forward or anchor_problem
        if head is not None:
            chain_check.head = {"blocks": head.get("blocks"),
                                "problems": heads.head_covers(conn, head, d.block, keys)}
    if chain_check.kept is not None:
        cache.put_block(d.block, chain_check.kept)
    elif not (chain_check.verifies and chain_check.links):
        cache.drop_block(d.block)
    digests = []
    for name, dig in recorded:
        art = found.get(dig)
        item = DigestAudit(name, dig, art, None if art is None else check_payload(
            store, art, verify=verify_payloads, cache=cache, now=now))
        if art is not None and art.kind not in FIELD_KINDS[f"{name}_digest"]:
            item.kind_mismatch = art.kind
        if alias is not None and alias.field == f"{name}_digest":
            item.alias_digest = alias.digest
        digests.append(item)
    if alias is not None and alias.digest:
        alias.target = found.get(alias.digest)
    if alias is not None and alias.state == "resolved":
        alias.verdict = verdict(d, alias.digest, alias.artifact_kind)
    report = AuditReport(d, alias, digests, _text(text_row, d, key), chain_check,
                         "full" if verify_payloads else "quick")
    report.problems = _problems(report)
    return report


def verdict(d: Decision, target: str, artifact_kind: str | None) -> str:
    """Whether decision ``d`` agrees with ``target``, the digest (of kind ``artifact_kind``)
    its alias pointed at at ``d.at``: the recorded digest of the field that kind fills is
    compared. "agrees", "disagrees", "not-recorded" (that field is empty) or
    "not-comparable" (the kind fills no decision field). The audit and the decisions list
    both judge here."""
    field = KIND_FIELD.get(artifact_kind) if artifact_kind else None
    if field is None:
        return "not-comparable"
    held = getattr(d, field)
    return "not-recorded" if held is None else "agrees" if held == target else "disagrees"


def _alias_at(conn, d: Decision) -> AliasAudit:
    try:
        res = ledger_aliases.resolve_at(conn, d.alias, d.at)
    except ValidationError:
        return AliasAudit(d.alias, "invalid")
    except UnknownAliasError:
        events = _history(conn, d.alias)
        if not events:
            return AliasAudit(d.alias, "unknown")
        return AliasAudit(d.alias, "not-yet", first_set=events[0].at)
    audit = AliasAudit(d.alias, "resolved", res.digest, res.since, res.event_id, res.kind,
                       res.artifact_kind, field=KIND_FIELD.get(res.artifact_kind))
    if audit.field and getattr(d, audit.field) not in (None, res.digest):
        audit.recorded_held = _held(_history(conn, d.alias), getattr(d, audit.field), d.at)
    return audit


def _history(conn, alias: str):
    try:
        return ledger_aliases.history(conn, alias)
    except UnknownAliasError:
        return []


def _held(events, digest: str, before: int) -> tuple[int, int | None] | None:
    """The latest span, starting at or before ``before``, in which the alias held ``digest``."""
    span = None
    for i, e in enumerate(events):
        if e.at > before:
            break
        if e.digest == digest:
            until = events[i + 1].at if i + 1 < len(events) else None
            span = (e.at, until)
    return span


def _text(row, d: Decision, key: bytes | None = None) -> dict:
    """What text is kept, and whether it still hashes to the chained digests (the text is
    not chained, its digest is: an edited text shows here). A keyed digest whose subject
    key is gone cannot be checked: that text is ``unverifiable``, not altered."""
    if row is None:
        return {"status": "none", "erased_at": None, "input": False, "output": False,
                "altered": [], "unverifiable": []}
    m = row._mapping
    if m["erased_at"] is not None:
        return {"status": "erased", "erased_at": m["erased_at"], "input": False,
                "output": False, "altered": [], "unverifiable": []}
    checks = text_checks(m, d, key)
    return {"status": "kept", "erased_at": None, "input": m["input_text"] is not None,
            "output": m["output_text"] is not None,
            "altered": [name for name, ok in checks.items() if ok is False],
            "unverifiable": [name for name, ok in checks.items() if ok is None]}


def text_checks(m, d: Decision, key: bytes | None) -> dict[str, bool | None]:
    """For each kept text ("input", "output"): whether it hashes to the decision's chained
    digest (None: the digest is keyed and the subject's key is gone)."""
    return {name: subject_keys.text_matches(text, digest, key)
            for name, text, digest in (("input", m["input_text"], d.input_digest),
                                       ("output", m["output_text"], d.output_digest))
            if text is not None}


def _problems(r: AuditReport) -> list[dict]:
    """What a reviewer must look at, most serious first; each with a stable code."""
    out: list[dict] = []
    d, a, at = r.decision, r.alias, iso(r.decision.at)
    if not (r.chain.verifies and r.chain.links):
        out.append({"code": "chain-broken", "message": f"chain block {r.chain.block} fails "
                    f"verification: {r.chain.problem}; this record may have been altered"})
    elif r.chain.forward is not None:
        out.append({"code": "chain-broken", "message": f"the chain from block {r.chain.block} "
                    f"to the newest block ({r.chain.newest}) is broken: {r.chain.forward}; "
                    "this record may have been altered and re-sealed"})
    if r.chain.head is not None and r.chain.head["problems"]:
        out.append({"code": "head-mismatch", "message": "the exported head does not vouch "
                    "for this record: " + "; ".join(r.chain.head["problems"])})
    for name in r.text.get("altered", []):
        digest = getattr(d, f"{name}_digest")
        out.append({"code": "text-altered", "message": f"the kept {name} text does not hash "
                    f"to the chained {name}_digest {digest}: it was changed after it was "
                    "recorded"})
    for name in r.text.get("unverifiable", []):
        out.append({"code": "text-unverifiable", "message": f"the kept {name} text cannot be "
                    f"checked: its chained {name}_digest is keyed and the key of subject "
                    f"{d.subject!r} is gone (destroyed by an erasure, or lost)"})
    if a is not None:
        if a.verdict == "disagrees":
            recorded = getattr(d, a.field)
            msg = (f"{a.field[:-7]} digest {recorded} is NOT what {a.name} pointed to at {at} "
                   f"({a.digest})")
            if a.recorded_held:
                start, end = a.recorded_held
                msg += (f"; {a.name} pointed at the recorded digest from {iso(start)}"
                        + (f" until {iso(end)}" if end else ""))
            out.append({"code": "alias-disagrees", "message": msg})
        elif a.verdict == "not-recorded":
            out.append({"code": "alias-digest-not-recorded", "message":
                        f"{a.name} pointed at a {a.artifact_kind} at {at}, but the decision "
                        f"records no {a.field[:-7]} digest"})
        elif a.state == "not-yet":
            out.append({"code": "alias-not-yet", "message": f"alias {a.name} did not exist at "
                        f"{at}; it was first set at {iso(a.first_set)}"})
        elif a.state in ("unknown", "invalid"):
            out.append({"code": "alias-unknown", "message": f"alias {a.name} was never set in "
                        "this ledger" if a.state == "unknown" else
                        f"{a.name!r} is not a valid alias name"})
    # the vendor-reported model id belongs to the call's model, else to its embedder
    primary = next((x for f in ("model", "embedder") for x in r.digests if x.field == f), None)
    if primary is not None and served_mismatch(primary.artifact, d.vendor_model_id):
        out.append({"code": "vendor-served-other", "message":
                    f"{primary.field} {primary.artifact.hosted_id} is recorded, but the vendor "
                    f"reported serving {d.vendor_model_id}: this decision did not run on the "
                    "model it names"})
    for x in r.digests:
        if x.artifact is None:
            out.append({"code": "unregistered", "message": f"{x.field} digest {x.digest} is "
                        "not a registered artifact"})
            continue
        if x.kind_mismatch:
            out.append({"code": "kind-mismatch", "message": f"{x.field} digest {x.digest} is "
                        f"registered as a {x.kind_mismatch}"})
        p = x.payload
        if p is not None and not p.ok:
            code = "vendor-retired" if p.status == "vendor" else f"payload-{p.status}"
            out.append({"code": code, "message": f"{x.field} {x.digest}: payload "
                        f"{p.describe()}"})
    return out
