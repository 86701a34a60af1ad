"""A dataset was built from feedback its curation policy excludes.

What it checks
--------------
Every dataset linked to feedback events (its lineage: ``modelward curate`` links each
dataset to the feedback ids it holds) is re-judged against its curation policy: the
``policy`` artifact named as its parent with relation ``policy`` (or in its
``meta.policy_digest``), or the shipped ``sft-default`` policy when it names none. It fires
when any linked event is one the policy excludes: wrong surface, an employee or system
author, an intent such as ``style`` or ``test``, no correction, a duplicate input, a
decision whose text has since been erased, an id that names no feedback, … One finding
per dataset, with the count per reason and example feedback ids. The judge is the one
``modelward curate`` uses, so the two cannot disagree; it streams the lineage rows in one
pass per dataset. Datasets are judged whatever their age: the check window does not apply.

Why it matters
--------------
Debugging thumbs-down clicks from the staff dashboard, style gripes and button tests were
exported "because they had corrections" and became an SFT dataset; the fine-tune learned
to imitate the support team's test strings. A dataset assembled by a script, or curated
before a subject's text was erased, carries rows nobody would admit today, and nothing
else looks at its lineage again.

Example
-------
``sft-2026-03`` was linked by a notebook to 10 feedback events; its policy is
``sft-default``::

    MW304 ineligible-feedback  sft-2026-03 (sha256:4f1c0e9a27b3…)
      sft-2026-03 (sha256:4f1c0e9a27b3…) holds 7 of 10 feedback events that policy
      sft-default (sha256:9a0e51c3d2f7…) excludes: 3 intent style, 2 employee author,
      1 surface staging, 1 duplicate input

How to fix
----------
Build datasets with ``modelward curate --policy POLICY.toml --out DIR``: it admits only
what the policy allows and prints the exclusion report (``--dry-run`` shows it without
writing). Retire the flagged dataset and retrain from the curated one. A dataset built by
other tooling must name the policy it claims to follow as a parent with relation
``policy``; if its policy really is different, register that policy and link it.

Configuration
-------------
``examples`` in ``[check.MW304]``: feedback ids listed per exclusion reason in the
evidence (default 3). ``severity`` overrides the default severity (error), as for every
guard.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..display import plural
from ..errors import ValidationError
from ..evals.curation.curate import judge_lineage
from ..evals.curation.policy import default_policy, parse_policy, reason_label
from ..ledger import feedback as ledger_feedback
from ..settings import Setting
from .finding import Finding
from .registry import declared

CODE = "MW304"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (Setting("examples", "int", 3, "Feedback ids listed per exclusion reason.",
                   minimum=1),)

FIX = ("rebuild the dataset with `modelward curate --policy POLICY.toml` and retire this one; "
       "a dataset built elsewhere must name its policy as a parent with relation policy")


def policy_of(art) -> tuple[str | None, str]:
    """(policy digest, where it was found: lineage | meta | default)."""
    if art is not None:
        for parent, relation in art.parents:
            if relation == "policy":
                return parent, "lineage"
        if isinstance(art.meta.get("policy_digest"), str):
            return art.meta["policy_digest"], "meta"
    return None, "default"


def check(view, config) -> Iterator[Finding]:
    digests = ledger_feedback.datasets_with_feedback(view)
    arts = view.artifacts(digests)
    for digest in digests:
        subject = view.label(digest)
        policy_digest, source = policy_of(arts.get(digest))
        if policy_digest is None:
            policy = default_policy()
        else:
            policy_art = view.artifacts([policy_digest]).get(policy_digest)
            data = view.payload(policy_art) if policy_art is not None else None
            problem = None
            if data is None:
                problem = "has no readable payload (unregistered, missing or corrupt)"
            else:
                try:
                    policy = parse_policy(data, source=policy_digest,
                                          default_name=policy_art.name)
                except ValidationError as exc:
                    problem = f"is not a valid policy ({exc.message})"
            if problem is not None:
                yield Finding(
                    CODE, SEVERITY, subject,
                    f"cannot judge {subject}: its policy {view.label(policy_digest)} {problem}",
                    evidence={"dataset": digest, "policy": policy_digest,
                              "policy_source": source, "problem": problem},
                    fix="register the policy file again (`modelward register policy FILE`)",
                    identity=("dataset", "policy"))
                continue
        tally = judge_lineage(view, digest, policy, examples=config["examples"])
        reasons = tally.reasons()
        if not reasons:
            continue
        excluded = sum(n for _r, n in reasons)
        shown = ", ".join(f"{n:,} {reason_label(r)}" for r, n in reasons)
        policy_text = (view.label(policy_digest) if policy_digest
                       else f"{policy.name} (the default; the dataset names no policy)")
        yield Finding(
            CODE, SEVERITY, subject,
            f"{subject} holds {excluded:,} of {plural(tally.considered, 'feedback event')} "
            f"that policy {policy_text} excludes: {shown}",
            evidence={"dataset": digest, "policy": policy_digest or policy.digest,
                      "policy_name": policy.name, "policy_source": source,
                      "feedback": tally.considered, "excluded": excluded,
                      "reasons": dict(reasons),
                      "examples": {r: tally.examples[r] for r, _n in reasons}},
            fix=FIX, identity=("dataset",))
