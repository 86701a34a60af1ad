"""Decisions: one production output each, with the digests that actually produced it.

:func:`normalize` validates one decision (from the SDK, a JSONL backfill or the API) into
the row tuple the chain hashes; :func:`append` writes a batch as one sealed chain block in
one transaction (PostgreSQL: the DBAPI's ``executemany``; SQLite: a few multi-row INSERTs).
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import socket
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..digest import DIGEST_RE, canonical_json, of_text
from ..errors import UnknownDecisionError, ValidationError
from ..ids import is_uuid, uuid7
from ..timefmt import MAX_US, MIN_US, iso, now_us, parse_time
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
# Values the database would refuse at insert time must be refused here: a row that passes
# normalize but fails in append poisons the recorder's whole batch (it retries forever).
_INT32_MAX = 2_147_483_647
_isfinite = math.isfinite


def _utf8_ok(text: str) -> bool:
    """False for a str holding an unpaired surrogate (not encodable as UTF-8)."""
    if text.isascii():  # O(1) in CPython
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
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
    if not _utf8_ok(value):
        raise ValidationError("holds an unpaired surrogate (not UTF-8 text)", field=field,
                              line=line)
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
    if type(value) is not int or value < 0 or value > _INT32_MAX:
        raise ValidationError(f"expected an integer from 0 to {_INT32_MAX}, got {value!r}",
                              field=field, line=line)
    return value


def normalize(d: Mapping, *, line: int | None = None, now: int | None = None,
              process: str | None = None) -> tuple[tuple, tuple | None]:
    """Validate one decision. Returns (row without recorded_at/block/pos, payload or None).

    The row holds the chained columns up to ``extra``; raises ValidationError naming the
    field (and the input line) on the first problem."""
    fast = _normalize_common(d, now, process)
    if fast is not None:
        return fast
    return _normalize_checked(d, line=line, now=now, process=process)


_SCALAR_TYPES = frozenset((str, int, float, bool, type(None)))
_GATE_KEYS = frozenset(GATE_FIELDS)
_known_fields = FIELDS.issuperset
_dumps = orjson.dumps
_SORT_KEYS = orjson.OPT_SORT_KEYS
# Artifact digests already seen well-formed: a serving process names the same few model and
# prompt digests on every call, so a dict lookup replaces the regex (bounded: cleared when full).
_good_digests: dict[str, None] = {}


def _artifact_digest_ok(value) -> bool:
    if type(value) is not str:
        return False
    if value in _good_digests:
        return True
    if len(value) != 71 or _match_digest(value) is None:
        return False
    if len(_good_digests) >= 4096:
        _good_digests.clear()
    _good_digests[value] = None
    return True


def _normalize_common(d, now, process):
    """:func:`normalize` for the common case, without a call per field (this is the
    recorder's hot path). Returns None for anything unusual — a Mapping that is not a dict,
    an ISO ``at``, a str subclass, any invalid value — and :func:`_normalize_checked` then
    produces the row or the precise error. Accepts nothing the checked path rejects and
    returns exactly what it returns."""
    if type(d) is not dict or not _known_fields(d):
        return None
    get = d.get
    did = get("id")
    if did is not None and (type(did) is not str or not is_uuid(did)):
        return None
    at = get("at")
    if at is not None and (type(at) is not int or not MIN_US <= at <= MAX_US):
        return None
    for field in DIGEST_FIELDS:
        value = get(field)
        if value is not None and not _artifact_digest_ok(value):
            return None
    input_digest, output_digest = get("input_digest"), get("output_digest")
    for value in (input_digest, output_digest):
        if value is not None and (type(value) is not str or len(value) != 71
                                  or _match_digest(value) is None):
            return None
    input_text, output_text = get("input_text"), get("output_text")
    if input_text is not None:
        if type(input_text) is not str or "\x00" in input_text:
            return None
        try:
            digest = of_text(input_text)
        except UnicodeEncodeError:
            return None
        if input_digest is None:
            input_digest = digest
        elif input_digest != digest:
            return None
    if output_text is not None:
        if type(output_text) is not str or "\x00" in output_text:
            return None
        try:
            digest = of_text(output_text)
        except UnicodeEncodeError:
            return None
        if output_digest is None:
            output_digest = digest
        elif output_digest != digest:
            return None
    alias, subject, proc = get("alias"), get("subject"), get("process")
    vendor_model_id, vendor_fingerprint = get("vendor_model_id"), get("vendor_fingerprint")
    for value, limit in ((alias, 200), (subject, 300), (proc, 300), (vendor_model_id, 300),
                         (vendor_fingerprint, 300)):
        if value is not None and (type(value) is not str or len(value) > limit
                                  or "\x00" in value or not value.isascii()):
            return None  # non-ASCII: the checked path tests it is UTF-8
    segments = get("segments")
    if segments is not None:
        if type(segments) is not dict:
            return None
        for value in segments.values():
            if type(value) not in _SCALAR_TYPES:
                return None
        try:  # orjson refuses non-str keys: the checked path then names the problem
            segments = _dumps(segments, option=_SORT_KEYS).decode()
        except TypeError:
            return None
    extra = get("extra")
    if extra is not None:
        if type(extra) is not dict:
            return None
        try:
            extra = _dumps(extra, option=_SORT_KEYS).decode()
        except TypeError:
            return None
    gate = get("gate")
    threshold = candidates = passed = None
    if gate is not None:
        if type(gate) is not dict or not _GATE_KEYS.issuperset(gate):
            return None
        get_gate = gate.get
        threshold, candidates, passed = (get_gate("threshold"), get_gate("candidates"),
                                         get_gate("passed"))
        if threshold is not None:
            kind = type(threshold)
            if kind is int:
                threshold = float(threshold)
            elif kind is not float or not _isfinite(threshold):
                return None
        for value in (candidates, passed):
            if value is not None and (type(value) is not int or value < 0
                                      or value > _INT32_MAX):
                return None
        if candidates is not None and passed is not None and passed > candidates:
            return None
    # every check passed: only now spend an id and a clock read
    if did is None:
        did = uuid7()
    if at is None:
        at = now if now is not None else now_us()
    row = (did, at, alias, get("model_digest"), get("prompt_digest"), get("embedder_digest"),
           get("reranker_digest"), get("config_digest"), vendor_model_id, vendor_fingerprint,
           subject, input_digest, output_digest, segments, threshold, candidates, passed,
           proc or process or _PROCESS, extra)
    if input_text is None and output_text is None:
        return row, None
    return row, (did, subject, input_text, output_text)


def _normalize_checked(d: Mapping, *, line: int | None, now: int | None,
                       process: str | None) -> tuple[tuple, tuple | None]:
    """:func:`normalize` field by field: the reference behaviour and every error message."""
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
        if type(text) is not str or "\x00" in text or not _utf8_ok(text):
            raise ValidationError("expected UTF-8 text without NUL bytes",
                                  field=f"{name}_text", line=line)
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
            if type(threshold) not in (int, float) or not _isfinite(threshold):
                raise ValidationError(f"expected a finite number, got {threshold!r}",
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


# Rows per multi-row INSERT on SQLite, largest first: a batch goes in as its binary digits
# (2000 = 1024 + 512 + 256 + 128 + 64 + 16), and the fixed set of sizes keeps the driver's
# statement cache warm (preparing a 1024-row INSERT costs ~10 ms; executing it ~0.5 ms).
# SQLite binds at most 32766 parameters (999 before 3.32).
_SQLITE_MAX_PARAMS = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
_SQLITE_CHUNKS = tuple(n for n in (1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1)
                       if n * len(COLUMNS) <= _SQLITE_MAX_PARAMS)
_flatten = itertools.chain.from_iterable


@functools.lru_cache(maxsize=len(_SQLITE_CHUNKS))
def _sqlite_multi_insert_sql(n_rows: int) -> str:
    one = "(" + ", ".join("?" * len(COLUMNS)) + ")"
    return (f"INSERT OR IGNORE INTO decisions ({', '.join(COLUMNS)}) VALUES "
            + ", ".join([one] * n_rows))


def _insert_rows(conn: Connection, store: Store, rows: list[tuple]) -> int:
    """Insert full decision rows (COLUMNS order); returns how many were new."""
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
    number, prev_root = chain.last_block(conn)
    number += 1
    full = [r + (recorded_at, number, i) for i, r in enumerate(unique)]
    inserted = _insert_rows(conn, store, full)
    if inserted != len(full):
        present = set(conn.exec_driver_sql(
            f"SELECT id FROM decisions WHERE block = {store.paramstyle}", (number,)
        ).scalars())
        full = [r for r in full if r[0] in present]
    if not full:
        return AppendResult(None, 0, offered)
    leaves = chain.leaves(full)
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
                       or self.gate_candidates is not None or self.gate_passed is not None
                       else None)
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
    # id breaks ties so equal times list in a stable order
    q = sa.select(decisions).order_by(decisions.c.at.desc(), decisions.c.id.desc()).limit(limit)
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
