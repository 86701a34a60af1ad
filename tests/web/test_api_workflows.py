"""The workflow routes on every backend: promotions (request, refuse, approve by the
token's holder), eval runs (an open recorded via the API), experiments, fingerprints,
people and owners, and token management."""

from __future__ import annotations

import pytest

from modelward.ids import uuid7
from modelward.ledger import aliases, promotions
from modelward.ledger import tokens as ledger_tokens
from modelward.timefmt import now_us

from ..registry.promotion_world import BOB, CAROL, HOUR, eval_run, world
from ..retrieval.test_fingerprint_runs import hosted_embedder, run
from ..rollout.world import T0, create, expose
from . import apiclient
from .apiclient import error, old_token_without_email

api = apiclient.api  # the fixture


@pytest.fixture
def team(api):
    """The promotion world (alice owns chat/v1; bob and carol review) with fresh evidence
    for chat@v4 and tokens held by alice (writer), bob and carol (approvers)."""
    w = world(api.store)
    w.fresh = eval_run(api.store, evalset=w.qa, model=w.v4, prompt=w.prompt,
                       finished_at=now_us() - HOUR)
    with api.store.write() as conn:
        for role, name, email in (("writer", "alice", "alice@example.com"),
                                  ("approver", "bob", BOB), ("approver", "carol", CAROL),
                                  ("reader", "bob-reads", BOB)):
            api.secrets[name if role != "reader" else "bob-reads"] = ledger_tokens.create(
                conn, role=role, name=name, email=email)[1]
    return w


def test_a_promotion_is_requested_refused_then_approved_by_the_token_holder(api, team):
    resp = api.post("/api/v1/promotions", role="alice",
                    json={"alias": team.alias, "digest": team.v4, "reason": "better"})
    assert resp.status_code == 200, resp.text
    req = resp.json()
    assert (req["requester"], req["status"], req["reason"]) == (
        "alice@example.com", "pending", "better")
    # a token with an e-mail cannot act as somebody else
    err = error(api.post("/api/v1/promotions", role="alice", json={
        "alias": team.alias, "digest": team.v4, "requester": BOB}), 403)
    assert err["message"] == "this token acts for alice@example.com; it cannot act as " \
        "'bob@example.com' (requester)"
    # a writer token without an e-mail (made before they were required) cannot act at all,
    # not even by naming the requester
    api.secrets["anon"] = old_token_without_email(api.store, "writer")
    for body in ({"alias": team.alias, "digest": team.v4},
                 {"alias": team.alias, "digest": team.v4, "requester": "alice@example.com"}):
        err = error(api.post("/api/v1/promotions", role="anon", json=body), 403)
        assert "carries no e-mail" in err["message"]
    assert [r["id"] for r in api.get("/api/v1/promotions",
                                     params={"status": "pending"}).json()] == [req["id"]]
    # carol never opened the evidence: refused, recorded, the alias stays
    refused = api.post(f"/api/v1/promotions/{req['id']}/approve", role="carol", json={})
    assert refused.status_code == 200 and refused.json()["outcome"] == "refused"
    assert "opened" in {g["gate"] for g in refused.json()["evaluation"]["failed_gates"]}
    with api.store.read() as conn:
        assert aliases.resolve_at(conn, team.alias).digest == team.v3
    # bob reads the run (records nothing), then opens it with an explicit POST (his reader
    # token carries his e-mail), then approves
    assert api.get(f"/api/v1/evals/{team.fresh}", role="bob-reads").json()["id"] == team.fresh
    with api.store.read() as conn:
        assert promotions.opens(conn, team.fresh) == []
    opened = api.post(f"/api/v1/evals/{team.fresh}/open", role="bob-reads").json()
    assert opened["opened_by"] == BOB and opened["token_id"]
    with api.store.read() as conn:
        assert [(e, via) for e, _at, via in promotions.opens(conn, team.fresh)] == [(BOB, "api")]
    preview = api.get(f"/api/v1/promotions/{req['id']}", params={"as": BOB}).json()
    assert preview["gates"]["passed"] is True and len(preview["reviews"]) == 1
    approved = api.post(f"/api/v1/promotions/{req['id']}/approve", role="bob", json={}).json()
    assert approved["outcome"] == "approved", approved
    assert (approved["alias_event"]["actor"], approved["alias_event"]["kind"]) == (BOB, "promote")
    # every record names the token that wrote it
    bob_token = approved["alias_event"]["token_id"]
    assert bob_token and approved["review"]["token_id"] == bob_token
    assert req["token_id"] and req["token_id"] != bob_token
    with api.store.read() as conn:
        assert aliases.resolve_at(conn, team.alias).digest == team.v4
    err = error(api.post(f"/api/v1/promotions/{req['id']}/approve", role="carol", json={}), 422)
    assert "already approved" in err["message"]
    assert error(api.post(f"/api/v1/promotions/{uuid7()}/approve", role="bob", json={}), 404)
    assert error(api.get("/api/v1/promotions", params={"status": "lost"}), 422)["field"] == (
        "status")


def test_eval_runs_are_listed_and_shown_and_only_an_explicit_post_records_an_open(api, team):
    runs = api.get("/api/v1/evals").json()
    assert [r["id"] for r in runs] == [team.fresh, team.run]
    shown = api.get(f"/api/v1/evals/{team.run}", params={"items": True}).json()
    assert shown["items"] == [] and "opened_by" not in shown
    # a GET never records, whoever it names
    api.get(f"/api/v1/evals/{team.run}", role="carol", params={"as": CAROL})
    with api.store.read() as conn:
        assert promotions.opens(conn, team.run) == []
    # the POST records the token holder; a token without an e-mail records nobody
    assert api.post(f"/api/v1/evals/{team.run}/open", role="carol").json()["opened_by"] == CAROL
    api.secrets["anon-reader"] = old_token_without_email(api.store, "reader")
    err = error(api.post(f"/api/v1/evals/{team.run}/open", role="anon-reader"), 403)
    assert "carries no e-mail" in err["message"]
    with api.store.read() as conn:
        assert [e for e, _at, _via in promotions.opens(conn, team.run)] == [CAROL]
    assert error(api.post("/api/v1/evals/nope/open", role="carol"), 404)["code"] == "not_found"
    assert error(api.get("/api/v1/evals/nope"), 404)["code"] == "not_found"
    assert error(api.get("/api/v1/evals", params={"kind": "vibes"}), 422)["field"] == "kind"


def test_people_and_the_owners_of_an_alias(api, team):
    people = {p["email"]: p["status"] for p in api.get("/api/v1/people").json()}
    assert people["dana@example.com"] == "left" and people[BOB] == "active"
    assert [p["email"] for p in api.get("/api/v1/people", params={"status": "left"}).json()
            ] == ["dana@example.com"]
    held = api.get(f"/api/v1/aliases/{team.alias}/owners").json()
    assert [o["email"] for o in held["reviewers"]] == [BOB, CAROL]
    moved = api.put(f"/api/v1/aliases/{team.alias}/owners", role="admin",
                    json={"reviewers": [CAROL]}).json()
    assert ([o["email"] for o in moved["owners"]], [r["email"] for r in moved["reviewers"]]
            ) == (["alice@example.com"], [CAROL])
    err = error(api.put(f"/api/v1/aliases/{team.alias}/owners", role="admin",
                        json={"owners": ["dana@example.com"]}), 422)
    assert (err["field"], err["message"]) == ("owner", "owner: dana@example.com left the team")


def test_experiments_are_listed_shown_and_checked(api):
    create(api.store, "canary", "s4lt")
    expose(api.store, "canary", [(str(i), "treatment" if i % 2 else "control")
                                 for i in range(400)])
    [listed] = api.get("/api/v1/experiments").json()
    assert listed["name"] == "canary"
    assert api.get("/api/v1/experiments/canary").json()["salt"] == "s4lt"
    check = api.get("/api/v1/experiments/canary/check").json()
    # arms recorded against the salt (and following the id): alarms, as `experiment check`
    # exits 1 on
    assert check["alarm"] is True and check["mismatched_subjects"] == 200
    assert check["sample_ratio"]["counts"] == {"control": 200, "treatment": 200}
    assert check["basis"] == "exposures" and check["subjects"] == 400
    regimes = api.get("/api/v1/experiments/canary/regimes").json()
    assert regimes["experiment"] == "canary" and regimes["exposures"] == 400
    assert error(api.get("/api/v1/experiments/nope/check"), 404)["code"] == "not_found"


def test_exposures_are_posted_all_or_nothing_and_a_resent_batch_never_duplicates(api):
    from modelward.ledger import chain

    from ..rollout.world import count_exposures

    create(api.store, "canary", "s4lt")
    batch = [{"subject": f"u-{i}", "arm": "control", "at": T0 + i, "metric": 0.5}
             for i in range(20)]
    with api.store.read() as conn:
        before = chain.last_block(conn)
    resp = api.post("/api/v1/experiments/canary/exposures", json=batch)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"recorded": 20, "duplicates": 0}
    with api.store.read() as conn:
        assert chain.last_block(conn) != before  # sealed in the chain
    again = api.post("/api/v1/experiments/canary/exposures", json={"exposures": batch})
    assert again.json() == {"recorded": 0, "duplicates": 20}
    assert count_exposures(api.store) == 20
    # one bad item rejects the batch: every bad item named by index, nothing written
    bad = [{"subject": "u-a", "arm": "blue"}, {"subject": "u-b", "arm": "control"},
           {"subject": "u-c", "arm": "control", "experiment": "other"},
           {"subject": "u-d", "arm": "control", "metric": "NaN"}]
    err = error(api.post("/api/v1/experiments/canary/exposures", json=bad), 422)
    assert [(p["index"], p["field"]) for p in err["problems"]] == [
        (0, "exposures[0].arm"), (2, "exposures[2].experiment"), (3, "exposures[3].metric")]
    assert err["message"] == ("exposures[0].arm: 'blue' is not an arm of canary (control, treatment) "
                              "(and 2 more bad items); nothing was written")
    assert count_exposures(api.store) == 20
    assert error(api.post("/api/v1/experiments/nope/exposures", json=batch), 404)[
        "code"] == "not_found"
    # a reader may not record
    assert error(api.post("/api/v1/experiments/canary/exposures", json=batch,
                          role="reader"), 403)["code"] == "forbidden"


def test_fingerprint_runs_and_the_latest_comparison(api):
    hosted_embedder(api.store)
    run(api.store, "hashing", T0)
    run(api.store, "rotated", T0 + HOUR)
    runs = api.get("/api/v1/fingerprints", params={"alias": "embed/search"}).json()
    assert [(r["verdict"], r["epoch"]) for r in runs] == [("baseline", 1), ("changed", 2)]
    assert len(api.get("/api/v1/fingerprints").json()) == 2
    assert len(api.get("/api/v1/fingerprints", params={"since": "2026-03-01T12:30:00Z"}
                       ).json()) == 1
    cmp = api.get("/api/v1/fingerprints/compare", params={"alias": "embed/search"}).json()
    assert cmp["comparison"]["verdict"] == "changed" and cmp["run"]["id"] == runs[1]["id"]
    err = error(api.get("/api/v1/fingerprints/compare", params={"alias": "embed/other"}), 404)
    assert err["message"] == "embed/other has no fingerprint runs"
    assert error(api.get("/api/v1/fingerprints/compare"), 422)["field"] == "alias"


def test_tokens_are_created_listed_and_revoked_by_an_admin(api):
    made = api.post("/api/v1/tokens", role="admin", json={"role": "reader", "name": "grafana"})
    assert made.status_code == 200
    secret, token_id = made.json()["token"], made.json()["id"]
    assert secret.startswith("mw_")
    assert api.client.get("/api/v1/aliases", headers={"Authorization": f"Bearer {secret}"}
                          ).status_code == 200
    listed = api.get("/api/v1/tokens", role="admin").json()
    assert "grafana" in {t["name"] for t in listed} and all("token" not in t for t in listed)
    assert api.delete(f"/api/v1/tokens/{token_id}").json() == {"revoked": token_id}
    assert api.client.get("/api/v1/aliases", headers={"Authorization": f"Bearer {secret}"}
                          ).status_code == 401
    assert error(api.delete(f"/api/v1/tokens/{token_id}"), 404)["code"] == "not_found"
    assert error(api.post("/api/v1/tokens", role="admin", json={"role": "god"}), 422)[
        "field"] == "role"
