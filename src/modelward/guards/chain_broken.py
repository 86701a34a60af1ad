"""The ledger fails verification: a recorded decision or another chained record (an alias
event, an artifact, an eval run, an approval, …) was changed, removed or added.

What it checks
--------------
Recomputes the whole chain exactly as ``modelward verify`` does: every decision block's
Merkle root from its decisions' chained columns, every record block's root from its
leaves, every block's link to the previous block's root, block counts and numbering; then
compares every row of every chained table (alias events, artifacts and parents, eval runs,
results and opens, promotions, people and roles, holds, experiments and exposures,
fingerprints, threshold policies, feedback, closures, erasures) with the state its newest
leaf sealed. One finding per broken block, naming the block, the reason, the ids of the
decisions in it and the kind, id and problem (edited, deleted, in a broken block) of each
broken record; records that no block sealed (inserted rows) are one finding of their own.
The first broken block is named in each. ``--since`` does not narrow it: a rewrite of old
history is exactly what this guard exists to catch.

With a signing or verify key configured (``signing_key_file``, ``verify_key_file`` or the
HMAC secret in ``signing_key_env``) it starts from the newest signed checkpoint the key
checks (``modelward verify`` and ``modelward chain checkpoint`` store them), so its cost is
proportional to the blocks sealed since, not to history: the blocks after it are recomputed
and linked to the checkpoint's signed root, rows deleted from or inserted into any chained
table (or the decisions it covers) show in the counts it signed, and a forged, altered or
unsigned checkpoint row is itself a finding (everything is then recomputed). An in-place
edit of a row the checkpoint covers is caught only by ``modelward verify --full``: run it
on a schedule (see docs/reliability.md). Without a key, every block is recomputed.

Inside ``modelward watch`` (and ``serve --watch``) a trigger verifies only the blocks after
the one that process verified last, by the same rule as from a checkpoint: that block must
still carry the root it had, and the decisions and records up to it must still count what
they did. The watch's scheduled backstop verifies as above (from the newest signed
checkpoint, or everything).

Why it matters
--------------
An auditor asks which model produced a decision eight months ago, and who approved it. The
answer comes from the decision, the alias history, the eval runs and the approvals, and is
only as good as they are: if a row can be edited in place (a "fix" to a digest, a
backdated evidence open, a deleted complaint) without anyone noticing, the ledger proves
nothing. Payload text is not chained, so erasing a person's text (``modelward erase``)
never fires this guard; the erasure itself is chained.

Example
-------
Someone runs ``UPDATE decisions SET model_digest = … WHERE id = …``::

    MW103 chain-broken  block 2
      the decision log fails verification at block 2 (the first broken block):
      decisions do not match the sealed root

or ``UPDATE alias_events SET digest = … WHERE id = 2``::

    MW103 chain-broken  block 7
      the chained record fails verification at block 7 (the first broken block):
      records differ from what the block sealed: alias_events 2 (edited)

How to fix
----------
Find out who changed the database and why; do not re-seal. Restore the ledger from a
backup taken before the change, and compare it with a chain head exported earlier
(``modelward chain head`` / ``modelward chain check HEAD.json``) to prove the restored
log is the original. The decision ids and records in the evidence are the candidates for
the edit.

Configuration
-------------
``examples`` in ``[check.MW103]``: how many decision ids and records of each broken block
the evidence lists (default 20). ``severity`` overrides the default severity (error), as
for every guard.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..settings import Setting
from .finding import Finding
from .registry import declared

CODE = "MW103"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (Setting("examples", "int", 20, "Decision ids and records listed per broken block.",
                    minimum=0),)

FIX = ("restore the ledger from a backup taken before the change and check it against an "
       "exported head (`modelward chain check HEAD.json`); never re-seal")


def check(view, config) -> Iterator[Finding]:
    report = view.verify_chain()
    if report.ok:
        return
    first = report.first_broken.block
    limit = max(0, config["examples"])
    for p in report.problems:
        if p.block is None:
            subject, at = "unsealed records", "outside every block"
        else:
            subject, at = f"block {p.block}", f"at block {p.block}"
        if first is None:
            where = "no block is broken"
        else:
            where = ("the first broken block" if p.block == first
                     else f"first broken block {first}")
        log = "the decision log" if p.decision_ids or not p.records else "the chained record"
        message = f"{log} fails verification {at} ({where}): {p.reason}"
        if p.records:
            message += ": " + p.describe_records(limit)
        yield Finding(
            CODE, SEVERITY, subject, message,
            evidence={"block": p.block, "reason": p.reason, "first_broken_block": first,
                      "broken_blocks": len(report.problems),
                      "decision_count": len(p.decision_ids),
                      "decision_ids": p.decision_ids[:limit],
                      "record_count": len(p.records), "records": p.records[:limit],
                      "blocks": report.blocks, "decisions": report.decisions,
                      "from_checkpoint": report.checkpoint},
            fix=FIX, identity=("block", "reason"))
