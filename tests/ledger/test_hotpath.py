"""The optimised hot paths agree with their plain definitions: multi-row inserts at every
chunk boundary, batched leaf hashing, and the dict fast path of normalize."""

from __future__ import annotations

import hashlib
import hmac
import random
import threading
from types import MappingProxyType

import pytest
import sqlalchemy as sa

from modelward.errors import ValidationError
from modelward.ledger import chain, decision_fields, decisions, subject_keys
from modelward.ledger.schema import chain_blocks, decision_rollups
from modelward.registry import parallel_verify

T = 1_760_000_000_000_000


def _digest(i: int) -> str:
    return "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()


def _rows(n: int, start: int = 0) -> list[tuple]:
    return [decisions.normalize({"at": T + i, "subject": f"u-{i}", "model_digest": _digest(1),
                                 "input_digest": _digest(i), "segments": {"k": i % 3},
                                 "gate": {"threshold": 0.25 + i % 2, "candidates": 9,
                                          "passed": i % 10}})[0]
            for i in range(start, start + n)]


def _reference_root(prev_root: str, stored: list[tuple]) -> str:
    """The documented definition, written out without the optimised helpers."""
    level = [hashlib.sha256(b"\x00" + chain._dumps(tuple(r))).digest() for r in stored]
    while len(level) > 1:
        nxt = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
               for i in range(0, len(level) - 1, 2)]
        level = nxt + ([level[-1]] if len(level) % 2 else [])
    return hashlib.sha256(b"\x02" + bytes.fromhex(prev_root) + level[0]
                          + len(stored).to_bytes(8, "big")).hexdigest()


def _block(store, number: int):
    cols = ", ".join(chain.CHAINED)
    with store.read() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT pos, {cols} FROM decisions WHERE block = {store.paramstyle} ORDER BY pos",
            (number,)).all()
        sealed = conn.execute(sa.select(chain_blocks).where(chain_blocks.c.number == number)).one()
    return [tuple(r) for r in rows], sealed


# every size around the multi-row INSERT chunk boundaries (powers of 2 and 4) and a full block
SIZES = [1, 2, 3, 5, 15, 16, 17, 63, 64, 65, 255, 256, 257, 1023, 1024, 1025, 1365, 2000, 2047,
         2049]


def test_append_at_every_chunk_boundary(store):
    prev = chain.GENESIS
    offset = 0
    for number, n in enumerate(SIZES, start=1):
        rows = _rows(n, offset)
        offset += n
        result = decisions.append(store, rows, recorded_at=T + 10**9)
        assert (result.block, result.inserted, result.duplicates) == (number, n, 0)
        stored, sealed = _block(store, number)
        assert [r[0] for r in stored] == list(range(n))  # positions in order
        # values as given, the input digest keyed with its subject's key (HMAC-SHA256 of
        # the plain digest, written out here)
        with store.read() as conn:
            keys = {r[10]: subject_keys.key_for(conn, r[10]) for r in rows}
        keyed = [r[:11] + ("hmac:" + hmac.new(keys[r[10]], r[11].encode(), "sha256").hexdigest(),)
                 + r[12:] for r in rows]
        assert [r[1:] for r in stored] == [r + (T + 10**9,) for r in keyed]
        assert sealed.count == n
        assert sealed.root == _reference_root(prev, [r[1:] for r in stored])
        prev = sealed.root
    with store.read() as conn:
        report = chain.verify(conn)
    assert report.ok and report.decisions == sum(SIZES) and report.blocks == len(SIZES)


def test_duplicates_spread_over_chunks_are_skipped(store):
    first = _rows(1500)
    decisions.append(store, first[::3])  # every third id is already in the ledger
    result = decisions.append(store, first + first[:10])  # and ten repeated in the batch
    assert (result.block, result.inserted, result.duplicates) == (2, 1000, 510)
    stored, sealed = _block(store, 2)
    kept = [r for i, r in enumerate(first) if i % 3]
    assert [r[1] for r in stored] == [r[0] for r in kept]
    # positions are the batch order; the skipped duplicates leave gaps
    assert [r[0] for r in stored] == [i for i in range(1500) if i % 3]
    assert sealed.count == 1000
    with store.read() as conn:
        assert chain.verify(conn).ok


def test_leaves_match_leaf():
    rows = [("x",) + r + (T, 7, i) for i, r in enumerate(_rows(50))]
    assert chain.leaves(rows, 1) == [chain.leaf(r[1:1 + chain.N_CHAINED]) for r in rows]
    assert chain.leaves([]) == []


def test_merkle_matches_the_definition():
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(40)]
    for n in range(1, 40):
        level = leaves[:n]
        while len(level) > 1:
            nxt = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
                   for i in range(0, len(level) - 1, 2)]
            level = nxt + ([level[-1]] if len(level) % 2 else [])
        assert chain.merkle(leaves[:n]) == level[0]


def _outcome(d, **kw):
    try:
        return "ok", decisions.normalize(d, **kw)
    except ValidationError as exc:
        return "error", exc.message, exc.field, exc.line, exc.hint


def test_fast_path_agrees_with_the_checked_path_on_random_input():
    """Seeded differential test: for dicts of good, bad and odd values the dict fast path
    returns exactly what the field-by-field path returns, or raises the same error."""

    class Sub(str):
        pass

    good = [_digest(1), _digest(2)]
    values = {
        "id": [None, "0190b6b4-1234-7abc-8def-0123456789ab", "0190B6B4-1234-7ABC-8DEF-0123456789AB",
               "nope", 5],
        "at": [None, T, -5, True, "2026-03-01T12:00:00Z", "2026-03-01T12:00:00", 1.5, 2**70],
        "model_digest": good + [None, "sha256:xyz", good[0].upper(), Sub(good[0]), 5, "chat/v1"],
        "prompt_digest": good + [None, good[1][:-1], ["a"]],
        "input_digest": good + [None, decision_fields.of_text("hi"), "x"],
        "input_text": [None, "hi", "h\x00i", "\ud800", "ü", 3],
        "output_text": [None, "hi", "\ufeffbom", ""],
        "subject": [None, "u-1", "", "x" * 300, "x" * 301, "a\x00b", 7, Sub("s"), "é", "\udc00"],
        "alias": [None, "chat/v1", "x" * 201],
        "segments": [None, {}, {"tier": "pro", "n": 3, "f": 1.5, "b": True, "z": None}, {1: "x"},
                     {"a": [1]}, [1], {"a": 2**70}, {"a": Sub("v")}],
        "extra": [None, {}, {"k": [1, {"z": 2}]}, {1: 2}, "s", {"a": object()}],
        "gate": [None, {}, {"threshold": 0.4, "candidates": 20, "passed": 7}, {"threshold": 1},
                 {"threshold": True}, {"threshold": float("nan")}, {"candidates": -1},
                 {"candidates": 3, "passed": 4}, {"passed": 2.0}, {"x": 1}, [1],
                 {"candidates": 2**31}],
        "process": [None, "p:1", "", 5],
        "bogus": [1],
    }
    rng = random.Random(20260301)
    fast_taken = 0
    for _ in range(4000):
        d = {f: rng.choice(v) for f, v in rng.sample(sorted(values.items()), rng.randint(0, 7))}
        d.setdefault("id", "0190b6b4-1234-7abc-8def-0123456789ab")
        if d["id"] is None:
            d["id"] = "0190b6b4-1234-7abc-8def-0123456789ab"
        kw = {"now": T, "line": rng.choice([None, 3]), "process": rng.choice([None, "p:9"])}
        fast = _outcome(d, **kw)
        checked = _outcome(MappingProxyType(d), **kw)  # not a dict: always the checked path
        assert fast == checked, d
        if fast[0] == "ok":
            assert [type(v) for v in fast[1][0]] == [type(v) for v in checked[1][0]]
            fast_taken += decision_fields._normalize_common(d, T, kw["process"]) is not None
    assert fast_taken > 200  # the fast path was exercised, not just the fallback


def test_text_digest_check_agrees_with_the_regex():
    """The fast path's hex check of input/output digests says what DIGEST_RE says."""
    rng = random.Random(20261206)
    good = _digest(7)
    odd = [good, good.upper(), "SHA256:" + good[7:], good[:-1], good + "0", good[:-1] + " ",
           " " + good[1:], good[:-2] + " 0", good[:-1] + "g", good[:-1] + "\u0660",
           good[:-1] + "\uff10", good[:-2] + "\n", "sha256:" + "0" * 64, "sha256:" + "f" * 64,
           "sha256" + "0" * 65, "md5:" + "0" * 67, "", 5, None, b"sha256:" + b"0" * 64,
           "sha256:" + "0" * 62 + "\t\t"]
    alphabet = "0123456789abcdefABCDEFgx :\n\u00e9"
    for _ in range(20000):
        digits = [rng.choice("0123456789abcdef") for _ in range(64)]
        for _ in range(rng.choice([0, 0, 1, 2])):
            digits[rng.randrange(64)] = rng.choice(alphabet)
        odd.append("sha256:" + "".join(digits))
    for value in odd:
        expected = isinstance(value, str) and decision_fields.DIGEST_RE.match(value) is not None
        assert decision_fields._text_digest_ok(value) is expected, value


def test_keyed_digests_from_pads_are_hmac_sha256():
    """The recorder's keying (RFC 2104 from precomputed pads) gives HMAC-SHA256's bytes."""
    rng = random.Random(5)
    for size in (32, 0, 1, 63, 64):
        key = rng.randbytes(size)
        for i in range(50):
            plain = _digest(i)
            want = "hmac:" + hmac.digest(key, plain.encode(), "sha256").hex()
            assert subject_keys.keyed(key, plain) == want
            assert subject_keys._keyed_padded(*subject_keys._pads(key), plain) == want
    keys = {"a": rng.randbytes(32), "b": rng.randbytes(80)}  # b: longer than a block
    rows = [r[:10] + (s,) + r[11:] for r, s in zip(_rows(6), ["a", "b", None, "zz", "a", "b"],
                                                    strict=True)]
    rows[4] = rows[4][:12] + (None,) + rows[4][13:]  # no output digest
    got = subject_keys.apply(rows, keys)
    for r, g in zip(rows, got, strict=True):
        key = keys.get(r[10])
        for col in (11, 12):
            plain = r[col]
            assert g[col] == (plain if key is None or plain is None
                              else subject_keys.keyed(key, plain))
        assert g[:11] == r[:11] and g[13:] == r[13:]


def test_digest_cache_keeps_only_valid_digests_and_stays_bounded():
    decision_fields._good_digests.clear()
    with pytest.raises(ValidationError):
        decisions.normalize({"model_digest": "sha256:" + "g" * 64})
    assert not decision_fields._good_digests
    for i in range(5000):
        decisions.normalize({"prompt_digest": _digest(i)})
    assert 0 < len(decision_fields._good_digests) <= 4096


TAMPERS = [
    [],
    ["UPDATE decisions SET subject = 'evil' WHERE block = 3 AND pos = 4"],
    ["UPDATE decisions SET gate_threshold = 0.2500000000000001 WHERE block = 6 AND pos = 0"],
    ["DELETE FROM decisions WHERE block = 2 AND pos = 1", "DELETE FROM decisions WHERE block = 5"],
    ["UPDATE decisions SET block = 999 WHERE block = 4 AND pos = 2"],
    ["UPDATE decisions SET block = 0 WHERE block = 1 AND pos = 0"],
    ["UPDATE chain_blocks SET root = '" + "f" * 64 + "' WHERE number = 2"],
    ["DELETE FROM chain_blocks WHERE number = 3"],
    ["UPDATE chain_blocks SET count = count + 1 WHERE number = 6"],
    # rollups (compared apart, on a connection of their own, by the parallel path)
    ["UPDATE decision_rollups SET count = count + 1 WHERE block = 2"],
    ["INSERT INTO decision_rollups SELECT block, 9, "  # an exact copy of a row
     + ", ".join(c.name for c in decision_rollups.columns[2:])
     + " FROM decision_rollups WHERE block = 5"],
    # a block broken in its decisions is named for them only, its rollups left out
    ["UPDATE decisions SET subject = 'evil' WHERE block = 3 AND pos = 4",
     "UPDATE decision_rollups SET count = count + 1 WHERE block = 3"],
    # the first block read moves (a decision named block 0): so does the first rollup compared
    ["UPDATE decisions SET block = 0 WHERE block = 1 AND pos = 0",
     "UPDATE decision_rollups SET last_at = last_at + 1 WHERE block = 1"],
]


@pytest.mark.parametrize("tamper", TAMPERS, ids=range(len(TAMPERS)))
def test_verify_in_processes_reports_what_one_process_reports(store, tamper):
    for b in range(6):
        decisions.append(store, _rows(7 + b, start=100 * b))
    if tamper:
        with store.write() as conn:
            for sql in tamper:
                conn.exec_driver_sql(sql)
    with store.read() as conn:
        one = chain.verify(conn)
    for workers in (1, 2, 3):  # rollups compared apart in each (chain.verify(apart=True))
        with store.read() as conn:
            many = parallel_verify.verify(conn, workers=workers)
        assert (many.ok, many.blocks, many.decisions, many.head_root) == (
            one.ok, one.blocks, one.decisions, one.head_root)
        assert [p.to_dict() for p in many.problems] == [p.to_dict() for p in one.problems]
    assert one.ok == (not tamper)


def test_rollups_are_compared_apart_on_a_connection_of_their_own(store, monkeypatch):
    from modelward.ledger import rollups

    for b in range(3):
        decisions.append(store, _rows(5, start=100 * b))
    calls = []
    compare = rollups.verify

    def spy(conn, first, broken):
        calls.append((threading.current_thread().name, conn))
        return compare(conn, first, broken)

    monkeypatch.setattr(rollups, "verify", spy)
    with store.read() as conn:
        assert chain.verify(conn, apart=True).ok
        assert chain.verify(conn).ok
    (apart_thread, apart_conn), (here_thread, here_conn) = calls
    assert here_thread == threading.current_thread().name and here_conn is conn
    if store.url in ("sqlite://", "sqlite:///:memory:"):  # no other connection sees it
        assert (apart_thread, apart_conn) == (here_thread, conn)
    else:
        assert apart_thread == "modelward-verify-rollups" and apart_conn is not conn


def test_a_failure_apart_fails_the_verification(store, monkeypatch):
    from modelward.errors import StorageError
    from modelward.ledger import rollups

    decisions.append(store, _rows(5))

    def broken(conn, first, broken):
        raise StorageError("the rollups could not be read")

    monkeypatch.setattr(rollups, "verify", broken)
    with store.read() as conn, pytest.raises(StorageError, match="could not be read"):
        chain.verify(conn, apart=True)


def test_verify_in_processes_splits_by_decisions_and_covers_every_block(store):

    class B:
        def __init__(self, number, count):
            self.number, self.count = number, count

    blocks = [B(n, c) for n, c in enumerate([10, 10, 10, 10, 1000, 10], start=1)]
    assert parallel_verify.split(blocks, 2) == [(None, 5), (5, 6)]
    ranges = parallel_verify.split([B(n, 5) for n in range(1, 9)], 3)
    assert ranges[0][0] is None and ranges[-1][1] == 8
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))  # contiguous
    with store.read() as conn:
        in_memory = parallel_verify.worker_url(conn) is None
    assert in_memory == (store.url in ("sqlite://", "sqlite:///:memory:"))
