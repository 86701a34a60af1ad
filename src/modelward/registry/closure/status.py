"""Can a closure still rebuild its artifact? The one judgement ``closure show`` prints and
MW204 reports: every input and the base must keep a payload (or a hosted base must not
be retired), and the closure's own blobs (record, patch, params, lock files) must be
present and intact."""

from __future__ import annotations

from collections.abc import Callable

from ...display import short_digest
from ...ledger import artifacts as ledger_artifacts
from ...ledger.artifacts import Artifact
from ...ledger.closures import ClosureRow
from ...timefmt import now_us
from ..payloads import PayloadCheck, check_payload
from ..verification import cache_for


def part_blob(digest: str) -> Artifact:
    """A closure's own blob as the payload check sees it (a single stored file)."""
    return Artifact(digest=digest, kind="config", name="closure part", version=None,
                    owner=None, created_at=0, payload="blob", is_directory=False, size=None,
                    hosted_id=None, retires_at=None, source_path=None,
                    payload_deleted_at=None)


def parts(row: ClosureRow, arts: dict[str, Artifact],
          check: Callable[[Artifact], PayloadCheck]) -> list[dict]:
    """Every part a rebuild needs, with ``status`` and ``ok``; ``arts`` holds the registered
    inputs and base, ``check`` is the payload check to use."""
    out = []
    for digest in row.inputs:
        what = "base" if digest == row.base_digest else "input"
        art = arts.get(digest)
        if art is None:
            out.append({"digest": digest, "what": what, "status": "not-registered",
                        "ok": False, "label": f"{what} {short_digest(digest)} is not registered"})
            continue
        c = check(art)
        ok = c.status == "present" or (c.status == "vendor" and not c.retired)
        status = "retired" if c.status == "vendor" and c.retired else c.status
        out.append({"digest": digest, "what": what, "status": status, "ok": ok,
                    "label": f"{what} {art.kind} {art.name} ({short_digest(digest)}) is {status}"})
    for digest in [row.digest, *row.blobs]:
        what = "record" if digest == row.digest else "part"
        c = check(part_blob(digest))
        out.append({"digest": digest, "what": what, "status": c.status,
                    "ok": c.status == "present",
                    "label": f"the closure's {what} blob {short_digest(digest)} is {c.status}"})
    return out


def retention_of(store, row: ClosureRow, *, verify: bool = True) -> list[dict]:
    """:func:`parts` against the live store, with the verification cache."""
    now = now_us()
    cache = cache_for(store, now)
    with store.read() as conn:
        arts = ledger_artifacts.find_many(conn, row.inputs)
    return parts(row, arts, lambda a: check_payload(store, a, verify=verify, cache=cache,
                                                    now=now))
