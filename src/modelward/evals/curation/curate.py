"""Curation by policy: feedback events in, a dataset with lineage and an exclusion report out.

``curate`` streams the feedback (joined with its decision and the decision's stored text)
through a :class:`~modelward.evals.curation.policy.Judge` in one pass, writes the admitted events as
JSON lines, registers the policy (``policy`` artifact) and the dataset (``dataset``
artifact, parent relation ``policy``, ``meta.policy_digest``) and links the dataset to
the feedback ids it holds. :func:`judge_lineage` re-judges a dataset's feedback against
its policy with the same judge: it backs MW304.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from ...errors import ValidationError
from ...ledger import artifacts as ledger_artifacts
from ...ledger import feedback as ledger_feedback
from ...ledger.engine import Store
from ...timefmt import iso
from .policy import Judge, Policy, reason_label

DATASET_FILE = "dataset.jsonl"
EXAMPLES = 5  # feedback ids kept per exclusion reason


@dataclass
class Tally:
    """How many rows were judged, admitted, and excluded by reason (with example ids)."""

    considered: int = 0
    admitted: int = 0
    excluded: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    limit: int = EXAMPLES  # example ids kept per reason

    def exclude(self, reason: str, feedback_id: str) -> None:
        self.excluded[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < self.limit:
            ex.append(feedback_id)

    def reasons(self) -> list[tuple[str, int]]:
        """(reason, count), most frequent first."""
        return sorted(self.excluded.items(), key=lambda kv: (-kv[1], kv[0]))

    def to_dict(self) -> dict:
        return {"considered": self.considered, "admitted": self.admitted,
                "excluded": sum(self.excluded.values()),
                "reasons": [{"reason": r, "label": reason_label(r), "count": n,
                             "examples": self.examples[r]} for r, n in self.reasons()]}


def judge_rows(rows, policy: Policy, on_admit=None, *, examples: int = EXAMPLES) -> Tally:
    """Judge rows (from ``ledger.feedback.curation_rows``) in order; ``on_admit(row)`` per
    admitted one."""
    judge, tally = Judge(policy), Tally(limit=examples)
    for row in rows:
        m = row._mapping
        tally.considered += 1
        reason = judge(m)
        if reason is None:
            tally.admitted += 1
            if on_admit is not None:
                on_admit(m)
        else:
            tally.exclude(reason, m["linked_id"])
    return tally


def judge_lineage(db, dataset_digest: str, policy: Policy, *, examples: int = EXAMPLES) -> Tally:
    """Re-judge the feedback a dataset is linked to; ``db`` is a Connection or a guard View."""
    return judge_rows(ledger_feedback.curation_rows(db, dataset=dataset_digest), policy,
                      examples=examples)


def record_of(m) -> dict:
    """One dataset line: the decision's input, the correction as target, and the ids."""
    return {"id": m["id"], "decision_id": m["decision_id"], "input": m["input_text"],
            "output": m["output_text"], "target": m["correction"], "intent": m["intent"],
            "rating": m["rating"],
            "segments": orjson.loads(m["segments"]) if m["segments"] else {}}


@dataclass
class Curation:
    policy: Policy
    tally: Tally
    since: int | None
    until: int | None
    path: Path | None = None
    dataset: str | None = None  # digest, when written and registered
    created: bool = False

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "path": str(self.path) if self.path else None,
                "created": self.created,
                "policy": {"name": self.policy.name, "digest": self.policy.digest,
                           "source": self.policy.source},
                "since": iso(self.since), "until": iso(self.until), **self.tally.to_dict()}


def curate(store: Store, policy: Policy, out_dir: Path | None, *, since: int | None = None,
           until: int | None = None, name: str | None = None, dry_run: bool = False) -> Curation:
    """Judge every feedback event in [since, until) and, unless ``dry_run``, write the
    admitted ones to ``out_dir/dataset.jsonl`` and register it with its lineage."""
    result = Curation(policy, Tally(), since, until)
    tmp = None
    if not dry_run:
        if out_dir is None:
            raise ValidationError("name the directory to write the dataset to", field="--out")
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValidationError(f"cannot create {out_dir}: {exc.strerror}",
                                  field="--out") from None
        result.path = out_dir / DATASET_FILE
        tmp = out_dir / f".{DATASET_FILE}.{os.getpid()}.tmp"
    admitted: list[str] = []
    fh = open(tmp, "wb") if tmp else None  # noqa: SIM115 - closed below, removed on failure
    try:
        def write(m) -> None:
            admitted.append(m["id"])
            if fh is not None:
                fh.write(orjson.dumps(record_of(m), option=orjson.OPT_SORT_KEYS) + b"\n")

        with store.read() as conn:
            result.tally = judge_rows(
                ledger_feedback.curation_rows(conn, since=since, until=until), policy, write)
    except BaseException:
        if fh is not None:
            fh.close()
            tmp.unlink(missing_ok=True)
        raise
    if fh is not None:
        fh.close()
    if dry_run:
        return result
    if not admitted:
        tmp.unlink()
        top = ", ".join(f"{reason_label(r)} {n}" for r, n in result.tally.reasons()[:3])
        raise ValidationError(
            f"policy {policy.name} admitted none of {result.tally.considered} feedback events"
            + (f" ({top})" if top else "") + "; no dataset was written",
            hint="see what it excludes with `modelward curate --dry-run`")
    os.replace(tmp, result.path)
    pol = ledger_artifacts.register_bytes(store, "policy", policy.raw, name=policy.name).artifact
    meta = {"policy_digest": pol.digest, "policy_name": policy.name, "since": iso(since),
            "until": iso(until), "feedback": len(admitted),
            "excluded": dict(result.tally.reasons())}
    reg = ledger_artifacts.register_path(store, "dataset", result.path, name=name or policy.name,
                                         parents=[(pol.digest, "policy")], meta=meta)
    # a second transaction: a crash between the two leaves a dataset without lineage, and
    # running curate again (same feedback, same bytes, same digest) completes it
    with store.write() as conn:
        ledger_feedback.link_dataset(conn, reg.artifact.digest, admitted)
    result.dataset, result.created = reg.artifact.digest, reg.created
    return result
