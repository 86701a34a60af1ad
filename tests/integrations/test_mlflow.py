"""MLflow import and watch against a real MLflow store (sqlite:/// tracking, local artifacts)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelward import digest as dg
from modelward.cli.app import app
from modelward.integrations.mlflow import import_mlflow, redact, watch
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
        {"action": "alias-removed", "model": "clf", "alias": "mlflow/clf@challenger",
         "message": "deleted in MLflow; modelward keeps its history and last target"},
    ]
    assert seen[3] == []
    with ledger.store.read() as conn:
        history = ledger_aliases.history(conn, "mlflow/clf@champion")
    assert [(e.digest, e.kind) for e in history] == [(a, "create"), (b, "move"),
                                                    (a, "rollback")]
    assert history[1].reason == "alias moved in MLflow (seen by modelward watch)"
    assert history[0].at < history[1].at < history[2].at


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
        if line.startswith("poll 1:"):  # move an alias before the second poll
            mlflow.MlflowClient(store_uri).set_registered_model_alias("clf", "champion", "2")
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    a, b = (dir_digest(template["dirs"][k]) for k in "ab")
    assert lines[3:] == [
        f"mlflow/clf@challenger -> {b} (version 2, create)",
        f"mlflow/clf@champion -> {a} (version 1, create)",
        "poll 1: 2 models, 3 versions: 3 registered, 0 already imported; 2 alias moves",
        f"mlflow/clf@champion -> {b} (version 2, move)",
        "poll 2: 2 models, 3 versions: 0 registered, 3 already imported; 1 alias moves",
    ]


def test_redact_hides_passwords():
    assert redact("postgresql://mlf:s3cret@db:5432/mlflow") == "postgresql://mlf:***@db:5432/mlflow"
    assert redact("sqlite:///x.db") == "sqlite:///x.db"
