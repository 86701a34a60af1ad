"""SARIF output under hostile configuration and findings: a docs_url that is not an http(s)
URL is refused; a modelward.toml reached through a symlink out of the checkout, or named
by a path climbing out of it, never yields a location outside the checkout; subjects and
messages with control characters and markup stay data."""

from __future__ import annotations

import json

import pytest

from modelward.errors import ConfigError
from modelward.guards.finding import Finding
from modelward.guards.runner import Report
from modelward.guards.sarif import LEDGER_PSEUDO_FILE, render

from ..sarif_checks import github_upload_problems, schema_errors

NOW = 1_772_000_000_000_000


def _report(config=None, subject="chat/v1", message="stale") -> Report:
    f = Finding("MW105", "warning", subject, message, {"alias": subject}, identity=("alias",))
    return Report(findings=[f], suppressed=[], guards_run=["MW105"], planned=[],
                  fail_on="warning", now=NOW, since=None, config=config)


@pytest.mark.parametrize("url", ["javascript:alert(1)//", "file:///etc/passwd#",
                                 "//evil.example/", "docs/guards", "https:///nohost"])
def test_a_docs_url_that_is_not_an_absolute_http_url_is_refused(tmp_path, url):
    with pytest.raises(ConfigError, match="not an absolute http\\(s\\) URL"):
        render(_report(), docs_url=url, root=tmp_path)


def test_a_config_outside_the_checkout_never_becomes_a_location(tmp_path):
    checkout, outside = tmp_path / "checkout", tmp_path / "outside"
    checkout.mkdir()
    outside.mkdir()
    (outside / "modelward.toml").write_text("[check.MW105]\ngrace = \"1h\"\n")
    (checkout / "modelward.toml").symlink_to(outside / "modelward.toml")
    for config in (checkout / "modelward.toml", checkout / ".." / "outside" / "modelward.toml"):
        doc = json.loads(render(_report(str(config)), root=checkout))
        [loc] = doc["runs"][0]["results"][0]["locations"]
        assert loc["physicalLocation"] == {"artifactLocation": {"uri": LEDGER_PSEUDO_FILE},
                                           "region": {"startLine": 1}}


def test_hostile_subjects_and_messages_stay_data(tmp_path):
    subject = 'chat/v1"}],"results":[{"ruleId":"X\u0000\n\u202e'
    message = "<script>alert(1)</script> ::error::forged\r\n" + "x" * 10_000
    doc = json.loads(render(_report(subject=subject, message=message), root=tmp_path))
    [result] = doc["runs"][0]["results"]
    assert result["locations"][0]["logicalLocations"][0]["name"] == subject
    assert result["message"]["text"].startswith(message)
    assert schema_errors(doc) == [] and github_upload_problems(doc) == []
