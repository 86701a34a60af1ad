"""One-time dashboard log-in codes: ``modelward login-url`` makes one; ``/login?code=…``
exchanges it, once and before it expires, for a session token kept in a cookie.

Only a SHA-256 of the code is stored, so a copy of the database cannot log anybody in."""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import ValidationError
from ..timefmt import now_us
from . import tokens as ledger_tokens
from .schema import login_codes

PREFIX = "mwl_"
MAX_TTL = 24 * 3600 * 1_000_000  # a log-in link is for now, not for a bookmark
SESSION = 12 * 3600 * 1_000_000  # the session token the code is exchanged for
SESSION_NAME = "dashboard session"  # what logging out revokes


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def create(conn: Connection, *, role: str = "reader", email: str | None = None,
           ttl: int = 10 * 60 * 1_000_000, now: int | None = None) -> tuple[str, int]:
    """A new code for ``role`` (and ``email``, recorded on what the session does);
    returns (code, expires_at). The code is shown once and stored only as a hash."""
    # a writer/approver/admin session acts for a person: it needs their e-mail
    email = ledger_tokens.check_identity(role, email, "--email")
    if not 0 < ttl <= MAX_TTL:
        raise ValidationError("a log-in code lives between 1 microsecond and 24 hours",
                              field="ttl", hint="e.g. --ttl 10m")
    now = now_us() if now is None else now
    code = PREFIX + secrets.token_urlsafe(24)
    conn.execute(login_codes.insert().values(code_hash=_hash(code), role=role, email=email,
                                             created_at=now, expires_at=now + ttl))
    return code, now + ttl


def peek(conn: Connection, code: str, *, now: int | None = None) -> tuple[str, str | None] | None:
    """(role, email) a live, unused code would log in as, without using it; None otherwise.
    The log-in page shows it, so nobody is logged in as somebody else unawares."""
    if not isinstance(code, str) or not code.startswith(PREFIX):
        return None
    now = now_us() if now is None else now
    c = login_codes.c
    row = conn.execute(sa.select(c.role, c.email).where(
        c.code_hash == _hash(code), c.used_at.is_(None), c.expires_at > now)).first()
    return None if row is None else (row.role, row.email)


def session_for(conn: Connection, token: ledger_tokens.Token, *, now: int | None = None,
                session: int = SESSION) -> tuple[ledger_tokens.Token, str]:
    """A dashboard session token (role and e-mail of ``token``, living at most ``session``
    and never past ``token``): the cookie holds it rather than a pasted long-lived token, so
    logging out can revoke it without revoking the token the visitor pasted."""
    now = now_us() if now is None else now
    ends = now + session if token.expires_at is None else min(token.expires_at, now + session)
    return ledger_tokens.create(conn, role=token.role, name=f"{SESSION_NAME}: {token.name}"[:200],
                                email=token.email, expires_at=ends)


def is_session(token: ledger_tokens.Token) -> bool:
    """Was ``token`` made for a dashboard session (by a code or a pasted token)?"""
    return token.name == SESSION_NAME or token.name.startswith(SESSION_NAME + ": ")


def redeem(conn: Connection, code: str, *, now: int | None = None,
           session: int = SESSION) -> tuple[ledger_tokens.Token, str] | None:
    """Exchange a live, unused code for a new session token (token, secret); None when the
    code is unknown, used or expired. The conditional UPDATE makes it single-use even when
    two requests race: only one of them changes the row."""
    if not isinstance(code, str) or not code.startswith(PREFIX):
        return None
    now = now_us() if now is None else now
    c = login_codes.c
    claimed = conn.execute(login_codes.update()
                           .where(c.code_hash == _hash(code), c.used_at.is_(None),
                                  c.expires_at > now)
                           .values(used_at=now))
    if claimed.rowcount != 1:
        return None
    row = conn.execute(sa.select(c.role, c.email).where(c.code_hash == _hash(code))).one()
    return ledger_tokens.create(conn, role=row.role, name=SESSION_NAME,
                                email=row.email, expires_at=now + session)
