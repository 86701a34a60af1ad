"""`modelward people`, `alias owners`, `evalset deprecate`, `eval show --as` and
`modelward promote` on SQLite (file) and PostgreSQL: exact output and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
from typer.testing import CliRunner

from modelward.cli.app import app
from modelward.ledger import aliases, promotions
from modelward.timefmt import iso, now_us

from .promotion_world import ALICE, BOB, CAROL, DAY, HOUR, MIN, T0, eval_run, opens, put, world

runner = CliRunner()


def short(digest: str) -> str:
    return digest[:19] + "…"


def mw(args, *more, code=0, env=None):
    result = runner.invoke(app, [*args, *more], catch_exceptions=False, env=env)
    assert result.exit_code == code, result.output
    return result


def mw_process(tmp_path, args, *more):
    """Through the console-script entry point: errors become one red line and exit 2."""
    return subprocess.run([sys.executable, "-c", "from modelward.cli.app import main; main()",
                           *args, *more], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)


def test_people_sync_and_list(cli_env, tmp_path):
    _led, args = cli_env
    (tmp_path / "team.csv").write_text("email,name,status,team\nalice@example.com,Alice,active,"
                                       "ml\nBob@Example.com,Bob,active,\n"
                                       "dana@example.com,Dana,left,ml\n")
    assert mw(args, "people", "sync", str(tmp_path / "team.csv")).stdout == f"""\
{tmp_path / "team.csv"}: 3 added, 0 updated, 0 unchanged
  + alice@example.com
  + bob@example.com
  + dana@example.com
"""
    (tmp_path / "next.csv").write_text("email,status,team\nalice@example.com,left,ml\n"
                                       "carol@example.com,active,eval\n")
    out = mw(args, "people", "sync", str(tmp_path / "next.csv"), "--prune").stdout
    assert out == f"""\
{tmp_path / "next.csv"}: 1 added, 1 updated, 0 unchanged, 1 marked left
  + carol@example.com
  ~ alice@example.com: status active -> left
  - bob@example.com: not in the file, marked left
"""
    assert mw(args, "people", "list").stdout == """\
alice@example.com  left    ml    Alice
bob@example.com    left    -     Bob
carol@example.com  active  eval  -
dana@example.com   left    ml    Dana
"""
    assert orjson.loads(mw(args, "people", "list", "--status", "active", "--json").stdout) == [
        {"email": CAROL, "name": None, "status": "active", "team": "eval",
         "updated_at": orjson.loads(mw(args, "people", "list", "--json").stdout)[2][
             "updated_at"]}]
    (tmp_path / "bad.csv").write_text("email,status\nerin@example.com,active\nfrank,active\n"
                                      "gina@example.com,away\n")
    bad = mw_process(tmp_path, args, "people", "sync", "bad.csv")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == ("  line 4: status: status must be active or left, got 'away'\n"
                          "error: bad.csv: line 3: email: not an e-mail address: 'frank' (and 1 "
                          "more bad lines); nothing was written\n"
                          "hint: fix the lines named and sync the file again\n")
    assert "erin" not in mw(args, "people", "list").stdout  # nothing half-written


def test_alias_owners_sets_and_prints_the_roster_of_record(cli_env, tmp_path):
    led, args = cli_env
    w = world(led.store)
    assert mw(args, "alias", "owners", "chat/v2").stdout == (
        "chat/v2 has no owners or reviewers of record\n")
    assert mw(args, "alias", "owners", "chat/v1", "--reviewer", "carol@example.com",
              "--reviewer", "Bob@example.com").stdout == """\
chat/v1
  owner     alice@example.com  active
  reviewer  bob@example.com    active
  reviewer  carol@example.com  active
"""
    data = orjson.loads(mw(args, "alias", "owners", w.alias, "--json").stdout)
    assert [(p["email"], p["standing"]) for p in data["owners"] + data["reviewers"]] == [
        (ALICE, "active"), (BOB, "active"), (CAROL, "active")]
    left = mw_process(tmp_path, args, "alias", "owners", "chat/v1", "--owner",
                      "dana@example.com")
    assert (left.returncode, left.stderr) == (2, "error: owner: dana@example.com left the team\n"
                                                 "hint: name active people (`modelward people "
                                                 "list`)\n")


def test_evalset_deprecate(cli_env, tmp_path):
    led, args = cli_env
    w = world(led.store)
    assert mw(args, "evalset", "deprecate", w.qa, "--reason", "leaked into training", "--as",
              "carol@example.com").stdout == (
        f"deprecated eval set qa@1 ({w.qa}): leaked into training\n")
    with led.store.read() as conn:
        dep = promotions.deprecations(conn)[w.qa]
    assert (dep.actor, dep.reason) == (CAROL, "leaked into training")
    assert mw(args, "evalset", "deprecate", w.qa, "--reason", "again").stdout == (
        f"eval set qa@1 ({w.qa}) was already deprecated at {iso(dep.at)} by "
        f"{CAROL}: leaked into training\n")
    wrong = mw_process(tmp_path, args, "evalset", "deprecate", w.v4, "--reason", "x")
    assert (wrong.returncode, wrong.stderr) == (
        2, f"error: DIGEST: {w.v4} is a model, not an evalset\n")


def test_eval_show_as_records_the_open(cli_env, tmp_path):
    led, args = cli_env
    w = world(led.store)
    plain = mw(args, "eval", "show", w.run).stdout
    shown = mw(args, "eval", "show", w.run, "--as", "Bob@Example.com")
    assert shown.stdout == plain  # the same page; the open is noted on stderr
    assert shown.stderr == f"recorded that {BOB} opened eval run {w.run}\n"
    with led.store.read() as conn:
        [(email, at, via)] = promotions.opens(conn, w.run)
    assert (email, via) == (BOB, "cli") and abs(now_us() - at) < 60_000_000
    bad = mw_process(tmp_path, args, "eval", "show", w.run, "--as", "bob")
    assert (bad.returncode, bad.stderr) == (2, "error: --as: not an e-mail address: 'bob'\n"
                                               "hint: write e.g. alice@example.com\n")


def test_promote_request_refuse_approve_list_and_show(cli_env, tmp_path):
    led, args = cli_env
    store = led.store
    w = world(store)  # its evidence run finished a day before T0: long stale by now
    out = mw(args, "promote", "request", "chat/v1", w.v4, "--as", ALICE, "--reason",
             "better refusals").stdout
    rid = out.split()[1]
    with store.read() as conn:
        req = promotions.get_request(conn, rid)
    v4 = f"model chat@v4 ({short(w.v4)})"
    assert out == f"""\
request    {rid}
promote    chat/v1 -> {v4}
requested  {iso(req.requested_at)} by {ALICE}
reason     better refusals
evidence   the latest completed task eval run on this digest, when approved
approve with `modelward promote approve {rid} --as REVIEWER`
"""
    refused = mw(args, "promote", "approve", rid, "--as", BOB, code=1).stdout
    with store.read() as conn:
        [first] = promotions.reviews(conn, request_ids=[rid])
    assert refused == f"""\
refused: {BOB} cannot approve chat/v1 -> {v4} (request {rid}); 2 gates failed:
  opened     {BOB} has not opened the evidence, eval run {w.run}: `modelward eval show {w.run} --as {BOB}`
  fresh      eval run {w.run} finished {iso(T0 - DAY)}, older than evidence_max_age (30d)
recorded as review {first.id}; fix the gates, or approve despite them with --override --reason TEXT
"""
    fresh = eval_run(store, evalset=w.qa, model=w.v4, prompt=w.prompt,
                     finished_at=now_us() - HOUR)
    opens(store, fresh, BOB, now_us() - 20 * MIN)
    approved = mw(args, "promote", "approve", rid, "--as", BOB).stdout
    with store.read() as conn:
        event = aliases.latest_event(conn, "chat/v1")
        second = promotions.reviews(conn, request_ids=[rid])[1]
        [(_email, opened_at, _via)] = promotions.opens(conn, fresh)
    assert approved == f"""\
approved: chat/v1 -> {v4} (request {rid}) by {BOB}
evidence   eval run {fresh}, opened {iso(opened_at)}
alias      chat/v1 moved (alias event {event.id}, kind promote)
"""
    assert (event.digest, event.evidence["evidence_run_id"]) == (w.v4, fresh)
    assert mw(args, "promote", "list").stdout == (
        f"{rid}  approved    {iso(req.requested_at)}  chat/v1 -> {short(w.v4)}  by {ALICE}\n")
    assert mw(args, "promote", "show", rid).stdout == f"""\
request    {rid}
promote    chat/v1 -> {v4}
status     approved
requested  {iso(req.requested_at)} by {ALICE}
reason     better refusals
evidence   eval run {fresh} (the latest completed task eval run on this digest when approved)
reviews
  {iso(first.at)}  refused     {BOB}  failed: opened, fresh
  {iso(second.at)}  approved    {BOB}  alias event {event.id}
"""
    assert mw(args, "promote", "list", "--status", "pending").stdout == (
        "no promotion requests are pending\n")


def test_promote_override_and_show_with_a_gate_preview(cli_env, tmp_path):
    led, args = cli_env
    store = led.store
    world(store)
    v5 = put(store, "model", b"weights-v5", "chat", "v5")
    rid = orjson.loads(mw(args, "promote", "request", "chat/v1", v5, "--as", ALICE,
                          "--json").stdout)["id"]
    no_evidence = (f"no completed task eval run scored model chat@v5 ({short(v5)}); run one "
                   "with `modelward eval run`")
    env = {"MODELWARD_MIN_REVIEW_TIME": "0s"}  # the timing of this test is not a review
    preview = mw(args, "promote", "show", rid, "--as", CAROL, env=env).stdout
    assert preview.endswith(f"""\
evidence   the latest completed task eval run on this digest, when approved (now none)
reviews    none
gates for {CAROL} now: 1 failed
  evidence   {no_evidence}
""")
    missing = mw_process(tmp_path, args, "promote", "approve", rid, "--as", CAROL, "--override")
    assert (missing.returncode, missing.stderr) == (
        2, "error: --reason: an override needs a reason\n"
           "hint: --override --reason 'why the gates may be skipped'\n")
    out = mw(args, "promote", "approve", rid, "--as", CAROL, "--override", "--reason",
             "hotfix for the outage").stdout
    with store.read() as conn:
        event = aliases.latest_event(conn, "chat/v1")
        [review] = promotions.reviews(conn, request_ids=[rid])
    assert out == f"""\
approved with an override: chat/v1 -> model chat@v5 ({short(v5)}) (request {rid}) by {CAROL}
overridden
  evidence   {no_evidence}
reason     hotfix for the outage
alias      chat/v1 moved (alias event {event.id}, kind promote)
"""
    shown = mw(args, "promote", "show", rid, env=env).stdout
    assert shown.endswith(f"""\
evidence   none
reviews
  {iso(review.at)}  overridden  {CAROL}  failed: evidence  reason: hotfix for the outage  alias event {event.id}
rubber stamp (MW203)
  approved without opening the evidence (there was none)
  approved with an override of the gates evidence: hotfix for the outage
""")
    data = orjson.loads(mw(args, "promote", "show", rid, "--json", env=env).stdout)
    assert [p["problem"] for p in data["rubber_stamp"]] == ["not-opened", "override"]
    again = mw_process(tmp_path, args, "promote", "approve", rid, "--as", BOB)
    assert (again.returncode, again.stderr) == (
        2, f"error: REQUEST_ID: request {rid} is already overridden\n")
    unknown = mw_process(tmp_path, args, "promote", "show", "nope")
    assert unknown.returncode == 2 and unknown.stderr.startswith(
        "error: REQUEST_ID: not a request id: 'nope'\n")


def test_promote_show_json_is_the_api_detail(cli_env, tmp_path):
    """`promote show --json` and GET /api/v1/promotions/{id} render one detail function:
    the same keys and values (the CLI's JSON lacked default_evidence_run_id)."""
    from fastapi.testclient import TestClient

    from modelward.ledger import tokens
    from modelward.web.app import create_app

    led, args = cli_env
    store = led.store
    w = world(store)
    rid = orjson.loads(mw(args, "promote", "request", "chat/v1", w.v4, "--as", ALICE,
                          "--reason", "better refusals", "--json").stdout)["id"]
    with store.write() as conn:
        _tok, secret = tokens.create(conn, role="reader", name="reader")
    client = TestClient(create_app(store.settings, store=store))
    auth = {"Authorization": f"Bearer {secret}"}
    for more, params in (((), {}), (("--as", CAROL), {"as": CAROL})):
        shown = orjson.loads(mw(args, "promote", "show", rid, *more, "--json").stdout)
        api = client.get(f"/api/v1/promotions/{rid}", params=params, headers=auth).json()
        for body in (shown, api):  # judged a moment apart
            if body["gates"]:
                body["gates"].pop("at")
        assert shown == api
        assert shown["default_evidence_run_id"] == w.run
        assert set(shown) >= {"id", "alias", "digest", "reviews", "rubber_stamp", "gates"}
    assert [g["gate"] for g in shown["gates"]["failed_gates"]] == ["opened", "fresh"]
