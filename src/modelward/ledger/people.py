"""The roster (who is on the team, and who left) and the owners and reviewers of record
of each alias. E-mail addresses are the identity of a person, stored lower-case."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..csvfile import read_csv
from ..errors import ValidationError
from ..timefmt import iso, now_us
from . import records
from .aliases import check_alias
from .engine import Store
from .fits import check_fits
from .schema import alias_roles, people

STATUSES = ("active", "left")
ROLES = ("owner", "reviewer")
COLUMNS = ("email", "name", "status", "team")
MAX_PROBLEMS = 50
_EMAIL = re.compile(r"^[^@\s,;<>()\[\]\"']+@[^@\s,;<>()\[\]\"']+$")


@dataclass(frozen=True)
class Person:
    email: str
    name: str | None
    status: str
    team: str | None
    updated_at: int

    def to_dict(self) -> dict:
        return {"email": self.email, "name": self.name, "status": self.status,
                "team": self.team, "updated_at": iso(self.updated_at)}


def check_email(value: object, field: str = "email", line: int | None = None) -> str:
    """A person's identity: a trimmed, lower-cased ``local@domain`` address."""
    text = value.strip().lower() if isinstance(value, str) else None
    if not text or len(text) > 320 or not _EMAIL.match(text):
        raise ValidationError(f"not an e-mail address: {value!r}", field=field, line=line,
                              hint="write e.g. alice@example.com")
    return text


def standing(roster: dict[str, Person], email: str) -> str:
    """``active``, ``left`` or ``unknown`` (not in the roster, or there is no roster)."""
    person = roster.get(email)
    return person.status if person is not None else "unknown"


# --- the roster ---------------------------------------------------------------------------
def _row(r) -> Person:
    m = r._mapping
    return Person(m["email"], m["name"], m["status"], m["team"], m["updated_at"])


def roster(conn: Connection) -> dict[str, Person]:
    """Every person, by e-mail (empty when no roster was ever synced)."""
    return {p.email: p for p in map(_row, conn.execute(sa.select(people)).all())}


def get(conn: Connection, email: str) -> Person | None:
    r = conn.execute(sa.select(people).where(people.c.email == email)).first()
    return None if r is None else _row(r)


def list_people(conn: Connection, status: str | None = None) -> list[Person]:
    q = sa.select(people).order_by(people.c.email)
    if status is not None:
        if status not in STATUSES:
            raise ValidationError(f"unknown status {status!r}; choose active or left",
                                  field="status")
        q = q.where(people.c.status == status)
    return [_row(r) for r in conn.execute(q).all()]


def normalize(obj: dict, line: int | None = None) -> dict:
    """One roster row, checked and trimmed: ``email`` and ``status``, and ``name`` and
    ``team`` when ``obj`` has them (a column the file lacks leaves the stored value)."""
    email = check_email(obj.get("email"), "email", line)
    status = (obj.get("status") or "").strip().lower()
    if status not in STATUSES:
        raise ValidationError(f"status must be active or left, got {obj.get('status')!r}",
                              field="status", line=line)
    out = {"email": email, "status": status}
    for key, limit in (("name", 200), ("team", 200)):
        if key not in obj:
            continue
        value = (obj.get(key) or "").strip() or None
        if value is not None and len(value) > limit:
            raise ValidationError(f"longer than {limit} characters", field=key, line=line)
        out[key] = value
    return out


def parse_csv(data: bytes, *, name: str = "roster") -> list[dict]:
    """Rows of a roster CSV (header ``email,name,status,team``; name and team optional).
    Every bad line is named in one ValidationError; nothing is returned half-read."""
    if not data.strip():
        raise ValidationError(f"{name} is empty; expected the header email,name,status,team",
                              field="FILE", line=1)
    table = read_csv(data, name=name, lower_header=True)
    header = table.header
    unknown = [h for h in header if h not in COLUMNS]
    missing = [h for h in ("email", "status") if h not in header]
    if unknown or missing:
        what = (f"unknown column(s) {', '.join(unknown)}" if unknown else
                f"missing column(s) {', '.join(missing)}")
        raise ValidationError(f"{name}: {what}", field="header", line=1,
                              hint="the header is email,name,status,team")
    rows: list[dict] = []
    problems: list[ValidationError] = []
    seen: dict[str, int] = {}
    for number, raw in table.rows:
        if not any(v.strip() for v in raw.values()):
            continue
        try:
            row = normalize(raw, number)
            if row["email"] in seen:
                raise ValidationError(f"repeats {row['email']} of line {seen[row['email']]}",
                                      field="email", line=number)
            seen[row["email"]] = number
            rows.append(row)
        except ValidationError as exc:
            problems.append(exc)
            if len(problems) >= MAX_PROBLEMS:
                break
    if problems:
        more = f" (and {len(problems) - 1} more bad lines)" if len(problems) > 1 else ""
        error = ValidationError(f"{name}: {problems[0].message}{more}; nothing was written",
                                hint="fix the lines named and sync the file again")
        error.problems = problems
        raise error
    if not rows:
        raise ValidationError(f"{name} lists nobody", field="FILE",
                              hint="one person per line after the header email,name,status,team")
    return rows


@dataclass
class SyncResult:
    added: list[str] = field(default_factory=list)
    updated: list[tuple[str, list[str]]] = field(default_factory=list)  # email, changes
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)  # absent from the file, marked left

    def to_dict(self) -> dict:
        return {"added": self.added, "unchanged": len(self.unchanged), "pruned": self.pruned,
                "updated": [{"email": e, "changes": c} for e, c in self.updated]}


def sync(store: Store, rows: list[dict], *, prune: bool = False,
         at: int | None = None) -> SyncResult:
    """Apply roster rows in one transaction. People absent from ``rows`` are left alone,
    or marked ``left`` with ``prune``; nobody is ever deleted (old approvals name them)."""
    at = now_us() if at is None else at
    result = SyncResult()
    rows = [normalize(r) for r in rows]
    listed = {r["email"] for r in rows}
    if len(listed) != len(rows):
        raise ValidationError("a person is listed twice", field="email")
    with store.write() as conn:
        current = roster(conn)
        for row in rows:
            old = current.get(row["email"])
            if old is None:
                check_fits(people, row)
                conn.execute(people.insert().values(**row, updated_at=at))
                result.added.append(row["email"])
                continue
            changes = [f"{k} {getattr(old, k) or '-'} -> {row[k] or '-'}"
                       for k in ("status", "name", "team")
                       if k in row and getattr(old, k) != row[k]]
            if not changes:
                result.unchanged.append(row["email"])
                continue
            conn.execute(people.update().where(people.c.email == row["email"])
                         .values(**row, updated_at=at))
            result.updated.append((row["email"], changes))
        if prune:
            gone = sorted(e for e, p in current.items() if e not in listed and p.status != "left")
            if gone:
                conn.execute(people.update().where(people.c.email.in_(gone))
                             .values(status="left", updated_at=at))
            result.pruned = gone
        records.record(conn, "people", [*result.added, *(e for e, _c in result.updated),
                                      *result.pruned])
    return result


# --- owners and reviewers of record -----------------------------------------------------
@dataclass
class Roles:
    """The owners and reviewers of record of one alias: e-mail -> assigned_at."""

    alias: str
    owners: dict[str, int] = field(default_factory=dict)
    reviewers: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.owners or self.reviewers)

    def to_dict(self, roster_: dict[str, Person] | None = None) -> dict:
        def people_of(role: dict[str, int]) -> list[dict]:
            return [{"email": e, "assigned_at": iso(t),
                     **({"standing": standing(roster_, e)} if roster_ is not None else {})}
                    for e, t in sorted(role.items())]
        return {"alias": self.alias, "owners": people_of(self.owners),
                "reviewers": people_of(self.reviewers)}


def all_roles(conn: Connection) -> dict[str, Roles]:
    out: dict[str, Roles] = {}
    for alias, email, role, at in conn.execute(
            sa.select(alias_roles.c.alias, alias_roles.c.email, alias_roles.c.role,
                      alias_roles.c.assigned_at)
            .order_by(alias_roles.c.alias, alias_roles.c.email)).all():
        entry = out.setdefault(alias, Roles(alias))
        (entry.owners if role == "owner" else entry.reviewers)[email] = at
    return out


def roles(conn: Connection, alias: str) -> Roles:
    check_alias(alias)
    entry = Roles(alias)
    for email, role, at in conn.execute(
            sa.select(alias_roles.c.email, alias_roles.c.role, alias_roles.c.assigned_at)
            .where(alias_roles.c.alias == alias)).all():
        (entry.owners if role == "owner" else entry.reviewers)[email] = at
    return entry


def set_roles(conn: Connection, alias: str, *, owners: list[str] | None = None,
              reviewers: list[str] | None = None, at: int | None = None) -> Roles:
    """Replace the owners and/or reviewers of record of ``alias`` (a role not given is
    kept). People who stay keep their first ``assigned_at``. When a roster exists, each
    person must be in it and active."""
    check_alias(alias)
    at = now_us() if at is None else at
    team = roster(conn)
    wanted: dict[str, list[str]] = {}
    for role, given in (("owner", owners), ("reviewer", reviewers)):
        if given is None:
            continue
        emails = list(dict.fromkeys(check_email(e, role) for e in given))
        for email in emails:
            state = standing(team, email)
            if team and state != "active":
                why = "left the team" if state == "left" else "is not in the roster"
                raise ValidationError(f"{email} {why}", field=role,
                                      hint="name active people (`modelward people list`)")
        wanted[role] = emails
    current = roles(conn, alias)
    touched: list[tuple[str, str, str]] = []
    for role, emails in wanted.items():
        held = current.owners if role == "owner" else current.reviewers
        drop = [e for e in held if e not in emails]
        if drop:
            conn.execute(alias_roles.delete().where(alias_roles.c.alias == alias,
                                                    alias_roles.c.role == role,
                                                    alias_roles.c.email.in_(drop)))
        add = [e for e in emails if e not in held]
        if add:
            conn.execute(alias_roles.insert(), [dict(alias=alias, email=e, role=role,
                                                     assigned_at=at) for e in add])
        touched += [(alias, e, role) for e in drop + add]
    records.record(conn, "alias_roles", touched)  # a dropped role is sealed as a deletion
    return roles(conn, alias)
