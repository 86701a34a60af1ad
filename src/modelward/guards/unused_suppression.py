"""A suppression in modelward.toml that no longer matches anything.

What it checks
--------------
After the guards have run, every ``[[check.suppress]]`` entry that has not expired, whose
guard ran, and that matched no finding is reported. A suppression for a guard that was not
selected in this run is not judged (it may match when that guard runs).

Why it matters
--------------
A suppression is an accepted risk with a reason. Once the problem is fixed the entry
lingers, and the next time the same subject breaks it will be silenced without anyone
deciding to accept it again. Unused suppressions are deleted, like unused ``noqa``
comments.

Example
-------
::

    [[check.suppress]]
    code = "MW105"
    subject = "chat/v1"
    reason = "batch workers pin the old model until the nightly restart"

After the batch workers were fixed, ``modelward check`` reports::

    MW001 unused-suppression  suppression 1
      suppression 1 (MW105 subject 'chat/v1') matched no finding: delete it

How to fix
----------
Delete the entry from modelward.toml, or correct its ``subject``/``fingerprint`` if the
finding it was meant for is still reported under another name (``modelward check
--format json`` shows every finding's subject and fingerprint).

Configuration
-------------
``severity`` in ``[check.MW001]``, like every guard. To stop judging suppressions at all,
add ``"MW001"`` to ``check.ignore``. MW001 findings cannot themselves be suppressed.
"""

from __future__ import annotations

from collections.abc import Iterator

from .finding import Finding
from .registry import declared

CODE = "MW001"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = ()


def check(view, config) -> Iterator[Finding]:
    for s in view.suppressions:
        if s.matched or s.expired(view.now) or s.code not in view.codes_run:
            continue
        yield Finding(
            CODE, SEVERITY, f"suppression {s.index}",
            f"suppression {s.index} ({s.describe()}) matched no finding: delete it",
            evidence={**s.to_dict(), "suppression": s.index}, identity=("code", "subject",
                                                                         "fingerprint"),
            fix="delete the [[check.suppress]] entry from modelward.toml")
