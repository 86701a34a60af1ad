"""Live fine-tunes that nobody could rebuild: no training closure, or one with holes.

What it checks
--------------
Every **live trained artifact** must have a complete training closure whose parts are
still retained. An artifact is live when an alias points at it now, and trained when it
is an ``adapter``, has a parent with the relation ``base`` (a fine-tune), or carries
``"trained": true`` in its metadata (what ``modelward closure capture`` registers).

It fires when such an artifact has

* no closure at all (``no-closure``);
* only incomplete closures (``incomplete``): the capture could not record everything,
  e.g. the directory was not a git repository, a large untracked file was left out of the
  patch, or the interpreter's distributions could not be listed; the closure's gaps are
  named;
* no closure that can still be rebuilt (``unretained``): an input or the base model lost
  its payload (missing, corrupt or never stored; a hosted base past its vendor retirement
  date), or the closure's own record, patch, params or lock-file blob is gone.

One finding per artifact, with the aliases that make it live. A complete closure whose
every part is retained clears it, whichever other closures the artifact has.

Why it matters
--------------
A fine-tune is a file without its pipeline. The engineer who trained it leaves, the data
was a local file, the code was an uncommitted notebook edit, and the base model was a
snapshot that has since been deleted: the checkpoint serving production can no longer be
rebuilt, audited or fixed. A closure captured at train time (code and diff, environment,
data and base digests, params, seeds, hardware) makes it rebuildable, and this guard keeps
it that way for everything that serves.

Example
-------
``support/adapter`` points at an adapter registered by hand, and ``chat/v2`` at a
fine-tune whose training data was garbage-collected::

    MW204 missing-closure  sha256:4e07408562be…
      adapter support-lora@3 (sha256:4e07408562be…) serves support/adapter but has no
      training closure
    MW204 missing-closure  sha256:9f86d081884c…
      model chat-ft (sha256:9f86d081884c…) serves chat/v2 but its closure
      sha256:2c26b46b68ff… can no longer rebuild it: input dataset train.jsonl
      (sha256:fcde2b2edba5…) is missing

How to fix
----------
Train with ``modelward closure capture --name NAME --input DATA… --base BASE --output
PATH -- COMMAND`` from a git working tree, so the artifact is registered with its
closure. For an unretained part, store it again (``modelward register dataset PATH
--name …`` with the original content). Check a closure with ``modelward closure show
DIGEST`` and prove it with ``modelward closure reproduce DIGEST --workdir DIR``.

Configuration
-------------
``verify`` in ``[check.MW204]``: ``true`` (default) re-hashes the payloads of inputs, base
and closure parts, trusting a full verification cached within ``verify_cache_ttl`` while
the files are unchanged; ``false`` only checks that the blobs exist. ``severity``
overrides the default severity (warning), as for every guard.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..display import short_digest
from ..ledger import closures as ledger_closures
from ..ledger.artifacts import Artifact
from ..ledger.closures import ClosureRow
from ..registry.closure import status as closure_status
from ..registry.training import base_of, trained
from ..settings import Setting
from .finding import Finding
from .registry import declared

CODE = "MW204"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (Setting("verify", "bool", True,
                   "Re-hash inputs and closure blobs (true) or only check they exist (false)."),)


def trained_because(art: Artifact) -> str | None:
    """``registry.training.trained``'s reason, in the words of this guard's evidence."""
    why = trained(art)
    return {"fine-tune": f"fine-tune of {base_of(art)}", "marked": "meta trained"}.get(why, why)


def _unretained(view, row: ClosureRow, verify: bool) -> list[dict]:
    """The parts of a closure a rebuild needs and can no longer get."""
    found = closure_status.parts(row, view.artifacts(row.inputs),
                                 lambda art: view.payload_check(art, verify=verify))
    return [{k: p[k] for k in ("digest", "what", "status", "label")}
            for p in found if not p["ok"]]


def check(view, config) -> Iterator[Finding]:
    live = view.live_aliases()
    arts = view.artifacts(live)
    trained = {d: (a, why) for d, a in arts.items() if (why := trained_because(a))}
    closures = ledger_closures.for_outputs(view, trained)  # the view runs the SELECT
    for digest in sorted(trained):
        art, why = trained[digest]
        rows = closures.get(digest, [])
        complete = [r for r in rows if r.status == "complete"]
        evidence = {"digest": digest, "kind": art.kind, "name": art.name,
                    "version": art.version, "aliases": live[digest], "trained": why,
                    "closures": [r.digest for r in rows]}
        head = f"{art.kind} {view.label(digest)} serves {', '.join(live[digest])} but "
        losses = {r.digest: _unretained(view, r, config["verify"]) for r in complete}
        if any(not lost for lost in losses.values()):
            continue
        if complete:
            row = complete[-1]
            lost = losses[row.digest]
            evidence.update(problem="unretained", closure=row.digest, unretained=lost)
            message = (head + f"its closure {short_digest(row.digest)} can no longer rebuild it: "
                       + "; ".join(x["label"] for x in lost))
            fix = ("store the lost parts again (`modelward register KIND PATH --name …` with "
                   "the original content), or capture the training again")
        elif rows:
            row = rows[-1]
            evidence.update(problem="incomplete", closure=row.digest, gaps=row.gaps)
            message = (head + f"its closure {short_digest(row.digest)} is incomplete: "
                       + "; ".join(row.gaps))
            fix = ("capture the training again from a git working tree with every input "
                   "given: `modelward closure capture …`")
        else:
            evidence.update(problem="no-closure", closure=None)
            message = head + "has no training closure"
            fix = ("train it with `modelward closure capture --name NAME --input DATA --base "
                   "BASE --output PATH -- COMMAND` so it is registered with its closure")
        yield Finding(CODE, SEVERITY, digest, message, evidence=evidence, fix=fix,
                      identity=("digest",))
