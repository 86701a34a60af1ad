"""Signed checkpoints: "the chain up to block N verified", so later checks start there.

A checkpoint is made only right after a verification succeeded (``modelward verify``,
``modelward chain checkpoint``), from that verification's snapshot, and only when a key
can sign it: unsigned checkpoints are refused, because anyone with write access to the
database could write one. Its signed body is canonical JSON::

    {"version": 1, "block": N, "root": HEX, "decisions": D, "rows": {kind: count, …},
     "made_at": µs, "full": bool, "full_at": µs, "base": number or null, "signer": "…"}

*block*/*root* the newest block verified and its root, *decisions* every decision in
blocks up to *block*, *rows* each chained table's row count, *full* whether this
verification recomputed all history (else it started from checkpoint *base*), *full_at*
when history was last recomputed in full along that line. The signature is
:mod:`.heads`' (Ed25519 ``ed25519:KEY_ID:BASE64`` or ``hmac-sha256:HEX``) over a different
domain tag, so no head passes for a checkpoint nor the reverse::

    b"modelward chain checkpoint v1\\n" + canonical_json(body)

They live in ``chain_checkpoints`` (number, block, body, signature); the row's ``block``
only orders them. Choosing one (:func:`newest`): the newest by block whose signature the
configured key checks, among the newest 64. One signed by another key or scheme is skipped
with a note (a key rotation); an unsigned one, one whose signature fails, or a malformed body is a problem
(MW103 fires): nothing this code writes looks like that. Deleting checkpoint rows only
makes verification start earlier; forging one needs the key.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import digest as dg
from ..errors import ConfigError, StorageError
from ..timefmt import iso, now_us
from . import chain
from .heads import Keys, key_id
from .schema import chain_blocks, chain_checkpoints

VERSION = 1
LOOK_BACK = 64  # checkpoints examined (newest first; for an audit, oldest covering first)
TAG = b"modelward chain checkpoint v1\n"
NO_KEY = ("no signing key configured (signing_key_file, or the HMAC secret in "
          "signing_key_env): checkpoints must be signed")


@dataclass(frozen=True)
class Checkpoint:
    number: int
    block: int
    root: str
    decisions: int
    rows: dict
    made_at: int
    full: bool
    full_at: int
    base: int | None
    signer: str

    def to_dict(self) -> dict:
        return {"number": self.number, "block": self.block, "root": self.root,
                "decisions": self.decisions, "made_at": iso(self.made_at), "full": self.full,
                "full_at": iso(self.full_at), "base": self.base, "signer": self.signer}


@dataclass(frozen=True)
class Verified:
    """A verification a process remembers (``modelward watch``): verifying again from it
    checks the blocks after ``block`` as from a checkpoint (``chain.verify(since=…)``):
    ``block`` must still carry ``root``, the decisions and rows up to it must still count
    ``decisions`` and ``rows``. Kept in memory only, never stored nor signed."""

    block: int
    root: str
    decisions: int
    rows: dict
    number: str = "-"
    label: str = "this process's last verification"

    @classmethod
    def of(cls, report: chain.VerifyReport) -> Verified:
        return cls(report.head_block, report.head_root, report.all_decisions,
                   dict(report.rows))


def message(body: bytes) -> bytes:
    return TAG + body


def signer(keys: Keys) -> str:
    """Who signs with ``keys``: ``ed25519:KEY_ID`` or ``hmac-sha256`` (ConfigError: nobody)."""
    if keys.signing_key is not None:
        return "ed25519:" + key_id(keys.signing_key.public_key())
    if keys.hmac_key:
        return "hmac-sha256"
    raise ConfigError(NO_KEY, hint="make a key with `modelward chain keygen PREFIX` and set "
                      "signing_key_file")


def sign(body: bytes, keys: Keys) -> str:
    if keys.signing_key is not None:
        sig = keys.signing_key.sign(message(body))
        return (f"ed25519:{key_id(keys.signing_key.public_key())}:"
                + base64.b64encode(sig).decode())
    if keys.hmac_key:
        return "hmac-sha256:" + hmac.new(keys.hmac_key, message(body), "sha256").hexdigest()
    raise ConfigError(NO_KEY)


def judge_signature(body: bytes, signature: str, keys: Keys) -> tuple[str, str | None]:
    """("ok", None), ("skip", why): signed by a key or scheme not configured here, or
    ("bad", why): unsigned, unknown scheme, or a signature that does not match."""
    scheme, _, rest = (signature or "").partition(":")
    if scheme == "ed25519":
        kid, _, b64 = rest.partition(":")
        if keys.verify_key is None or kid != key_id(keys.verify_key):
            return "skip", f"signed by Ed25519 key {kid[:16]}, which is not configured here"
        from cryptography.exceptions import InvalidSignature

        try:
            keys.verify_key.verify(base64.b64decode(b64, validate=True), message(body))
        except (InvalidSignature, ValueError):
            return "bad", "its Ed25519 signature does not match its body: forged or altered"
        return "ok", None
    if scheme == "hmac-sha256":
        if not keys.hmac_key:
            return "skip", f"signed with HMAC, but {keys.hmac_env} is not set here"
        good = hmac.new(keys.hmac_key, message(body), "sha256").hexdigest()
        if not hmac.compare_digest(good, rest):
            return "bad", "its HMAC signature does not match its body: forged or altered"
        return "ok", None
    if not signature:
        return "bad", "it is unsigned (modelward never stores an unsigned checkpoint)"
    return "bad", f"its signature scheme {scheme[:20]!r} is unknown"


def _parse(row) -> Checkpoint | None:
    try:
        b = orjson.loads(row.body)
        cp = Checkpoint(row.number, b["block"], b["root"], b["decisions"], b["rows"],
                        b["made_at"], b["full"], b["full_at"], b["base"], b["signer"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    ints = (cp.block, cp.decisions, cp.made_at, cp.full_at)
    if (b.get("version") != VERSION or cp.block != row.block
            or not all(type(v) is int and v >= 0 for v in ints) or not isinstance(cp.root, str)
            or not isinstance(cp.rows, dict) or type(cp.full) is not bool
            or not all(type(v) is int for v in cp.rows.values())):
        return None
    return cp


def newest(conn: Connection, keys: Keys) -> tuple[Checkpoint | None, list, list[str]]:
    """The newest checkpoint ``keys`` vouch for (None: none), the problems of the invalid
    ones met on the way (:class:`.chain.BlockProblem`) and notes on the ones skipped."""
    problems: list[chain.BlockProblem] = []
    notes: list[str] = []
    if not keys.configured:
        return None, problems, ["no key is configured to check signed checkpoints: all "
                                "history was verified"]
    c = chain_checkpoints.c
    rows = conn.execute(sa.select(chain_checkpoints).order_by(c.block.desc(), c.number.desc())
                        .limit(LOOK_BACK)).all()
    for row in rows:
        body = row.body.encode() if isinstance(row.body, str) else bytes(row.body)
        verdict, why = judge_signature(body, row.signature, keys)
        if verdict == "ok":
            cp = _parse(row)
            if cp is not None:
                return cp, problems, notes
            verdict, why = "bad", "its signed body is not a checkpoint of this format"
        if verdict == "skip":
            notes.append(f"checkpoint {row.number} (block {row.block}) skipped: {why}")
        else:
            problems.append(chain.BlockProblem(row.block, f"checkpoint {row.number} is not "
                                               f"to be trusted: {why}"))
    return None, problems, notes


def verify(conn: Connection, keys: Keys, *, full: bool = False, judge=None,
           progress=None, apart: bool = False) -> chain.VerifyReport:
    """:func:`.chain.verify` from the newest valid checkpoint (all history when ``full``,
    when none is valid, or when an invalid one was met: a forged checkpoint means someone
    wrote to the database, so everything is recomputed); ``apart`` as there."""
    cp, problems, notes = newest(conn, keys) if not full else (None, [], [])
    if problems:
        cp = None
        notes.append("an invalid checkpoint was found: all history was verified")
    report = chain.verify(conn, since=cp, judge=judge, progress=progress, apart=apart)
    if cp is not None:
        report.checkpoint = cp.to_dict()
    if problems:
        report.problems = sorted(problems + report.problems, key=chain._block_order)
        report.ok = False
    report.notes = notes + report.notes
    report.full_at = cp.full_at if cp is not None else None
    return report


def store(conn: Connection, report: chain.VerifyReport, keys: Keys) -> Checkpoint | None:
    """Sign and store a checkpoint of ``report`` (a successful verification) in the write
    transaction ``conn``; None when the chain is empty (nothing to vouch for)."""
    if not report.ok:
        raise StorageError("refusing to checkpoint a chain that fails verification")
    who = signer(keys)
    if report.head_block == 0:
        return None
    root = conn.execute(sa.select(chain_blocks.c.root)
                        .where(chain_blocks.c.number == report.head_block)).scalar()
    if root != report.head_root:
        raise StorageError(f"block {report.head_block} changed since it was verified; "
                           "verify again")
    made = now_us()
    base = report.checkpoint
    full_at = made if base is None or report.full_at is None else report.full_at
    number = (conn.execute(sa.select(sa.func.max(chain_checkpoints.c.number))).scalar() or 0) + 1
    fields = {"version": VERSION, "block": report.head_block, "root": report.head_root,
              "decisions": report.all_decisions, "rows": report.rows, "made_at": made,
              "full": base is None, "full_at": full_at,
              "base": None if base is None else base["number"], "signer": who}
    body = dg.canonical_json(fields)
    conn.execute(chain_checkpoints.insert().values(
        number=number, block=report.head_block, body=body.decode(), signature=sign(body, keys)))
    return Checkpoint(number, report.head_block, report.head_root, report.all_decisions,
                      report.rows, made, base is None, full_at, fields["base"], who)


def covering(conn: Connection, keys: Keys, number: int) -> tuple[Checkpoint | None, str | None]:
    """The oldest checkpoint ``keys`` vouch for that covers block ``number`` (its block is
    ``number`` or later), and why it fails as an anchor (None: its block still has the
    signed root). An audit links forward from a decision's block to it, not to the newest."""
    if not keys.configured:
        return None, None
    c = chain_checkpoints.c
    rows = conn.execute(sa.select(chain_checkpoints).where(c.block >= number)
                        .order_by(c.block, c.number).limit(LOOK_BACK)).all()
    for row in rows:
        body = row.body.encode() if isinstance(row.body, str) else bytes(row.body)
        if judge_signature(body, row.signature, keys)[0] != "ok":
            continue
        cp = _parse(row)
        if cp is None:
            continue
        root = conn.execute(sa.select(chain_blocks.c.root)
                            .where(chain_blocks.c.number == cp.block)).scalar()
        if root != cp.root:
            return cp, (f"block {cp.block} is gone" if root is None else
                        f"block {cp.block}'s root differs from the one signed by checkpoint "
                        f"{cp.number}: the chain up to it was rewritten")
        return cp, None
    return None, None
