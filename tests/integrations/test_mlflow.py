"""MLflow import and watch against a real MLflow store (sqlite:/// tracking, local artifacts)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelward import digest as dg
from modelward.cli.app import app
from modelward.errors import UnknownAliasError
from modelward.integrations.mlflow import import_mlflow, redact
from modelward.integrations.mlflow_watch import signature, watch
from modelward.ledger import aliases as ledger_aliases
from modelward.ledger import artifacts as ledger_artifacts

mlflow = pytest.importorskip("mlflow")
logging.getLogger("mlflow").setLevel(logging.WARNING)
logging.getLogger("alembic").setLevel(logging.WARNING)


def _model_dir(root: Path, weights: bytes) -> Path:
    root.mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "weights.bin").write_bytes(weights)
    return root


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """An MLflow store: clf v1 (champion) and v2 (challenger), ranker v1 (no alias); and a
    third logged model not registered yet. Each test works on a copy of its database."""
    base = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{base / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("e", artifact_location=(base / "artifacts").as_uri())
    sources, dirs = {}, {}
    for key, weights in (("a", b"weights-a"), ("b", b"weights-b"), ("r", b"ranker"),
                         ("c", b"weights-c")):
        local = _model_dir(base / "src" / key, weights)
        run = client.create_run(exp)
        client.log_artifacts(run.info.run_id, str(local), artifact_path="model")
        client.set_terminated(run.info.run_id)
        sources[key] = (f"{run.info.artifact_uri}/model", run.info.run_id)
        dirs[key] = local
    client.create_registered_model("clf")
    client.create_registered_model("ranker")
    for name, key in (("clf", "a"), ("clf", "b"), ("ranker", "r")):
        client.create_model_version(name, source=sources[key][0], run_id=sources[key][1])
    client.set_registered_model_alias("clf", "champion", "1")
    client.set_registered_model_alias("clf", "challenger", "2")
    return {"db": base / "mlflow.db", "sources": sources, "dirs": dirs}


@pytest.fixture
def store_uri(template, tmp_path):
    copy = tmp_path / "mlflow-copy.db"
    shutil.copy(template["db"], copy)
    return f"sqlite:///{copy}"


def dir_digest(path: Path) -> str:
    return dg.of_bytes(dg.manifest_bytes(dg.walk_directory(path)))


def test_import_registers_versions_and_aliases_idempotently(ledger, template, store_uri):
    store = ledger.store
    report = import_mlflow(store, store_uri)
    a, b, r = (dir_digest(template["dirs"][k]) for k in "abr")
    assert (report.models, report.versions, report.known) == (2, 3, 0)
    assert [c.to_dict() for c in report.changes] == [
        {"action": "registered", "model": "clf", "version": "1", "digest": a},
        {"action": "registered", "model": "clf", "version": "2", "digest": b},
        {"action": "registered", "model": "ranker", "version": "1", "digest": r},
        {"action": "alias", "model": "clf", "version": "2", "digest": b,
         "alias": "mlflow/clf@challenger", "kind": "create"},
        {"action": "alias", "model": "clf", "version": "1", "digest": a,
         "alias": "mlflow/clf@champion", "kind": "create"},
    ]
    with store.read() as conn:
        art = ledger_artifacts.get(conn, a)
        champion = ledger_aliases.resolve_at(conn, "mlflow/clf@champion")
        [event] = ledger_aliases.history(conn, "mlflow/clf@champion")
    assert (art.kind, art.name, art.version, art.is_directory) == ("model", "clf", "1", True)
    assert art.meta["mlflow"]["run_id"] == template["sources"]["a"][1]
    assert art.meta["mlflow"]["source"] == template["sources"]["a"][0]
    assert art.meta["mlflow"]["registry_uri"] == store_uri
    assert ledger_artifacts.payload_status(store, art) == "present"
    assert champion.digest == a
    assert (event.actor, event.evidence["mlflow_version"]) == ("mlflow", "1")

    again = import_mlflow(store, store_uri)
    assert (again.versions, again.known, again.changes) == (3, 3, [])
    with store.read() as conn:
        assert len(ledger_aliases.history(conn, "mlflow/clf@champion")) == 1


def test_watch_records_each_alias_move_between_polls(ledger, template, store_uri):
    client = mlflow.MlflowClient(store_uri)
    seen = []

    def on_poll(number, report, error):
        assert error is None
        seen.append([c.to_dict() for c in report.changes])
        if number == 1:  # between polls: promote v2, add v3 as challenger
            client.set_registered_model_alias("clf", "champion", "2")
            src, run_id = template["sources"]["c"]
            client.create_model_version("clf", source=src, run_id=run_id)
            client.set_registered_model_alias("clf", "challenger", "3")
        elif number == 2:  # roll back, and delete the challenger alias
            client.set_registered_model_alias("clf", "champion", "1")
            client.delete_registered_model_alias("clf", "challenger")

    polls = watch(ledger.store, store_uri, interval=0, max_polls=4, on_poll=on_poll,
                  sleep=lambda s: None)
    assert polls == 4
    a, b, c = (dir_digest(template["dirs"][k]) for k in "abc")
    assert len(seen[0]) == 5
    assert seen[1] == [
        {"action": "registered", "model": "clf", "version": "3", "digest": c},
        {"action": "alias", "model": "clf", "version": "3", "digest": c,
         "alias": "mlflow/clf@challenger", "previous_digest": b, "kind": "move"},
        {"action": "alias", "model": "clf", "version": "2", "digest": b,
         "alias": "mlflow/clf@champion", "previous_digest": a, "kind": "move"},
    ]
    assert seen[2] == [
        {"action": "alias", "model": "clf", "version": "1", "digest": a,
         "alias": "mlflow/clf@champion", "previous_digest": b, "kind": "rollback"},
        {"action": "alias-deleted", "model": "clf", "alias": "mlflow/clf@challenger",
         "previous_digest": c, "kind": "delete"},
    ]
    assert seen[3] == []
    with ledger.store.read() as conn:
        history = ledger_aliases.history(conn, "mlflow/clf@champion")
    assert [(e.digest, e.kind) for e in history] == [(a, "create"), (b, "move"),
                                                    (a, "rollback")]
    assert history[1].reason == "alias moved in MLflow (seen by modelward watch)"
    assert history[0].at < history[1].at < history[2].at
    with ledger.store.read() as conn:  # the deleted alias: history kept, no longer resolvable
        gone = ledger_aliases.history(conn, "mlflow/clf@challenger")
        assert [(e.kind, e.digest) for e in gone] == [("create", b), ("move", c), ("delete", c)]
        with pytest.raises(UnknownAliasError, match="was deleted at"):
            ledger_aliases.resolve_at(conn, "mlflow/clf@challenger")
        assert "mlflow/clf@challenger" not in {e.alias for e in ledger_aliases.list_aliases(conn)}


def test_cli_import_prints_each_change_and_json(template, store_uri, tmp_path):
    runner = CliRunner()
    db = ["--database-url", f"sqlite:///{tmp_path / 'ledger.db'}"]
    assert runner.invoke(app, [*db, "init"]).exit_code == 0
    a, b, r = (dir_digest(template["dirs"][k]) for k in "abr")
    result = runner.invoke(app, [*db, "import", "mlflow", "--tracking-uri", store_uri])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"registered clf version 1  {a}\n"
        f"registered clf version 2  {b}\n"
        f"registered ranker version 1  {r}\n"
        f"mlflow/clf@challenger -> {b} (version 2, create)\n"
        f"mlflow/clf@champion -> {a} (version 1, create)\n"
        "2 models, 3 versions: 3 registered, 0 already imported; 2 alias moves\n")
    result = runner.invoke(app, [*db, "import", "mlflow", "--tracking-uri", store_uri,
                                 "--json"])
    assert result.exit_code == 0
    assert result.stdout == (
        "{\n"
        f'  "registry_uri": "{store_uri}",\n'
        '  "models": 2,\n  "versions": 3,\n  "known": 3,\n  "changes": []\n}\n')


def cli(*args):
    return [sys.executable, "-c", "from modelward.cli.app import main; main()", *args]


def test_cli_bad_tracking_uri_is_one_red_line_and_exit_2(tmp_path):
    env = {**os.environ, "MODELWARD_HOME": str(tmp_path / "home")}
    subprocess.run(cli("init"), env=env, check=True, capture_output=True)
    proc = subprocess.run([sys.executable, "-c", "from modelward.cli.app import main; main()",
                           "import", "mlflow", "--tracking-uri", "bogus://nowhere"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: cannot read the MLflow registry at bogus://nowhere: Model registry "
        "functionality is unavailable; got unsupported URI 'bogus://nowhere' for model "
        "registry data storage",
        "hint: check --tracking-uri / --registry-uri"]


def test_cli_watch_streams_polls_live(template, store_uri, tmp_path):
    env = {**os.environ, "MODELWARD_HOME": str(tmp_path / "home")}
    subprocess.run(cli("init"), env=env, check=True, capture_output=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from modelward.cli.app import main; main()", "watch", "mlflow",
         "--tracking-uri", store_uri, "--interval", "1s", "--max-polls", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if " poll 1: " in line:  # move an alias before the second poll
            mlflow.MlflowClient(store_uri).set_registered_model_alias("clf", "champion", "2")
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    a, b = (dir_digest(template["dirs"][k]) for k in "ab")
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")
    assert all(stamp.match(line) for line in lines), lines  # every line says when
    assert [stamp.sub("", line) for line in lines][4:] == [
        f"mlflow/clf@challenger -> {b} (version 2, create)",
        f"mlflow/clf@champion -> {a} (version 1, create)",
        "poll 1: 2 models, 3 versions: 3 registered, 0 already imported; 2 alias moves",
        f"mlflow/clf@champion -> {b} (version 2, move)",
    ]  # quiet: after the first, a poll prints only what changed
    assert stamp.sub("", lines[0]) == f"watching {store_uri}: polling every 1s"


def test_redact_hides_passwords():
    assert redact("postgresql://mlf:s3cret@db:5432/mlflow") == "postgresql://mlf:***@db:5432/mlflow"
    assert redact("sqlite:///x.db") == "sqlite:///x.db"


# --- against a real MLflow tracking server process, with webhooks --------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from .mlflow_server import MlflowServer

    with MlflowServer(tmp_path_factory.mktemp("mlflow-server")) as srv:
        yield srv


def _log_version(client, exp, name, weights: bytes, tmp: Path, user: str):
    local = _model_dir(tmp / f"src-{weights.hex()}", weights)
    run = client.create_run(exp, tags={"mlflow.user": user})
    client.log_artifacts(run.info.run_id, str(local), artifact_path="model")
    client.set_terminated(run.info.run_id)
    mv = client.create_model_version(name, source=f"{run.info.artifact_uri}/model",
                                     run_id=run.info.run_id)
    return mv, dir_digest(local)


def test_watch_through_webhooks_records_every_flip_and_the_deletion(ledger, server, tmp_path):
    """A real `mlflow server`: the watch registers a webhook, each alias change arrives as a
    delivery and is recorded at once — a flip back and forth between two polls included —
    a deleted alias is recorded as a deletion, the version's MLflow user as its owner, and
    the webhook is removed when the watch stops."""
    client = mlflow.MlflowClient(server.url)
    name = f"clf-{os.getpid()}-{int(time.time() * 1000) % 100000}"
    exp = client.create_experiment(f"e-{name}")
    client.create_registered_model(name)
    v1, d1 = _log_version(client, exp, name, b"weights-1", tmp_path, "alice@example.com")
    events, modes, stop = [], [], threading.Event()
    thread = threading.Thread(target=watch, args=(ledger.store, server.url), kwargs=dict(
        interval=3600, listen="127.0.0.1:0", stop=stop, on_mode=lambda m, d: modes.append(m),
        on_event=lambda ev, rep, err: events.append((ev, rep, err))))
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not modes:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert modes == ["webhooks"]
        while not any(h.name.startswith("modelward-watch-") for h in client.list_webhooks()):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        v2, d2 = _log_version(client, exp, name, b"weights-2", tmp_path, "bob@example.com")
        for version in ("1", "2", "1"):  # a flip there and back, faster than any poll
            client.set_registered_model_alias(name, "champion", version)
        client.delete_registered_model_alias(name, "champion")
        alias = f"mlflow/{name}@champion"
        while True:
            with ledger.store.read() as conn:
                try:
                    kinds = [e.kind for e in ledger_aliases.history(conn, alias)]
                except UnknownAliasError:
                    kinds = []
            if kinds and kinds[-1] == "delete":
                break
            assert time.monotonic() < deadline, (kinds, events)
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()
    assert all(err is None for _ev, _rep, err in events), events
    with ledger.store.read() as conn:
        history = ledger_aliases.history(conn, alias)
        owners = {d: ledger_artifacts.get(conn, d).owner for d in (d1, d2)}
        with pytest.raises(UnknownAliasError, match="was deleted"):
            ledger_aliases.resolve_at(conn, alias)
    assert [(e.kind, e.digest) for e in history] == [
        ("create", d1), ("move", d2), ("rollback", d1), ("delete", d1)]
    assert all(e.actor == "mlflow" and e.evidence["source"] == "webhook" for e in history)
    assert owners == {d1: "alice@example.com", d2: "bob@example.com"}
    assert not [h for h in client.list_webhooks() if h.name.startswith("modelward-watch-")]


def test_webhook_deliveries_must_be_signed_and_fresh():
    from modelward.integrations.mlflow_watch import WebhookListener

    listener = WebhookListener("127.0.0.1:0", "s3cret")
    body = b'{"entity": "model_version_alias"}'
    now = str(int(time.time()))
    good = {"X-MLflow-Delivery-Id": "d1", "X-MLflow-Timestamp": now,
            "X-MLflow-Signature": signature("s3cret", "d1", now, body)}
    assert listener.verify(good, body)
    assert not listener.verify({**good, "X-MLflow-Signature": signature("other", "d1", now,
                                                                        body)}, body)
    assert not listener.verify(good, body + b" ")  # tampered body
    old = str(int(time.time()) - 3600)  # a replay of an old delivery
    assert not listener.verify({**good, "X-MLflow-Timestamp": old,
                                "X-MLflow-Signature": signature("s3cret", "d1", old, body)},
                               body)
    listener.httpd.server_close()


def test_watch_polls_when_the_store_has_no_webhooks(ledger, store_uri):
    modes = []
    watch(ledger.store, store_uri, interval=0, max_polls=1, listen="127.0.0.1:0",
          on_mode=lambda m, d: modes.append((m, d)), sleep=lambda s: None)
    [(mode, why)] = modes
    assert mode == "polling" and why.startswith("the MLflow server does not take webhooks")
