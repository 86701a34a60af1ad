"""API tokens: created with a role, stored only as a SHA-256 of the secret."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import NotFoundError, ValidationError
from ..ids import uuid7
from ..timefmt import iso, now_us
from .fits import check_fits
from .schema import api_tokens

ROLES = ("reader", "writer", "approver", "admin")
# Roles that write or approve: what they record names a person, so they carry an e-mail.
ACTING_ROLES = ("writer", "approver", "admin")
PREFIX = "mw_"


@dataclass(frozen=True)
class Token:
    id: str
    name: str
    role: str
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    email: str | None

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "role": self.role,
                "created_at": iso(self.created_at), "expires_at": iso(self.expires_at),
                "revoked_at": iso(self.revoked_at), "email": self.email}


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_identity(role: str, email: str | None, field: str = "email") -> str | None:
    """The e-mail a token (or log-in code) of ``role`` will carry: required for the roles
    that write or approve, since every write names the person behind it."""
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}",
                              field="role")
    if email is None or not str(email).strip():
        if role in ACTING_ROLES:
            raise ValidationError(f"a token of role {role!r} must carry the e-mail of the person it "
                                  "acts for: every write it makes is recorded in their name",
                                  field=field, hint="give --email you@example.com")
        return None
    from .people import check_email

    return check_email(email, field)


def create(conn: Connection, *, role: str, name: str, email: str | None = None,
           expires_at: int | None = None) -> tuple[Token, str]:
    """A new token; returns it and its secret (shown once, never stored). Writer, approver
    and admin tokens need ``email`` (:func:`check_identity`)."""
    email = check_identity(role, email)
    secret = PREFIX + secrets.token_urlsafe(32)
    tok = Token(uuid7(), name, role, now_us(), expires_at, None, email)
    check_fits(api_tokens, {"name": name, "email": email})
    conn.execute(api_tokens.insert().values(
        id=tok.id, name=name, role=role, secret_hash=_hash(secret), created_at=tok.created_at,
        expires_at=expires_at, revoked_at=None, email=email))
    return tok, secret


def authenticate(conn: Connection, secret: str) -> Token | None:
    """The live token with this secret, or None (unknown, revoked or expired)."""
    if not secret or not secret.startswith(PREFIX):
        return None
    row = conn.execute(sa.select(api_tokens).where(api_tokens.c.secret_hash == _hash(secret))).first()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now_us():
        return None
    return Token(row.id, row.name, row.role, row.created_at, row.expires_at, row.revoked_at,
                 row.email)


def revoke(conn: Connection, token_id: str) -> None:
    res = conn.execute(api_tokens.update().where(api_tokens.c.id == token_id,
                                                 api_tokens.c.revoked_at.is_(None))
                       .values(revoked_at=now_us()))
    if res.rowcount == 0:
        raise NotFoundError(f"no live token {token_id!r}")


def list_tokens(conn: Connection) -> list[Token]:
    rows = conn.execute(sa.select(api_tokens).order_by(api_tokens.c.created_at)).all()
    return [Token(r.id, r.name, r.role, r.created_at, r.expires_at, r.revoked_at, r.email)
            for r in rows]
