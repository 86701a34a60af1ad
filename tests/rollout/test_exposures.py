"""Experiments and exposures in the ledger and the SDK, on every backend: create once, read
back, expose through the batched recorder (with decisions), durable spool replay, and the
validation of every field."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import modelward
from modelward.errors import NotFoundError, ValidationError
from modelward.ledger import decisions
from modelward.ledger import experiments as ledger_experiments
from modelward.ledger.aliases import set_alias
from modelward.ledger.artifacts import register_bytes

from ..conftest import database_url
from .world import T0, count_exposures, create


def _rows(store, name):
    with store.read() as conn:
        return ledger_experiments.read_exposures(conn, name)


def test_an_experiment_is_written_once_and_read_back(ledger):
    store = ledger.store
    balance = {"criterion": "max_abs_smd", "candidates": 3, "salt": "e:1"}
    create(store, "checkout", "e:1", balance=balance)
    with store.read() as conn:
        rec = ledger_experiments.get(conn, "checkout")
        assert [r.name for r in ledger_experiments.list_all(conn)] == ["checkout"]
    assert (rec.salt, rec.arms, rec.created_at, rec.balance) == (
        "e:1", [("control", 95.0), ("treatment", 5.0)], T0, balance)
    assert rec.to_dict()["created_at"] == "2026-03-01T12:00:00Z"
    with pytest.raises(ValidationError, match="name: experiment 'checkout' already exists"):
        create(store, "checkout", "other")
    with store.read() as conn, pytest.raises(NotFoundError, match="no experiment 'nope'"):
        ledger_experiments.get(conn, "nope")
    exp = ledger.experiment("checkout")
    assert (exp.name, exp.salt, exp.arm_names, exp.balance) == (
        "checkout", "e:1", ("control", "treatment"), balance)
    assert ledger.experiment("checkout") is exp  # read once


def test_expose_records_the_arm_and_substrate_batched_with_decisions(ledger):
    store = ledger.store
    model = register_bytes(store, "model", b"weights", name="chat").artifact.digest
    emb = register_bytes(store, "embedder", b"e5", name="embed").artifact.digest
    with store.write() as conn:
        set_alias(conn, "chat/v1", model, at=T0)
        set_alias(conn, "embed/search", emb, at=T0)
    exp = create(store, "checkout", "e:1")
    uses = [ledger.resolve("chat/v1"), ledger.resolve("embed/search")]
    ids = []
    for i in range(300):
        subject = f"u-{i}"
        ledger.record(uses=uses, subject=subject)
        ids.append(ledger.expose("checkout", subject, uses=uses, metric=i / 10,
                                 vendor_model_id="gpt-4o-2024-08-06", at=T0 + i))
    forced = ledger.expose(exp, "u-0", "treatment", fingerprint_epoch=2, extra={"why": "qa"},
                           at=T0 + 1000)
    ledger.flush()
    rows = _rows(store, "checkout")
    assert len(rows) == 301 and {r.id for r in rows} == {*ids, forced}
    by_id = {r.id: r for r in rows}
    first = by_id[ids[7]]
    assert (first.subject, first.arm, first.at, first.metric) == (
        "u-7", exp.assign("u-7"), T0 + 7, 0.7)
    assert (first.model_digest, first.embedder_digest, first.prompt_digest,
            first.vendor_model_id, first.fingerprint_epoch) == (
        model, emb, None, "gpt-4o-2024-08-06", None)
    assert (by_id[forced].arm, by_id[forced].fingerprint_epoch) == ("treatment", 2)
    with store.read() as conn:
        assert decisions.count(conn) == 300
    # a retried batch (same ids) adds nothing
    again = [ledger_experiments.normalize_exposure(
        {"id": r.id, "experiment": "checkout", "subject": r.subject, "arm": r.arm, "at": r.at})
        for r in rows[:10]]
    assert ledger_experiments.append_exposures(store, again) == 0
    assert count_exposures(store) == 301


_DIES = """
import os, sys, modelward
led = modelward.open(sys.argv[1], database_url=sys.argv[2], recorder_mode="durable",
                     flush_interval="1h", flush_records=100000)
led.record(subject="u-1")
print(led.expose("checkout", "u-1", at=int(sys.argv[3])), flush=True)
os._exit(0)  # dies without flushing: only the fsynced spool holds the two records
"""


@pytest.fixture(params=["sqlite-file", "postgres"])
def shared_url(request, tmp_path):
    return database_url(request.param, tmp_path, request)


def test_durable_exposures_survive_a_crash_through_the_spool(shared_url, tmp_path):
    home = tmp_path / "durable-home"
    with modelward.open(str(home), database_url=shared_url) as led:
        create(led.store, "checkout", "e:1")
    proc = subprocess.run([sys.executable, "-c", _DIES, str(home), shared_url, str(T0)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    eid = proc.stdout.strip()
    with modelward.open(str(home), database_url=shared_url) as led:  # replays the spool
        assert [r.id for r in _rows(led.store, "checkout")] == [eid]
        with led.store.read() as conn:
            assert decisions.count(conn) == 1
    assert list((home / "spool").glob("spool-*.jsonl")) == []


@pytest.mark.parametrize(("fields", "message"), [
    ({"experiment": "x", "subject": "", "arm": "a"}, "subject: expected a non-empty string"),
    ({"experiment": "x", "subject": "s" * 301, "arm": "a"}, "subject: longer than 300"),
    ({"experiment": "x", "subject": "s\x00", "arm": "a"}, "subject: longer than 300 characters or holds a NUL"),
    ({"experiment": "x", "subject": "s", "arm": "a", "metric": float("nan")}, "metric: expected a finite number"),
    ({"experiment": "x", "subject": "s", "arm": "a", "metric": "1"}, "metric: expected a finite number"),
    ({"experiment": "x", "subject": "s", "arm": "a", "model_digest": "chat/v1"}, "model_digest: not a sha256"),
    ({"experiment": "x", "subject": "s", "arm": "a", "fingerprint_epoch": -1}, "fingerprint_epoch: expected an integer"),
    ({"experiment": "x", "subject": "s", "arm": "a", "at": "yesterday"}, "at: not an ISO 8601"),
    ({"experiment": "x", "subject": "s", "arm": "a", "extra": [1]}, "extra: expected an object"),
    ({"experiment": "x", "subject": "s", "arm": "a", "colour": 1}, "colour: unknown field(s): colour"),
    ({"experiment": "x", "subject": "s", "arm": "a", "id": "123"}, "id: not a lowercase UUID"),
])
def test_bad_exposures_are_refused_naming_the_field(fields, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        ledger_experiments.normalize_exposure(fields)


def test_expose_refuses_an_unknown_arm_or_experiment_or_a_config(ledger):
    store = ledger.store
    create(store, "checkout", "e:1")
    cfg = register_bytes(store, "config", b"{}", name="cfg").artifact.digest
    with store.write() as conn:
        set_alias(conn, "cfg/prod", cfg, at=T0)
    with pytest.raises(ValidationError, match=re.escape(
            "arm: 'blue' is not an arm of checkout (control, treatment)")):
        ledger.expose("checkout", "u-1", "blue")
    with pytest.raises(NotFoundError, match="no experiment 'nope'"):
        ledger.expose("nope", "u-1")
    with pytest.raises(ValidationError, match="uses: cfg/prod points at a config, which an "
                                              "exposure does not name"):
        ledger.expose("checkout", "u-1", uses=[ledger.resolve("cfg/prod")])
    assert ledger.expose("checkout", 42) and ledger.experiment("checkout").assign(42) == \
        ledger.experiment("checkout").assign("42")
    ledger.flush()
    assert [r.subject for r in _rows(store, "checkout")] == ["42"]
