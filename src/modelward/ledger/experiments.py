"""Experiments and exposures: every read and write of their tables.

An experiment (name, salt, arms, balance report) is written once and never changed: the salt
and arms are what every exposure's arm was computed from. An exposure records that a
subject was served an arm, when, and the substrate digests it ran on; ids are client-made
(UUIDv7) so a retried batch never duplicates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..digest import DIGEST_RE, canonical_json
from ..errors import NotFoundError, ValidationError
from ..ids import is_uuid, uuid7
from ..timefmt import iso, now_us, parse_time
from . import records
from .decision_fields import check_time
from .engine import Store
from .schema import experiments as experiments_table
from .schema import exposures, fingerprints

DIGEST_FIELDS = ("model_digest", "prompt_digest", "embedder_digest", "reranker_digest")
COLUMNS = ("id", "experiment", "subject", "arm", "at", *DIGEST_FIELDS, "vendor_model_id",
           "fingerprint_epoch", "metric", "extra")
FIELDS = frozenset(COLUMNS)
_INT32_MAX = 2_147_483_647


@dataclass
class ExperimentRecord:
    name: str
    salt: str
    arms: list[tuple[str, float]]
    created_at: int
    balance: dict | None
    meta: dict | None

    def to_dict(self) -> dict:
        return {"name": self.name, "salt": self.salt,
                "arms": [{"name": n, "weight": w} for n, w in self.arms],
                "created_at": iso(self.created_at), "balance": self.balance, "meta": self.meta}


def _record(row) -> ExperimentRecord:
    m = row._mapping
    return ExperimentRecord(
        name=m["name"], salt=m["salt"],
        arms=[(a["name"], a["weight"]) for a in orjson.loads(m["arms"])],
        created_at=m["created_at"],
        balance=orjson.loads(m["balance"]) if m["balance"] else None,
        meta=orjson.loads(m["meta"]) if m["meta"] else None)


def _text(value, field: str, limit: int, *, line=None, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if type(value) is not str or not value:
        raise ValidationError("expected a non-empty string", field=field, line=line)
    if len(value) > limit or "\x00" in value:
        raise ValidationError(f"longer than {limit} characters or holds a NUL byte",
                              field=field, line=line)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("holds an unpaired surrogate (not UTF-8 text)", field=field,
                              line=line) from None
    return value


def create(conn: Connection, name: str, salt: str, arms: list[tuple[str, float]], *,
           balance: dict | None = None, meta: dict | None = None,
           at: int | None = None) -> ExperimentRecord:
    """Record a new experiment; a name already in the ledger is refused."""
    _text(name, "name", 200)
    _text(salt, "salt", 200)
    if conn.execute(sa.select(experiments_table.c.name)
                    .where(experiments_table.c.name == name)).first() is not None:
        raise ValidationError(f"experiment {name!r} already exists", field="name",
                              hint="experiments never change: create one under a new name")
    record = ExperimentRecord(name, salt, [(n, float(w)) for n, w in arms],
                              now_us() if at is None else at, balance, meta)
    conn.execute(experiments_table.insert().values(
        name=name, salt=salt, created_at=record.created_at,
        arms=canonical_json([{"name": n, "weight": w} for n, w in record.arms]).decode(),
        balance=canonical_json(balance).decode() if balance is not None else None,
        meta=canonical_json(meta).decode() if meta is not None else None))
    records.record(conn, "experiments", [name])
    return record


def get(conn: Connection, name: str) -> ExperimentRecord:
    row = conn.execute(sa.select(experiments_table)
                       .where(experiments_table.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no experiment {name!r} in the ledger",
                            hint="list them with `modelward experiment list`")
    return _record(row)


def list_all(conn: Connection) -> list[ExperimentRecord]:
    rows = conn.execute(sa.select(experiments_table).order_by(experiments_table.c.created_at,
                                                              experiments_table.c.name))
    return [_record(r) for r in rows]


# --- exposures ------------------------------------------------------------------------------

def normalize_exposure(d: Mapping, *, line: int | None = None,
                       now: int | None = None, skew: int | None = None) -> tuple:
    """Validate one exposure into its row tuple (:data:`COLUMNS` order). With ``skew``
    (the ``clock_skew`` setting, µs), an ``at`` more than that after ``now`` is refused, as
    a decision's is: a host whose clock runs ahead would otherwise put its exposures beyond
    every check window."""
    if not isinstance(d, Mapping):
        raise ValidationError(f"an exposure must be an object, got {type(d).__name__}",
                              line=line)
    unknown = d.keys() - FIELDS
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(sorted(unknown))}",
                              field=sorted(unknown)[0], line=line)
    eid = d.get("id")
    if eid is None:
        eid = uuid7()
    elif not is_uuid(eid):
        raise ValidationError(f"not a lowercase UUID: {str(eid)[:60]!r}", field="id", line=line)
    at = d.get("at")
    now = now_us() if now is None else now
    if at is None:
        at = now
    else:
        at = parse_time(at, field="at")
        if skew is not None:
            check_time(at, now, skew=skew, line=line)
    digests = []
    for field in DIGEST_FIELDS:
        value = d.get(field)
        if value is not None and (type(value) is not str or DIGEST_RE.match(value) is None):
            raise ValidationError(f"not a sha256:<64 hex> digest: {str(value)[:80]!r}",
                                  field=field, line=line,
                                  hint="pass the resolved digest (ledger.resolve(alias).digest)")
        digests.append(value)
    epoch = d.get("fingerprint_epoch")
    if epoch is not None and (type(epoch) is not int or not 0 <= epoch <= _INT32_MAX):
        raise ValidationError(f"expected an integer from 0 to {_INT32_MAX}, got {epoch!r}",
                              field="fingerprint_epoch", line=line)
    metric = d.get("metric")
    if metric is not None:
        if type(metric) not in (int, float) or not math.isfinite(metric):
            raise ValidationError(f"expected a finite number, got {metric!r}", field="metric",
                                  line=line)
        metric = float(metric) + 0.0  # -0.0 + 0.0 == 0.0, as SQLite stores it
    extra = d.get("extra")
    if extra is not None:
        if not isinstance(extra, Mapping) or not all(isinstance(k, str) for k in extra):
            raise ValidationError("expected an object with string keys", field="extra",
                                  line=line)
        try:
            extra = canonical_json(extra).decode()
        except TypeError as exc:
            raise ValidationError(f"not JSON-serialisable: {exc}", field="extra",
                                  line=line) from None
    return (eid, _text(d.get("experiment"), "experiment", 200, line=line),
            _text(d.get("subject"), "subject", 300, line=line),
            _text(d.get("arm"), "arm", 100, line=line), at, *digests,
            _text(d.get("vendor_model_id"), "vendor_model_id", 300, line=line, required=False),
            epoch, metric, extra)


def _insert_sql(store: Store) -> str:
    cols = ", ".join(COLUMNS)
    marks = ", ".join([store.paramstyle] * len(COLUMNS))
    if store.dialect == "sqlite":
        return f"INSERT OR IGNORE INTO exposures ({cols}) VALUES ({marks})"
    return f"INSERT INTO exposures ({cols}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING"


def append_exposures_in(conn: Connection, store: Store, rows: list[tuple]) -> int:
    """Insert normalized exposures; ids already present are skipped. Returns how many
    were new."""
    if not rows:
        return 0
    inserted = conn.exec_driver_sql(_insert_sql(store), rows).rowcount
    if inserted:  # ids already present were sealed when first written
        records.record(conn, "exposures", [r[0] for r in rows])
    return inserted


def append_exposures(store: Store, rows: list[tuple]) -> int:
    with store.write() as conn:
        return append_exposures_in(conn, store, rows)


@dataclass
class ExposureRow:
    id: str
    experiment: str
    subject: str
    arm: str
    at: int
    model_digest: str | None
    prompt_digest: str | None
    embedder_digest: str | None
    reranker_digest: str | None
    vendor_model_id: str | None
    fingerprint_epoch: int | None
    metric: float | None


def read_exposures(conn: Connection, experiment: str, *, since: int | None = None,
                   until: int | None = None) -> list[ExposureRow]:
    """An experiment's exposures in time order (``since <= at < until``)."""
    c = exposures.c
    q = sa.select(*(getattr(c, f) for f in COLUMNS[:-1])).where(c.experiment == experiment)
    if since is not None:
        q = q.where(c.at >= since)
    if until is not None:
        q = q.where(c.at < until)
    return [ExposureRow(*r) for r in conn.execute(q.order_by(c.at, c.id))]


def subject_arms(conn: Connection, experiment: str, *, since: int | None = None,
                 until: int | None = None) -> list[tuple[str, str]]:
    """Distinct (subject, arm) pairs of an experiment's exposures, sorted."""
    c = exposures.c
    q = sa.select(c.subject, c.arm).distinct().where(c.experiment == experiment)
    if since is not None:
        q = q.where(c.at >= since)
    if until is not None:
        q = q.where(c.at < until)
    return [(s, a) for s, a in conn.execute(q.order_by(c.subject, c.arm))]


def exposed_experiments(conn: Connection, *, since: int | None = None,
                        until: int | None = None) -> list[str]:
    """Names of experiments with exposures in the window, sorted."""
    c = exposures.c
    q = sa.select(c.experiment).distinct()
    if since is not None:
        q = q.where(c.at >= since)
    if until is not None:
        q = q.where(c.at < until)
    return sorted(conn.execute(q).scalars())


def fingerprint_epochs(conn: Connection, digests) -> dict[str, list[tuple[int, int]]]:
    """Embedder digest -> [(at, epoch), …] of its recorded fingerprints, in time order."""
    wanted = sorted({d for d in digests if d})
    out: dict[str, list[tuple[int, int]]] = {d: [] for d in wanted}
    if not wanted:
        return out
    f = fingerprints.c
    for i in range(0, len(wanted), 500):
        rows = conn.execute(sa.select(f.embedder_digest, f.at, f.epoch)
                            .where(f.embedder_digest.in_(wanted[i:i + 500]))
                            .order_by(f.at, f.id))
        for digest, at, epoch in rows:
            out[digest].append((at, epoch))
    return out


# --- importing exposures (CLI file, API batch) -------------------------------------------

@dataclass
class ImportResult:
    inserted: int
    duplicates: int


_CSV_INT = ("fingerprint_epoch",)
_CSV_FLOAT = ("metric",)


def csv_exposure(cells: Mapping[str, str], *, line: int) -> dict:
    """One row of a strict CSV file (:func:`modelward.csvfile.read_csv`) as an exposure
    object: an empty cell is an absent field, ``metric`` a number, ``fingerprint_epoch`` an
    integer, ``at`` an ISO 8601 time or integer microseconds, ``extra`` a JSON object."""
    obj: dict = {}
    for field, cell in cells.items():
        if cell == "":
            continue
        if field in _CSV_FLOAT:
            try:
                value = float(cell)
            except ValueError:
                raise ValidationError(f"expected a number, got {cell[:40]!r}", field=field,
                                      line=line) from None
            obj[field] = value
        elif field in _CSV_INT or (field == "at" and cell.isdigit()):
            if not cell.isdigit():
                raise ValidationError(f"expected an integer, got {cell[:40]!r}", field=field,
                                      line=line)
            obj[field] = int(cell)
        elif field == "extra":
            try:
                obj[field] = orjson.loads(cell)
            except orjson.JSONDecodeError:
                raise ValidationError("not valid JSON", field=field, line=line) from None
        else:
            obj[field] = cell
    return obj


def prepare_exposures(conn: Connection, items: list[tuple[int, object]], *,
                      where: str = "line", convert=None, max_problems: int = 50,
                      skew: int | None = None) -> list[tuple]:
    """Validate ``(position, object)`` pairs into exposure rows, all or nothing.

    Each object is checked by :func:`normalize_exposure`; its experiment must be in the
    ledger and its arm one of that experiment's arms (as the SDK's ``expose()`` requires).
    An object without an id gets one derived from its content
    (:func:`~modelward.ids.content_id`), so sending the same file or batch again writes
    nothing new; two objects with the same id are refused. Raises one ValidationError whose
    ``problems`` name every bad position (``where`` ``line``: a file's line; ``index``: a
    batch's item). ``convert(obj, line=...)`` first turns each item into an object (a CSV
    row: :func:`csv_exposure`)."""
    from ..ids import content_id

    rows: list[tuple] = []
    problems: list[ValidationError] = []
    seen: dict[str, int] = {}
    arms_of: dict[str, tuple[str, ...] | None] = {}
    now = now_us()
    for pos, obj in items:
        ln = pos if where == "line" else None
        try:
            if convert is not None:
                obj = convert(obj, line=pos)
            derived = isinstance(obj, dict) and obj.get("id") is None
            if derived:
                obj = {**obj, "id": content_id(b"exposure\n" + canonical_json(obj))}
            row = normalize_exposure(obj, line=ln, now=now, skew=skew)
            name, arm = row[1], row[3]
            if name not in arms_of:
                found = conn.execute(sa.select(experiments_table.c.arms)
                                     .where(experiments_table.c.name == name)).first()
                arms_of[name] = None if found is None else tuple(
                    a["name"] for a in orjson.loads(found[0]))
            arms = arms_of[name]
            if arms is None:
                raise ValidationError(f"no experiment {name!r} in the ledger",
                                      field="experiment", line=ln,
                                      hint="create it first with `modelward experiment create`")
            if arm not in arms:
                raise ValidationError(f"{arm!r} is not an arm of {name} ({', '.join(arms)})",
                                      field="arm", line=ln)
            if row[0] in seen:
                what = (f"repeats {where} {seen[row[0]]} exactly (an exposure without an id "
                        "is identified by its content)") if derived else \
                    f"repeats the id of {where} {seen[row[0]]}"
                raise ValidationError(what, field="id", line=ln)
            seen[row[0]] = pos
        except ValidationError as exc:
            exc.position = pos
            problems.append(exc)
            if len(problems) >= max_problems:
                break
            continue
        rows.append(row)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more bad {where}s)" if len(problems) > 1 else ""
        error = ValidationError(f"{first.message}{more}; nothing was written",
                                hint=f"fix the {where}s named and send them again")
        error.field, error.line, error.problems = first.field, first.line, problems
        raise error
    return rows


def import_exposures(store: Store, items: list[tuple[int, object]], *,
                     where: str = "line", convert=None) -> ImportResult:
    """Validate every exposure (:func:`prepare_exposures`), then write them all in one
    transaction and one chain block, or nothing. Ids already recorded are counted as
    duplicates."""
    with store.read() as conn:
        rows = prepare_exposures(conn, items, where=where, convert=convert,
                                 skew=store.settings.clock_skew)
    with store.write() as conn:
        _refuse_conflicts(conn, rows)
        inserted = append_exposures_in(conn, store, rows)
    return ImportResult(inserted, len(rows) - inserted)


def _refuse_conflicts(conn: Connection, rows: list[tuple]) -> None:
    """IdConflictError when an id is already recorded with other content (``at`` aside: a
    line without one is stamped when first imported). A recorded exposure never changes."""
    from ..errors import IdConflictError

    wanted = {r[0]: r for r in rows}
    c = exposures.c
    compared = [f for f in COLUMNS if f not in ("id", "at")]
    conflicts: dict[str, list[str]] = {}
    ids = sorted(wanted)
    for i in range(0, len(ids), 500):
        found = conn.execute(sa.select(c.id, *(getattr(c, f) for f in compared))
                             .where(c.id.in_(ids[i:i + 500])))
        for stored in found:
            new = dict(zip(COLUMNS, wanted[stored[0]], strict=True))
            differ = [f for f, old in zip(compared, stored[1:], strict=True) if new[f] != old]
            if differ:
                conflicts[stored[0]] = differ
    if conflicts:
        bad = sorted(conflicts)
        shown = ", ".join(f"{i} ({', '.join(conflicts[i])})" for i in bad[:10])
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise IdConflictError(
            f"{len(bad)} exposure id(s) already recorded with different content: {shown}"
            f"{more}; nothing was written", ids=bad, fields={i: conflicts[i] for i in bad},
            hint="a recorded exposure never changes: give a different exposure a new id")
