"""Decisions: one production output each, with the digests that actually produced it.

:func:`normalize` validates one decision (from the SDK, a JSONL backfill or the API) into
the row tuple the chain hashes; :func:`append` writes a batch as one sealed chain block in
one transaction with the DBAPI's ``executemany``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..digest import DIGEST_RE, canonical_json, of_text
from ..errors import UnknownDecisionError, ValidationError
from ..ids import is_uuid, uuid7
from ..timefmt import iso, now_us, parse_time
from . import chain
from .engine import Store
from .schema import decision_payloads, decisions

DIGEST_FIELDS = ("model_digest", "prompt_digest", "embedder_digest", "reranker_digest",
                 "config_digest")
STRING_FIELDS = {"alias": 200, "vendor_model_id": 300, "vendor_fingerprint": 300,
                 "subject": 300, "process": 300}
FIELDS = frozenset(("id", "at", "alias", *DIGEST_FIELDS, "vendor_model_id",
                    "vendor_fingerprint", "subject", "input_digest", "output_digest",
                    "input_text", "output_text", "segments", "gate", "process", "extra"))
GATE_FIELDS = ("threshold", "candidates", "passed")
# Insert order: the chained columns, then block and position.
COLUMNS = chain.CHAINED + ("block", "pos")

_match_digest = DIGEST_RE.match
_PROCESS = f"{socket.gethostname()}:{os.getpid()}"


def default_process() -> str:
    return _PROCESS


def _digest(value, field: str, line):
    if value is None:
        return None
    if type(value) is not str or len(value) != 71 or _match_digest(value) is None:
        raise ValidationError(
            f"not a sha256:<64 hex> digest: {str(value)[:80]!r}", field=field, line=line,
            hint="record the resolved digest (ledger.resolve(alias).digest), not an alias")
    return value


def _string(value, field: str, line, limit: int):
    if value is None:
        return None
    if type(value) is not str:
        raise ValidationError(f"expected a string, got {type(value).__name__}", field=field,
                              line=line)
    if len(value) > limit or "\x00" in value:
        raise ValidationError(f"longer than {limit} characters or holds a NUL byte",
                              field=field, line=line)
    return value


def _json_object(value, field: str, line):
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(f"expected an object, got {type(value).__name__}", field=field,
                              line=line)
    for k, v in value.items():
        if not isinstance(k, str):
            raise ValidationError("keys must be strings", field=field, line=line)
        if field == "segments" and not (v is None or isinstance(v, (str, int, float, bool))):
            raise ValidationError(f"segment {k!r} must be a string, number or boolean",
                                  field=f"segments.{k}", line=line)
    try:
        return canonical_json(value).decode()
    except TypeError as exc:
        raise ValidationError(f"not JSON-serialisable: {exc}", field=field, line=line) from None


def _int(value, field: str, line):
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise ValidationError(f"expected a non-negative integer, got {value!r}", field=field,
                              line=line)
    return value


def normalize(d: Mapping, *, line: int | None = None, now: int | None = None,
              process: str | None = None) -> tuple[tuple, tuple | None]:
    """Validate one decision. Returns (row without recorded_at/block/pos, payload or None).

    The row holds the chained columns up to ``extra``; raises ValidationError naming the
    field (and the input line) on the first problem."""
    if not isinstance(d, Mapping):
        raise ValidationError(f"a decision must be an object, got {type(d).__name__}", line=line)
    unknown = d.keys() - FIELDS
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(sorted(unknown))}",
                              field=sorted(unknown)[0], line=line)
    get = d.get
    did = get("id")
    if did is None:
        did = uuid7()
    elif not is_uuid(did):
        raise ValidationError(f"not a lowercase UUID: {str(did)[:60]!r}", field="id", line=line)
    at = get("at")
    if at is None:
        at = now if now is not None else now_us()
    else:
        try:
            at = parse_time(at, field="at")
        except ValidationError as exc:
            raise ValidationError(exc.detail, field="at", line=line, hint=exc.hint) from None
    input_text, output_text = get("input_text"), get("output_text")
    input_digest = _digest(get("input_digest"), "input_digest", line)
    output_digest = _digest(get("output_digest"), "output_digest", line)
    for name, text, dig in (("input", input_text, input_digest),
                            ("output", output_text, output_digest)):
        if text is None:
            continue
        if type(text) is not str or "\x00" in text:
            raise ValidationError("expected text without NUL bytes", field=f"{name}_text",
                                  line=line)
        if dig is not None and dig != of_text(text):
            raise ValidationError(f"{name}_digest does not match {name}_text",
                                  field=f"{name}_digest", line=line)
    if input_text is not None and input_digest is None:
        input_digest = of_text(input_text)
    if output_text is not None and output_digest is None:
        output_digest = of_text(output_text)
    gate = get("gate")
    threshold = candidates = passed = None
    if gate is not None:
        if not isinstance(gate, Mapping):
            raise ValidationError("expected an object with threshold, candidates, passed",
                                  field="gate", line=line)
        extra_keys = gate.keys() - set(GATE_FIELDS)
        if extra_keys:
            raise ValidationError(f"unknown field(s): {', '.join(sorted(extra_keys))}",
                                  field="gate", line=line)
        threshold = gate.get("threshold")
        if threshold is not None:
            if type(threshold) not in (int, float):
                raise ValidationError(f"expected a number, got {threshold!r}",
                                      field="gate.threshold", line=line)
            threshold = float(threshold)
        candidates = _int(gate.get("candidates"), "gate.candidates", line)
        passed = _int(gate.get("passed"), "gate.passed", line)
        if candidates is not None and passed is not None and passed > candidates:
            raise ValidationError(f"passed ({passed}) exceeds candidates ({candidates})",
                                  field="gate.passed", line=line)
    subject = _string(get("subject"), "subject", line, 300)
    row = (
        did, at,
        _string(get("alias"), "alias", line, 200),
        _digest(get("model_digest"), "model_digest", line),
        _digest(get("prompt_digest"), "prompt_digest", line),
        _digest(get("embedder_digest"), "embedder_digest", line),
        _digest(get("reranker_digest"), "reranker_digest", line),
        _digest(get("config_digest"), "config_digest", line),
        _string(get("vendor_model_id"), "vendor_model_id", line, 300),
        _string(get("vendor_fingerprint"), "vendor_fingerprint", line, 300),
        subject, input_digest, output_digest,
        _json_object(get("segments"), "segments", line),
        threshold, candidates, passed,
        _string(get("process"), "process", line, 300) or process or _PROCESS,
        _json_object(get("extra"), "extra", line),
    )
    payload = None
    if input_text is not None or output_text is not None:
        payload = (did, subject, input_text, output_text)
    return row, payload


def _insert_sql(store: Store) -> str:
    cols = ", ".join(COLUMNS)
    marks = ", ".join([store.paramstyle] * len(COLUMNS))
    if store.dialect == "sqlite":
        return f"INSERT OR IGNORE INTO decisions ({cols}) VALUES ({marks})"
    return f"INSERT INTO decisions ({cols}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING"


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
    duplicates: int


def append(store: Store, rows: list[tuple], payloads: Iterable[tuple] = (),
           *, recorded_at: int | None = None) -> AppendResult:
    """Write normalized decisions as one sealed chain block in one transaction.

    Ids already in the ledger (or repeated in ``rows``) are skipped, so a retry never
    duplicates. Returns the block number (None when every id was a duplicate)."""
    if not rows:
        return AppendResult(None, 0, 0)
    seen: set[str] = set()
    unique = []
    for r in rows:
        if r[0] not in seen:
            seen.add(r[0])
            unique.append(r)
    with store.write(chain=True) as conn:
        return append_in(conn, store, unique, payloads, recorded_at=recorded_at,
                         offered=len(rows))


def append_in(conn: Connection, store: Store, unique: list[tuple], payloads: Iterable[tuple] = (),
              *, recorded_at: int | None = None, offered: int | None = None) -> AppendResult:
    """:func:`append` inside a write transaction the caller holds (``store.write(chain=True)``);
    ``unique`` must not repeat an id."""
    offered = len(unique) if offered is None else offered
    recorded_at = now_us() if recorded_at is None else recorded_at
    sql = _insert_sql(store)
    leaf = chain.leaf
    number, prev_root = chain.last_block(conn)
    number += 1
    full = [r + (recorded_at, number, i) for i, r in enumerate(unique)]
    cursor = conn.exec_driver_sql(sql, full)
    inserted = cursor.rowcount
    if inserted != len(full):
        present = set(conn.exec_driver_sql(
            f"SELECT id FROM decisions WHERE block = {store.paramstyle}", (number,)
        ).scalars())
        full = [r for r in full if r[0] in present]
    if not full:
        return AppendResult(None, 0, offered)
    leaves = [leaf(r[:chain.N_CHAINED]) for r in full]
    chain.seal(conn, number, prev_root, leaves, min(r[1] for r in full),
               max(r[1] for r in full))
    kept = {r[0] for r in full}
    payload_rows = [p for p in payloads if p[0] in kept]
    if payload_rows:
        conn.exec_driver_sql(_payload_sql(store), payload_rows)
    return AppendResult(number, len(full), offered - len(full))


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
                       or self.gate_candidates is not None else None)
        for k in ("gate_threshold", "gate_candidates", "gate_passed"):
            out.pop(k)
        return out


def get(conn: Connection, decision_id: str) -> Decision:
    row = conn.execute(sa.select(decisions).where(decisions.c.id == decision_id)).first()
    if row is None:
        raise UnknownDecisionError(f"no decision {decision_id!r} in the ledger")
    return Decision.from_row(row)


def payload(conn: Connection, decision_id: str):
    return conn.execute(sa.select(decision_payloads)
                        .where(decision_payloads.c.decision_id == decision_id)).first()


def search(conn: Connection, *, subject: str | None = None, since: int | None = None,
           until: int | None = None, alias: str | None = None, limit: int = 100) -> list[Decision]:
    q = sa.select(decisions).order_by(decisions.c.at.desc()).limit(limit)
    if subject is not None:
        q = q.where(decisions.c.subject == subject)
    if alias is not None:
        q = q.where(decisions.c.alias == alias)
    if since is not None:
        q = q.where(decisions.c.at >= since)
    if until is not None:
        q = q.where(decisions.c.at < until)
    return [Decision.from_row(r) for r in conn.execute(q).all()]


def erase_subject(store: Store, subject: str) -> int:
    """Remove the raw text kept for a subject's decisions; the chained record stays."""
    if not subject:
        raise ValidationError("name the subject whose text to erase", field="subject")
    with store.write() as conn:
        result = conn.execute(
            decision_payloads.update()
            .where(decision_payloads.c.subject == subject, decision_payloads.c.erased_at.is_(None))
            .values(input_text=None, output_text=None, erased_at=now_us()))
        return result.rowcount


def count(conn: Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar()


def import_jsonl(store: Store, lines: Iterable[bytes | str], *, block_size: int = 2000,
                 max_problems: int = 50) -> AppendResult:
    """Backfill decisions from JSON lines with the recorder's validation.

    Every line is checked first; any bad line rejects the whole file (the ValidationError
    lists each problem with its line number) and nothing is written. Good files are written
    in one transaction, ``block_size`` decisions per chain block."""
    rows: list[tuple] = []
    payloads: list[tuple] = []
    problems: list[ValidationError] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValidationError(f"not valid JSON ({exc})", line=number) from None
            row, payload = normalize(obj, line=number)
            if row[0] in seen:
                raise ValidationError(f"repeats the id of line {seen[row[0]]}", field="id",
                                      line=number)
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
