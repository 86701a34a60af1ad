"""Artifacts: immutable, content-addressed things, their metadata and lineage."""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import digest as dg
from ..errors import StorageError, UnknownArtifactError, ValidationError
from ..timefmt import iso, now_us
from . import records
from .blobs import Staged
from .engine import Store
from .fits import check_fits
from .schema import artifact_parents, artifacts

KINDS = ("model", "adapter", "prompt", "embedder", "reranker", "dataset", "evalset",
         "config", "policy")


@dataclass
class Artifact:
    digest: str
    kind: str
    name: str
    version: str | None
    owner: str | None
    created_at: int
    payload: str
    is_directory: bool
    size: int | None
    hosted_id: str | None
    retires_at: int | None
    source_path: str | None
    payload_deleted_at: int | None
    meta: dict = field(default_factory=dict)
    parents: list[tuple[str, str]] = field(default_factory=list)
    token_id: str | None = None  # the API token that registered it (None from the CLI)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["created_at"] = iso(self.created_at)
        out["retires_at"] = iso(self.retires_at)
        out["payload_deleted_at"] = iso(self.payload_deleted_at)
        out["parents"] = [{"digest": d, "relation": r} for d, r in self.parents]
        return out


@dataclass
class Registration:
    artifact: Artifact
    created: bool
    restored_payload: bool = False


def _row_to_artifact(row, parents=()) -> Artifact:
    m = row._mapping
    return Artifact(
        digest=m["digest"], kind=m["kind"], name=m["name"], version=m["version"],
        owner=m["owner"], created_at=m["created_at"], payload=m["payload"],
        is_directory=bool(m["is_directory"]), size=m["size"], hosted_id=m["hosted_id"],
        retires_at=m["retires_at"], source_path=m["source_path"],
        payload_deleted_at=m["payload_deleted_at"],
        meta=orjson.loads(m["meta"]) if m["meta"] else {}, parents=list(parents),
        token_id=m.get("token_id"),
    )


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValidationError(f"unknown artifact kind {kind!r}; choose one of {', '.join(KINDS)}",
                              field="kind")
    return kind


def get(conn: Connection, digest: str) -> Artifact:
    found = find(conn, digest)
    if found is None:
        raise UnknownArtifactError(f"no artifact {digest} is registered",
                                   hint="register it with `modelward register`")
    return found


def find(conn: Connection, digest: str) -> Artifact | None:
    row = conn.execute(sa.select(artifacts).where(artifacts.c.digest == digest)).first()
    if row is None:
        return None
    parents = conn.execute(
        sa.select(artifact_parents.c.parent, artifact_parents.c.relation)
        .where(artifact_parents.c.child == digest).order_by(artifact_parents.c.parent)
    ).all()
    return _row_to_artifact(row, [tuple(p) for p in parents])


def known_digests(conn: Connection, digests) -> set[str]:
    wanted = sorted({d for d in digests if d})
    found: set[str] = set()
    for i in range(0, len(wanted), 500):
        chunk = wanted[i:i + 500]
        found.update(conn.execute(
            sa.select(artifacts.c.digest).where(artifacts.c.digest.in_(chunk))).scalars())
    return found


def latest_named(conn: Connection, kind: str, name: str) -> str | None:
    """The digest of the latest registered artifact of ``kind`` named ``name``."""
    a = artifacts.c
    return conn.execute(sa.select(a.digest).where(a.kind == kind, a.name == name)
                        .order_by(a.created_at.desc(), a.digest).limit(1)).scalar()


def list_artifacts(conn: Connection, kind: str | None = None) -> list[Artifact]:
    q = sa.select(artifacts).order_by(artifacts.c.created_at, artifacts.c.digest)
    if kind:
        q = q.where(artifacts.c.kind == check_kind(kind))
    rows = conn.execute(q).all()
    parents: dict[str, list] = {}
    for child, parent, rel in conn.execute(sa.select(artifact_parents)).all():
        parents.setdefault(child, []).append((parent, rel))
    return [_row_to_artifact(r, sorted(parents.get(r.digest, []))) for r in rows]


def _insert(conn: Connection, art: Artifact) -> None:
    values = asdict(art)
    values.pop("parents")
    values["meta"] = dg.canonical_json(art.meta).decode() if art.meta else None
    check_fits(artifacts, values, names={"hosted_id": "hosted"})
    conn.execute(artifacts.insert().values(**values))
    for parent, relation in art.parents:
        conn.execute(artifact_parents.insert().values(child=art.digest, parent=parent,
                                                      relation=relation))
    records.record_many(conn, [("artifacts", [art.digest]),
                             ("artifact_parents", [(art.digest, p) for p, _r in art.parents])])


def _take_turn(conn: Connection, digest: str) -> None:
    """Serialise registrations of one digest for the rest of this write transaction.

    PostgreSQL at READ COMMITTED let two processes registering the same content both see
    no row and both insert (a duplicate-key error); SQLite's BEGIN IMMEDIATE already
    serialises writers."""
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(bytes.fromhex(digest[7:23]), "big", signed=True)
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def _check_parents(conn: Connection, parents) -> list[tuple[str, str]]:
    out = []
    for p in parents:
        parent, relation = (p if isinstance(p, tuple) else (p, "parent"))
        dg.check_digest(parent, "parent")
        if find(conn, parent) is None:
            raise UnknownArtifactError(f"parent {parent} is not a registered artifact",
                                       hint="register the parent first")
        out.append((parent, relation))
    return out


_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def register_path(store: Store, kind: str, path: Path, *, name: str, version: str | None = None,
                  owner: str | None = None, parents=(), store_payload: bool = True,
                  meta: dict | None = None, at: int | None = None,
                  token_id: str | None = None) -> Registration:
    """Digest a file or directory, store its payload (unless told not to) and record it.
    A file that cannot be read is a ValidationError naming it; a blob store that cannot be
    written (full, read-only) a StorageError: one clear error, never a traceback."""
    try:
        return _register_path(store, kind, path, name=name, version=version, owner=owner,
                              parents=parents, store_payload=store_payload, meta=meta, at=at,
                              token_id=token_id)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno in _FULL:
            raise StorageError(f"cannot store {path}: {reason}",
                               hint="free space on the blob store, or make it writable") from exc
        raise ValidationError(f"cannot read {exc.filename or path}: {reason}",
                              field="path") from exc


def _register_path(store: Store, kind: str, path: Path, *, name: str, version: str | None,
                   owner: str | None, parents, store_payload: bool, meta: dict | None,
                   at: int | None, token_id: str | None) -> Registration:
    check_kind(kind)
    path = Path(path)
    if not name or not name.strip():
        raise ValidationError("an artifact needs a name", field="name")
    if not path.exists():
        raise ValidationError(f"{path} does not exist", field="path")
    if path.is_dir():
        entries = dg.walk_directory(path)
        if not entries:
            raise ValidationError(f"{path} holds no files", field="path")
        manifest = dg.manifest_bytes(entries)
        digest, size, is_dir = dg.of_bytes(manifest), sum(e.size for e in entries), True
    elif dg.is_canonicalised(kind, path):
        payload = dg.canonical_payload(kind, path)
        digest, size, is_dir = dg.of_bytes(payload), len(payload), False
    else:  # streamed, never read whole: checkpoints can be larger than memory
        payload = None
        digest, size, is_dir = dg.of_file(path), path.stat().st_size, False

    def store_blobs() -> None:
        if is_dir:
            for e in entries:
                store.blobs.put_file(path / e.path, expected=e.digest)
            store.blobs.put_bytes(manifest)
        elif payload is None:
            store.blobs.put_file(path, expected=digest)
        else:
            store.blobs.put_bytes(payload)

    # Blobs are copied outside any transaction: on SQLite a write transaction holds the
    # database's one write lock, and a multi-GB copy would stall every recorder meanwhile.
    with store.read() as conn:
        existing = find(conn, digest)
        if existing is None:
            _check_parents(conn, parents)
    if existing is not None:
        # registering again with storage keeps a payload that was never stored (--no-store),
        # deleted or corrupted: the one way to repair an unretained artifact
        if not (store_payload and (existing.payload == "none" or (
                existing.payload == "blob" and payload_status(store, existing) != "present"))):
            return Registration(existing, created=False)
        store_blobs()
        with store.write() as conn:
            conn.execute(artifacts.update().where(artifacts.c.digest == digest)
                         .values(payload="blob", payload_deleted_at=None))
            records.record(conn, "artifacts", [digest])
            return Registration(get(conn, digest), created=False, restored_payload=True)
    if store_payload:
        store_blobs()
    with store.write() as conn:
        _take_turn(conn, digest)
        if find(conn, digest) is not None:  # another process registered it meanwhile
            return Registration(get(conn, digest), created=False)
        checked_parents = _check_parents(conn, parents)
        art = Artifact(
            digest=digest, kind=kind, name=name.strip(), version=version, owner=owner,
            created_at=at if at is not None else now_us(),
            payload="blob" if store_payload else "none", is_directory=is_dir, size=size,
            hosted_id=None, retires_at=None, source_path=str(path.resolve()),
            payload_deleted_at=None, meta=meta or {}, parents=checked_parents,
            token_id=token_id,
        )
        _insert(conn, art)
    return Registration(art, created=True)


@dataclass
class Upload:
    """A payload streamed in (:func:`stage_upload`) and not yet recorded: its digest and
    size, and its bytes staged in the blob store (None when not stored). Leaving it as a
    context manager without :func:`record_upload` discards the staged bytes."""

    kind: str
    filename: str
    digest: str
    size: int
    staged: Staged | None

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, *exc) -> None:
        if self.staged is not None:
            self.staged.discard()


def stage_upload(store: Store, kind: str, chunks: Iterable[bytes], *, filename: str,
                 store_payload: bool = True) -> Upload:
    """Stream a single-file payload (``chunks``) into the blob store's staging area,
    hashing as it is written, without a temporary file of its own: the bytes pass once,
    from the request to the store. Prompts and JSON configs/policies are digested in
    canonical form, so they are gathered in memory first (bounded by the caller's body
    limit, as their parsing always was). With ``store_payload`` false only the digest and
    size are kept."""
    check_kind(kind)
    if dg.is_canonicalised(kind, Path(filename)):
        payload = dg.canonical_bytes(kind, b"".join(chunks), Path(filename), field="file")
        if not store_payload:
            return Upload(kind, filename, dg.of_bytes(payload), len(payload), None)
        staged = store.blobs.stage([payload])
        return Upload(kind, filename, staged.digest, staged.size, staged)
    if not store_payload:
        h, size = hashlib.sha256(), 0
        for chunk in chunks:
            h.update(chunk)
            size += len(chunk)
        return Upload(kind, filename, "sha256:" + h.hexdigest(), size, None)
    staged = store.blobs.stage(chunks)
    return Upload(kind, filename, staged.digest, staged.size, staged)


def record_upload(store: Store, upload: Upload, *, name: str, version: str | None = None,
                  owner: str | None = None, parents=(), meta: dict | None = None,
                  token_id: str | None = None) -> Registration:
    """Record a staged upload as :func:`register_path` records a file: the blob is put in
    place first, then the row; when the row cannot be written the blob this call created is
    removed again, so a failed registration leaves neither."""
    if not name or not name.strip():
        raise ValidationError("an artifact needs a name", field="name")
    digest, staged = upload.digest, upload.staged
    with store.read() as conn:
        existing = find(conn, digest)
        if existing is None:
            _check_parents(conn, parents)
    if existing is not None:
        if not (staged is not None and (existing.payload == "none" or (
                existing.payload == "blob" and payload_status(store, existing) != "present"))):
            return Registration(existing, created=False)
        staged.commit()
        with store.write() as conn:
            conn.execute(artifacts.update().where(artifacts.c.digest == digest)
                         .values(payload="blob", payload_deleted_at=None))
            records.record(conn, "artifacts", [digest])
            return Registration(get(conn, digest), created=False, restored_payload=True)
    created_blob = staged.commit() if staged is not None else False
    try:
        with store.write() as conn:
            _take_turn(conn, digest)
            if find(conn, digest) is not None:  # another process registered it meanwhile
                return Registration(get(conn, digest), created=False)
            art = Artifact(
                digest=digest, kind=upload.kind, name=name.strip(), version=version,
                owner=owner, created_at=now_us(),
                payload="blob" if staged is not None else "none", is_directory=False,
                size=upload.size, hosted_id=None, retires_at=None, source_path=None,
                payload_deleted_at=None, meta=meta or {},
                parents=_check_parents(conn, parents), token_id=token_id,
            )
            _insert(conn, art)
    except BaseException:
        if created_blob:
            store.blobs.delete(digest)
        raise
    return Registration(art, created=True)


def register_hosted(store: Store, hosted_id: str, *, name: str, kind: str = "model",
                    version: str | None = None, owner: str | None = None, parents=(),
                    retires_at: int | None = None, meta: dict | None = None,
                    at: int | None = None, token_id: str | None = None) -> Registration:
    """Record a vendor-held model whose content is its vendor id (``openai:gpt-4o-…``)."""
    check_kind(kind)
    vendor, sep, model_id = hosted_id.partition(":")
    if not sep or not vendor or not model_id:
        raise ValidationError(f"hosted id {hosted_id!r} is not VENDOR:MODEL_ID", field="hosted",
                              hint="e.g. openai:gpt-4o-2024-08-06")
    digest = dg.of_text(hosted_id)
    with store.write() as conn:
        _take_turn(conn, digest)
        existing = find(conn, digest)
        if existing is not None:
            if retires_at is not None and existing.retires_at != retires_at:
                conn.execute(artifacts.update().where(artifacts.c.digest == digest)
                             .values(retires_at=retires_at))
                records.record(conn, "artifacts", [digest])
                existing.retires_at = retires_at
            return Registration(existing, created=False)
        art = Artifact(
            digest=digest, kind=kind, name=name, version=version, owner=owner,
            created_at=at if at is not None else now_us(), payload="vendor",
            is_directory=False, size=None, hosted_id=hosted_id, retires_at=retires_at,
            source_path=None, payload_deleted_at=None, meta=meta or {},
            parents=_check_parents(conn, parents), token_id=token_id,
        )
        _insert(conn, art)
    return Registration(art, created=True)


def register_bytes(store: Store, kind: str, data: bytes, *, name: str, **kw) -> Registration:
    """Register in-memory content (a rendered template, a generated dataset)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "payload"
        p.write_bytes(data)
        reg = register_path(store, kind, p, name=name, **kw)
    return reg


def payload_status(store: Store, art: Artifact) -> str:
    """'present' (verified), 'missing', 'corrupt', 'vendor' or 'not-stored'."""
    if art.payload == "vendor":
        return "vendor"
    if art.payload == "none":
        return "not-stored"
    status = store.blobs.verify(art.digest)
    if status != "present" or not art.is_directory:
        return status
    for _path, file_digest in dg.parse_manifest(store.blobs.get(art.digest)):
        file_status = store.blobs.verify(file_digest)
        if file_status != "present":
            return file_status
    return "present"


def blob_digests(store: Store, art: Artifact) -> list[str]:
    """Every blob an artifact's payload occupies (the manifest and its files)."""
    if art.payload != "blob":
        return []
    out = [art.digest]
    if art.is_directory and store.blobs.has(art.digest):
        out += [d for _p, d in dg.parse_manifest(store.blobs.get(art.digest))]
    return out


def mark_payload_deleted(conn: Connection, digest: str, at: int) -> None:
    conn.execute(artifacts.update().where(artifacts.c.digest == digest)
                 .values(payload_deleted_at=at))
    records.record(conn, "artifacts", [digest])


def children(conn: Connection, digest: str) -> list[str]:
    return list(conn.execute(sa.select(artifact_parents.c.child)
                             .where(artifact_parents.c.parent == digest)).scalars())


def find_many(conn: Connection, digests) -> dict[str, Artifact]:
    """The registered artifacts among ``digests``, with parents: one query however many."""
    wanted = sorted({d for d in digests if d})
    if not wanted:
        return {}
    rows = conn.execute(
        sa.select(artifacts, artifact_parents.c.parent.label("parent_digest"),
                  artifact_parents.c.relation.label("parent_relation"))
        .outerjoin(artifact_parents, artifact_parents.c.child == artifacts.c.digest)
        .where(artifacts.c.digest.in_(wanted))
        .order_by(artifacts.c.digest, artifact_parents.c.parent)).all()
    found: dict[str, Artifact] = {}
    for r in rows:
        m = r._mapping
        if r.digest not in found:
            found[r.digest] = _row_to_artifact(r)
        if m["parent_digest"] is not None:
            found[r.digest].parents.append((m["parent_digest"], m["parent_relation"]))
    return found
