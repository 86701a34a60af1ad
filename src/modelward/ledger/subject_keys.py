"""Per-subject keys for the chained text digests: erasure that leaves nothing guessable.

A decision's ``input_digest`` and ``output_digest`` are chained forever, and a plain
``sha256:`` of a short text (a date of birth, a postcode) is recovered by trying every
candidate. So for a decision with a ``subject`` the ledger chains a *keyed* digest::

    hmac:<hex of HMAC-SHA256(key of the subject, "sha256:<hex of SHA-256(UTF-8 text)>")>

The key is 32 random bytes made the first time the subject is recorded, kept in the
``subject_keys`` table: outside the chain (never a leaf, never in an exported head).
``modelward erase --subject`` deletes it with the subject's text (crypto-shredding): the
chained digests never change, so ``verify`` still passes, but nobody can test a guess
against them any more.

The key is applied over the *plain* digest, not the text, so the ledger keys whatever a
client sends: the text (the SDK, the API, OTLP with message content) or only its
``sha256:`` digest. Clients never see a key and never send a keyed digest (``hmac:`` is
refused as input). The keying happens where a block is written (:func:`key_digests`, called
by :func:`.decisions.append_in` inside the write transaction that every writer, erasure
included, takes in turn), so a key is created in the same transaction as the first digest
made with it, and no decision is ever keyed with a key an erasure has just destroyed.

Not keyed, and documented as such: decisions without a subject (nothing to erase them by),
and decisions recorded before this existed (their plain digests stay: erasure cannot shred
them, and :func:`plain_digest_count` tells ``erase`` how many it met).

Why a table rather than a key file: it commits with the decisions (a crash never leaves a
digest whose key was not stored), every writer of a PostgreSQL ledger on any host sees it,
and erasure is one transaction. Backups of the database hold the keys too (see
docs/reliability.md).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..digest import of_text
from ..timefmt import now_us
from .chain import CHAINED
from .engine import Store
from .schema import decisions, subject_keys

KEYED_PREFIX = "hmac:"
PLAIN_PREFIX = "sha256:"
KEY_BYTES = 32
SUBJECT = CHAINED.index("subject")
INPUT = CHAINED.index("input_digest")
OUTPUT = CHAINED.index("output_digest")
_hmac = hmac.digest
_sha256 = hashlib.sha256
_BLOCK = 64  # SHA-256's block size: HMAC's key pads are this long
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def keyed(key: bytes, plain: str) -> str:
    """The keyed digest (``hmac:<64 hex>``) of a plain ``sha256:`` digest."""
    return KEYED_PREFIX + _hmac(key, plain.encode("ascii"), "sha256").hex()


def _pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer key pads (RFC 2104; a key longer than a block is
    hashed first)."""
    if len(key) > _BLOCK:
        key = _sha256(key).digest()
    padded = key.ljust(_BLOCK, b"\0")
    return padded.translate(_IPAD), padded.translate(_OPAD)


def _keyed_padded(inner: bytes, outer: bytes, plain: str) -> str:
    """:func:`keyed` from the key's :func:`_pads`: the same bytes (RFC 2104's definition,
    two one-shot SHA-256 calls), without the HMAC object's per-call set-up, which cost
    more than the hashing (~1.6 µs against ~0.6 a digest); tests hold it to :func:`keyed`."""
    return KEYED_PREFIX + _sha256(
        outer + _sha256(inner + plain.encode("ascii")).digest()).hexdigest()


def is_keyed(digest: str | None) -> bool:
    return digest is not None and digest.startswith(KEYED_PREFIX)


def _plain(digest) -> bool:
    return digest is not None and digest.startswith(PLAIN_PREFIX)


def key_digests(conn: Connection, store: Store, rows: list[tuple]) -> list[tuple]:
    """``rows`` (normalized decisions, :data:`CHAINED` order) with every plain input/output
    digest of a decision that names a subject replaced by its keyed digest; subjects seen
    for the first time get a key, in the caller's write transaction."""
    wanted = wanted_subjects(rows)
    if not wanted:
        return rows
    keys = fetch(conn, store, wanted)
    missing = wanted - keys.keys()
    if missing:
        keys.update(create(conn, missing))
    return apply(rows, keys)


def wanted_subjects(rows: list[tuple]) -> set[str]:
    """The subjects of ``rows`` that have a plain text digest to key."""
    return {r[SUBJECT] for r in rows
            if r[SUBJECT] is not None and (_plain(r[INPUT]) or _plain(r[OUTPUT]))}


def apply(rows: list[tuple], keys: dict[str, bytes]) -> list[tuple]:
    """``rows`` with the plain digests of each subject in ``keys`` keyed (no I/O)."""
    if not keys:
        return rows
    pads = {s: _pads(k) for s, k in keys.items()}
    out = []
    append = out.append
    for r in rows:
        subject = r[SUBJECT]
        pad = pads.get(subject) if subject is not None else None
        if pad is None:
            append(r)
            continue
        i, o = r[INPUT], r[OUTPUT]
        if i is not None and i.startswith(PLAIN_PREFIX):
            i = _keyed_padded(*pad, i)
        if o is not None and o.startswith(PLAIN_PREFIX):
            o = _keyed_padded(*pad, o)
        append(r[:INPUT] + (i, o) + r[OUTPUT + 1:])
    return out


def fingerprint(keys: dict[str, bytes]) -> str:
    """md5 of the keys' hex in subject order (code points: PostgreSQL's "C" collation),
    as :data:`PG_FINGERPRINT` computes it on the server: the writer of a decision block
    fetches its keys before it takes the chain's lock and checks them under it."""
    return hashlib.md5("".join(keys[s].hex() for s in sorted(keys)).encode(),
                       usedforsecurity=False).hexdigest()


# One JSON array of subjects: psycopg dumps a Python list parameter element by element
# (~10 µs each), orjson writes the array in C.
PG_SUBJECTS = "SELECT jsonb_array_elements_text(%s::jsonb)"
PG_FETCH = f"SELECT subject, key FROM subject_keys WHERE subject IN ({PG_SUBJECTS})"
PG_FINGERPRINT = ("SELECT md5(coalesce(string_agg(encode(key, 'hex'), '' ORDER BY subject "
                  f'COLLATE "C"), \'\')) FROM subject_keys WHERE subject IN ({PG_SUBJECTS})')
# Keys made outside the chain's lock: a subject another writer keyed meanwhile keeps its key
# (ON CONFLICT waits for that writer's transaction, then skips); fetched afterwards.
PG_CREATE = ("INSERT INTO subject_keys (subject, key, created_at) SELECT subject, "
             "decode(key, 'hex'), %s FROM jsonb_to_recordset(%s::jsonb) AS t(subject text, "
             "key text) ON CONFLICT (subject) DO NOTHING")


def pg_json(subjects) -> str:
    return orjson.dumps(sorted(subjects)).decode()


def pg_create(cur, subjects: set[str]) -> dict[str, bytes]:
    """Keys for ``subjects`` (which had none when fetched) on a psycopg cursor: new ones
    stored, or those another writer stored meanwhile."""
    made = [{"subject": s, "key": os.urandom(KEY_BYTES).hex()} for s in sorted(subjects)]
    cur.execute(PG_CREATE, (now_us(), orjson.dumps(made).decode()))
    cur.execute(PG_FETCH, (pg_json(subjects),))
    return {s: bytes(k) for s, k in cur.fetchall()}


def fetch(conn: Connection, store: Store, subjects: Iterable[str]) -> dict[str, bytes]:
    """The keys of ``subjects`` that have one: one query per batch, whatever its size."""
    subjects = list(subjects)
    if store.dialect == "sqlite":  # one bound JSON array: no parameter limit, one cached plan
        # the driver's rows, fetched at once (SQLAlchemy's result steps row by row); the
        # keys are already bytes
        res = conn.exec_driver_sql(
            "SELECT subject, key FROM subject_keys "
            "WHERE subject IN (SELECT value FROM json_each(?))",
            (orjson.dumps(subjects).decode(),))
        try:
            return dict(res.cursor.fetchall())
        finally:
            res.close()
    elif store.driver == "psycopg":  # one bound JSON array
        rows = conn.exec_driver_sql(PG_FETCH, (pg_json(subjects),))
    else:
        rows = conn.execute(sa.select(subject_keys.c.subject, subject_keys.c.key)
                            .where(subject_keys.c.subject.in_(subjects)))
    return {s: bytes(k) for s, k in rows}


def create(conn: Connection, subjects: Iterable[str]) -> dict[str, bytes]:
    """New random keys for ``subjects`` (which have none), stored; returns them."""
    now = now_us()
    made = {s: os.urandom(KEY_BYTES) for s in subjects}
    conn.execute(subject_keys.insert(),
                 [{"subject": s, "key": k, "created_at": now} for s, k in made.items()])
    return made


def key_for(conn: Connection, subject: str | None) -> bytes | None:
    """The subject's key, or None (no subject, or the key was destroyed or lost)."""
    if subject is None:
        return None
    found = conn.execute(sa.select(subject_keys.c.key)
                         .where(subject_keys.c.subject == subject)).scalar()
    return None if found is None else bytes(found)


def destroy(conn: Connection, subject: str) -> bool:
    """Delete the subject's key (the caller zeroes freed bytes: SQLite's ``secure_delete``);
    True when there was one."""
    res = conn.execute(subject_keys.delete().where(subject_keys.c.subject == subject))
    return res.rowcount > 0


def plain_digest_count(conn: Connection, subject: str) -> int:
    """How many of the subject's decisions chain a plain (unkeyed) text digest: recorded
    before keyed digests existed, so erasure cannot shred them."""
    d = decisions.c
    plain = PLAIN_PREFIX + "%"
    return conn.execute(sa.select(sa.func.count()).select_from(decisions).where(
        d.subject == subject,
        sa.or_(d.input_digest.like(plain), d.output_digest.like(plain)))).scalar()


def text_matches(text: str, digest: str | None, key: bytes | None) -> bool | None:
    """Whether kept ``text`` hashes to the chained ``digest``: True/False, or None when the
    digest is keyed and the key is gone (destroyed by an erasure, or lost): the text can no
    longer be checked, which is not the same as altered."""
    if digest is None:
        return False
    if not digest.startswith(KEYED_PREFIX):
        return of_text(text) == digest
    if key is None:
        return None
    return hmac.compare_digest(keyed(key, of_text(text)), digest)


def chained_digest(conn: Connection, subject: str | None, plain: str) -> str:
    """The digest the ledger chains, recording now for ``subject``, for a text whose plain
    digest is ``plain`` (``sha256:``): keyed with the subject's key when it has one."""
    key = key_for(conn, subject)
    return plain if key is None else keyed(key, plain)
