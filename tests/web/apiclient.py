"""Shared pieces of the API tests: an app over the ``ledger`` fixture, one token per role."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from modelward.ledger import aliases, artifacts
from modelward.ledger import tokens as ledger_tokens
from modelward.web.app import create_app

ROLES = ("reader", "writer", "approver", "admin")
PUBLIC = {"/healthz"}


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Api:
    client: TestClient
    secrets: dict[str, str]  # role -> secret
    store: object

    def headers(self, role: str = "admin") -> dict:
        return {"Authorization": f"Bearer {self.secrets[role]}"}

    def _merged(self, role: str, kw: dict) -> dict:
        return {**self.headers(role), **kw.pop("headers", {})}

    def get(self, path: str, role: str = "reader", **kw):
        return self.client.get(path, headers=self._merged(role, kw), **kw)

    def post(self, path: str, role: str = "writer", **kw):
        return self.client.post(path, headers=self._merged(role, kw), **kw)

    def put(self, path: str, role: str = "writer", **kw):
        return self.client.put(path, headers=self._merged(role, kw), **kw)

    def delete(self, path: str, role: str = "admin", **kw):
        return self.client.delete(path, headers=self._merged(role, kw), **kw)


def error(resp, status: int) -> dict:
    """The one envelope, with exactly this status."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    return body["error"]


def make_tokens(store) -> dict[str, str]:
    out = {}
    with store.write() as conn:
        for role in ROLES:
            _tok, out[role] = ledger_tokens.create(
                conn, role=role, name=f"test-{role}",
                email=f"{role}@example.com")
        _tok, out["approver-email"] = ledger_tokens.create(
            conn, role="approver", name="ann", email="ann@example.com")
        _tok, out["writer-email"] = ledger_tokens.create(
            conn, role="writer", name="bob", email="bob@example.com")
    return out


def old_token_without_email(store, role: str) -> str:
    """A ``role`` token with no e-mail, as tokens were made before writers needed one;
    returns its secret."""
    from modelward.ledger.schema import api_tokens

    with store.write() as conn:
        tok, secret = ledger_tokens.create(conn, role="reader", name=f"old-{role}")
        conn.execute(api_tokens.update().where(api_tokens.c.id == tok.id).values(role=role))
    return secret


@pytest.fixture
def api(ledger):
    app = create_app(ledger.settings, store=ledger.store)
    with TestClient(app) as client:
        yield Api(client, make_tokens(ledger.store), ledger.store)


def seed_model(store, alias: str = "chat/v1", content: bytes = b"weights-1") -> str:
    """A registered model with ``alias`` pointing at it; returns its digest."""
    art = artifacts.register_bytes(store, "model", content, name="chat").artifact
    with store.write() as conn:
        aliases.set_alias(conn, alias, art.digest)
    return art.digest


def api_routes(app) -> list[tuple[str, str, tuple[str, ...] | None]]:
    """(method, path, roles admitted) of every route of the app; roles None = no auth."""
    out = []
    for ctx in iter_route_contexts(app.routes):
        dependant = getattr(ctx, "dependant", None)
        if ctx.methods is None:  # a mount (static files): no methods of its own
            out.append(("MOUNT", ctx.path, None))
            continue
        for method in sorted(ctx.methods - {"HEAD"}):
            out.append((method, ctx.path, _roles(dependant) if dependant else None))
    return out


def _roles(dependant):
    for dep in dependant.dependencies:
        roles = getattr(dep.call, "roles", None) or _roles(dep)
        if roles:
            return roles
    return None
