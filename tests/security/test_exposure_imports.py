"""Hostile exposure imports: malformed lines, oversize fields and bodies, a replayed file,
non-finite metrics. The CLI (`modelward experiment expose --file`) refuses the whole file
with its name and every bad line, exit 2, nothing written; the API
(`POST /api/v1/experiments/{name}/exposures`) answers the one JSON error shape, nothing
written; a replayed file or batch never duplicates (SQLite file and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from modelward.ledger import chain
from modelward.settings import Settings
from modelward.web.app import create_app

from ..rollout.world import T0, count_exposures, create
from ..web.apiclient import make_tokens

KIB = 1024


@pytest.fixture
def cli(cli):
    """The security suite's ``cli`` with the experiment the exposures name."""
    led, run = cli
    create(led.store, "canary", "s4lt")
    return led, run


def _line(**kw) -> str:
    return json.dumps({"experiment": "canary", "subject": "u-1", "arm": "control",
                       "at": T0, **kw})


MALFORMED = [
    # (what, file name, text, the first error line of stderr)
    ("cut-off JSON", "cut.jsonl", _line() + "\n" + _line(subject="u-2")[:30] + "\n",
     "error: cut.jsonl: line 2: not valid JSON"),
    ("a NaN literal", "nan.jsonl", _line() + "\n" + _line(subject="u-2").replace(
        '"at"', '"metric": NaN, "at"') + "\n", "error: nan.jsonl: line 2: not valid JSON"),
    ("Infinity in CSV", "inf.csv", "experiment,subject,arm,metric\ncanary,u-1,control,1\n"
     "canary,u-2,control,inf\n", "error: inf.csv: line 3: metric: expected a finite number"),
    ("nan in CSV", "nan.csv", "experiment,subject,arm,metric\ncanary,u-1,control,nan\n",
     "error: nan.csv: line 2: metric: expected a finite number"),
    ("an unknown arm", "arm.jsonl", _line() + "\n" + _line(subject="u-2", arm="blue") + "\n",
     "error: arm.jsonl: line 2: arm: 'blue' is not an arm of canary"),
    ("an unknown experiment", "exp.jsonl", _line(experiment="nope") + "\n",
     "error: exp.jsonl: line 1: experiment: no experiment 'nope' in the ledger"),
    ("an oversize subject", "big.jsonl", _line(subject="x" * 100_000) + "\n",
     "error: big.jsonl: line 1: subject: longer than 300 characters"),
    ("a stray quote in CSV", "quote.csv", 'experiment,subject,arm\ncanary,"u-1,control\n'
     "canary,u-2,control\n", "error: quote.csv, line 2: a quoted cell opened here is never"),
    ("a line that is not an object", "list.jsonl", "[1, 2]\n",
     "error: list.jsonl: line 1: an exposure must be an object, got list"),
    ("an unknown field", "field.jsonl", _line(actor="mallory") + "\n",
     "error: field.jsonl: line 1: actor: unknown field(s): actor"),
]


@pytest.mark.parametrize("what, name, text, message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_bad_line_rejects_the_file_naming_file_and_line(cli, tmp_path, what, name, text,
                                                          message):
    led, run = cli
    (tmp_path / name).write_text(text)
    proc = run("experiment", "expose", "--file", name)
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
    assert proc.stderr.startswith(message), proc.stderr
    assert count_exposures(led.store) == 0


def test_every_bad_line_is_named_and_json_errors_keep_one_shape(cli, tmp_path):
    led, run = cli
    (tmp_path / "bad.jsonl").write_text("\n".join([
        _line(), _line(subject="u-2", arm="blue"), "{", _line(subject="u-3", metric=1e400),
        _line()]) + "\n")
    proc = run("experiment", "expose", "--file", "bad.jsonl", "--json")
    assert proc.returncode == 2
    err = json.loads(proc.stdout)["error"]
    assert err["code"] == "validation_error"
    assert [p["line"] for p in err["problems"]] == [2, 3, 4, 5]
    assert err["problems"][3]["message"] == ("bad.jsonl: line 5: id: repeats line 1 exactly "
                                             "(an exposure without an id is identified by its "
                                             "content)")
    assert "nothing was written" in err["message"]
    assert count_exposures(led.store) == 0


def test_a_replayed_file_never_duplicates(cli, tmp_path):
    led, run = cli
    lines = [_line(subject=f"u-{i}", at=T0 + i, metric=i / 10) for i in range(50)]
    (tmp_path / "day.jsonl").write_text("\n".join(lines) + "\n")
    first = run("experiment", "expose", "--file", "day.jsonl")
    assert (first.returncode, first.stdout.strip()) == (
        0, "recorded 50 exposures from day.jsonl")
    with led.store.read() as conn:
        block = chain.last_block(conn)
    for _ in range(2):
        again = run("experiment", "expose", "--file", "day.jsonl")
        assert (again.returncode, again.stdout.strip()) == (
            0, "recorded 0 exposures from day.jsonl (50 already recorded)")
    # the same exposures as CSV are the same content: nothing new either
    (tmp_path / "day.csv").write_text("experiment,subject,arm,at,metric\n" + "".join(
        f"canary,u-{i},control,{T0 + i},{i / 10}\n" for i in range(50)))
    csv = run("experiment", "expose", "--file", "day.csv", "--json")
    assert json.loads(csv.stdout) == {"ok": True, "recorded": 0, "duplicates": 50}
    assert count_exposures(led.store) == 50
    with led.store.read() as conn:
        assert chain.last_block(conn) == block  # a replay seals nothing
        assert chain.verify(conn).ok


def test_a_replayed_id_with_other_content_is_a_conflict(cli, tmp_path):
    led, run = cli
    ids = ["0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f7" + str(i) for i in range(3)]
    lines = [_line(id=ids[i], subject=f"u-{i}", metric=0.0) for i in range(3)]
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    assert run("experiment", "expose", "--file", "a.jsonl").returncode == 0
    # the same ids, one with its arm and metric rewritten, one new line: nothing written
    forged = [*lines[:2], _line(id=ids[2], subject="u-2", arm="treatment", metric=1.0),
              _line(subject="u-9")]
    (tmp_path / "b.jsonl").write_text("\n".join(forged) + "\n")
    proc = run("experiment", "expose", "--file", "b.jsonl")
    assert (proc.returncode, proc.stdout) == (1, ""), proc.stderr
    assert proc.stderr.startswith(f"error: b.jsonl: 1 exposure id(s) already recorded with "
                                  f"different content: {ids[2]} (arm, metric); nothing was "
                                  "written"), proc.stderr
    assert count_exposures(led.store) == 3


@pytest.fixture
def small(ledger, tmp_path):
    """An app whose batch-body limit is 64 KiB."""
    create(ledger.store, "canary", "s4lt")
    settings = Settings({"home": str(tmp_path / "home"), "max_batch_body": 64 * KIB})
    with TestClient(create_app(settings, store=ledger.store)) as client:
        yield client, {"Authorization": f"Bearer {make_tokens(ledger.store)['writer']}",
                       "Content-Type": "application/json"}


@pytest.mark.parametrize("backend_url", ["sqlite://"])
def test_hostile_api_bodies_get_one_error_shape_and_write_nothing(ledger, small):
    client, headers = small
    url = "/api/v1/experiments/canary/exposures"
    item = {"subject": "u-1", "arm": "control", "at": T0}
    cases = {
        "oversize": (json.dumps([{**item, "subject": f"u-{i}", "extra": {"pad": "x" * 100}}
                                 for i in range(1000)]).encode(), 413, "payload_too_large"),
        "NaN literal": (b'[{"subject": "u-1", "arm": "control", "metric": NaN}]', 422,
                        "validation_error"),
        "huge number": (b'[{"subject": "u-1", "arm": "control", "metric": 1e400}]', 422,
                        "validation_error"),
        "not JSON": (b"[{", 422, "validation_error"),
        "an object": (b'{"subject": "u-1"}', 422, "validation_error"),
        "empty": (b"[]", 422, "validation_error"),
        "NUL": (json.dumps([{**item, "subject": "u\x001"}]).encode(), 422, "validation_error"),
        "another experiment": (json.dumps([{**item, "experiment": "other"}]).encode(), 422,
                               "validation_error"),
    }
    for what, (body, status, code) in cases.items():
        resp = client.post(url, content=body, headers=headers)
        assert resp.status_code == status, (what, resp.text)
        err = resp.json()["error"]
        assert err["code"] == code and err["message"], (what, err)
        if status == 413:
            assert "max_batch_body" in err["message"]
    assert count_exposures(ledger.store) == 0
    # the replayed batch: recorded once
    body = json.dumps([{**item, "subject": f"u-{i}"} for i in range(10)])
    assert client.post(url, content=body, headers=headers).json() == {
        "recorded": 10, "duplicates": 0}
    assert client.post(url, content=body, headers=headers).json() == {
        "recorded": 0, "duplicates": 10}
    assert count_exposures(ledger.store) == 10
    first = client.post(url, content=json.dumps([{**item, "id": "0190f5c2-7e1d-7c3a-9b1e-"
                                                  "3f2a4d5e6f70"}]), headers=headers)
    assert first.json() == {"recorded": 1, "duplicates": 0}
    resp = client.post(url, content=json.dumps([{**item, "subject": "u-2", "id": "0190f5c2-"
                                                 "7e1d-7c3a-9b1e-3f2a4d5e6f70"}]),
                       headers=headers)
    err = resp.json()["error"]
    assert resp.status_code == 409 and err["code"] == "id_conflict"
    assert err["fields"] == {"0190f5c2-7e1d-7c3a-9b1e-3f2a4d5e6f70": ["subject"]}
    assert count_exposures(ledger.store) == 11
