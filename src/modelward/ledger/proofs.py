"""Checking one decision's chain block quickly, with Merkle subtree proofs.

Recomputing a whole block (~2000 decisions) costs several milliseconds. When the block was
recomputed once, the roots of its aligned subtrees of :data:`SUBTREE` leaves can be kept
(see ``registry/verification.py``); later checks then fetch only the decision's own
subtree, rehash it, and climb the kept subtree roots to the sealed root. Whatever does not
match falls back to recomputing the whole block, and a block that fails that is judged by
:func:`~modelward.ledger.chain.verify_block`, so a shortcut can only confirm, never condemn.

Aligned subtrees are exact pieces of the block's tree: with pairs taken left to right and
an odd node carried up, the node at height k, index j covers leaves ``[j*2^k, (j+1)*2^k)``.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from . import chain

SUBTREE = 64  # leaves per kept subtree root: 32 bytes per 64 decisions


@dataclass
class BlockCheck:
    """Whether a block's decisions match its sealed root and the root links to the previous
    block's. ``how``: "recomputed" (every decision rehashed now) or "proof" (the decision's
    subtree rehashed now, the rest taken from the recomputation of ``verified_at``)."""

    block: int
    verifies: bool
    links: bool
    problem: str | None
    how: str
    verified_at: int | None = None
    kept: dict | None = None  # subtree roots to keep for later proofs (after a recomputation)
    newest: int | None = None  # the newest block the links were followed to
    forward: str | None = None  # why the links from this block to the newest fail, if they do
    head: dict | None = None  # an exported head checked against it: {"blocks", "problems"}
    checkpoint: dict | None = None  # the signed checkpoint the links were followed to


def sealed_root(prev_root: str, merkle_root: bytes, count: int) -> str:
    """:func:`chain.block_root` for a Merkle root already computed."""
    return hashlib.sha256(b"\x02" + bytes.fromhex(prev_root) + merkle_root
                          + count.to_bytes(8, "big")).hexdigest()


def subtree_roots(leaves: list[bytes]) -> list[bytes]:
    merkle = chain.merkle
    return [merkle(leaves[i:i + SUBTREE]) for i in range(0, len(leaves), SUBTREE)]


def _blocks(conn: Connection, number: int, p: str) -> tuple[dict, int]:
    """The block and the one before it, and how many decisions name the block now."""
    rows = conn.exec_driver_sql(
        f"SELECT number, root, prev_root, count, (SELECT count(*) FROM decisions "
        f"WHERE block = {p}) FROM chain_blocks WHERE number IN ({p}, {p})",
        (number, number - 1, number)).fetchall()
    present = rows[0][4] if rows else 0
    return {r[0]: r[:4] for r in rows}, present


def _chained_sql(p: str, where: str) -> str:
    return (f"SELECT pos, {', '.join(chain.CHAINED)} FROM decisions "
            f"WHERE block = {p}{where} ORDER BY pos")


def check_block(conn: Connection, number: int, decision_id: str, pos: int, paramstyle: str,
                *, kept: dict | None = None, at: int) -> BlockCheck:
    """Check block ``number``, which holds ``decision_id`` at ``pos``; ``kept`` is what an
    earlier recomputation returned in :attr:`BlockCheck.kept`, ``at`` the time now."""
    p = paramstyle
    blocks, present = _blocks(conn, number, p)
    blk = blocks.get(number)
    if blk is None:
        return _judged(conn, number, p, False, False)
    _, root, prev_root, count = blk
    if number > 1:
        prev = blocks.get(number - 1)
        links = prev is not None and prev[1] == prev_root
    else:
        links = prev_root == chain.GENESIS
    if kept and links and kept.get("root") == root and kept.get("count") == count:
        proven = present == count and _prove(conn, number, decision_id, pos, p, kept, root,
                                             prev_root, count)
        if proven:
            return BlockCheck(number, True, True, None, "proof", kept.get("at"))
    rows = conn.exec_driver_sql(_chained_sql(p, ""), (number,)).fetchall()
    leaves = chain.leaves(rows, 1)
    roots = subtree_roots(leaves)
    verifies = len(leaves) == count and sealed_root(prev_root, chain.merkle(roots), count) == root
    if not (verifies and links):
        return _judged(conn, number, p, verifies, links)
    keep = {"root": root, "count": count, "at": at,
            "starts": [rows[i][0] for i in range(0, len(rows), SUBTREE)],
            "nodes": [r.hex() for r in roots]}
    return BlockCheck(number, True, True, None, "recomputed", at, keep)


def _prove(conn, number, decision_id, pos, p, kept, root, prev_root, count) -> bool:
    try:
        roots = [bytes.fromhex(h) for h in kept["nodes"]]
        starts = list(kept["starts"])
    except (KeyError, TypeError, ValueError):
        return False
    if not roots or len(roots) != len(starts) or len(roots) != -(-count // SUBTREE):
        return False
    if sealed_root(prev_root, chain.merkle(roots), count) != root:
        return False  # the kept roots are not this block's: recompute
    j = bisect_right(starts, pos) - 1
    if j < 0:
        return False
    if j + 1 < len(starts):
        rows = conn.exec_driver_sql(_chained_sql(p, f" AND pos >= {p} AND pos < {p}"),
                                    (number, starts[j], starts[j + 1])).fetchall()
    else:
        rows = conn.exec_driver_sql(_chained_sql(p, f" AND pos >= {p}"),
                                    (number, starts[j])).fetchall()
    if len(rows) != min(SUBTREE, count - j * SUBTREE) or decision_id not in {r[1] for r in rows}:
        return False
    return chain.merkle(chain.leaves(rows, 1)) == roots[j]


def _judged(conn, number, p, verifies, links) -> BlockCheck:
    """A block that failed here: :func:`chain.verify_block` names the problem (and has the
    last word: were it to find nothing wrong, the block verifies)."""
    problem = chain.verify_block(conn, number, p)
    if problem is None:
        return BlockCheck(number, True, True, None, "recomputed")
    return BlockCheck(number, verifies, links, problem.reason, "recomputed")
