"""The core API routes on every backend: decisions, feedback, artifacts, aliases, audit,
verify, findings; each bad input answered with the one error envelope naming the field."""

from __future__ import annotations

import pytest

from modelward.ids import uuid7
from modelward.ledger import chain, subject_keys
from modelward.ledger import decisions as ledger_decisions
from modelward.ledger import feedback as ledger_feedback

from . import apiclient
from .apiclient import digest, error, seed_model

api = apiclient.api  # the fixture

pytestmark = pytest.mark.usefixtures("api")


def decision(model: str, **kw) -> dict:
    return {"id": uuid7(), "alias": "chat/v1", "model_digest": model, "subject": "u-1",
            "input_digest": digest("in"), "output_digest": digest("out"),
            "segments": {"tier": "pro"}, "gate": {"threshold": 0.4, "candidates": 9,
                                                   "passed": 3}, **kw}


# --- decisions --------------------------------------------------------------------------
def test_a_batch_is_one_chain_block_and_a_resent_batch_never_duplicates(api):
    model = seed_model(api.store)
    with api.store.read() as conn:  # the registration is sealed in blocks of its own
        first = chain.last_block(conn)[0] + 1
    batch = [decision(model) for _ in range(5)]
    batch.append(decision(model, input_text="hello", input_digest=None))
    resp = api.post("/api/v1/decisions", json=batch)
    assert resp.status_code == 200 and resp.json() == {"inserted": 6, "duplicates": 0,
                                                       "block": first}
    again = api.post("/api/v1/decisions", json={"decisions": batch + [decision(model)]})
    assert again.json() == {"inserted": 1, "duplicates": 6, "block": first + 1}
    with api.store.read() as conn:
        assert ledger_decisions.count(conn) == 7 and chain.verify(conn).ok
        stored = ledger_decisions.get(conn, batch[0]["id"])
        assert ledger_decisions.payload(conn, batch[5]["id"]).input_text == "hello"
        keyed_in = subject_keys.chained_digest(conn, "u-1", digest("in"))
    assert (stored.block, stored.pos, stored.model_digest, stored.gate_passed) == (first, 0, model, 3)
    assert stored.process == "api:test-writer"  # an item naming no process: the token's name
    assert stored.input_digest == keyed_in != digest("in")  # keyed by the ledger


def test_a_bad_batch_names_every_bad_item_by_index_and_writes_nothing(api):
    model = seed_model(api.store)
    same = uuid7()
    batch = [decision(model), decision("chat/v1"), decision(model, at="yesterday"),
             decision(model, id=same), decision(model, id=same), decision(model, colour=1)]
    err = error(api.post("/api/v1/decisions", json=batch), 422)
    assert err["code"] == "validation_error" and err["field"] == "decisions[1].model_digest"
    assert err["message"].startswith("decisions[1].model_digest: not a sha256:<64 hex> digest: "
                                     "'chat/v1' (and 3 more bad items); nothing was written")
    assert [(p["index"], p["field"]) for p in err["problems"]] == [
        (1, "decisions[1].model_digest"), (2, "decisions[2].at"), (4, "decisions[4].id"),
        (5, "decisions[5].colour")]
    assert err["problems"][2]["message"] == "decisions[4].id: repeats the id of item 3"
    with api.store.read() as conn:
        assert ledger_decisions.count(conn) == 0


@pytest.mark.parametrize("body, field, message", [
    (b"", "decisions", "the body is empty; send a JSON array of decisions"),
    (b"{not json", "body", "the body is not valid JSON"),
    (b'{"decision": []}', "decisions",
     'expected a JSON array of decisions, or {"decisions": [...]}'),
    (b"[]", "decisions", "the batch holds no decisions"),
    (b"[1]", "decisions[0]", "a decision must be an object, got int; nothing was written"),
])
def test_a_body_that_is_not_a_batch_is_refused(api, body, field, message):
    err = error(api.post("/api/v1/decisions", content=body,
                         headers={"Content-Type": "application/json"}), 422)
    assert err["field"] == field and err["message"].startswith(f"{field}: {message}")


def test_decisions_are_read_back_one_by_one_and_searched(api):
    model = seed_model(api.store)
    batch = [decision(model, subject="u-1", at="2026-03-01T10:00:00Z"),
             decision(model, subject="u-1", at="2026-03-02T10:00:00Z"),
             decision(model, subject="u-2", at="2026-03-03T10:00:00Z")]
    assert api.post("/api/v1/decisions", json=batch).status_code == 200
    one = api.get(f"/api/v1/decisions/{batch[0]['id']}").json()
    assert (one["id"], one["at"], one["subject"], one["segments"], one["gate"]) == (
        batch[0]["id"], "2026-03-01T10:00:00Z", "u-1", {"tier": "pro"},
        {"threshold": 0.4, "candidates": 9, "passed": 3})
    found = api.get("/api/v1/decisions", params={"subject": "u-1"}).json()
    assert [d["id"] for d in found] == [batch[1]["id"], batch[0]["id"]]  # newest first
    window = api.get("/api/v1/decisions", params={"since": "2026-03-02T00:00:00Z",
                                                  "until": "2026-03-03T00:00:00Z"}).json()
    assert [d["id"] for d in window] == [batch[1]["id"]]
    assert len(api.get("/api/v1/decisions", params={"limit": 1}).json()) == 1
    err = error(api.get(f"/api/v1/decisions/{uuid7()}"), 404)
    assert err["code"] == "unknown_decision"
    err = error(api.get("/api/v1/decisions", params={"since": "last week"}), 422)
    assert err["field"] == "since"
    err = error(api.get("/api/v1/decisions", params={"limit": 0}), 422)
    assert err["field"] == "limit"


# --- feedback ---------------------------------------------------------------------------
def test_feedback_batches_are_all_or_nothing_and_name_the_unknown_decision(api):
    model = seed_model(api.store)
    d = decision(model)
    api.post("/api/v1/decisions", json=[d])
    good = {"id": uuid7(), "decision_id": d["id"], "rating": 1, "intent": "incorrect",
            "surface": "production", "author_kind": "customer"}
    unknown = {**good, "id": uuid7(), "decision_id": uuid7()}
    err = error(api.post("/api/v1/feedback", json=[good, unknown]), 422)
    assert err["field"] == "feedback[1].decision_id" and "nothing was written" in err["message"]
    err = error(api.post("/api/v1/feedback", json=[good, {**good, "id": uuid7(),
                                                         "surface": "moon"}]), 422)
    assert err["field"] == "feedback[1].surface"
    with api.store.read() as conn:
        assert ledger_feedback.list_feedback(conn) == []
    assert api.post("/api/v1/feedback", json={"feedback": [good]}).json() == {
        "inserted": 1, "duplicates": 0}
    assert api.post("/api/v1/feedback", json=[good]).json() == {"inserted": 0, "duplicates": 1}
    with api.store.read() as conn:
        [fb] = ledger_feedback.list_feedback(conn)
    assert (fb.decision_id, fb.intent, fb.rating) == (d["id"], "incorrect", 1.0)


# --- artifacts and aliases ----------------------------------------------------------------
def test_artifacts_are_registered_by_upload_or_hosted_id_listed_and_got(api):
    resp = api.post("/api/v1/artifacts", data={"kind": "prompt", "name": "support",
                                               "version": "38"},
                    files={"file": ("../../etc/support.txt", b"You are a support agent.")})
    assert resp.status_code == 200, resp.text
    prompt = resp.json()
    assert prompt["created"] is True and prompt["artifact"]["payload"] == "blob"
    assert prompt["artifact"]["meta"] == {"uploaded_as": "support.txt"}
    again = api.post("/api/v1/artifacts", data={"kind": "prompt", "name": "support"},
                     files={"file": ("p.txt", b"You are a support agent.")}).json()
    assert (again["digest"], again["created"]) == (prompt["digest"], False)
    hosted = api.post("/api/v1/artifacts", data={
        "kind": "model", "name": "gpt", "hosted": "openai:gpt-4o-2024-08-06",
        "retires": "2027-01-01T00:00:00Z", "parent": [prompt["digest"]]}).json()
    assert hosted["artifact"]["hosted_id"] == "openai:gpt-4o-2024-08-06"
    assert hosted["artifact"]["retires_at"] == "2027-01-01T00:00:00Z"
    assert hosted["artifact"]["parents"] == [{"digest": prompt["digest"], "relation": "parent"}]
    listed = api.get("/api/v1/artifacts").json()
    assert [a["digest"] for a in listed] == [prompt["digest"], hosted["digest"]]
    assert [a["digest"] for a in api.get("/api/v1/artifacts", params={"kind": "model"}).json()
            ] == [hosted["digest"]]
    got = api.get(f"/api/v1/artifacts/{prompt['digest']}", params={"verify": True}).json()
    assert (got["name"], got["version"], got["payload_status"]) == ("support", "38", "present")
    assert error(api.get(f"/api/v1/artifacts/{digest('x')}"), 404)["code"] == "unknown_artifact"
    assert error(api.get("/api/v1/artifacts", params={"kind": "wheel"}), 422)["field"] == "kind"
    err = error(api.post("/api/v1/artifacts", data={"kind": "model", "name": "m"}), 422)
    assert err["field"] == "file"
    err = error(api.post("/api/v1/artifacts", data={"kind": "model", "name": "m", "hosted": "x",
                                                    }, files={"file": ("m", b"w")}), 422)
    assert err["field"] == "file"
    err = error(api.post("/api/v1/artifacts", data={"kind": "model", "name": "m",
                                                    "hosted": "no-colon"}), 422)
    assert err["field"] == "hosted"
    assert error(api.post("/api/v1/artifacts", data={"name": "m"}), 422)["field"] == "kind"


def test_aliases_are_set_resolved_at_a_time_and_their_history_kept(api):
    one = seed_model(api.store, "other/v1", b"w1")
    two = seed_model(api.store, "other/v2", b"w2")
    resp = api.put("/api/v1/aliases/chat/v1", json={"digest": one, "reason": "launch"})
    assert resp.status_code == 200 and resp.json()["moved"] is True
    first = resp.json()["event"]
    assert first["actor"] == "writer@example.com"  # the token's e-mail, never the body's
    assert first["token_id"] and first["kind"] == "create"
    moved = api.put("/api/v1/aliases/chat/v1", role="writer-email", json={"digest": two}).json()
    assert moved["event"]["actor"] == "bob@example.com"
    assert moved["event"]["token_id"] != first["token_id"]
    assert api.get("/api/v1/aliases/chat/v1").json()["digest"] == two
    assert api.get("/api/v1/aliases/chat/v1", params={"at": first["at"]}).json()["digest"] == one
    history = api.get("/api/v1/aliases/chat/v1/history").json()
    assert [(e["digest"], e["previous_digest"]) for e in history] == [(one, None), (two, one)]
    assert {a["alias"]: a["digest"] for a in api.get("/api/v1/aliases").json()}["chat/v1"] == two
    assert error(api.get("/api/v1/aliases/nope/v1"), 404)["code"] == "unknown_alias"
    assert error(api.put("/api/v1/aliases/chat/v1", json={"digest": "v1"}), 422)["field"]
    assert error(api.put("/api/v1/aliases/chat/v1", json={}), 422)["field"] == "digest"
    assert error(api.get("/api/v1/aliases/chat/v1", params={"at": "then"}), 422)["field"] == "at"


# --- audit, verify, findings ------------------------------------------------------------
def test_audit_verify_and_chain_head_answer_as_the_cli_does(api):
    model = seed_model(api.store)
    d = decision(model)
    api.post("/api/v1/decisions", json=[d])
    with api.store.read() as conn:
        block = chain.last_block(conn)[0]  # after the blocks sealing the registration
    report = api.get(f"/api/v1/audit/{d['id']}").json()
    assert report["decision"]["id"] == d["id"] and report["problems"] == []
    assert report["chain"]["verifies"] is True
    assert error(api.get("/api/v1/audit/not-an-id"), 422)["field"] == "decision_id"
    assert error(api.get(f"/api/v1/audit/{uuid7()}"), 404)["code"] == "unknown_decision"
    verify = api.get("/api/v1/verify").json()
    assert (verify["ok"], verify["blocks"], verify["decisions"]) == (True, block, 1)
    head = api.get("/api/v1/chain/head").json()
    assert (head["root"], head["blocks"]) == (verify["head_root"], block)
    with api.store.write() as conn:  # tamper with the record
        conn.exec_driver_sql("UPDATE decisions SET subject = 'someone-else'")
    broken = api.get("/api/v1/verify").json()
    assert (broken["ok"], broken["first_broken_block"]) == (False, block)
    assert api.get("/api/v1/verify", params={"full": True}).json()["full"] is True
    assert error(api.get("/api/v1/verify", params={"full": "banana"}), 422)["field"] == "full"


def test_verify_starts_from_the_newest_signed_checkpoint(api, monkeypatch):
    from modelward.ledger import checkpoints, heads

    monkeypatch.setenv("MODELWARD_SIGNING_KEY", "k3y")  # the server's key
    model = seed_model(api.store)
    api.post("/api/v1/decisions", json=[decision(model)])
    keys = heads.keys_from(api.store.settings)
    with api.store.read() as conn:
        report = checkpoints.verify(conn, keys)
    with api.store.write() as conn:
        cp = checkpoints.store(conn, report, keys)
    api.post("/api/v1/decisions", json=[decision(model)])
    got = api.get("/api/v1/verify").json()
    assert got["ok"] and not got["full"] and got["from_checkpoint"]["number"] == cp.number
    assert (got["blocks"], got["decisions"]) == (1, 1)
    full = api.get("/api/v1/verify", params={"full": "true"}).json()
    assert full["ok"] and full["full"] and full["decisions"] == 2


def test_findings_run_the_guards_with_select_and_ignore(api):
    model = seed_model(api.store)
    api.post("/api/v1/decisions", json=[decision(model, model_digest=digest("unknown"))])
    report = api.get("/api/v1/findings", params={"select": "MW101"}).json()
    assert report["guards_run"] == ["MW101"] and report["exit_code"] == 1
    assert {f["code"] for f in report["findings"]} == {"MW101"}
    clean = api.get("/api/v1/findings", params={"select": "MW1", "ignore": "MW101"}).json()
    assert "MW101" not in clean["guards_run"] and "MW103" in clean["guards_run"]
    assert api.get("/api/v1/findings", params={"select": "MW101", "since": "1d"}).json()[
        "since"] is not None
    assert error(api.get("/api/v1/findings", params={"fail_on": "fatal"}), 422)["field"] == (
        "fail_on")
    assert error(api.get("/api/v1/findings", params={"since": "soon"}), 422)["field"] == "since"
    assert error(api.get("/api/v1/findings", params={"select": "XX9"}), 400)["code"] == (
        "config_error")


# --- auth and the envelope ----------------------------------------------------------------
def test_missing_unknown_and_underpowered_tokens_get_the_envelope(api):
    err = error(api.client.get("/api/v1/aliases"), 401)
    assert err == {"code": "unauthorized", "message": "a Bearer token is required"}
    err = error(api.client.get("/api/v1/aliases", headers={"Authorization": "Bearer mw_nope"}),
                401)
    assert err["message"] == "the token is unknown, revoked or expired"
    assert error(api.client.get("/api/v1/aliases", headers={"Authorization": "Basic x"}), 401)
    err = error(api.post("/api/v1/decisions", role="reader", json=[]), 403)
    assert err == {"code": "forbidden", "message": "role 'reader' may not do this; needs one "
                   "of admin, writer"}
    assert error(api.get("/api/v1/no-such-route"), 404)["code"] == "not_found"
    err = error(api.get("/api/v1/decisions", params={"subject": "a\x00b"}), 422)
    assert (err["field"], err["message"]) == ("subject", "subject: holds a NUL byte")
    assert api.client.get("/healthz").json()["ok"] is True


def test_a_nul_byte_anywhere_in_a_request_is_a_422_naming_the_field(api):
    """PostgreSQL cannot store one: without the check these were 503 storage errors."""
    model = seed_model(api.store)
    err = error(api.put("/api/v1/aliases/chat/v1", json={"digest": model, "reason": "a\x00"}),
                422)
    assert (err["field"], err["message"]) == ("reason", "reason: Value error, holds a NUL byte")
    assert error(api.post("/api/v1/tokens", role="admin", json={"role": "reader",
                                                                 "name": "a\x00"}), 422)[
        "field"] == "name"
    assert error(api.post("/api/v1/artifacts", data={"kind": "model", "name": "m\x00",
                                                     "hosted": "a:b"}), 422)["field"] == "name"
    assert error(api.post("/api/v1/decisions", json=[{"subject": "a\x00"}]), 422)[
        "field"] == "decisions[0].subject"
    assert error(api.get("/api/v1/aliases/chat%00/v1"), 422)["field"] == "alias"


def test_an_upload_streams_with_any_filename_and_fields_after_the_file(api):
    # the file goes straight to the blob store: no temporary path is built from its name
    long_name = "w" * 400 + ".bin"
    resp = api.post("/api/v1/artifacts", data={"kind": "model", "name": "long"},
                    files={"file": (long_name, b"weights-long")})
    assert resp.status_code == 200, resp.text
    assert resp.json()["artifact"]["meta"]["uploaded_as"] == long_name
    body = (b"--b\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nmodel\r\n"
            b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\n\r\n"
            b"after\r\n--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nlate\r\n--b--\r\n")
    resp = api.post("/api/v1/artifacts", content=body,
                    headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert resp.status_code == 200 and resp.json()["artifact"]["name"] == "late"
    # kind decides how the file is digested, so it comes first
    late_kind = body.replace(b"name=\"kind\"", b"name=\"version\"")
    err = error(api.post("/api/v1/artifacts", content=late_kind,
                         headers={"Content-Type": "multipart/form-data; boundary=b"}), 422)
    assert err["field"] == "kind" and "before the file" in err["message"]
    err = error(api.post("/api/v1/artifacts", content=b"x",
                         headers={"Content-Type": "text/plain"}), 422)
    assert err["field"] == "file"
