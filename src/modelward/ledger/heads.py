"""Exported chain heads: signed, and checked against the ledger.

A head names the newest block (``blocks``, its ``root``), how many records the chain holds
and when it was exported, so a copy kept outside the database proves later that the ledger
still extends it. The signed message is every field of the head but ``signature``, as
canonical JSON after a version and domain tag::

    b"modelward chain head v1\\n" + canonical_json({field: value, …})

so no field can be changed, added or dropped without breaking the signature, and a
signature over anything else (another protocol, another version) never verifies as a head.
Two schemes:

``ed25519:KEY_ID:BASE64``  Ed25519 (the ``cryptography`` package). Whoever holds the
                           private key (``signing_key_file``) signs; a verifier needs only
                           the public key (``verify_key_file``). For third parties.
``hmac-sha256:HEX``        HMAC-SHA256 with a shared secret (the variable named by
                           ``signing_key_env``). For one party checking its own heads.

With a key configured, ``check`` refuses an unsigned head, a head signed by another scheme
or key, and a signature that does not match. A *heads log* is a file of exported heads, one
JSON object a line (``modelward chain head --log FILE`` appends one); ``check_log`` proves
the current ledger extends every head in it: each logged block still exists with the same
root, and every block from it to the newest links to the one before (a consistency check in
the spirit of Certificate Transparency), so deleting the newest blocks after an export, or
rewriting any block a head covers, is caught.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import digest as dg
from ..errors import ConfigError, ValidationError
from ..timefmt import iso, now_us
from .schema import chain_blocks

VERSION = 1
TAG = b"modelward chain head v1\n"
GENESIS = "0" * 64
HINT = "export one with `modelward chain head --out head.json`"


@dataclass(frozen=True)
class Keys:
    """The keys one process signs and checks heads with (any may be None)."""

    hmac_env: str = "MODELWARD_SIGNING_KEY"
    hmac_key: bytes | None = None
    signing_key: object | None = None  # an Ed25519PrivateKey
    verify_key: object | None = None  # an Ed25519PublicKey

    @property
    def configured(self) -> bool:
        """Is any key configured? Then every head checked must be signed by one."""
        return bool(self.hmac_key or self.verify_key)

    def describe(self) -> str:
        names = []
        if self.verify_key is not None:
            names.append(f"the Ed25519 key {key_id(self.verify_key)}")
        if self.hmac_key:
            names.append(f"the HMAC key in {self.hmac_env}")
        return " and ".join(names) or "no key"


def _load_pem(path: str, what: str, private: bool):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from None
    try:
        key = (serialization.load_pem_private_key(data, password=None) if private
               else serialization.load_pem_public_key(data))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{what}: {path} is not a PEM Ed25519 "
                          f"{'private' if private else 'public'} key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey if private else Ed25519PublicKey):
        raise ConfigError(f"{what}: {path} holds a {type(key).__name__}, not an Ed25519 key",
                          hint="make one with `modelward chain keygen PREFIX`")
    return key


def keys_from(settings) -> Keys:
    """The keys configured in ``settings`` (and the environment, for the HMAC secret)."""
    env = settings.signing_key_env
    secret = os.environ.get(env) or None
    signing = verify = None
    if settings.signing_key_file:
        signing = _load_pem(settings.signing_key_file, "signing_key_file", private=True)
        verify = signing.public_key()
    if settings.verify_key_file:
        verify = _load_pem(settings.verify_key_file, "verify_key_file", private=False)
    return Keys(env, secret.encode() if secret else None, signing, verify)


def key_id(public_key) -> str:
    """A short name of an Ed25519 public key: 16 hex digits of the SHA-256 of its bytes."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate(prefix: Path) -> tuple[Path, Path]:
    """A new Ed25519 key pair: ``PREFIX.key`` (private, mode 0600) and ``PREFIX.pub``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private, public = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
    for p in (private, public):
        if p.exists():
            raise ValidationError(f"{p} exists; refusing to overwrite a key", field="PREFIX")
    key = Ed25519PrivateKey.generate()
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def message(head: dict) -> bytes:
    """What is signed: the tag, then every field but ``signature`` as canonical JSON."""
    return TAG + dg.canonical_json({k: v for k, v in head.items() if k != "signature"})


def sign(head: dict, keys: Keys) -> dict:
    """``head`` with its signature: Ed25519 when a signing key is configured, else HMAC
    when its secret is set, else unsigned."""
    body = {k: v for k, v in head.items() if k != "signature"}
    if keys.signing_key is not None:
        sig = keys.signing_key.sign(message(body))
        body["signature"] = (f"ed25519:{key_id(keys.signing_key.public_key())}:"
                             + base64.b64encode(sig).decode())
    elif keys.hmac_key:
        body["signature"] = "hmac-sha256:" + hmac.new(keys.hmac_key, message(body),
                                                      "sha256").hexdigest()
    return body


def signature_problem(head: dict, keys: Keys) -> str | None:
    """Why ``head``'s signature is not acceptable under ``keys`` (None: it is)."""
    sig = head.get("signature")
    if sig is None:
        return (f"the head is unsigned, but {keys.describe()} is configured: an unsigned head "
                "proves nothing (anyone with the database could have made it)"
                if keys.configured else None)
    if not isinstance(sig, str):
        return "the head's signature is not a string"
    if head.get("version") != VERSION:
        return (f"the head is signed in format version {head.get('version', 0)}, which "
                "signed only some of its fields; re-export it with this modelward")
    scheme, _, rest = sig.partition(":")
    if scheme == "ed25519":
        if keys.verify_key is None:
            return ("the head is signed with Ed25519, but no verify_key_file is configured "
                    "to check it")
        kid, _, b64 = rest.partition(":")
        if kid != key_id(keys.verify_key):
            return (f"the head is signed by Ed25519 key {kid}, not by the configured key "
                    f"{key_id(keys.verify_key)}")
        from cryptography.exceptions import InvalidSignature

        try:
            keys.verify_key.verify(base64.b64decode(b64, validate=True), message(head))
        except (InvalidSignature, ValueError):
            return "the head's Ed25519 signature does not match its fields: it was altered"
        return None
    if scheme == "hmac-sha256":
        if not keys.hmac_key:
            return f"the head is signed with HMAC, but {keys.hmac_env} is not set to check it"
        good = hmac.new(keys.hmac_key, message(head), "sha256").hexdigest()
        if not hmac.compare_digest(good, rest):
            return "the head's HMAC signature does not match its fields: it was altered"
        return None
    return f"the head's signature scheme {scheme!r} is unknown (ed25519 or hmac-sha256)"


def head(conn: Connection, keys: Keys) -> dict:
    """The chain head to keep outside the database, signed with ``keys`` when configured."""
    c = chain_blocks.c
    row = conn.execute(sa.select(c.number, c.root, c.last_at)
                       .order_by(c.number.desc()).limit(1)).first()
    count = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(c.count), 0))).scalar()
    return sign({
        "version": VERSION,
        "root": row.root if row else GENESIS,
        "blocks": row.number if row else 0,
        "decisions": int(count),
        "last_decision_at": iso(row.last_at) if row else None,
        "exported_at": iso(now_us()),
    }, keys)


def _shape(exported: object, where: str = "") -> dict:
    if (not isinstance(exported, dict) or not isinstance(exported.get("root"), str)
            or type(exported.get("blocks")) is not int or exported["blocks"] < 0):
        raise ValidationError(f"{where}not an exported chain head: it needs a root (hex "
                              "string) and blocks (a count)", field="head", hint=HINT)
    return exported


def _extends(conn: Connection, number: int, root: str) -> str | None:
    """Why the ledger does not extend the head (block ``number``, ``root``), or None: the
    block is there with that root, and every block after it links to the one before."""
    if number == 0:
        return None
    c = chain_blocks.c
    rows = conn.execute(sa.select(c.number, c.root, c.prev_root).where(c.number >= number)
                        .order_by(c.number)).all()
    if not rows or rows[0].number != number:
        newest = conn.execute(sa.select(sa.func.max(c.number))).scalar() or 0
        return (f"block {number} named by the exported head is gone (the ledger ends at "
                f"block {newest}): blocks were deleted after the head was exported")
    if rows[0].root != root:
        return (f"block {number} has root {rows[0].root}, the exported head says {root}: the "
                "log was rewritten")
    prev = rows[0]
    for row in rows[1:]:
        if row.number != prev.number + 1:
            return f"block {prev.number + 1} is missing between the head's block and the newest"
        if row.prev_root != prev.root:
            return (f"block {row.number} does not link to block {prev.number}: the chain after "
                    "the head was rewritten")
        prev = row
    return None


def check(conn: Connection, exported: object, keys: Keys) -> list[str]:
    """The problems of one exported head against the ledger (empty: it is extended)."""
    exported = _shape(exported)
    problems = []
    why = signature_problem(exported, keys)
    if why:
        problems.append(why)
    gone = _extends(conn, exported["blocks"], exported["root"])
    if gone:
        problems.append(gone)
    return problems


def head_covers(conn: Connection, exported: object, number: int, keys: Keys) -> list[str]:
    """Problems with an exported head as proof of block ``number``: the ledger must extend
    the head (:func:`check`) and the head must name block ``number`` or a later one."""
    problems = check(conn, exported, keys)
    blocks = exported["blocks"]
    if not problems and blocks < number:
        problems.append(f"the exported head (block {blocks}) was exported before block "
                        f"{number}: it cannot vouch for this decision")
    return problems


def read_log(data: bytes) -> list[dict]:
    """The heads of a heads log (one JSON object a line; blank lines ignored)."""
    heads = []
    for n, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            heads.append(_shape(orjson.loads(line), f"line {n}: "))
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"line {n}: not JSON ({exc})", field="heads",
                                  hint=HINT) from None
    if not heads:
        raise ValidationError("the heads log holds no head", field="heads", hint=HINT)
    return heads


def check_log(conn: Connection, heads: list[dict], keys: Keys) -> list[str]:
    """The problems of every head of a heads log, each prefixed with its line's head
    (``head 3 (block 120)``); also a head older than the one logged before it."""
    problems = []
    newest = 0
    for i, h in enumerate(heads, start=1):
        where = f"head {i} (block {h['blocks']})"
        if h["blocks"] < newest:
            problems.append(f"{where}: older than the head logged before it (block {newest})")
        newest = max(newest, h["blocks"])
        problems += [f"{where}: {p}" for p in check(conn, h, keys)]
    return problems


def append_log(path: Path, exported: dict) -> None:
    """Append one head to a heads log, flushed to disk before returning."""
    line = orjson.dumps(exported) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
