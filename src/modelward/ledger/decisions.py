"""Decisions: one production output each, with the digests that actually produced it.

:func:`normalize` (from ``decision_fields``) validates one decision (from the SDK, a JSONL
backfill or the API) into the row tuple the chain hashes; :func:`append` writes a batch as
one sealed chain block in one transaction (PostgreSQL: :mod:`.pgcopy`; SQLite: a few
multi-row INSERTs).
"""

from __future__ import annotations

import functools
import itertools
import operator
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..digest import canonical_json
from ..errors import IdConflictError, UnknownDecisionError, ValidationError
from ..ids import content_id
from ..timefmt import iso, now_us
from . import chain, erasure, partitions, pgcopy, rollups, subject_keys
from .decision_fields import (  # noqa: F401  (the public names live on here too)
    DIGEST_FIELDS,
    FIELDS,
    GATE_FIELDS,
    KIND_FIELD,
    STRING_FIELDS,
    check_time,
    default_process,
    nfc,
    normalize,
)
from .engine import CHAIN_LOCK_SQL, Store
from .schema import decision_payloads, decisions

# Insert order: the chained columns, then block and position.
COLUMNS = chain.CHAINED + ("block", "pos")


def _insert_sql(store: Store) -> str:
    cols = ", ".join(COLUMNS)
    marks = ", ".join([store.paramstyle] * len(COLUMNS))
    if store.dialect == "sqlite":
        return f"INSERT OR IGNORE INTO decisions ({cols}) VALUES ({marks})"
    return f"INSERT INTO decisions ({cols}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING"


# Rows per multi-row INSERT on SQLite, largest first: a batch goes in as its binary digits
# (2000 = 1024 + 512 + 256 + 128 + 64 + 16), and the fixed set of sizes keeps the driver's
# statement cache warm (preparing a 1024-row INSERT costs ~10 ms; executing it ~0.5 ms).
# SQLite binds at most 32766 parameters (999 before 3.32).
_SQLITE_MAX_PARAMS = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
_SQLITE_CHUNKS = tuple(n for n in (1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1)
                       if n * len(COLUMNS) <= _SQLITE_MAX_PARAMS)
_flatten = itertools.chain.from_iterable
_id, _at = operator.itemgetter(0), operator.itemgetter(1)


@functools.lru_cache(maxsize=len(_SQLITE_CHUNKS))
def _sqlite_multi_insert_sql(n_rows: int) -> str:
    one = "(" + ", ".join("?" * len(COLUMNS)) + ")"
    return (f"INSERT OR IGNORE INTO decisions ({', '.join(COLUMNS)}) VALUES "
            + ", ".join([one] * n_rows))


def _insert_rows(conn: Connection, store: Store, rows: list[tuple],
                 hashed: list | None = None) -> int:
    """Insert full decision rows (COLUMNS order); returns how many were new."""
    if store.driver == "psycopg":  # partitioned by month: ids claimed, then COPY
        return pgcopy.insert_rows(conn, store, COLUMNS, rows, hashed)
    if store.dialect != "sqlite":
        return conn.exec_driver_sql(_insert_sql(store), rows).rowcount
    # pysqlite's executemany runs one sqlite3_step per row and releases the GIL around each,
    # so the recorder thread and the serving thread convoy on the GIL at every row. A few
    # multi-row INSERTs bind in C and step once per chunk, holding the GIL far less often.
    inserted = i = 0
    left = len(rows)
    for size in _SQLITE_CHUNKS:
        sql = None
        while left >= size:
            sql = sql or _sqlite_multi_insert_sql(size)
            inserted += conn.exec_driver_sql(sql, tuple(_flatten(rows[i:i + size]))).rowcount
            i += size
            left -= size
    return inserted


def _payload_sql(store: Store) -> str:
    m = store.paramstyle
    verb = "INSERT OR IGNORE" if store.dialect == "sqlite" else "INSERT"
    tail = "" if store.dialect == "sqlite" else " ON CONFLICT (decision_id) DO NOTHING"
    return (f"{verb} INTO decision_payloads (decision_id, subject, input_text, output_text) "
            f"VALUES ({m}, {m}, {m}, {m}){tail}")


@dataclass
class AppendResult:
    block: int | None
    inserted: int
    duplicates: int  # ids already recorded with the same content
    conflicts: dict[str, list[str]] = field(default_factory=dict)  # id -> fields that differ


# What a decision says, compared when its id arrives again. ``at`` and ``process`` say when
# and where it was recorded: a retry that lets the ledger stamp the time anew (an API body
# without ``at``) is the same decision.
_CONTENT = tuple(i for i, c in enumerate(chain.CHAINED)
                 if c not in ("id", "at", "process", "recorded_at"))


def _differing(a: tuple, b: tuple) -> list[str]:
    return [chain.CHAINED[i] for i in _CONTENT if a[i] != b[i]]


def conflict_error(conflicts: dict[str, list[str]]) -> IdConflictError:
    ids = sorted(conflicts)
    shown = ", ".join(f"{i} ({', '.join(conflicts[i])})" for i in ids[:10])
    more = f" and {len(ids) - 10} more" if len(ids) > 10 else ""
    return IdConflictError(
        f"{len(ids)} decision id(s) already recorded with different content: {shown}{more}; "
        "nothing was written", ids=ids, fields={i: conflicts[i] for i in ids},
        hint="a recorded decision never changes: give a different decision a new id")


def append(store: Store, rows: list[tuple], payloads: Iterable[tuple] = (),
           *, recorded_at: int | None = None, on_conflict: str = "raise") -> AppendResult:
    """Write normalized decisions as one sealed chain block in one transaction.

    An id already in the ledger (or repeated in ``rows``) with the same content is a
    duplicate, skipped, so a retry never duplicates. With different content it is a
    conflict: ``on_conflict="raise"`` raises :class:`IdConflictError` naming the ids and
    writes nothing; ``"report"`` (the recorder, which has no caller to raise to) writes the
    rest and returns them in ``conflicts``. Returns the block number (None when nothing
    was new)."""
    if not rows:
        return AppendResult(None, 0, 0)
    repeats: dict[str, list[str]] = {}
    if len(set(map(_id, rows))) == len(rows):  # the usual batch: no id twice (a C pass)
        unique = rows
    else:
        seen: dict[str, tuple] = {}
        unique = []
        for r in rows:
            first = seen.get(r[0])
            if first is None:
                seen[r[0]] = r
                unique.append(r)
            elif first != r and (differ := _differing(first, r)):
                repeats[r[0]] = differ
    if repeats and on_conflict == "raise":
        raise conflict_error(repeats)
    offered = len(rows) - len(repeats)
    res = None
    if store.driver == "psycopg" and LATE_LOCK:
        with store.write(chain=True, late_lock=True) as conn:
            if pgcopy.late_ready(conn, store):
                res = _append_late(conn, store, unique, payloads, recorded_at=recorded_at,
                                   offered=offered, on_conflict=on_conflict)
            else:  # a ledger before 0015_partitions, or no C formatter: lock, then write
                conn.exec_driver_sql(CHAIN_LOCK_SQL)
                res = append_in(conn, store, unique, payloads, recorded_at=recorded_at,
                                offered=offered, on_conflict=on_conflict)
    else:
        with store.write(chain=True) as conn:
            res = append_in(conn, store, unique, payloads, recorded_at=recorded_at,
                            offered=offered, on_conflict=on_conflict)
    res.conflicts.update(repeats)
    return res


# PostgreSQL: whether append() takes the chain's lock late (pgcopy, "the recorder's blocks");
# False writes every block under the lock from the start, as append_in does (benchmarks
# compare the two in one run).
LATE_LOCK = True
_ROLLUP_SQL: dict = {}


def _append_late(conn: Connection, store: Store, unique: list[tuple], payloads: Iterable[tuple],
                 *, recorded_at: int | None, offered: int, on_conflict: str) -> AppendResult:
    """:func:`append_in` on PostgreSQL with the chain's lock taken late (pgcopy): ids claimed,
    digests keyed, leaves hashed and rows encoded before it; only the head read, the COPY
    and the seal under it. Commits the transaction."""
    recorded_at = now_us() if recorded_at is None else recorded_at
    wanted = subject_keys.wanted_subjects(unique)
    subjects = subject_keys.pg_json(wanted) if wanted else None
    claimed, keys = pgcopy.claim(conn, sorted(map(_id, unique)), subjects)
    if len(keys) != len(wanted):
        keys.update(pgcopy.make_keys(conn, wanted - keys.keys()))
    rows = subject_keys.apply(unique, keys)
    positions = range(len(rows))  # its place in the batch: skipped ids leave gaps
    conflicts: dict[str, list[str]] = {}
    if len(claimed) != len(rows):  # ids recorded before (committed: a claim waits for its writer)
        conflicts = _conflicts(conn, [r + (recorded_at,) for r in rows if r[0] not in claimed])
        if conflicts and on_conflict == "raise":
            raise conflict_error(conflicts)  # the caller's transaction rolls back
        positions = [i for i, r in enumerate(rows) if r[0] in claimed]
        rows = [rows[i] for i in positions]
        unique = [unique[i] for i in positions]
        offered -= len(conflicts)
    if not rows:
        return AppendResult(None, 0, offered, conflicts)

    def prepared(rows):
        full = [(0, i, *r, recorded_at) for i, r in zip(positions, rows, strict=True)]
        return full, chain.leaves(full, 2), *pgcopy.encode(conn, full)

    full, leaves, data, offsets = prepared(rows)
    number, prev_root, fingerprint = pgcopy.lock_and_head(conn, CHAIN_LOCK_SQL, subjects)
    if subjects is not None and fingerprint != subject_keys.fingerprint(keys):
        # a key was destroyed (erasure) or made since it was fetched: key again under the lock
        rows = subject_keys.key_digests(conn, store, unique)
        full, leaves, data, offsets = prepared(rows)
    number += 1
    ats = list(map(_at, rows))
    first_at, last_at = min(ats), max(ats)
    partitions.ensure(conn, store.__dict__.setdefault("_pg_partitions", set()), first_at,
                      last_at, now=now_us(), retention=store.settings.retention)
    pgcopy.copy_encoded(conn, data, offsets, number)
    seal = (number, chain.block_root(prev_root, leaves), prev_root, len(full), first_at,
            last_at, now_us())
    rollup = None
    if rollups.has_table(conn):
        gates = rollups.has_gates(conn)
        sql, params = _ROLLUP_SQL.get((conn.dialect.name, gates)) or _ROLLUP_SQL.setdefault(
            (conn.dialect.name, gates), rollups.block_sql(conn.dialect, gates=gates))
        rollup = (sql, {**params, "block": number})
    payload_rows = list(payloads)
    if payload_rows:
        kept = set(map(_id, rows))
        payload_rows = [p for p in payload_rows if p[0] in kept]
    pgcopy.finish(conn, seal, rollup, payload_rows, commit=True)
    return AppendResult(number, len(full), offered - len(full), conflicts)


def append_in(conn: Connection, store: Store, unique: list[tuple], payloads: Iterable[tuple] = (),
              *, recorded_at: int | None = None, offered: int | None = None,
              on_conflict: str = "raise") -> AppendResult:
    """:func:`append` inside a write transaction the caller holds (``store.write(chain=True)``);
    ``unique`` must not repeat an id."""
    if on_conflict not in ("raise", "report"):
        raise ValueError(on_conflict)
    offered = len(unique) if offered is None else offered
    recorded_at = now_us() if recorded_at is None else recorded_at
    # a subject's text digests are chained keyed with its key (ledger/subject_keys.py)
    unique = subject_keys.key_digests(conn, store, unique)
    number, prev_root = chain.last_block(conn)
    number += 1
    full = [r + (recorded_at, number, i) for i, r in enumerate(unique)]
    hashed: list[bytes] = []  # PostgreSQL: the leaves of the rows written, hashed as COPY streams
    inserted = _insert_rows(conn, store, full, hashed)
    conflicts: dict[str, list[str]] = {}
    if inserted != len(full):
        present = set(conn.exec_driver_sql(
            f"SELECT id FROM decisions WHERE block = {store.paramstyle}", (number,)
        ).scalars())
        conflicts = _conflicts(conn, [r for r in full if r[0] not in present])
        if conflicts and on_conflict == "raise":
            raise conflict_error(conflicts)  # the caller's transaction rolls back
        full = [r for r in full if r[0] in present]
        offered -= len(conflicts)
    if not full:
        return AppendResult(None, 0, offered, conflicts)
    leaves = hashed if len(hashed) == len(full) else chain.leaves(full)
    ats = list(map(_at, full))
    chain.seal(conn, number, prev_root, leaves, min(ats), max(ats))
    rollups.write_block(conn, number)  # the counting guards' per-block aggregates
    payload_rows = list(payloads)
    if payload_rows:
        kept = set(map(_id, full))
        payload_rows = [p for p in payload_rows if p[0] in kept]
    if payload_rows:
        conn.exec_driver_sql(_payload_sql(store), payload_rows)
    return AppendResult(number, len(full), offered - len(full), conflicts)


def _conflicts(conn: Connection, rows: list[tuple]) -> dict[str, list[str]]:
    """Of rows whose ids are already recorded: id -> the content fields that differ."""
    out: dict[str, list[str]] = {}
    by_id = {r[0]: r for r in rows}
    ids = list(by_id)
    cols = [decisions.c[c] for c in chain.CHAINED]
    for i in range(0, len(ids), 500):
        for stored in conn.execute(sa.select(*cols).where(decisions.c.id.in_(ids[i:i + 500]))):
            differ = _differing(tuple(stored), by_id[stored[0]])
            if differ:
                out[stored[0]] = differ
    return out


@dataclass
class Decision:
    id: str
    at: int
    alias: str | None
    model_digest: str | None
    prompt_digest: str | None
    embedder_digest: str | None
    reranker_digest: str | None
    config_digest: str | None
    vendor_model_id: str | None
    vendor_fingerprint: str | None
    subject: str | None
    input_digest: str | None
    output_digest: str | None
    segments: dict | None
    gate_threshold: float | None
    gate_candidates: int | None
    gate_passed: int | None
    process: str | None
    extra: dict | None
    recorded_at: int
    block: int
    pos: int

    @classmethod
    def from_row(cls, row) -> Decision:
        m = dict(row._mapping)
        m["segments"] = orjson.loads(m["segments"]) if m["segments"] else None
        m["extra"] = orjson.loads(m["extra"]) if m["extra"] else None
        return cls(**m)

    def digests(self) -> dict[str, str | None]:
        return {f[:-7]: getattr(self, f) for f in DIGEST_FIELDS}

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["at"] = iso(self.at)
        out["recorded_at"] = iso(self.recorded_at)
        out["gate"] = ({"threshold": self.gate_threshold, "candidates": self.gate_candidates,
                        "passed": self.gate_passed} if self.gate_threshold is not None
                       or self.gate_candidates is not None or self.gate_passed is not None
                       else None)
        for k in ("gate_threshold", "gate_candidates", "gate_passed"):
            out.pop(k)
        return out


def get(conn: Connection, decision_id: str) -> Decision:
    row = conn.execute(sa.select(decisions).where(decisions.c.id == decision_id)).first()
    if row is None:
        raise UnknownDecisionError(f"no decision {decision_id!r} in the ledger",
                                   hint="find decisions with `modelward decisions search`")
    return Decision.from_row(row)


def payload(conn: Connection, decision_id: str):
    return conn.execute(sa.select(decision_payloads)
                        .where(decision_payloads.c.decision_id == decision_id)).first()


def search(conn: Connection, *, subject: str | None = None, since: int | None = None,
           until: int | None = None, alias: str | None = None, limit: int = 100) -> list[Decision]:
    # id breaks ties so equal times list in a stable order
    q = sa.select(decisions).order_by(decisions.c.at.desc(), decisions.c.id.desc()).limit(limit)
    if subject is not None:
        q = q.where(decisions.c.subject == nfc(subject))
    if alias is not None:
        q = q.where(decisions.c.alias == alias)
    if since is not None:
        q = q.where(decisions.c.at >= since)
    if until is not None:
        q = q.where(decisions.c.at < until)
    return [Decision.from_row(r) for r in conn.execute(q).all()]


def erase_subject(store: Store, subject: str) -> int:
    """Remove the raw text kept for a subject's decisions and destroy the key of its
    digests (:func:`.erasure.erase`); the chained record stays. Returns how many texts."""
    return erasure.erase(store, subject).texts


def count(conn: Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar()


def import_jsonl(store: Store, lines: Iterable[bytes | str], *, block_size: int = 2000,
                 max_problems: int = 50) -> AppendResult:
    """Backfill decisions from JSON lines with the recorder's validation.

    Every line is checked first; any bad line rejects the whole file (the ValidationError
    lists each problem with its line number) and nothing is written. Good files are written
    in one transaction, ``block_size`` decisions per chain block.

    A line without an id gets one derived from its content (:func:`~modelward.ids.content_id`
    of its canonical JSON), so importing a file again counts its lines as duplicates. An id
    already recorded with different content raises :class:`IdConflictError` naming the ids,
    and nothing is written."""
    rows: list[tuple] = []
    payloads: list[tuple] = []
    problems: list[ValidationError] = []
    seen: dict[str, int] = {}
    now, skew, window = now_us(), store.settings.clock_skew, store.settings.ingest_window
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValidationError(f"not valid JSON ({exc})", line=number) from None
            derived = isinstance(obj, dict) and obj.get("id") is None
            if derived:
                obj["id"] = content_id(canonical_json(obj))
            row, payload = normalize(obj, line=number)
            check_time(row[1], now, skew=skew, window=window, line=number)
            if row[0] in seen:
                what = (f"repeats line {seen[row[0]]} exactly (a line without an id is "
                        "identified by its content)") if derived else \
                    f"repeats the id of line {seen[row[0]]}"
                raise ValidationError(what, field="id", line=number,
                                      hint="give each decision its own id" if derived else None)
            seen[row[0]] = number
        except ValidationError as exc:
            problems.append(exc)
            if len(problems) >= max_problems:
                break
            continue
        rows.append(row)
        if payload is not None:
            payloads.append(payload)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more bad lines)" if len(problems) > 1 else ""
        error = ValidationError(f"{first.message}{more}; nothing was imported",
                                hint="fix the lines named and import the file again")
        error.problems = problems
        raise error
    total = AppendResult(None, 0, 0)
    with store.write(chain=True) as conn:
        for i in range(0, len(rows), block_size):
            part = rows[i:i + block_size]
            ids = {r[0] for r in part}
            res = append_in(conn, store, part, [p for p in payloads if p[0] in ids])
            total = AppendResult(res.block or total.block, total.inserted + res.inserted,
                                 total.duplicates + res.duplicates)
    return total
