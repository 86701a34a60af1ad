"""Artifacts that recent decisions depend on but that can no longer be produced.

What it checks
--------------
Every registered artifact named by a decision inside the retention window (the
``retention`` setting, default 400 days, counted back from now; ``--since`` narrows it
further) must be reproducible:

* a stored payload must be present in the blob store and hash to its digest (a directory:
  its manifest and every file in it). ``missing``, ``corrupt`` and ``not-stored``
  (registered with ``--no-store``) payloads fire;
* a hosted model (payload held by its vendor) must not be past its vendor retirement date
  (``--retires`` at registration): after it the vendor no longer serves it.

One finding per artifact, naming the problem, how many decisions in the window name it and
when the first and the last of them were. The referenced digests and the payload checks are the ones
``modelward retention`` and ``gc`` use, so the guard and retention cannot disagree.
Digests that are not registered at all are MW101's business.

Why it matters
--------------
A customer reports a bad answer from last quarter. The decision names the checkpoint's
digest, but the checkpoint was rotated away and deleted, so nobody can replay or debug
it. Retention has to keep what the decisions reference, and this guard proves it does.

Example
-------
``rm -rf .modelward/blobs/sha256/9f`` (or a garbage collector with the wrong roots)::

    MW102 unretained-artifact  sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
      model support-chat@v3 (sha256:9f86d081884c…) is named by 1,204 decisions, the first
      at 2025-11-03T09:12:44Z and the last at 2026-03-01T12:00:00Z, but its payload is
      missing (the blob is not in the store)

How to fix
----------
Restore the payload: ``modelward register KIND PATH --name …`` with the original file or
directory stores it again (the digest must match). For a hosted model past retirement,
move the alias to a model the vendor still serves and plan the replay strategy for old
decisions. Register new artifacts without ``--no-store`` when their decisions must be
replayable.

Configuration
-------------
``verify`` in ``[check.MW102]``: ``true`` (default) re-hashes every payload, trusting a full
verification that ``modelward audit`` or retention recorded within ``verify_cache_ttl``
while the files are unchanged; ``false`` only checks that the blobs exist with their
registered size, which is much faster with large checkpoints (corruption that keeps the
size is then not detected). The window is the ``retention`` setting (``[modelward] retention``).
``severity`` overrides the default severity (error), as for every guard.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..display import plural
from ..settings import Setting
from ..timefmt import iso
from .finding import Finding
from .registry import declared

CODE = "MW102"
NAME, SEVERITY, STATUS = declared(CODE)  # from its row of the code table
OPTIONS = (Setting("verify", "bool", True,
                   "Re-hash payloads (true) or only check that they exist (false)."),)

_PROBLEM = {"missing": "its payload is missing",
            "corrupt": "its payload is corrupt",
            "not-stored": "its payload was never stored (registered with --no-store)"}


def check(view, config) -> Iterator[Finding]:
    cutoff = view.now - view.settings.retention
    start = max(cutoff, view.since) if view.since is not None else cutoff
    refs = view.references(start)  # the scan retention keeps payloads by
    arts = view.artifacts(refs)
    for digest in sorted(arts):
        art, ref = arts[digest], refs[digest]
        payload = view.payload_check(art, verify=config["verify"])
        evidence = {"digest": digest, "kind": art.kind, "name": art.name,
                    "version": art.version, "payload": payload.status,
                    "decisions": ref.count, "window_start": iso(start),
                    "first_seen": iso(ref.first_at), "last_seen": iso(ref.last_at)}
        if payload.status == "vendor":
            if not payload.retired:
                continue
            problem = f"its vendor retired {art.hosted_id} on {iso(art.retires_at)}"
            evidence.update(problem="retired", hosted_id=art.hosted_id,
                            retires_at=iso(art.retires_at))
            fix = ("move the alias to a model the vendor still serves; old decisions can "
                   "no longer be replayed on this one")
        elif payload.status in _PROBLEM:
            problem = _PROBLEM[payload.status] + (f" ({payload.detail})" if payload.detail
                                                   else "")
            evidence.update(problem=payload.status, detail=payload.detail,
                            payload_deleted_at=iso(art.payload_deleted_at))
            fix = ("store the payload again: `modelward register "
                   f"{art.kind} PATH --name {art.name}` with the original content")
        else:
            continue
        yield Finding(
            CODE, SEVERITY, digest,
            f"{art.kind} {view.label(digest)} is named by {plural(ref.count, 'decision')}, "
            + (f"at {iso(ref.last_at)}, " if ref.count == 1 else
               f"the first at {iso(ref.first_at)} and the last at {iso(ref.last_at)}, ")
            + f"but {problem}",
            evidence=evidence, fix=fix, identity=("digest",))
