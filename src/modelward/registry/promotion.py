"""Promotions with real gates.

``request`` files a promotion of a digest to an alias; ``approve`` judges it with
:func:`evaluate`, the one function that checks every gate and returns every failure (the
CLI, the guards and the API all call it, so they cannot disagree). The gates, by the
stable names recorded in ``promotion_reviews.failed_gates`` and in the alias event:

``reviewer``   the approver is a reviewer of record of the alias;
``roster``     the approver is active in the roster;
``requester``  the approver did not file the request;
``evidence``   there is evidence: the request's eval run, else the latest completed task
               eval run on exactly this digest (one on a non-deprecated eval set first);
``opened``     the approver opened that run (``modelward eval show RUN --as EMAIL``);
``fresh``      it finished within ``evidence_max_age``;
``evalset``    its eval set is not deprecated;
``digest``     it scored exactly this digest (as model or as prompt);
``safety``     a fine-tune (``registry.training.fine_tune``) has passed a safety
               comparison against its recorded base: MW205's own judgement
               (``evals.safety.standing``), so a gate pass and an MW205 finding cannot
               coexist;
``closure``    a trained artifact (``registry.training.trained``, or one with a closure)
               has a complete training closure.

Approving moves the alias (kind ``promote``) in the same transaction as the review row.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import digest as dg
from ..display import duration, short_digest
from ..errors import NotFoundError, ValidationError
from ..evals.safety.standing import standing as safety_standing
from ..ledger import aliases as ledger_aliases
from ..ledger import artifacts as ledger_artifacts
from ..ledger import closures as ledger_closures
from ..ledger import evals as ledger_evals
from ..ledger import people as ledger_people
from ..ledger import promotions as ledger_promotions
from ..ledger.aliases import AliasEvent
from ..ledger.artifacts import Artifact
from ..ledger.engine import Store
from ..ledger.evals import EvalRun
from ..ledger.promotions import PromotionRequest, Review
from ..timefmt import iso, now_us
from . import training

GATES = ("reviewer", "roster", "requester", "evidence", "opened", "fresh", "evalset",
         "digest", "safety", "closure")


@dataclass(frozen=True)
class GateFailure:
    gate: str
    message: str

    def to_dict(self) -> dict:
        return {"gate": self.gate, "message": self.message}


@dataclass
class Evaluation:
    """Every gate of one request for one approver at one moment."""

    request: PromotionRequest
    approver: str
    at: int
    evidence: EvalRun | None
    opened_at: int | None
    failures: list[GateFailure]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {"request_id": self.request.id, "approver": self.approver, "at": iso(self.at),
                "evidence_run_id": self.evidence.id if self.evidence else None,
                "opened_at": iso(self.opened_at), "passed": self.passed,
                "failed_gates": [f.to_dict() for f in self.failures]}


@dataclass
class ApprovalResult:
    outcome: str  # approved | overridden | refused
    evaluation: Evaluation
    review: Review
    event: AliasEvent | None

    def to_dict(self) -> dict:
        return {"outcome": self.outcome, "evaluation": self.evaluation.to_dict(),
                "review": self.review.to_dict(),
                "alias_event": self.event.to_dict() if self.event else None}


def label(conn, digest: str | None) -> str:
    """``model chat@v4 (sha256:abc…)``; the short digest when it is not registered."""
    art = ledger_artifacts.find(conn, digest) if digest else None
    if art is None:
        return short_digest(digest)
    name = f"{art.name}@{art.version}" if art.version else art.name
    return f"{art.kind} {name} ({short_digest(digest)})"


# --- filing a request ---------------------------------------------------------------------
def request(store: Store, alias: str, digest: str, requester: str, *,
            evidence_run_id: str | None = None, reason: str | None = None,
            at: int | None = None, token_id: str | None = None) -> PromotionRequest:
    """File a request to point ``alias`` at ``digest``; the gates are judged at approval."""
    ledger_aliases.check_alias(alias)
    dg.check_digest(digest, "DIGEST")
    requester = ledger_people.check_email(requester, "requester")
    reason = (reason or "").strip() or None
    with store.write() as conn:
        ledger_artifacts.get(conn, digest)
        if evidence_run_id is not None:
            ledger_evals.get_run(conn, evidence_run_id)
        current = ledger_aliases.latest_event(conn, alias)
        if current is not None and current.digest == digest:
            raise ValidationError(f"{alias} already points at {digest}", field="DIGEST")
        pending = ledger_promotions.list_requests(conn, status="pending", alias=alias,
                                                  digest=digest)
        if pending:
            raise ValidationError(f"request {pending[0].id} already asks to point {alias} at "
                                  f"{digest}", field="DIGEST",
                                  hint=f"modelward promote approve {pending[0].id} --as EMAIL")
        return ledger_promotions.insert_request(
            conn, alias=alias, digest=digest, requester=requester,
            evidence_run_id=evidence_run_id, reason=reason, at=at, token_id=token_id)


# --- the gates ------------------------------------------------------------------------------
def select_evidence(conn, digest: str, at: int) -> EvalRun | None:
    """The default evidence for ``digest`` at ``at``: the latest completed task eval run
    that scored exactly it, preferring one on an eval set not deprecated by then."""
    runs = ledger_evals.runs_scoring(conn, digest, kind="task", until=at)
    deprecated = ledger_promotions.deprecations(conn, {r.evalset_digest for r in runs},
                                                until=at)
    return next((r for r in runs if r.evalset_digest not in deprecated),
                runs[0] if runs else None)


def evidence_failures(conn, run: EvalRun, digest: str, *, at: int,
                      max_age: int) -> list[GateFailure]:
    """The ``fresh``, ``evalset`` and ``digest`` gates of one eval run (MW202 too)."""
    out = []
    if run.finished_at is None or at - run.finished_at > max_age:
        out.append(GateFailure("fresh", f"eval run {run.id} finished {iso(run.finished_at)}, "
                                        f"older than evidence_max_age ({duration(max_age)})"))
    dep = ledger_promotions.deprecations(conn, [run.evalset_digest], until=at).get(
        run.evalset_digest)
    if dep is not None:
        out.append(GateFailure("evalset", f"eval run {run.id} scored "
                                          f"{label(conn, run.evalset_digest)}, deprecated "
                                          f"{iso(dep.at)}" + (f": {dep.reason}" if dep.reason
                                                             else "")))
    if digest not in (run.model_digest, run.prompt_digest):
        scored = " and ".join(label(conn, d) for d in (run.prompt_digest, run.model_digest) if d)
        out.append(GateFailure("digest", f"eval run {run.id} scored {scored}, not "
                                         f"{label(conn, digest)}"))
    return out


def _evidence(conn, req: PromotionRequest, at: int) -> tuple[EvalRun | None, str | None]:
    """(the evidence run, or None; why it cannot serve, or None)."""
    if req.evidence_run_id is None:
        run = select_evidence(conn, req.digest, at)
        if run is None:
            return None, (f"no completed task eval run scored {label(conn, req.digest)}; run "
                          "one with `modelward eval run`")
        return run, None
    try:
        run = ledger_evals.get_run(conn, req.evidence_run_id)
    except NotFoundError:
        return None, f"eval run {req.evidence_run_id} named by the request does not exist"
    if run.kind != "task":
        return run, f"eval run {run.id} is a {run.kind} eval, not a task eval"
    if run.status != "completed" or run.finished_at is None or run.finished_at > at:
        return run, f"eval run {run.id} is {run.status}, not completed"
    return run, None


def _people_gates(conn, req: PromotionRequest, approver: str) -> list[GateFailure]:
    out = []
    reviewers = sorted(ledger_people.roles(conn, req.alias).reviewers)
    if approver not in reviewers:
        out.append(GateFailure("reviewer", f"{approver} is not a reviewer of record for "
                               f"{req.alias} " + (f"(its reviewers: {', '.join(reviewers)})"
                                                  if reviewers else
                                                  f"(it has none: `modelward alias owners "
                                                  f"{req.alias} --reviewer EMAIL`)")))
    team = ledger_people.roster(conn)
    state = ledger_people.standing(team, approver)
    if state != "active":
        out.append(GateFailure("roster", f"{approver} has left the team" if state == "left"
                               else f"{approver} is not in the roster" + (
                                   "" if team else " (there is none: `modelward people sync "
                                                   "FILE.csv`)")))
    if approver == req.requester:
        out.append(GateFailure("requester", f"{approver} requested this promotion and cannot "
                                            "also approve it"))
    return out


def _safety_gate(conn, art: Artifact, name: str, tuned: str, at: int) -> GateFailure | None:
    """MW205's judgement (``evals.safety.standing``), so a promotion this gate lets through
    is never a safety-regression finding the moment it lands."""
    st = safety_standing(conn, art, at)
    if st.problem is None:
        return None
    base = f"its base {label(conn, st.base)}" if st.base else "its base"
    if st.problem == "never-compared":
        why = "with no safety comparison (a completed safety eval run on this digest)"
    elif st.problem == "other-base":
        others = ", ".join(label(conn, b) for b in st.compared_bases) or "no named base"
        why = (f"and was compared for safety only against {others}, never against {base} "
               "(a comparison with another model says nothing about what tuning changed)")
    elif st.problem == "inconclusive":
        against = f" against {base}" if st.base else ""
        why = (f"and its latest safety comparison{against}, eval run {st.run.id}, passed but "
               "cannot count: " + "; ".join(st.shortfalls))
    else:
        against = f" against {base}" if st.base else ""
        why = f"and its latest safety comparison{against}, eval run {st.run.id}, did not pass"
    return GateFailure("safety", f"{name} is {tuned} {why}")


def _artifact_gates(conn, digest: str, at: int) -> list[GateFailure]:
    out = []
    art = ledger_artifacts.get(conn, digest)
    name = label(conn, digest)
    why = training.trained(art)
    tuned = {"adapter": "an adapter",
             "fine-tune": f"fine-tuned from {short_digest(training.base_of(art))}"}.get(why)
    if tuned and (failure := _safety_gate(conn, art, name, tuned, at)):
        out.append(failure)
    rows = [r for r in ledger_closures.for_outputs(conn, [digest]).get(digest, [])
            if r.created_at <= at]
    why = tuned or ("marked trained" if why == "marked"
                    else "it has a training closure" if rows else None)
    if why and not any(r.status == "complete" for r in rows):
        latest = f"; its latest closure {short_digest(rows[-1].digest)} is {rows[-1].status}" if rows \
            else ""
        out.append(GateFailure("closure", f"{name} is a trained artifact ({why}) with no "
                                          f"complete training closure{latest}"))
    return out


def evaluate(conn, req: PromotionRequest, approver: str, *, at: int,
             max_age: int) -> Evaluation:
    """Judge every gate of ``req`` for ``approver`` at ``at``; reads only."""
    failures = _people_gates(conn, req, approver)
    run, problem = _evidence(conn, req, at)
    opened = None
    if problem is not None:
        failures.append(GateFailure("evidence", problem))
    else:
        opened = ledger_promotions.first_open(conn, run.id, approver, until=at)
        if opened is None:
            failures.append(GateFailure("opened", f"{approver} has not opened the evidence, "
                                        f"eval run {run.id}: `modelward eval show {run.id} "
                                        f"--as {approver}`"))
        failures += evidence_failures(conn, run, req.digest, at=at, max_age=max_age)
    failures += _artifact_gates(conn, req.digest, at)
    failures.sort(key=lambda f: GATES.index(f.gate))
    return Evaluation(req, approver, at, run, opened, failures)


# --- approving --------------------------------------------------------------------------------
def approve(store: Store, request_id: str, approver: str, *, override: bool = False,
            reason: str | None = None, max_age: int | None = None,
            at: int | None = None, token_id: str | None = None) -> ApprovalResult:
    """Judge and record one approval attempt in one transaction. With every gate passed
    (or ``override`` with a ``reason``) the alias moves; otherwise a refusal is recorded."""
    approver = ledger_people.check_email(approver, "approver")
    reason = (reason or "").strip() or None
    if override and reason is None:
        raise ValidationError("an override needs a reason", field="--reason",
                              hint="--override --reason 'why the gates may be skipped'")
    max_age = store.settings.evidence_max_age if max_age is None else max_age
    with store.write() as conn:
        req = ledger_promotions.get_request(conn, request_id, lock=True)
        if req.status != "pending":
            raise ValidationError(f"request {req.id} is already {req.status}",
                                  field="REQUEST_ID")
        when = now_us() if at is None else at  # read once the request is ours
        ev = evaluate(conn, req, approver, at=when, max_age=max_age)
        failed = [f.to_dict() for f in ev.failures]
        evidence_id = ev.evidence.id if ev.evidence else req.evidence_run_id
        if failed and not override:
            review = ledger_promotions.add_review(
                conn, request_id=req.id, approver=approver, at=when, outcome="refused",
                failed_gates=failed, evidence_run_id=evidence_id, token_id=token_id)
            return ApprovalResult("refused", ev, review, None)
        outcome = "overridden" if failed else "approved"
        current = ledger_aliases.latest_event(conn, req.alias)
        if current is not None and current.digest == req.digest:
            raise ValidationError(f"{req.alias} already points at {req.digest} (moved "
                                  f"{iso(current.at)})", field="REQUEST_ID")
        evidence = {"request_id": req.id, "requester": req.requester, "approver": approver,
                    "evidence_run_id": evidence_id,
                    "overridden_gates": [f["gate"] for f in failed]}
        if failed:
            evidence["override_reason"] = reason
        event, _moved = ledger_aliases.set_alias(
            conn, req.alias, req.digest, at=when, actor=approver, kind="promote",
            reason=f"promotion {req.id}" + (f": {req.reason}" if req.reason else ""),
            evidence=evidence, token_id=token_id)
        review = ledger_promotions.add_review(
            conn, request_id=req.id, approver=approver, at=when, outcome=outcome,
            failed_gates=failed, override_reason=reason if failed else None,
            alias_event_id=event.id, evidence_run_id=evidence_id, token_id=token_id)
        ledger_promotions.set_status(conn, req.id, outcome)
    return ApprovalResult(outcome, ev, review, event)


def preview(store: Store, request_id: str, approver: str, *,
            at: int | None = None) -> Evaluation:
    """The gates ``approver`` would meet approving now; records nothing."""
    approver = ledger_people.check_email(approver, "approver")
    with store.read() as conn:
        req = ledger_promotions.get_request(conn, request_id)
        return evaluate(conn, req, approver, at=now_us() if at is None else at,
                        max_age=store.settings.evidence_max_age)



# --- judging past approvals (MW203, `modelward promote show`) ----------------------------
@dataclass
class Approval:
    """A promotion that moved an alias: a granted review, or a ``promote`` alias event no
    granted review records (the gates were bypassed)."""

    alias: str
    digest: str
    approver: str | None
    at: int
    event_id: int | None
    request: PromotionRequest | None
    review: Review | None


def approvals(conn, events: list[AliasEvent], *, since: int | None = None,
              until: int | None = None, request_id: str | None = None) -> list[Approval]:
    """Granted approvals between ``since`` and ``until``, and the ``promote`` events among
    ``events`` that none of them records; oldest first."""
    granted = ledger_promotions.reviews(conn, outcomes=("approved", "overridden"),
                                        request_ids=[request_id] if request_id else None)
    requests = {r.id: r for r in ledger_promotions.list_requests(
        conn, ids={g.request_id for g in granted})}
    recorded = {g.alias_event_id for g in granted}

    def inside(at: int) -> bool:
        return (since is None or at >= since) and (until is None or at <= until)

    out = [Approval(req.alias, req.digest, g.approver, g.at, g.alias_event_id, req, g)
           for g in granted if inside(g.at) and (req := requests.get(g.request_id))]
    if request_id is None:
        out += [Approval(e.alias, e.digest, e.actor, e.at, e.id, None, None) for e in events
                if e.kind == "promote" and e.id not in recorded and inside(e.at)]
    return sorted(out, key=lambda a: (a.at, a.alias, a.event_id or 0))


def elapsed(us: int) -> str:
    """A span for people: ``0.4s``, ``41s``, ``12m``, ``3.5h``, ``2.0d``."""
    s = us / 1e6
    if s < 10:
        return f"{s:.1f}s"
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.1f}h" if s < 172_800 else f"{s / 86_400:.1f}d"


def rubber_stamp(conn, approval: Approval, *, min_review_time: int) -> list[dict]:
    """What makes one approval a rubber stamp, as ``[{"problem", "message"}, …]``: no
    approval on record, a non-reviewer or the requester approving (the gates recorded at
    the time), the evidence not opened before approving, approving sooner than
    ``min_review_time`` after opening it (or after the request, when nothing was opened),
    or an override."""
    rv, req = approval.review, approval.request
    if rv is None or req is None:
        return [{"problem": "no-review",
                 "message": f"moved by a promote event ({approval.approver or 'no actor'}) "
                            "that no approved promotion request records"}]
    out = []
    gates = {g["gate"]: g["message"] for g in rv.failed_gates}
    if "reviewer" in gates or "roster" in gates:
        out.append({"problem": "non-reviewer", "message": "approved by a non-reviewer: "
                    + "; ".join(gates[g] for g in ("reviewer", "roster") if g in gates)})
    if "requester" in gates:
        out.append({"problem": "self-approval", "message": "approved by its own requester"})
    opened = ledger_promotions.first_open(conn, rv.evidence_run_id, rv.approver, until=rv.at)
    if opened is None:
        out.append({"problem": "not-opened", "message": "approved without opening the evidence"
                    + (f", eval run {rv.evidence_run_id}" if rv.evidence_run_id
                       else " (there was none)")})
    start, after = ((opened, "opening the evidence") if opened is not None
                    else (req.requested_at, "the request"))
    if rv.at - start < min_review_time:
        out.append({"problem": "fast", "message": f"approved {elapsed(rv.at - start)} after "
                    f"{after} (min_review_time {duration(min_review_time)})"})
    if rv.outcome == "overridden":
        out.append({"problem": "override", "message": "approved with an override of the "
                    f"gates {', '.join(rv.gates)}: {rv.override_reason}"})
    return out


# --- the detail of one request: `promote show`, GET /api/v1/promotions/{id}, the page -----
@dataclass
class PromotionDetail:
    """Everything the CLI, the API and the dashboard show about one request; each renders
    this one value (text, JSON, HTML), so they cannot disagree."""

    request: PromotionRequest
    label: str                     # what is promoted: ``model chat@v4 (sha256:…)``
    reviews: list[Review]
    rubber_stamp: list[dict]       # what MW203 finds in its approval(s)
    default_evidence: EvalRun | None  # the run approving now would be judged on, when the
                                      # request names none
    gates: Evaluation | None       # the gates ``approver`` would meet now, when asked

    @property
    def evidence_run_id(self) -> str | None:
        """The run the request is judged on now: its own, else the default."""
        if self.request.evidence_run_id:
            return self.request.evidence_run_id
        return self.default_evidence.id if self.default_evidence else None

    def to_dict(self) -> dict:
        return {**self.request.to_dict(), "reviews": [r.to_dict() for r in self.reviews],
                "rubber_stamp": self.rubber_stamp,
                "gates": self.gates.to_dict() if self.gates else None,
                "default_evidence_run_id": (self.default_evidence.id
                                            if self.default_evidence else None)}


def detail(store: Store, request_id: str, approver: str | None = None, *,
           at: int | None = None) -> PromotionDetail:
    """The detail of promotion request ``request_id`` (and, with ``approver``, the gates
    that person would meet approving at ``at``, default now); records nothing."""
    at = now_us() if at is None else at
    with store.read() as conn:
        req = ledger_promotions.get_request(conn, request_id)
        stamps = [p for a in approvals(conn, [], request_id=req.id)
                  for p in rubber_stamp(conn, a, min_review_time=store.settings.min_review_time)]
        found = PromotionDetail(
            request=req, label=label(conn, req.digest),
            reviews=ledger_promotions.reviews(conn, request_ids=[req.id]), rubber_stamp=stamps,
            default_evidence=(select_evidence(conn, req.digest, at)
                              if req.evidence_run_id is None else None),
            gates=None)
    if approver:
        found.gates = preview(store, req.id, approver, at=at)
    return found
