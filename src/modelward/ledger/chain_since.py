"""The decisions' half of verification from a checkpoint (:func:`.chain.verify` ``since=``;
the records' half is :mod:`.records_since`): the checkpoint's block must still carry the
root it signed, and the decisions in blocks up to it must still number what it counted."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..display import plural
from .chain import BlockProblem
from .schema import archived_blocks, chain_blocks, decisions, retired_blocks


def anchor(blocks, since, problems: list[BlockProblem]):
    """The checkpoint's block must still be there with the signed root; returns the root
    the next block must link to and the blocks after the checkpoint's."""
    if not blocks or blocks[0].number != since.block:
        problems.append(BlockProblem(since.block, f"block {since.block}, covered by "
                                     f"{label(since)}, is gone: the chain was "
                                     "truncated"))
        return since.root, [b for b in blocks if b.number > since.block]
    if blocks[0].root != since.root:
        problems.append(BlockProblem(since.block, f"root differs from the one "
                                     f"{label(since, 'signed by')}: the chain up to this block "
                                     "was rewritten"))
    return since.root, blocks[1:]


def label(since, verb: str = "") -> str:
    """How a problem names what verification started from: a signed checkpoint, or a
    verification a process remembers (``checkpoints.Verified``: the watch's)."""
    label = getattr(since, "label", None)
    if label is not None:
        return f"recorded by {label}" if verb else label
    return f"{verb} checkpoint {since.number}" if verb else f"signed checkpoint {since.number}"


def count_before(conn: Connection, since, problems: list[BlockProblem]) -> None:
    """Deleting or inserting a decision at or before the checkpoint changes the count of
    such decisions, which the checkpoint signed (one index count, no hashing); the decisions
    of blocks retention retired count as their blocks sealed them."""
    n = conn.execute(sa.select(sa.func.count()).select_from(decisions)
                     .where(decisions.c.block <= since.block)).scalar()
    c = chain_blocks.c
    gone = sa.union(sa.select(retired_blocks.c.block), sa.select(archived_blocks.c.block))
    n += conn.execute(sa.select(sa.func.coalesce(sa.func.sum(c.count), 0)).where(
        c.number <= since.block, c.number.in_(gone))).scalar()
    if n != since.decisions:
        problems.append(BlockProblem(since.block, f"{plural(n, 'decision')} in blocks up to "
                                     f"{since.block}, {label(since)} counted "
                                     f"{since.decisions}: decisions it covers were deleted or "
                                     "inserted (`verify --full` names the blocks)"))
