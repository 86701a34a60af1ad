"""Terminal output is inert: names, versions, owners, actors, reasons, processes, subjects
and vendor ids written into the ledger by anyone who can write to it hold ANSI CSI and OSC
sequences, their 8-bit forms, Rich markup and Unicode bidi overrides. The CLI, run as a
real subprocess, shows them as visible escapes: no raw control reaches the terminal, and a
decision that disagrees with its alias still reads as disagreeing."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import orjson
import pytest

import modelward
from modelward.digest import of_bytes
from modelward.ledger import aliases, artifacts, decisions

DAY = 86_400_000_000
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z

# cursor up + erase line + carriage return (overwrite the line above), an OSC 8 hyperlink,
# an OSC window title, 8-bit CSI and OSC (with ST), bidi override and isolates, Rich markup,
# and a newline followed by a forged verdict line.
HOSTILE = ("x\x1b[1A\x1b[2K\r\x9b1A\x1b]8;;https://evil.example/\x07click\x1b]8;;\x07"
           "\x1b]0;owned\x1b\\\x9d0;owned\x9c\u202eenon\u202c\u2066\u2067\u2068\u2069\u200f"
           "[link=https://evil.example]x[/link]\nproblems  none (matches the alias)")

RAW = {chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))} - {"\n"}
RAW |= set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
           "\u2028\u2029")


def named(field: str) -> str:
    return f"{field}-{HOSTILE}"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A real SQLite ledger file with hostile text in every field the CLI prints."""
    tmp = tmp_path_factory.mktemp("hostile")
    home = tmp / "home"
    led = modelward.open(str(home))
    store = led.store
    digests = []
    # a version holds at most 100 characters (the ledger refuses more): its payload is cut
    for content, version in ((b"weights-1", "v1"), (b"weights-2", named("version")[:100])):
        path = tmp / f"{of_bytes(content)[7:23]}.bin"
        path.write_bytes(content)
        digests.append(artifacts.register_path(
            store, "model", path, name=named("name"), version=version, owner=named("owner"),
            at=T0).artifact.digest)
    m1, m2 = digests
    with store.write() as conn:
        aliases.set_alias(conn, "chat/v1", m1, at=T0 + DAY, reason=named("reason"),
                          actor=named("actor"))
    rows = [decisions.normalize(d)[0] for d in (
        # disagrees: the alias pointed at m1, the decision names m2 (named with escapes)
        {"at": T0 + 2 * DAY, "alias": "chat/v1", "model_digest": m2,
         "process": named("process"), "subject": named("subject"),
         "vendor_model_id": named("vendor")},
        # an alias asked for that is no alias at all: MW101 and audit quote it
        {"at": T0 + 2 * DAY, "alias": named("alias"), "process": named("process")},
    )]
    decisions.append(store, rows, [], recorded_at=T0 + 3 * DAY)
    led.close()
    return home, [r[0] for r in rows], (m1, m2)


def run(home, *args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWARD_")}
    env.update(MODELWARD_HOME=str(home), COLUMNS="200", TERM="xterm-256color",
               FORCE_COLOR="1")  # rendered as for a colour terminal
    return subprocess.run([sys.executable, "-m", "modelward.cli.app", *args], env=env,
                          capture_output=True, timeout=120)


def shown(result: subprocess.CompletedProcess) -> str:
    """stdout and stderr, asserted free of raw controls (ANSI colour from the CLI's own
    styling aside: ESC followed by a plain SGR sequence), decoded."""
    text = (result.stdout + result.stderr).decode("utf-8")
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    leaked = sorted({f"U+{ord(c):04X}" for c in plain if c in RAW})
    assert leaked == [], f"raw control characters reached the terminal: {leaked}\n{text!r}"
    return plain


def test_audit_keeps_a_disagreement_visible(world):
    home, (disagreeing, _), (m1, m2) = world
    result = run(home, "audit", disagreeing)
    out = shown(result)
    assert result.returncode == 0, out
    lines = out.splitlines()
    assert lines[2].startswith("by        process process-x\\x1b[1A\\x1b[2K\\r\\x9b1A")
    assert "PROBLEMS  1" in lines
    assert not any(line.startswith("problems") for line in lines)
    assert f"model     {m2}  DISAGREES with the alias ({m1})" in lines
    assert "(matches the alias)" not in out.replace("\\nproblems  none (matches the alias)", "")
    assert "\\u202eenon\\u202c\\u2066\\u2067\\u2068\\u2069\\u200f" in out
    assert "[link=https://evil.example]x[/link]" in out  # markup shown, not obeyed
    assert "version-x\\x1b[1A" in out and "owner-x\\x1b[1A" in out and "vendor-x" in out


def test_audit_of_an_alias_that_is_no_alias(world):
    home, (_, ghost), _ = world
    out = shown(run(home, "audit", ghost))
    assert "alias     'alias-x\\x1b[1A" in out


def test_alias_history_and_list(world):
    home, _, (m1, _) = world
    result = run(home, "alias", "history", "chat/v1")
    out = shown(result)
    assert result.returncode == 0
    (line,) = out.splitlines()
    assert line.startswith(f"2026-01-02T00:00:00Z  create    {m1}  by actor-x\\x1b[1A\\x1b[2K")
    assert line.endswith("  (reason-x\\x1b[1A\\x1b[2K\\r\\x9b1A\\x1b]8;;https://evil.example/"
                         "\\x07click\\x1b]8;;\\x07\\x1b]0;owned\\x1b\\\\x9d0;owned\\x9c\\u202eenon"
                         "\\u202c\\u2066\\u2067\\u2068\\u2069\\u200f[link=https://evil.example]x"
                         "[/link]\\nproblems  none (matches the alias))")
    listed = shown(run(home, "alias", "list"))
    assert listed == f"{'chat/v1':<32}  {m1}  since 2026-01-02T00:00:00Z\n"


@pytest.mark.parametrize("fmt", ["text", "github", "junit", "json", "sarif"])
def test_check_in_every_format(world, fmt):
    home, _, _ = world
    result = run(home, "check", "--format", fmt, "--select", "MW101")
    out = shown(result)
    assert result.returncode == 1, out
    if fmt == "json":
        # the same JSON value: its escapes decode to exactly the stored text
        (finding,) = orjson.loads(result.stdout)["findings"]
        assert finding["subject"] == finding["evidence"]["alias"] == named("alias")
    elif fmt == "sarif":
        (res,) = orjson.loads(result.stdout)["runs"][0]["results"]
        assert res["properties"]["subject"] == named("alias")
    else:
        assert "alias-x\\x1b[1A\\x1b[2K" in out
    if fmt == "text":
        assert out.count("\nerrors (1)\n  MW101 unattributed-decision  alias-x") == 1


@pytest.mark.parametrize("path", ["/decisions/{disagreeing}", "/decisions/{ghost}",
                                  "/aliases?alias=chat/v1", "/"])
def test_pages_show_controls_and_bidi_overrides_as_escapes(world, path):
    """HTML escaping stops tags, not a right-to-left override: the pages show ledger text
    inert as the terminal does."""
    from fastapi.testclient import TestClient

    from modelward.ledger import tokens
    from modelward.web.app import create_app
    from modelward.web.auth import COOKIE

    home, (disagreeing, ghost), _ = world
    led = modelward.open(str(home))
    try:
        with led.store.write() as conn:
            _tok, secret = tokens.create(conn, role="reader", name="reader")
        client = TestClient(create_app(led.settings, store=led.store))
        client.cookies.set(COOKIE, secret)
        resp = client.get(path.format(disagreeing=disagreeing, ghost=ghost))
    finally:
        led.close()
    assert resp.status_code == 200, resp.text
    leaked = sorted({f"U+{ord(c):04X}" for c in resp.text if c in RAW})
    assert leaked == [], leaked
    assert "x\\x1b[1A\\x1b[2K" in resp.text
    assert "\\u202eenon\\u202c" in resp.text
