"""Decisions on every backend: round trips, idempotent ids, validation that names the field and
writes nothing, all-or-nothing JSONL import, and erasure that leaves the chain intact."""

from __future__ import annotations

import math
import subprocess
import sys
from types import MappingProxyType

import orjson
import pytest
import sqlalchemy as sa

from modelward import digest as dg
from modelward.errors import ModelwardError, UnknownDecisionError, ValidationError
from modelward.ids import uuid7
from modelward.ledger import chain, decisions, subject_keys
from modelward.ledger.schema import chain_blocks, decision_payloads
from modelward.timefmt import parse_time

M, P, E, R, C = ("sha256:" + c * 64 for c in "12345")
T = parse_time("2026-03-01T12:00:00Z")


def full_decision(**over) -> dict:
    d = dict(id=uuid7(), at="2026-03-01T12:00:00.000001Z", alias="chat/v1", model_digest=M,
             prompt_digest=P, embedder_digest=E, reranker_digest=R, config_digest=C,
             vendor_model_id="gpt-4o-2024-08-06", vendor_fingerprint="fp_abc", subject="u-1",
             input_text="Where is my refund? ✓", output_text="On its way.",
             segments={"tier": "pro", "topic": "billing", "seats": 12, "trial": False,
                       "score": 0.5, "region": None},
             gate={"threshold": 0.4, "candidates": 20, "passed": 7}, process="web-1",
             extra={"experiment": {"id": "exp-1", "arm": "b"}, "tags": ["a", "b"]})
    d.update(over)
    return d


def count(store) -> int:
    with store.read() as conn:
        return decisions.count(conn)


def verify(store) -> chain.VerifyReport:
    with store.read() as conn:
        return chain.verify(conn)


def test_every_field_round_trips(ledger):
    d = full_decision()
    rid = ledger.record(**d)
    bare = ledger.record(gate={"passed": 3})
    ledger.flush()
    with ledger.store.read() as conn:
        got = decisions.get(conn, rid)
        text = decisions.payload(conn, rid)
        other = decisions.get(conn, bare)
        assert decisions.payload(conn, bare) is None
        # a decision with a subject chains its text digests keyed with the subject's key
        want_in = subject_keys.chained_digest(conn, "u-1", dg.of_text(d["input_text"]))
        want_out = subject_keys.chained_digest(conn, "u-1", dg.of_text("On its way."))
    assert rid == d["id"]
    assert (got.at, got.alias, got.model_digest, got.prompt_digest, got.embedder_digest,
            got.reranker_digest, got.config_digest) == (T + 1, "chat/v1", M, P, E, R, C)
    assert (got.vendor_model_id, got.vendor_fingerprint, got.subject, got.process) == (
        "gpt-4o-2024-08-06", "fp_abc", "u-1", "web-1")
    assert got.input_digest == want_in and want_in.startswith("hmac:")
    assert got.output_digest == want_out and want_out.startswith("hmac:")
    assert got.segments == d["segments"] and got.extra == d["extra"]
    assert (got.gate_threshold, got.gate_candidates, got.gate_passed) == (0.4, 20, 7)
    assert got.block >= 1 and got.pos >= 0 and got.recorded_at >= got.at
    assert (text.input_text, text.output_text, text.subject, text.erased_at) == (
        "Where is my refund? ✓", "On its way.", "u-1", None)
    out = got.to_dict()
    assert out["at"] == "2026-03-01T12:00:00.000001Z"
    assert out["gate"] == {"threshold": 0.4, "candidates": 20, "passed": 7}
    assert "gate_threshold" not in out
    assert got.digests() == {"model": M, "prompt": P, "embedder": E, "reranker": R, "config": C}
    # a decision naming nothing gets an id, a time and this process
    assert other.model_digest is None and other.segments is None and other.process
    assert other.to_dict()["gate"] == {"threshold": None, "candidates": None, "passed": 3}
    assert verify(ledger.store).ok


def test_record_uses_resolutions(ledger, tmp_path):
    from modelward.ledger import aliases, artifacts

    (tmp_path / "m.bin").write_bytes(b"m")
    (tmp_path / "p.txt").write_text("Answer politely.")
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "x").write_text("x")
    m = artifacts.register_path(ledger.store, "model", tmp_path / "m.bin", name="m").artifact
    p = artifacts.register_path(ledger.store, "prompt", tmp_path / "p.txt", name="p").artifact
    ds = artifacts.register_path(ledger.store, "dataset", tmp_path / "ds", name="ds").artifact
    with ledger.store.write() as conn:
        aliases.set_alias(conn, "chat/v1", m.digest)
        aliases.set_alias(conn, "prompt/support@production", p.digest)
        aliases.set_alias(conn, "data/train", ds.digest)
    uses = [ledger.resolve("chat/v1"), ledger.resolve("prompt/support@production")]
    rid = ledger.record(uses=uses, subject="u")
    with pytest.raises(ValidationError, match="data/train points at a dataset") as exc:
        ledger.record(uses=[ledger.resolve("data/train")])
    assert exc.value.field == "uses"
    ledger.flush()
    with ledger.store.read() as conn:
        got = decisions.get(conn, rid)
    assert (got.alias, got.model_digest, got.prompt_digest) == ("chat/v1", m.digest, p.digest)
    assert count(ledger.store) == 1


def test_resent_ids_never_duplicate(store):
    rows = [decisions.normalize(full_decision(subject=f"u{i}"))[0] for i in range(10)]
    same_batch = decisions.append(store, rows[:4] + rows[:4])
    assert (same_batch.inserted, same_batch.duplicates) == (4, 4)
    across = decisions.append(store, rows)
    assert (across.inserted, across.duplicates) == (6, 4) and across.block == 2
    nothing = decisions.append(store, rows)
    assert (nothing.block, nothing.inserted, nothing.duplicates) == (None, 0, 10)
    assert decisions.append(store, []).inserted == 0
    assert count(store) == 10
    report = verify(store)
    assert report.ok and report.blocks == 2 and report.decisions == 10
    with store.read() as conn:  # a skipped duplicate leaves its block with the rows it kept
        assert conn.execute(sa.select(chain_blocks.c.count).order_by(chain_blocks.c.number)).scalars().all() == [4, 6]


@pytest.mark.parametrize("n", [10, 300], ids=["executemany", "bulk"])
def test_bulk_path_keeps_ids_idempotent_and_the_chain_whole(store, n):
    """PostgreSQL writes a batch of 64 rows or more by COPY into a staging table and
    ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``; smaller ones by executemany. Both keep
    re-sent ids out, both seal exactly the rows they kept, and two appends in one
    transaction do not see each other's staged rows (the same checks run on SQLite)."""
    rows = [decisions.normalize(full_decision(subject=f"u{i}", process=f"p{i % 7}"))[0]
            for i in range(n + 5)]
    first = decisions.append(store, rows[:n])
    again = decisions.append(store, rows)
    assert (first.inserted, again.inserted, again.duplicates) == (n, 5, n)
    more = [decisions.normalize(full_decision(subject=f"v{i}"))[0] for i in range(2 * n)]
    with store.write(chain=True) as conn:
        a = decisions.append_in(conn, store, more[:n])
        b = decisions.append_in(conn, store, more[n:])
    assert (a.inserted, b.inserted, b.block) == (n, n, a.block + 1)
    assert count(store) == 3 * n + 5
    report = verify(store)
    assert report.ok and report.decisions == 3 * n + 5
    with store.read() as conn:
        back = decisions.get(conn, rows[-1][0])
    assert (back.subject, back.process, back.segments["seats"]) == (f"u{n + 4}", f"p{(n + 4) % 7}", 12)


def test_bulk_path_fails_whole_with_the_same_error(store):
    """A row the database refuses (here: a process name past the column's 300 characters,
    slipped past validation) fails the whole batch with the same modelward error whether the
    batch went by executemany (10 rows) or by COPY (300), and nothing of it is kept."""
    if store.dialect == "sqlite":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    errors = []
    for n in (10, 300):
        rows = [decisions.normalize(full_decision(subject=f"u{i}"))[0] for i in range(n)]
        bad = list(rows[-1])
        bad[decisions.COLUMNS.index("process")] = "x" * 400
        rows[-1] = tuple(bad)
        with pytest.raises(ModelwardError) as caught:
            decisions.append(store, rows)
        errors.append((type(caught.value), caught.value.message))
        assert count(store) == 0 and verify(store).ok
    assert errors[0] == errors[1] and "character varying(300)" in errors[0][1]


def test_resent_ids_across_processes(backend_url, tmp_path):
    if backend_url == "sqlite://":
        pytest.skip("an in-memory database lives in one process")
    import modelward

    with modelward.open(str(tmp_path / "home"), database_url=backend_url) as led:
        rows = [decisions.normalize(full_decision(subject=f"u{i}"))[0] for i in range(3000)]
        decisions.append(led.store, rows[:500])  # some already there before the race
    (tmp_path / "rows.json").write_bytes(orjson.dumps(rows))
    script = (
        "import sys, orjson, modelward\n"
        "from modelward.ledger import decisions\n"
        "rows = [tuple(r) for r in orjson.loads(open(sys.argv[2], 'rb').read())]\n"
        "led = modelward.open(sys.argv[1], database_url=sys.argv[3], create=False)\n"
        "total = 0\n"
        "for i in range(0, len(rows), 250):\n"
        "    total += decisions.append(led.store, rows[i:i + 250]).inserted\n"
        "led.close()\n"
        "print(total)\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "home"),
                               str(tmp_path / "rows.json"), backend_url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e for _, e in outs]
    assert sum(int(o) for o, _ in outs) == 2500  # every id inserted by exactly one process
    with modelward.open(str(tmp_path / "home"), database_url=backend_url) as led:
        assert count(led.store) == 3000
        assert verify(led.store).ok


BAD = [
    ({"model": M}, "model", "unknown field(s): model"),
    ({"id": 5}, "id", "not a lowercase UUID: '5'"),
    ({"id": "0190e4f0-0000-7000-8000-00000000000A"}, "id", "not a lowercase UUID"),
    ({"at": "yesterday"}, "at", "not an ISO 8601 timestamp: 'yesterday'"),
    ({"at": "2026-03-01T12:00:00"}, "at", "has no UTC offset"),
    ({"at": 1.5}, "at", "expected an ISO 8601 timestamp, got float"),
    ({"at": True}, "at", "expected an ISO 8601 timestamp"),
    ({"at": 2**70}, "at", "outside years 1-9999"),
    ({"alias": 5}, "alias", "expected a string, got int"),
    ({"alias": "x" * 201}, "alias", "longer than 200 characters"),
    ({"alias": "a\x00b"}, "alias", "holds a NUL byte"),
    ({"alias": "bad\ud800"}, "alias", "unpaired surrogate"),
    ({"model_digest": "chat/v1"}, "model_digest", "not a sha256:<64 hex> digest: 'chat/v1'"),
    ({"prompt_digest": 5}, "prompt_digest", "not a sha256:<64 hex> digest"),
    ({"embedder_digest": "sha256:" + "A" * 64}, "embedder_digest", "not a sha256"),
    ({"reranker_digest": "sha256:" + "a" * 63}, "reranker_digest", "not a sha256"),
    ({"config_digest": ["sha256:" + "a" * 64]}, "config_digest", "not a sha256"),
    ({"vendor_model_id": 4}, "vendor_model_id", "expected a string, got int"),
    ({"vendor_fingerprint": []}, "vendor_fingerprint", "expected a string, got list"),
    ({"subject": {"id": 1}}, "subject", "expected a string, got dict"),
    ({"subject": "s" * 301}, "subject", "longer than 300 characters"),
    ({"subject": "\udcff"}, "subject", "unpaired surrogate"),
    ({"process": 7}, "process", "expected a string, got int"),
    ({"input_digest": "abc"}, "input_digest", "not a sha256"),
    ({"output_digest": 5}, "output_digest", "not a sha256"),
    ({"input_text": 5}, "input_text", "expected UTF-8 text"),
    ({"output_text": b"bytes"}, "output_text", "expected UTF-8 text"),
    ({"input_text": "nul\x00"}, "input_text", "without NUL bytes"),
    ({"output_text": "lone \ud800 surrogate"}, "output_text", "expected UTF-8 text"),
    ({"input_text": "q", "input_digest": dg.of_text("other")}, "input_digest",
     "input_digest does not match input_text"),
    ({"output_text": "a", "output_digest": dg.of_text("b")}, "output_digest",
     "output_digest does not match output_text"),
    ({"segments": ["pro"]}, "segments", "expected an object, got list"),
    ({"segments": {"tier": ["pro"]}}, "segments.tier", "must be a string, number or boolean"),
    ({"segments": {1: "x"}}, "segments", "keys must be strings"),
    ({"extra": "x"}, "extra", "expected an object, got str"),
    ({"extra": {2: 1}}, "extra", "keys must be strings"),
    ({"extra": {"big": 2**70}}, "extra", "not JSON-serialisable"),
    ({"gate": [1, 2, 3]}, "gate", "expected an object with threshold, candidates, passed"),
    ({"gate": {"thresh": 1}}, "gate", "unknown field(s): thresh"),
    ({"gate": {"threshold": "0.4"}}, "gate.threshold", "expected a finite number, got '0.4'"),
    ({"gate": {"threshold": True}}, "gate.threshold", "expected a finite number"),
    ({"gate": {"threshold": math.nan}}, "gate.threshold", "expected a finite number, got nan"),
    ({"gate": {"threshold": math.inf}}, "gate.threshold", "expected a finite number, got inf"),
    ({"gate": {"candidates": -1}}, "gate.candidates", "expected an integer from 0 to 2147483647"),
    ({"gate": {"candidates": 1.5}}, "gate.candidates", "got 1.5"),
    ({"gate": {"candidates": 2**31}}, "gate.candidates", "got 2147483648"),
    ({"gate": {"passed": True}}, "gate.passed", "got True"),
    ({"gate": {"passed": "3"}}, "gate.passed", "got '3'"),
    ({"gate": {"candidates": 3, "passed": 4}}, "gate.passed", "passed (4) exceeds candidates (3)"),
]


@pytest.mark.parametrize("change,field,message", BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_normalize_names_the_field(change, field, message):
    good = full_decision()
    good.update(change)
    for value in (good, MappingProxyType(good)):  # the dict fast path and the general path
        with pytest.raises(ValidationError) as exc:
            decisions.normalize(value, line=7)
        assert exc.value.field == field
        assert message in exc.value.message
        assert exc.value.message.startswith(f"line 7: {field}: ")


def test_not_an_object():
    with pytest.raises(ValidationError, match="a decision must be an object, got list"):
        decisions.normalize([1])


def test_general_and_fast_paths_agree():
    """A dict and any other Mapping normalise to the same row (the checked path is the
    reference; the dict path is the recorder's optimised one)."""
    variants = [full_decision(), full_decision(gate={"threshold": 1}), {"at": T, "id": uuid7()},
                full_decision(input_text=None, output_text="only out", input_digest=M),
                full_decision(segments={}, extra={}, gate={}),
                full_decision(subject="ünïcode-sübject", alias="chat/v1ü", input_text="∑ ✓")]
    for d in variants:
        fast = decisions.normalize(d, now=T, process="p")
        general = decisions.normalize(MappingProxyType(d), now=T, process="p")
        assert fast == general
        assert type(fast[0][14]) is type(general[0][14])  # the threshold is a float in both


def test_bad_record_writes_nothing(ledger):
    for change, field, _message in BAD:
        d = full_decision()
        d.update(change)
        with pytest.raises(ValidationError) as exc:
            ledger.record(**d)
        assert exc.value.field == field
    ledger.flush()
    assert count(ledger.store) == 0
    with ledger.store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(decision_payloads)).scalar() == 0
    # and the recorder still works: nothing poisoned its queue
    rid = ledger.record(**full_decision())
    ledger.flush(timeout=10)
    assert count(ledger.store) == 1 and verify(ledger.store).ok
    with ledger.store.read() as conn:
        assert decisions.get(conn, rid).subject == "u-1"


def jsonl(*objs) -> list[bytes]:
    return [o if isinstance(o, bytes) else orjson.dumps(o) for o in objs]


def test_import_jsonl(store):
    existing = full_decision(subject="already", at=T + 100)
    decisions.append(store, [decisions.normalize(existing)[0]])
    lines = jsonl(*(full_decision(subject=f"s{i}", at=T + i) for i in range(5)), b"", b"  ",
                  existing, {"subject": "no id", "at": "2026-03-02T00:00:00Z"})
    res = decisions.import_jsonl(store, lines, block_size=2)
    assert (res.inserted, res.duplicates) == (6, 1)
    assert count(store) == 7
    report = verify(store)
    assert report.ok and report.blocks == 1 + 4  # 7 lines in blocks of two; the duplicate dropped
    with store.read() as conn:
        assert [d.subject for d in decisions.search(conn, since=T, until=T + 3)] == ["s2", "s1", "s0"]
        assert decisions.payload(conn, orjson.loads(lines[2])["id"]).input_text == "Where is my refund? ✓"


def test_import_jsonl_names_every_bad_line_and_writes_nothing(store):
    one = full_decision()
    lines = jsonl(full_decision(), {"model_digest": "chat/v1"}, full_decision(), b"{not json",
                  full_decision(at="2026-03-01T12:00:00"), one, one, [1, 2],
                  full_decision(gate={"candidates": 1, "passed": 2}))
    with pytest.raises(ValidationError) as exc:
        decisions.import_jsonl(store, lines)
    err = exc.value
    assert [p.line for p in err.problems] == [2, 4, 5, 7, 8, 9]
    assert [p.field for p in err.problems] == ["model_digest", None, "at", "id", None, "gate.passed"]
    assert err.message == ("line 2: model_digest: not a sha256:<64 hex> digest: 'chat/v1' "
                           "(and 5 more bad lines); nothing was imported")
    assert err.problems[3].message == "line 7: id: repeats the id of line 6"
    assert err.problems[1].message.startswith("line 4: not valid JSON")
    assert err.to_dict()["problems"][2]["line"] == 5
    assert count(store) == 0 and verify(store).blocks == 0


def test_import_stops_collecting_after_max_problems(store):
    lines = jsonl(*({"at": "bad"} for _ in range(80)))
    with pytest.raises(ValidationError) as exc:
        decisions.import_jsonl(store, lines, max_problems=50)
    assert len(exc.value.problems) == 50 and "(and 49 more bad lines)" in exc.value.message


def test_erase_removes_text_only(ledger):
    ids = [ledger.record(**full_decision(subject=s, input_text=f"q{i}", output_text=f"a{i}"))
           for i, s in enumerate(["alice", "bob", "alice"])]
    ledger.flush()
    with ledger.store.read() as conn:
        before = [decisions.get(conn, i) for i in ids]
        q0 = subject_keys.chained_digest(conn, "alice", dg.of_text("q0"))
    assert decisions.erase_subject(ledger.store, "alice") == 2
    assert decisions.erase_subject(ledger.store, "alice") == 0
    with ledger.store.read() as conn:
        after = [decisions.get(conn, i) for i in ids]
        texts = [decisions.payload(conn, i) for i in ids]
    assert after == before  # digests, subject and everything chained stay
    assert [(t.input_text, t.output_text) for t in texts] == [(None, None), ("q1", "a1"), (None, None)]
    assert texts[0].erased_at is not None and texts[1].erased_at is None
    assert after[0].input_digest == q0  # the digest stays; its key is gone
    with ledger.store.read() as conn:
        assert subject_keys.key_for(conn, "alice") is None
        assert subject_keys.key_for(conn, "bob") is not None
    report = verify(ledger.store)
    assert report.ok and report.decisions == 3
    with pytest.raises(ValidationError) as exc:
        decisions.erase_subject(ledger.store, "")
    assert exc.value.field == "subject"


def test_get_and_search(store):
    rows = [decisions.normalize(full_decision(at=T + i, subject=f"u{i % 2}",
                                              alias="chat/v1" if i < 3 else "chat/v2"))[0]
            for i in range(6)]
    decisions.append(store, rows)
    with store.read() as conn:
        with pytest.raises(UnknownDecisionError, match="no decision 'nope' in the ledger"):
            decisions.get(conn, "nope")
        assert [d.at - T for d in decisions.search(conn)] == [5, 4, 3, 2, 1, 0]
        assert [d.at - T for d in decisions.search(conn, subject="u1")] == [5, 3, 1]
        assert [d.at - T for d in decisions.search(conn, alias="chat/v1", limit=2)] == [2, 1]
        assert [d.at - T for d in decisions.search(conn, since=T + 2, until=T + 4)] == [3, 2]
