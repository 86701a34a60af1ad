"""One parser for every ``--since``/``--until``/``--at`` option and every ``since``/``until``/
``at`` query parameter: an ISO 8601 time or a duration counted back from now."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

import modelward
from modelward.errors import ValidationError
from modelward.ledger import aliases, artifacts, tokens
from modelward.timefmt import iso, now_us, parse_when
from modelward.web.app import create_app

from .cli.runner import Cli

DAY = 86_400_000_000
NOW = 1_772_366_400_000_000  # 2026-03-01T12:00:00Z


def test_parse_when_takes_a_time_or_a_duration_back_from_now():
    assert parse_when(None) is None
    assert parse_when("7d", now=NOW) == NOW - 7 * DAY
    assert parse_when(" 90m ", now=NOW) == NOW - 90 * 60_000_000
    assert parse_when("2026-03-01T12:00:00Z") == NOW
    assert parse_when(NOW) == NOW
    assert NOW - 3 * DAY - 1_000_000 <= parse_when("3d") - (now_us() - NOW) <= NOW - 3 * DAY + 1


@pytest.mark.parametrize(("value", "message"), [
    ("yesterday", "--at: not an ISO 8601 time or a duration: 'yesterday'"),
    ("2026-03-01T12:00:00", "--at: timestamp '2026-03-01T12:00:00' has no UTC offset"),
    ("99999999d", "--at: 99999999d back from now is before year 1"),
])
def test_parse_when_names_what_is_wrong(value, message):
    with pytest.raises(ValidationError) as exc:
        parse_when(value, now=NOW, field="--at")
    assert exc.value.message == message


@pytest.fixture
def moved(tmp_path):
    """chat/v1 on m1 from ten days ago, on m2 from three days ago (a real SQLite file)."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    led = modelward.open(str(tmp_path / "home"), database_url=url)
    now = now_us()
    digests = []
    for content in (b"weights-1", b"weights-2"):
        path = tmp_path / f"{len(digests)}.bin"
        path.write_bytes(content)
        digests.append(artifacts.register_path(led.store, "model", path, name="chat",
                                               at=now - 20 * DAY).artifact.digest)
    with led.store.write() as conn:
        aliases.set_alias(conn, "chat/v1", digests[0], at=now - 10 * DAY)
        aliases.set_alias(conn, "chat/v1", digests[1], at=now - 3 * DAY)
        _tok, secret = tokens.create(conn, role="reader", name="reader")
    yield led, Cli(tmp_path / "home", url), digests, secret
    led.close()


def test_cli_at_since_and_until_take_durations(moved):
    led, cli, (m1, m2), _ = moved
    assert cli.ok("alias", "resolve", "chat/v1", "--at", "7d") == m1 + "\n"
    assert cli.ok("alias", "resolve", "chat/v1", "--at", "2d") == m2 + "\n"
    assert "did not exist at" in cli.fails("alias", "resolve", "chat/v1", "--at", "11d")
    assert cli.fails("alias", "resolve", "chat/v1", "--at", "last week") == (
        "error: --at: not an ISO 8601 time or a duration: 'last week'\n"
        "hint: write a time such as 2026-03-01T12:00:00Z, or a duration back from now such "
        "as 7d\n")
    assert cli.ok("decisions", "search", "--since", "1d", "--until", "1h") in ("", "no decisions\n")
    assert cli.fails("decisions", "search", "--until", "1x").startswith(
        "error: --until: not an ISO 8601 time or a duration: '1x'")


def test_api_and_pages_read_times_as_the_cli_does(moved):
    led, cli, (m1, m2), secret = moved
    client = TestClient(create_app(led.settings, store=led.store))
    auth = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/aliases/chat/v1", params={"at": "7d"},
                      headers=auth).json()["digest"] == m1
    assert client.get("/api/v1/aliases/chat/v1", params={"at": "2d"},
                      headers=auth).json()["digest"] == m2
    assert client.get("/api/v1/decisions", params={"since": "1d"}, headers=auth).status_code == 200
    for path, params in (("/api/v1/findings", {"since": "99999999d"}),
                         ("/api/v1/aliases/chat/v1", {"at": "99999999d"}),
                         ("/api/v1/decisions", {"until": "soon"})):
        resp = client.get(path, params=params, headers=auth)
        assert resp.status_code == 422, (path, resp.text)
        assert resp.json()["error"]["field"] == next(iter(params))
    client.cookies.set("modelward_token", secret)
    page = client.get("/aliases", params={"alias": "chat/v1", "at": "7d"})
    assert page.status_code == 200 and iso(now_us())[:4] in page.text
