"""Verifying decision blocks on SQLite with the canonical JSON made by SQLite itself.

A decision's leaf hashes ``[id, at, …, recorded_at]`` as orjson writes it
(:func:`.chain.leaf`). Fetching the 20 chained columns as 20 Python objects per row, then
serialising them again, was ~60% of ``verify``. Here SQLite writes the JSON of every
column but ``gate_threshold`` (``json_array``: the same bytes for strings, integers and
null — no spaces, the same escapes, UTF-8 as is; tests/ledger/test_chain_sqlite.py holds
the two to it), and Python adds only the float, whose shortest form only orjson writes.
Four objects a row instead of 21; the ids of a block are read only when it is broken.

A value a tamperer stored with another type or spelling still yields other bytes than the
ones sealed (a JSON text decodes to one value), so the block's root differs as before.
"""

from __future__ import annotations

import hashlib
import itertools
import operator
import sqlite3

import orjson
from sqlalchemy.engine import Connection

from ..display import plural

# json_array and CAST … AS BLOB: SQLite's JSON functions are built in from 3.38 on
SUPPORTED = sqlite3.sqlite_version_info >= (3, 38, 0)

_HEAD = ("id", "at", "alias", "model_digest", "prompt_digest", "embedder_digest",
         "reranker_digest", "config_digest", "vendor_model_id", "vendor_fingerprint",
         "subject", "input_digest", "output_digest", "segments")
_TAIL = ("gate_candidates", "gate_passed", "process", "extra", "recorded_at")


def select(where: str = "") -> str:
    """Rows of (block, JSON of the columns before gate_threshold, gate_threshold, JSON of
    the columns after it), in block and position order."""
    return (f"SELECT block, CAST(json_array({', '.join(_HEAD)}) AS BLOB), gate_threshold, "
            f"CAST(json_array({', '.join(_TAIL)}) AS BLOB) FROM decisions {where} "
            "ORDER BY block, pos")


def leaves(rows) -> list[bytes]:
    """The leaf hashes of rows from :func:`select` (same hashes as :func:`.chain.leaves`)."""
    prefix, dumps = hashlib.sha256(b"\x00").copy, orjson.dumps
    out = []
    append = out.append
    for _, head, threshold, tail in rows:
        h = prefix()
        h.update(head[:-1])  # without its "]"
        h.update(b"," + dumps(threshold) + b",")
        h.update(tail[1:])  # without its "["
        append(h.digest())
    return out


def _ids(conn: Connection, number: int) -> list[str]:
    return list(conn.exec_driver_sql(
        "SELECT id FROM decisions WHERE block = ? ORDER BY pos", (number,)).scalars())


def judge_blocks(conn: Connection, rows, sealed: dict, problems: list, seen_blocks: set[int],
                 *, stop_at_first: bool = False, progress=None) -> int:
    """:func:`.chain.judge_blocks` for rows from :func:`select`; returns how many it read."""
    from .chain import BlockProblem, block_root

    total = 0
    for number, group in itertools.groupby(rows, key=operator.itemgetter(0)):
        block_rows = list(group)
        total += len(block_rows)
        blk = sealed.get(number)
        if blk is None:
            problems.append(BlockProblem(number, "decisions name a block that was never sealed",
                                         _ids(conn, number)))
        elif len(block_rows) != blk.count:
            problems.append(BlockProblem(number, f"holds {plural(len(block_rows), 'decision')}, "
                                         f"sealed with {blk.count}", _ids(conn, number)))
        elif block_root(blk.prev_root, leaves(block_rows)) != blk.root:
            problems.append(BlockProblem(number, "decisions do not match the sealed root",
                                         _ids(conn, number)))
        seen_blocks.add(number)
        if progress:
            progress(len(block_rows))
        if stop_at_first and problems:
            break
    return total
