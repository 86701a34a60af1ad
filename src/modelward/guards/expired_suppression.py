"""A suppression in modelward.toml past its expiry date.

What it checks
--------------
Every ``[[check.suppress]]`` entry whose ``expires`` date has come. From that day on the
suppression no longer applies: the findings it silenced are reported again, and the entry
itself is reported by this guard so the decision to accept the risk is made again, on
purpose.

Why it matters
--------------
Suppressions are meant to be temporary ("until the nightly restart is fixed", "until the
vendor confirms the snapshot"). Without an expiry they turn into permanent blind spots.

Example
-------
::

    [[check.suppress]]
    code = "MW104"
    subject = "openai:gpt-4o"
    reason = "vendor confirmed the snapshot swap, ticket OPS-311"
    expires = 2026-03-31

On 2026-03-31 and after, ``modelward check`` reports::

    MW002 expired-suppression  suppression 1
      suppression 1 (MW104 subject 'openai:gpt-4o') expired on 2026-03-31T00:00:00Z: renew it or delete it

How to fix
----------
Delete the entry if the underlying finding is fixed; otherwise renew ``expires`` with a
reason that still holds.

Configuration
-------------
``severity`` in ``[check.MW002]``, like every guard. MW002 findings cannot themselves be
suppressed.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..timefmt import iso
from .finding import Finding
from .registry import declared

CODE = "MW002"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = ()


def check(view, config) -> Iterator[Finding]:
    for s in view.suppressions:
        if not s.expired(view.now):
            continue
        yield Finding(
            CODE, SEVERITY, f"suppression {s.index}",
            f"suppression {s.index} ({s.describe()}) expired on {iso(s.expires_at)}: "
            "renew it or delete it",
            evidence={**s.to_dict(), "suppression": s.index},
            identity=("code", "subject", "fingerprint", "expires"),
            fix="delete the entry, or move `expires` forward with a reason that still holds")
