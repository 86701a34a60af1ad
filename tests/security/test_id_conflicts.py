"""A decision id sent again: the same content is a duplicate (accepted, counted), other
content is a conflict (API 409 and CLI exit 1 naming the ids; nothing written). An import
of lines without ids derives ids from their content, so running it twice never duplicates.
On SQLite and PostgreSQL."""

from __future__ import annotations

import logging

import orjson
import pytest

from modelward.errors import IdConflictError
from modelward.ids import content_id, is_uuid, uuid7
from modelward.ledger import decisions
from tests.web import apiclient
from tests.web.apiclient import digest, error

api = apiclient.api  # the fixture

M1, M2 = digest("model-1"), digest("model-2")


def row(**fields):
    return decisions.normalize({"subject": "u1", "model_digest": M1, **fields})[0]


def count(store) -> int:
    with store.read() as conn:
        return decisions.count(conn)


def test_same_content_is_a_duplicate_other_content_a_conflict(store):
    did = uuid7()
    first = row(id=did, at="2026-01-01T00:00:00Z")
    assert decisions.append(store, [first]).inserted == 1
    again = decisions.append(store, [row(id=did, at="2026-01-01T00:00:00Z")])
    assert (again.inserted, again.duplicates, again.conflicts) == (0, 1, {})
    # the time and process say when and where it was recorded: a retry stamped anew
    assert decisions.append(store, [row(id=did, process="other")]).duplicates == 1
    fresh = row()
    with pytest.raises(IdConflictError) as exc:
        decisions.append(store, [fresh, row(id=did, model_digest=M2, subject="u2")])
    assert exc.value.ids == [did] and exc.value.fields == {did: ["model_digest", "subject"]}
    assert exc.value.message == (f"1 decision id(s) already recorded with different content: "
                                 f"{did} (model_digest, subject); nothing was written")
    assert count(store) == 1  # the fresh row of the refused batch was not written either
    with store.read() as conn:
        assert decisions.get(conn, did).model_digest == M1


def test_a_batch_repeating_an_id_with_other_content_is_a_conflict(store):
    did = uuid7()
    with pytest.raises(IdConflictError, match=did):
        decisions.append(store, [row(id=did), row(id=did, subject="u2")])
    assert count(store) == 0
    res = decisions.append(store, [row(id=did), row(id=did, subject="u2"), row()],
                           on_conflict="report")
    assert (res.inserted, res.duplicates, res.conflicts) == (2, 0, {did: ["subject"]})


def test_the_recorder_keeps_the_first_content_and_logs_the_conflict(ledger, caplog):
    did = uuid7()
    ledger.record(id=did, subject="first")
    ledger.flush()
    with caplog.at_level(logging.ERROR, logger="modelward.recorder"):
        ledger.record(id=did, subject="second")
        ledger.record(subject="after")
        ledger.flush()  # the conflict never blocks the queue
    assert count(ledger.store) == 2
    with ledger.store.read() as conn:
        assert decisions.get(conn, did).subject == "first"
    assert any(did in r.getMessage() and "different content" in r.getMessage()
               for r in caplog.records)


def test_the_api_answers_409_naming_the_ids(api):
    model = apiclient.seed_model(api.store)
    batch = [{"id": uuid7(), "subject": f"u{i}", "model_digest": model} for i in range(3)]
    assert api.post("/api/v1/decisions", json=batch).json()["inserted"] == 3
    assert api.post("/api/v1/decisions", json=batch).json() == {
        "inserted": 0, "duplicates": 3, "block": None}
    changed = [dict(batch[0], subject="someone else"), batch[1],
               {"id": uuid7(), "subject": "new", "model_digest": model}]
    err = error(api.post("/api/v1/decisions", json=changed), 409)
    assert err["code"] == "id_conflict" and err["ids"] == [batch[0]["id"]]
    assert err["fields"] == {batch[0]["id"]: ["subject"]}
    assert batch[0]["id"] in err["message"]
    with api.store.read() as conn:
        assert decisions.count(conn) == 3  # nothing of the refused batch


def test_content_ids_are_deterministic_uuids():
    a = content_id(b'{"subject":"u1"}')
    assert a == content_id(b'{"subject":"u1"}') != content_id(b'{"subject":"u2"}')
    assert is_uuid(a) and a[14] == "8" and a[19] in "89ab"


def test_import_without_ids_twice_never_duplicates(cli, tmp_path):
    led, run = cli
    lines = [{"subject": f"u{i}", "at": f"2026-01-0{i + 1}T00:00:00Z", "input_text": f"q{i}"}
             for i in range(3)] + [{"subject": "no time", "output_text": "a"}]
    (tmp_path / "backfill.jsonl").write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    first = run("decisions", "import", "backfill.jsonl")
    assert (first.returncode, first.stdout) == (0, "imported 4 decisions\n"), first.stderr
    second = run("decisions", "import", "backfill.jsonl")
    assert (second.returncode, second.stdout) == (
        0, "imported 0 decisions (4 already recorded)\n"), second.stderr
    assert count(led.store) == 4
    # the same line twice in one file cannot be told apart: refused, not collapsed
    (tmp_path / "twice.jsonl").write_bytes(orjson.dumps(lines[0]) + b"\n"
                                           + orjson.dumps(lines[0]) + b"\n")
    twice = run("decisions", "import", "twice.jsonl")
    assert twice.returncode == 2
    assert "line 2: id: repeats line 1 exactly" in twice.stderr


def test_import_of_a_recorded_id_with_other_content_exits_1_naming_it(cli, tmp_path):
    led, run = cli
    did = led.record(subject="original")
    led.flush()
    new = uuid7()
    (tmp_path / "clash.jsonl").write_bytes(
        orjson.dumps({"id": new, "subject": "fresh"}) + b"\n"
        + orjson.dumps({"id": did, "subject": "rewritten"}) + b"\n")
    proc = run("decisions", "import", "clash.jsonl")
    assert (proc.returncode, proc.stdout) == (1, ""), proc.stderr
    assert proc.stderr == (f"error: 1 decision id(s) already recorded with different content: "
                           f"{did} (subject); nothing was written\n"
                           "hint: a recorded decision never changes: give a different decision "
                           "a new id\n")
    proc = run("decisions", "import", "clash.jsonl", "--json")
    assert proc.returncode == 1
    assert orjson.loads(proc.stdout)["error"]["ids"] == [did]
    assert count(led.store) == 1
