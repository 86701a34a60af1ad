"""The runner: selection by prefix, [check] config, suppressions (MW001, MW002), fail_on."""

from pathlib import Path

import pytest

from modelward.errors import ConfigError
from modelward.guards import run
from modelward.guards.config import CheckConfig, load
from modelward.guards.runner import guard_options
from modelward.settings import Settings

from .builders import DAY, HOUR, NOW, T0, record

PIN = 'select = ["MW0", "MW1"]  # the guards of this package, whatever else is active\n'


def settings_with(tmp_path: Path, toml: str, *, pin: bool = True) -> Settings:
    if pin and "select =" not in toml:
        toml = (toml.replace("[check]\n", "[check]\n" + PIN, 1) if "[check]\n" in toml
                else "[check]\n" + PIN + toml)
    path = tmp_path / "modelward.toml"
    path.write_text(toml)
    return Settings({"home": str(tmp_path / "home")}, config_path=path)


def test_longest_prefix_wins():
    cfg = CheckConfig(select=["MW1", "MW105"], ignore=["MW10"])
    assert [c for c in ("MW101", "MW104", "MW105", "MW201", "MW001") if cfg.selects(c)] == ["MW105"]
    cfg = CheckConfig(select=["MW"], ignore=["MW1"])
    assert cfg.selects("MW201") and cfg.selects("MW001") and not cfg.selects("MW103")
    assert not CheckConfig(select=["MW1"], ignore=["MW1"]).selects("MW101")  # ignore wins a tie


def test_command_line_select_replaces_and_ignore_adds(tmp_path):
    s = settings_with(tmp_path, '[check]\nselect = ["MW1"]\nignore = ["MW105"]\n')
    assert not load(s).selects("MW105") and load(s).selects("MW104")
    cli = load(s, select="MW105,MW2")  # the command line wins a tie with the file
    assert cli.selects("MW105") and cli.selects("MW201") and not cli.selects("MW104")
    more = load(s, ignore="mw104")
    assert not more.selects("MW104") and not more.selects("MW105") and more.selects("MW101")


@pytest.mark.parametrize("toml, message", [
    ("[check]\nselct = []\n", "unknown key check.selct"),
    ('[check]\nselect = ["MW9"]\n', "check.select: 'MW9' matches no guard code"),
    ('[check]\nselect = "MW1, XX"\n', "check.select: 'XX' matches no guard code"),
    ('[check]\nfail_on = "fatal"\n', "check.fail_on is 'fatal'"),
    ('[check]\nwindow = "a while"\n', "check.window is not a duration"),
    ('[check.MW999]\nx = 1\n', r"\[check.MW999\] names no guard code"),
    ('[check.MW105]\ngrase = "1h"\n', "unknown key check.MW105.grase"),
    ('[check.MW301]\nseverity = "loud"\n', "severity from \\[check.MW301\\]"),
    ('[[check.suppress]]\ncode = "MW105"\nsubject = "x"\n', r"check.suppress\[1\].reason is required"),
    ('[[check.suppress]]\ncode = "MW105"\nreason = "r"\n', "needs a subject or a fingerprint"),
    ('[[check.suppress]]\ncode = "MW105"\nsubject = "x"\nreason = "r"\nowner = "me"\n',
     r"check.suppress\[1\]: unknown key 'owner'"),
    ('[[check.suppress]]\ncode = "MW001"\nsubject = "x"\nreason = "r"\n', "cannot itself be suppressed"),
    ('[[check.suppress]]\ncode = "MW777"\nsubject = "x"\nreason = "r"\n', "must name a guard code"),
    ('[[check.suppress]]\ncode = "MW105"\nsubject = "x"\nreason = "r"\nexpires = "soon"\n',
     "expires is not a date"),
])
def test_bad_configuration_names_the_key(tmp_path, toml, message):
    s = settings_with(tmp_path, toml, pin=False)
    with pytest.raises(ConfigError, match=message):
        guard_options(load(s), s)  # what run() validates before it reads the ledger


def test_window_and_severity_come_from_the_file(tmp_path, ledger, fleet):
    record(ledger.store, [dict(at=T0 - 3 * DAY, alias="chat/v1")])
    s = settings_with(tmp_path, '[check]\nwindow = "7d"\n[check.MW101]\nseverity = "info"\n')
    [f] = run(ledger.store, s, now=NOW).findings
    assert (f.code, f.severity) == ("MW101", "info")
    assert run(ledger.store, settings_with(tmp_path, '[check]\nwindow = "4d"\n'), now=NOW).findings == []


def test_fail_on_decides_the_exit_code(tmp_path, ledger, fleet):
    record(ledger.store, [dict(at=T0 + 3 * HOUR, alias="chat/v1", process="w",
                               model_digest=fleet["v3"])])  # one MW105 warning
    s = settings_with(tmp_path, "")
    assert run(ledger.store, s, now=NOW).exit_code() == 1
    assert run(ledger.store, s, now=NOW, fail_on="error").exit_code() == 0
    assert run(ledger.store, s, now=NOW).exit_code(exit_zero=True) == 0
    assert run(ledger.store, s, now=NOW, ignore="MW105").exit_code() == 0


def _stale(ledger, fleet, process):
    record(ledger.store, [dict(at=T0 + 3 * HOUR, alias="chat/v1", process=process,
                               model_digest=fleet["v3"])])


def test_MW001_fires_for_a_suppression_that_matched_nothing(tmp_path, ledger, fleet):
    _stale(ledger, fleet, "worker-9")
    s = settings_with(tmp_path, """
[[check.suppress]]
code = "MW105"
subject = "chat/*"
reason = "worker-9 pins v3 until the nightly restart"
expires = 2999-01-01

[[check.suppress]]
code = "MW101"
subject = "legacy/v0"
reason = "the legacy service is being retired"

[[check.suppress]]
code = "MW104"
fingerprint = "0123456789abcdef"
reason = "not run below"
""")
    report = run(ledger.store, s, now=NOW, ignore="MW104")
    assert [(f.code, s.index) for f, s in report.suppressed] == [("MW105", 1)]
    [unused] = report.findings
    assert (unused.code, unused.subject, unused.severity) == ("MW001", "suppression 2", "warning")
    assert unused.message == ("suppression 2 (MW101 subject 'legacy/v0') matched no finding: "
                              "delete it")
    assert "MW001" in report.guards_run and "MW104" not in report.guards_run


def test_MW001_clean_when_every_suppression_is_used(tmp_path, ledger, fleet):
    _stale(ledger, fleet, "worker-9")
    [finding] = run(ledger.store, settings_with(tmp_path, ""), now=NOW).findings
    s = settings_with(tmp_path, f"""
[[check.suppress]]
code = "MW105"
fingerprint = "{finding.fingerprint}"
reason = "accepted until the nightly restart"
""")
    report = run(ledger.store, s, now=NOW)
    assert report.findings == [] and len(report.suppressed) == 1
    # another process's finding has another fingerprint: not suppressed
    _stale(ledger, fleet, "worker-10")
    [left] = run(ledger.store, s, now=NOW).findings
    assert left.evidence["process"] == "worker-10"


def test_MW002_fires_for_an_expired_suppression_and_it_stops_applying(tmp_path, ledger, fleet):
    _stale(ledger, fleet, "worker-9")
    s = settings_with(tmp_path, """
[[check.suppress]]
code = "MW105"
subject = "chat/v1"
reason = "until the restart"
expires = 2026-03-03
""")
    before = run(ledger.store, s, now=NOW - DAY)
    assert before.findings == [] and len(before.suppressed) == 1
    after = run(ledger.store, s, now=NOW)  # NOW is 2026-03-03T12:00Z
    assert [f.code for f in after.findings] == ["MW002", "MW105"]
    assert after.findings[0].message == ("suppression 1 (MW105 subject 'chat/v1') expired on "
                                         "2026-03-03T00:00:00Z: renew it or delete it")
    assert after.suppressed == []


def test_MW002_clean_before_expiry_and_ignorable(tmp_path, ledger, fleet):
    _stale(ledger, fleet, "worker-9")
    s = settings_with(tmp_path, """
[check]
ignore = ["MW0"]
[[check.suppress]]
code = "MW105"
subject = "chat/v1"
reason = "until the restart"
expires = 2020-01-01
""")
    assert [f.code for f in run(ledger.store, s, now=NOW).findings] == ["MW105"]
    assert run(ledger.store, s, now=NOW, select="MW0").findings[0].code == "MW002"
    s = settings_with(tmp_path, s.config_path.read_text().replace("2020-01-01", "2026-12-31")
                      .replace('ignore = ["MW0"]', ""), pin=False)
    assert run(ledger.store, s, now=NOW).findings == []


def test_the_view_is_read_only(ledger, fleet):
    import sqlalchemy as sa

    from modelward.guards.view import View
    from modelward.ledger.schema import decisions

    with View.open(ledger.store, ledger.settings, now=NOW) as view:
        with pytest.raises(TypeError):
            view.execute(decisions.delete())
        with pytest.raises(sa.exc.SQLAlchemyError):  # the database refuses it too
            view._conn.execute(decisions.delete())
    with ledger.store.read() as conn:  # and the connection is writable again afterwards
        assert conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar() > 0
    with ledger.store.write() as conn:
        conn.execute(decisions.update().where(decisions.c.id == "none").values(process="x"))


def test_guards_without_their_configuration_are_named_not_counted(ledger, tmp_path):
    """MW402 with experiments to judge but no pre-period population is skipped and says
    why; MW302 without pairs runs in part and says so; check prints the config it read."""
    from modelward.guards.formats import render

    from ..rollout.world import canary_arm, create, expose

    create(ledger.store, "canary", "unused")
    expose(ledger.store, "canary", [(str(i), canary_arm(str(i))) for i in range(1, 400)])
    s = settings_with(tmp_path, '[check]\nselect = ["MW302", "MW402", "MW101"]\n', pin=False)
    report = run(ledger.store, s, now=NOW)
    assert report.guards_run == ["MW101", "MW302"]
    assert list(report.skipped) == ["MW402"]
    assert "no pre-period population for 1 experiment" in report.skipped["MW402"]
    assert "no [[contamination.pairs]]" in report.limited["MW302"]
    text = render(report, "text")
    assert text.startswith(f"config: {tmp_path / 'modelward.toml'}\n")
    assert "skipped for lack of configuration (1)\n  MW402 covariate-imbalance  no pre-period" \
        in text
    assert text.endswith("(2 guards run, 1 skipped for lack of configuration (MW402))\n")
    as_json = report.to_dict()
    assert as_json["skipped"][0]["code"] == "MW402" and as_json["config"].endswith(".toml")
    pre = tmp_path / "pre.csv"
    pre.write_text("subject,x\n" + "".join(f"{i},{i % 7}\n" for i in range(1, 400)))
    s = settings_with(tmp_path, f'[check]\nselect = ["MW402"]\n[check.MW402]\n'
                                f'pre_period = "{pre}"\n', pin=False)
    assert run(ledger.store, s, now=NOW).guards_run == ["MW402"]  # configured: it runs
