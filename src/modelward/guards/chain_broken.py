"""The decision log fails verification: a recorded decision was changed, removed or added.

What it checks
--------------
Recomputes the whole chain exactly as ``modelward verify`` does: every block's Merkle
root from its decisions' chained columns, every block's link to the previous block's
root, block counts and numbering. One finding per broken block, naming the block, the
reason and the ids of the decisions in it; the first broken block is named in each.
The whole log is verified whatever ``--since`` says: a rewrite of old history is exactly
what this guard exists to catch.

Why it matters
--------------
An auditor asks which model produced a decision eight months ago. The answer is only as
good as the log: if a row can be edited in place (a "fix" to a digest, a deleted
complaint) without anyone noticing, the ledger proves nothing. Payload text is not
chained, so erasing a person's text (``modelward erase``) never fires this guard.

Example
-------
Someone runs ``UPDATE decisions SET model_digest = … WHERE id = …``::

    MW103 chain-broken  block 2
      the decision log fails verification at block 2 (the first broken block):
      decisions do not match the sealed root

How to fix
----------
Find out who changed the database and why; do not re-seal. Restore the ledger from a
backup taken before the change, and compare it with a chain head exported earlier
(``modelward chain head`` / ``modelward chain check HEAD.json``) to prove the restored
log is the original. The decision ids in the evidence are the candidates for the edit.

Configuration
-------------
``examples`` in ``[check.MW103]``: how many decision ids of each broken block the
evidence lists (default 20). ``severity`` overrides the default severity (error), as
for every guard.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..settings import Setting
from .finding import Finding
from .registry import declared

CODE = "MW103"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (Setting("examples", "int", 20, "Decision ids listed per broken block.", minimum=0),)

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
                      "blocks": report.blocks, "decisions": report.decisions},
            fix=FIX, identity=("block", "reason"))
