"""Retention: what the ledger must keep, garbage collection of what nothing needs, holds.

An artifact is **kept** while any of these holds:

* a decision inside the retention window (``retention``, default 400 days) names it;
* an alias points at it now;
* an active hold protects it;
* it was registered less than ``gc_grace`` ago (a new candidate not yet aliased or used);
* it is a lineage ancestor (parent, grandparent, …) of an artifact kept for a reason above.

:func:`gc` deletes the blob payloads of artifacts that are not kept, never a blob that a
kept artifact also occupies (a directory's file shared with another checkpoint), marks them
deleted, and touches nothing else: not artifacts, decisions, aliases, holds or other blobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..digest import check_digest
from ..errors import NotFoundError, UnknownArtifactError, ValidationError
from ..ledger import aliases as ledger_aliases
from ..ledger import artifacts as ledger_artifacts
from ..ledger import chain as ledger_chain
from ..ledger import retention as ledger_retention
from ..ledger import retirement as ledger_retirement
from ..ledger.artifacts import Artifact
from ..ledger.retention import Hold, References
from ..timefmt import iso, now_us
from .payloads import PayloadCheck, check_payload, manifest_files
from .verification import cache_for


@dataclass
class ArtifactRetention:
    artifact: Artifact
    decisions: int
    last_referenced: int | None
    aliases: list[str]
    holds: list[Hold]
    lineage_of: list[str]  # kept artifacts it is an ancestor of
    new: bool  # registered within gc_grace
    payload: PayloadCheck | None = None

    @property
    def kept_by(self) -> list[str]:
        reasons = [("decisions", self.decisions), ("alias", self.aliases),
                   ("hold", self.holds), ("new", self.new), ("lineage", self.lineage_of)]
        return [name for name, why in reasons if why]

    @property
    def kept(self) -> bool:
        return bool(self.kept_by)

    def to_dict(self) -> dict:
        a = self.artifact
        return {"digest": a.digest, "kind": a.kind, "name": a.name, "version": a.version,
                "created_at": iso(a.created_at), "kept": self.kept, "kept_by": self.kept_by,
                "decisions": self.decisions, "last_referenced": iso(self.last_referenced),
                "aliases": self.aliases, "holds": [h.id for h in self.holds],
                "lineage_of": self.lineage_of, "new": self.new,
                "payload_kind": a.payload, "payload_deleted_at": iso(a.payload_deleted_at),
                "payload": None if self.payload is None else self.payload.to_dict()}


@dataclass
class RetentionReport:
    now: int
    since: int  # decisions at or after this are inside the window
    retention: int
    grace: int
    artifacts: list[ArtifactRetention]

    def to_dict(self) -> dict:
        return {"now": iso(self.now), "window_since": iso(self.since),
                "retention_us": self.retention, "gc_grace_us": self.grace,
                "artifacts": [a.to_dict() for a in self.artifacts]}


def _plan(conn, now: int, grace: int, refs: dict[str, References]) -> list[ArtifactRetention]:
    """Why each registered artifact is kept (no payload checks): small tables plus ``refs``."""
    arts = ledger_artifacts.list_artifacts(conn)
    aliased = ledger_aliases.live_aliases(conn, None)  # every alias's latest target
    held: dict[str, list[Hold]] = {}
    for h in ledger_retention.list_holds(conn):
        held.setdefault(h.digest, []).append(h)
    items = {a.digest: ArtifactRetention(
        a, refs[a.digest].count if a.digest in refs else 0,
        refs[a.digest].last_at if a.digest in refs else None, aliased.get(a.digest, []),
        held.get(a.digest, []), [], a.created_at > now - grace) for a in arts}
    parents = {a.digest: [p for p, _rel in a.parents] for a in arts}
    directly_kept = [i for i in items.values() if i.kept]  # before any lineage is filled in
    for item in directly_kept:
        stack, seen = list(parents[item.artifact.digest]), set()
        while stack:  # every ancestor, however deep; lineage may share ancestors
            p = stack.pop()
            if p in seen or p not in items:
                continue
            seen.add(p)
            items[p].lineage_of.append(item.artifact.digest)
            stack.extend(parents[p])
    for item in items.values():
        item.lineage_of.sort()
    return list(items.values())


def retention_report(store, now: int | None = None, *, verify_payloads: bool = False,
                     use_cache: bool = True) -> RetentionReport:
    """Every artifact, why it is kept (or not), and its payload status (quick unless
    ``verify_payloads``; a cached full verification is reported as such)."""
    now = now_us() if now is None else now
    s = store.settings
    since = now - s.retention
    with store.read() as conn:
        refs = ledger_retention.decision_references(conn, since=since)
        items = _plan(conn, now, s.gc_grace, refs)
    cache = cache_for(store, now, enabled=use_cache)
    for item in items:
        item.payload = check_payload(store, item.artifact, verify=verify_payloads, cache=cache,
                                     now=now)
    return RetentionReport(now, since, s.retention, s.gc_grace, items)


@dataclass
class GcBlob:
    digest: str
    role: str  # "file" (a single-file payload), "manifest" or "directory file"
    size: int | None
    action: str  # "deleted" | "absent" (already gone) | "shared" (a kept artifact needs it)


@dataclass
class GcItem:
    artifact: Artifact
    blobs: list[GcBlob] = field(default_factory=list)
    marked: bool = False  # its payload is now recorded as deleted
    note: str | None = None

    @property
    def bytes(self) -> int:
        """The size of the blobs of this payload deleted (some may be shared by another
        deleted payload: :attr:`GcReport.bytes` counts each blob once)."""
        return sum(b.size or 0 for b in self.blobs if b.action == "deleted")

    def to_dict(self) -> dict:
        a = self.artifact
        return {"digest": a.digest, "kind": a.kind, "name": a.name, "version": a.version,
                "bytes": self.bytes, "marked_deleted": self.marked, "note": self.note,
                "blobs": [{"digest": b.digest, "role": b.role, "size": b.size,
                           "action": b.action} for b in self.blobs]}


@dataclass
class GcReport:
    now: int
    dry_run: bool
    items: list[GcItem]
    kept: int

    @property
    def bytes(self) -> int:
        """Bytes freed: each deleted blob counted once."""
        sizes = {b.digest: b.size or 0 for i in self.items for b in i.blobs
                 if b.action == "deleted"}
        return sum(sizes.values())

    def to_dict(self) -> dict:
        return {"now": iso(self.now), "dry_run": self.dry_run, "bytes": self.bytes,
                "kept": self.kept, "deleted": [i.to_dict() for i in self.items]}


def _blobs_of(store, art: Artifact) -> list[tuple[str, str]]:
    """(blob digest, role) of every blob the payload occupies, as far as can be known."""
    if art.payload != "blob":
        return []
    if not art.is_directory:
        return [(art.digest, "file")]
    files = manifest_files(store, art) or []  # unreadable: its files are unknowable
    return [(art.digest, "manifest")] + [(f, "directory file") for f in files]


def gc(store, *, dry_run: bool = False, now: int | None = None) -> GcReport:
    """Delete the payloads nothing keeps (see the module docstring); ``dry_run`` only says
    what would go. Decisions recorded while gc runs are taken into account: the final
    decision is made under the chain's write lock, which recorders also take."""
    now = now_us() if now is None else now
    s = store.settings
    since = now - s.retention
    with store.read() as conn:  # the long scan, without blocking recorders
        refs = ledger_retention.decision_references(conn, since=since)
        scanned_through = ledger_chain.last_block(conn)[0]
    with (store.read() if dry_run else store.write(chain=True)) as conn:
        late = ledger_retention.decision_references(conn, since=since,
                                                    after_block=scanned_through)
        for digest, r in late.items():
            refs[digest] = refs[digest].merge(r) if digest in refs else r
        plan = _plan(conn, now, s.gc_grace, refs)
        doomed = [i.artifact for i in plan if not i.kept and i.artifact.payload == "blob"
                  and i.artifact.payload_deleted_at is None]
        doomed_set = {a.digest for a in doomed}
        protected = {b for i in plan if i.artifact.digest not in doomed_set
                     for b, _role in _blobs_of(store, i.artifact)}
        decided: dict[str, GcBlob] = {}  # a blob two doomed payloads share is judged once
        items = []
        for art in doomed:
            item = GcItem(art)
            for blob, role in _blobs_of(store, art):
                if blob in decided:
                    first = decided[blob]
                    item.blobs.append(GcBlob(blob, role, first.size, first.action))
                    continue
                action = ("shared" if blob in protected
                          else "absent" if not store.blobs.has(blob) else "deleted")
                decided[blob] = GcBlob(blob, role, store.blobs.size(blob), action)
                item.blobs.append(decided[blob])
            own = item.blobs[0].action if item.blobs else "absent"
            if own == "shared":
                item.note = "kept: a kept artifact occupies the same blob"
            else:
                item.marked = True
            if not dry_run:
                for b in item.blobs:
                    if b.action == "deleted":
                        store.blobs.delete(b.digest)  # False when an earlier item did
                if item.marked:
                    ledger_artifacts.mark_payload_deleted(conn, art.digest, now)
                    cache_for(store, now).drop_payload(art.digest)
            items.append(item)
    return GcReport(now, dry_run, items, sum(1 for i in plan if i.kept))


def retire_decisions(store, *, now: int | None = None) -> ledger_retirement.Retired:
    """Drop the decision blocks past the retention window that name no held artifact: whole
    PostgreSQL partitions where a month qualifies, else the blocks' rows; each retired
    block is chained as such, so verify reports it retired, not broken."""
    now = now_us() if now is None else now
    with store.write() as conn:
        held = {h.digest for h in ledger_retention.list_holds(conn)}
        return ledger_retirement.retire(conn, before=now - store.settings.retention, held=held,
                                        now=now)


# --- holds ----------------------------------------------------------------------------

def _reason(reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("a reason is required", field="reason",
                              hint="say why, e.g. --reason 'legal matter 2026-014'")
    return reason.strip()


def hold(store, digest: str, reason: str, actor: str | None = None, *,
         at: int | None = None) -> Hold:
    """Protect a registered artifact's payload (and its lineage) from gc until released."""
    check_digest(digest, "digest")
    reason = _reason(reason)
    with store.write() as conn:
        if ledger_artifacts.find(conn, digest) is None:
            raise UnknownArtifactError(f"no artifact {digest} is registered",
                                       hint="hold a digest listed by `modelward artifacts`")
        return ledger_retention.place_hold(conn, digest, reason, actor,
                                           now_us() if at is None else at)


def release(store, hold_id: int, reason: str, actor: str | None = None, *,
            at: int | None = None) -> Hold:
    """End a hold by appending its release (who, when, why); the hold itself stays on record."""
    reason = _reason(reason)
    with store.write() as conn:
        h = ledger_retention.get_hold(conn, hold_id)
        if h is None:
            raise NotFoundError(f"no hold {hold_id}", hint="list them with `modelward holds`")
        if not h.active:
            raise ValidationError(f"hold {hold_id} was already released at "
                                  f"{iso(h.released_at)}", field="hold_id")
        return ledger_retention.release_hold(conn, h, reason, actor,
                                             now_us() if at is None else at)


def list_holds(store, *, include_released: bool = False) -> list[Hold]:
    with store.read() as conn:
        return ledger_retention.list_holds(conn, include_released=include_released)
