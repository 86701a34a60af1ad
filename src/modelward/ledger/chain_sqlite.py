"""Verifying decision blocks on SQLite with the canonical JSON made by SQLite itself.

A decision's leaf hashes ``[id, at, …, recorded_at]`` as orjson writes it
(:func:`.chain.leaf`). Fetching the 20 chained columns as 20 Python objects per row, then
serialising them again, was ~60% of ``verify``. Here SQLite writes the JSON (``json_array``:
the same bytes as orjson for strings, integers and null — no spaces, the same escapes,
UTF-8 as is; tests/ledger/test_chain_sqlite.py holds the two to it) and hands over one
value per block: its rows' JSON joined by newlines (``group_concat``; a JSON text holds no
raw newline), split in C and hashed. The ids of a block are read only when it is broken.

Three things are proven for each block before its SQLite text is hashed; a block where one
fails is read row by row instead (:func:`select`, :func:`leaves`: the float by orjson):

* order: SQLite 3.40 does not promise the order ``group_concat`` sees a group's rows in,
  so the same aggregate also concatenates the block's positions (integers only); both see
  the rows in one order, and the positions must be strictly increasing (``ORDER BY pos``'s
  order, which the leaves follow);
* the float: SQLite writes a REAL with 15 significant digits, orjson the shortest form
  that reads back. The block's smallest and largest ``gate_threshold`` (or, when they
  differ, its distinct values, read in the same transaction) must each be NULL or a
  non-zero number below 2**53 whose SQLite JSON, asked of this SQLite for that very double,
  is orjson's (:func:`_same_float`). A value equal to such a number is that double or an
  integer (written alike by both); zero is never trusted, as −0.0 equals 0.0 and SQLite
  writes both ``0.0``. Typed thresholds (0.4, 0.75) pass; 0.1 + 0.2, 1e-05 (SQLite:
  ``1.0e-05``) and 0.0 are read row by row;
* size: a block whose text exceeds SQLite's string limit makes the whole scan fall back.

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
from .scan import streamed

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


def _ids(conn: Connection, number) -> list[str]:
    return list(conn.exec_driver_sql(
        "SELECT id FROM decisions WHERE block = ? ORDER BY pos", (number,)).scalars())


def select_blocks(where: str = "") -> str:
    """One row per block, in block order: (block, its decisions, their positions joined by
    commas in the order the JSON texts are, the smallest and largest gate_threshold, the
    JSON text of each decision's chained columns joined by newlines)."""
    from .chain import CHAINED

    return (f"SELECT block, count(*), group_concat(CASE WHEN typeof(pos) = 'integer' "
            f"THEN pos END), min(gate_threshold), max(gate_threshold), "
            f"CAST(group_concat(json_array({', '.join(CHAINED)}), X'0A') AS BLOB) "
            f"FROM decisions {where} GROUP BY block ORDER BY block")


_RANGES: dict[int, str] = {}  # n -> "0,1,…,n-1": the positions of a block nothing skipped


def _in_order(positions, n: int) -> bool:
    """Whether the positions ``group_concat`` listed (integers only, in the order it saw
    the rows) are ``n`` strictly increasing integers: the order ``ORDER BY pos`` gives."""
    if positions is None:
        return False
    usual = _RANGES.get(n)
    if usual is None:
        usual = ",".join(map(str, range(n)))
        if n <= 65536 and len(_RANGES) < 4096:
            _RANGES[n] = usual
    if positions == usual:
        return True
    try:
        values = [int(p) for p in positions.split(",")]
    except ValueError:
        return False
    return len(values) == n and all(a < b for a, b in itertools.pairwise(values))


_SAME: dict[float, bool] = {}  # double -> whether this SQLite writes it as orjson does
_EXACT = 2.0 ** 53  # integers below this convert to doubles exactly


def _same_float(conn: Connection, value) -> bool:
    """Whether every value that equals ``value`` (SQL ``=``) has the same JSON from SQLite
    as from orjson: NULL, or a non-zero number whose double SQLite writes as orjson does
    (asked of this SQLite for that double, once per process). Integers equal to it are
    written alike by both."""
    if value is None:
        return True
    if type(value) not in (int, float) or value == 0 or not -_EXACT < value < _EXACT:
        return False  # text, blob; ±0.0 (SQLite writes -0.0 as 0.0); inf; huge integers
    value = float(value)
    same = _SAME.get(value)
    if same is None:
        written = conn.exec_driver_sql("SELECT CAST(json_array(?) AS BLOB)", (value,)).scalar()
        same = written == b"[" + orjson.dumps(value) + b"]"
        if len(_SAME) > 65536:
            _SAME.clear()
        _SAME[value] = same
    return same


def _floats_alike(conn: Connection, number, low, high) -> bool:
    """Whether SQLite's JSON of every gate_threshold of block ``number`` is orjson's."""
    if low == high or low is None:  # min = max (or all NULL): every value equals it
        return _same_float(conn, low)
    return all(_same_float(conn, v) for v in conn.exec_driver_sql(
        "SELECT DISTINCT gate_threshold FROM decisions WHERE block = ?", (number,)).scalars())


def block_leaves(conn: Connection, row) -> list[bytes] | None:
    """The leaf hashes of one block from its :func:`select_blocks` row, or None when its
    SQLite text cannot be trusted to be orjson's (then :func:`select` it row by row)."""
    number, n, positions, low, high, text = row
    if text is None or not _in_order(positions, n) or not _floats_alike(conn, number, low, high):
        return None
    pieces = text.split(b"\n")
    if len(pieces) != n:
        return None
    prefix = _PREFIX
    out = []
    append = out.append
    for piece in pieces:
        h = prefix()
        h.update(piece)
        append(h.digest())
    return out


_PREFIX = hashlib.sha256(b"\x00").copy


def _row_leaves(conn: Connection, number) -> list[bytes]:
    """The leaves of block ``number`` read row by row (the float written by orjson)."""
    return leaves(conn.exec_driver_sql(select("WHERE block = ?"), (number,)).fetchall())


def _too_big(exc: Exception) -> bool:
    """Whether ``exc`` is SQLite's "string or blob too big" (raised by the driver when
    stepping, wrapped by SQLAlchemy when executing)."""
    return isinstance(exc, sqlite3.DataError) or isinstance(
        getattr(exc, "orig", None), sqlite3.DataError)


def judge_blocks(conn: Connection, rows, sealed: dict, problems: list, seen_blocks: set[int],
                 *, stop_at_first: bool = False, progress=None) -> int:
    """:func:`.chain.judge_blocks` for rows from :func:`select_blocks`; returns how many
    decisions it read."""
    from .chain import BlockProblem, block_root

    total = 0
    for row in rows:
        number, n = row[0], row[1]
        total += n
        blk = sealed.get(number)
        if blk is None:
            problems.append(BlockProblem(number, "decisions name a block that was never "
                                         "sealed", _ids(conn, number)))
        elif n != blk.count:
            problems.append(BlockProblem(number, f"holds {plural(n, 'decision')}, "
                                         f"sealed with {blk.count}", _ids(conn, number)))
        else:
            hashed = block_leaves(conn, row)
            if hashed is None:
                hashed = _row_leaves(conn, number)
            if block_root(blk.prev_root, hashed) != blk.root:
                problems.append(BlockProblem(number, "decisions do not match the sealed "
                                             "root", _ids(conn, number)))
        seen_blocks.add(number)
        if progress:
            progress(n)
        if stop_at_first and problems:
            break
    return total


def judge_rows(conn: Connection, rows, sealed: dict, problems: list, seen_blocks: set[int],
               *, stop_at_first: bool = False, progress=None) -> int:
    """:func:`judge_blocks` for rows from :func:`select` (one per decision)."""
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


def verify_decisions(conn: Connection, where: str, params: tuple, sealed: dict, problems: list,
                     seen_blocks: set[int], *, stop_at_first: bool = False,
                     progress=None) -> int:
    """Judge every decision block (``where``: which, on ``block``) a block at a time
    (:func:`select_blocks`), or row by row if a block's text is too long for SQLite."""
    kept, seen = len(problems), set(seen_blocks)
    done = 0

    def counted(n):  # progress already reported, so a retry row by row reports only the rest
        nonlocal done
        done += n
        if progress:
            progress(n)

    try:
        with streamed(conn, select_blocks(where), params, size=4) as rows:
            return judge_blocks(conn, rows, sealed, problems, seen_blocks,
                                stop_at_first=stop_at_first, progress=counted)
    except Exception as exc:
        if not _too_big(exc):
            raise
        del problems[kept:]
        seen_blocks.clear()
        seen_blocks.update(seen)
    with streamed(conn, select(where), params) as rows:
        return judge_rows(conn, rows, sealed, problems, seen_blocks, stop_at_first=stop_at_first,
                          progress=_rest(progress, done))


def _rest(progress, done: int):
    """``progress`` called only once ``done`` decisions (already reported) are passed."""
    if not progress or not done:
        return progress
    left = done

    def call(n):
        nonlocal left
        skip = min(left, n)
        left -= skip
        if n > skip:
            progress(n - skip)

    return call
