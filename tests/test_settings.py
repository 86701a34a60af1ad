"""Settings: flag > MODELWARD_* env > modelward.toml > default; every mistake names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

import modelward
from modelward.errors import ConfigError
from modelward.settings import SETTINGS, Settings


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults(tmp_path):
    s = Settings({}, env={})
    assert s.config_path is None  # no modelward.toml in the test's working directory
    assert s.home == ".modelward" and s.source("home") == "default"
    assert s.recorder_mode == "batched"
    assert s.flush_interval == 50_000 and s.flush_records == 2000 and s.queue_limit == 200_000
    assert s.retention == 400 * 86_400_000_000
    assert s.resolved_database_url == f"sqlite:///{(Path('.modelward') / 'ledger.db').resolve()}"
    assert s.blob_path == Path(".modelward/blobs") and s.spool_path == Path(".modelward/spool")


def test_precedence_flag_env_toml_default(tmp_path):
    write_toml(tmp_path / "modelward.toml",
               '[modelward]\nflush_records = 30\nqueue_limit = 40\nflush_interval = "7ms"\n')
    env = {"MODELWARD_FLUSH_RECORDS": "20", "MODELWARD_QUEUE_LIMIT": "41"}
    s = Settings({"flush_records": 10}, env=env)
    assert (s.flush_records, s.source("flush_records")) == (10, "argument")
    assert (s.queue_limit, s.source("queue_limit")) == (41, "MODELWARD_QUEUE_LIMIT")
    assert s.flush_interval == 7000 and s.source("flush_interval") == str(tmp_path / "modelward.toml")
    assert s.recorder_mode == "batched" and s.source("recorder_mode") == "default"
    # an empty environment variable does not override the file
    s = Settings({}, env={"MODELWARD_FLUSH_RECORDS": ""})
    assert s.flush_records == 30
    # a None override (an omitted CLI flag) falls through to the environment
    assert Settings({"flush_records": None}, env=env).flush_records == 20


def test_real_environment_is_read(monkeypatch, tmp_path):
    monkeypatch.setenv("MODELWARD_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("MODELWARD_BLOB_URL", f"file://{tmp_path}/b")
    s = Settings()
    assert s.home_path == tmp_path / "h" and s.blob_path == tmp_path / "b"
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'h' / 'ledger.db'}"


def test_modelward_config_names_the_file(monkeypatch, tmp_path):
    cfg = write_toml(tmp_path / "elsewhere.toml", '[modelward]\nrecorder_mode = "durable"\n')
    monkeypatch.setenv("MODELWARD_CONFIG", str(cfg))
    assert Settings().recorder_mode == "durable"
    monkeypatch.setenv("MODELWARD_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="missing.toml, which does not exist"):
        Settings()


def test_open_passes_settings_through(tmp_path):
    with modelward.open(str(tmp_path / "h"), database_url="sqlite://", flush_records=7) as led:
        assert led.settings.flush_records == 7 and led.settings.source("flush_records") == "argument"
    with modelward.open(tmp_path / "h2", database_url="sqlite://") as led:  # a Path is fine
        assert led.settings.home == str(tmp_path / "h2")


def test_unknown_key_table_and_argument_are_named(tmp_path):
    write_toml(tmp_path / "modelward.toml", "[modelward]\nflush_record = 5\n")
    with pytest.raises(ConfigError, match="unknown key modelward.flush_record") as exc:
        Settings({}, env={})
    assert "flush_records" in exc.value.hint
    write_toml(tmp_path / "modelward.toml", "[modelwrad]\nhome = 'x'\n")
    with pytest.raises(ConfigError, match=r"unknown table \[modelwrad\]"):
        Settings({}, env={})
    write_toml(tmp_path / "modelward.toml", "modelward = 5\n")
    with pytest.raises(ConfigError, match=r"\[modelward\] must be a table"):
        Settings({}, env={})
    write_toml(tmp_path / "modelward.toml", "[modelward\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        Settings({}, env={})
    (tmp_path / "modelward.toml").unlink()
    with pytest.raises(ConfigError, match="unknown setting 'flush_every'"):
        modelward.open(str(tmp_path / "h"), database_url="sqlite://", flush_every=5)


def test_other_known_tables_are_left_to_their_readers(tmp_path):
    write_toml(tmp_path / "modelward.toml", '[check]\nselect = ["MW1"]\n')
    s = Settings({}, env={})
    assert s.section("check") == {"select": ["MW1"]} and s.section("modelward") == {}


@pytest.mark.parametrize("source,value,message", [
    ("env", "lots", "flush_records from MODELWARD_FLUSH_RECORDS is not a valid int: 'lots'"),
    ("env", "2.5", "flush_records from MODELWARD_FLUSH_RECORDS is not a valid int: '2.5'"),
    ("toml", "2.5", "flush_records from {toml} is not a valid int: 2.5"),
    ("toml", "true", "flush_records from {toml} is not a valid int: True"),
    ("toml", '"0"', "flush_records from {toml} is 0; it must be at least 1"),
    ("arg", -3, "flush_records from argument is -3; it must be at least 1"),
])
def test_bad_int_values_name_the_setting(tmp_path, source, value, message):
    toml = tmp_path / "modelward.toml"
    env, overrides = {}, {}
    if source == "env":
        env["MODELWARD_FLUSH_RECORDS"] = value
    elif source == "toml":
        write_toml(toml, f"[modelward]\nflush_records = {value}\n")
    else:
        overrides["flush_records"] = value
    with pytest.raises(ConfigError) as exc:
        Settings(overrides, env=env)
    assert exc.value.message == message.format(toml=toml)


@pytest.mark.parametrize("key,value,message", [
    ("recorder_mode", '"fast"', "recorder_mode from {toml} is 'fast'; choose one of batched, durable"),
    ("flush_interval", '"soon"', "flush_interval from {toml} is not a valid duration: 'soon'"),
    ("retention", '"400"', "retention from {toml} is not a valid duration: '400'"),
    ("home", "5", "home from {toml} is not a valid str: 5"),
    ("database_url", "['a']", "database_url from {toml} is not a valid str: ['a']"),
    ("queue_limit", "0", "queue_limit from {toml} is 0; it must be at least 1"),
])
def test_bad_values_name_the_setting(tmp_path, key, value, message):
    toml = write_toml(tmp_path / "modelward.toml", f"[modelward]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as exc:
        Settings({}, env={})
    assert exc.value.message == message.format(toml=toml)


def test_every_setting_is_documented_and_has_a_valid_default():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    for s in SETTINGS:
        assert s.help.strip() and s.env == "MODELWARD_" + s.name.upper()
        assert s.type in ("str", "int", "float", "bool", "duration", "choice", "list")
        if s.type == "choice":
            assert s.default in s.choices
    Settings({}, env={})  # every default coerces


def test_the_config_follows_the_ledger_home(monkeypatch, tmp_path):
    """modelward.toml is read from MODELWARD_HOME wherever the command runs; --config and
    MODELWARD_CONFIG name one explicitly; the working directory's is the last resort."""
    home, elsewhere = tmp_path / "ledger", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    (home / "modelward.toml").write_text('[modelward]\nretention = "30d"\n')
    (elsewhere / "modelward.toml").write_text('[modelward]\nretention = "1d"\n')
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("MODELWARD_HOME", str(home))
    s = Settings()
    assert s.config_path == home / "modelward.toml" and s.retention == 30 * 86_400_000_000
    assert Settings({"home": str(elsewhere / "none")}).config_path == elsewhere / "modelward.toml"
    explicit = tmp_path / "ci.toml"
    explicit.write_text('[modelward]\nretention = "2d"\n')
    assert Settings(config_path=explicit).config_path == explicit
    monkeypatch.setenv("MODELWARD_CONFIG", str(explicit))
    assert Settings().config_path == explicit
    with pytest.raises(ConfigError, match="--config names .*missing.toml, which does not exist"):
        Settings(config_path=tmp_path / "missing.toml")
    monkeypatch.delenv("MODELWARD_CONFIG")
    monkeypatch.delenv("MODELWARD_HOME")
    (elsewhere / "modelward.toml").unlink()
    assert Settings().config_path is None  # ./.modelward has none, nor the directory
