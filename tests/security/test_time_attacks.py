"""A host with a wrong clock: decisions dated beyond the configured bounds, and alias moves
dated in the future, are refused where they are recorded, naming the field, and nothing
is written."""

from __future__ import annotations

import orjson
import pytest

import modelward
from modelward.errors import ValidationError
from modelward.ledger import aliases, artifacts, decisions
from modelward.timefmt import iso, now_us

from ..web import apiclient
from ..web.apiclient import error

api = apiclient.api  # the fixture
MIN = 60_000_000
DAY = 24 * 60 * MIN


def _count(store) -> int:
    with store.read() as conn:
        return decisions.count(conn)


def test_a_decision_dated_ahead_of_its_recording_is_refused_at_record(ledger):
    now = now_us()
    ledger.record(at=now + 4 * MIN, subject="a")  # within the default 5m skew
    with pytest.raises(ValidationError) as exc:
        ledger.record(at=now + 3 * 60 * MIN, subject="b")
    assert exc.value.field == "at"
    assert "after it was recorded" in exc.value.detail and "beyond clock_skew (5m)" in \
        exc.value.detail
    # far in the past is accepted unless an ingest window is configured
    ledger.record(at=now - 300 * DAY, subject="c")
    ledger.flush()
    assert _count(ledger.store) == 2


def test_the_bounds_are_settings(tmp_path, backend_url):
    led = modelward.open(str(tmp_path / "h"), database_url=backend_url, clock_skew="1h",
                         ingest_window="7d")
    try:
        now = now_us()
        led.record(at=now + 50 * MIN, subject="ahead")
        with pytest.raises(ValidationError, match=r"before it was recorded .* beyond "
                                                  r"ingest_window \(7d\)"):
            led.record(at=now - 8 * DAY, subject="behind")
        led.flush()
        assert _count(led.store) == 1
    finally:
        led.close()


def test_the_api_and_an_import_refuse_the_whole_batch(api, tmp_path):
    ahead = iso(now_us() + DAY)
    good = {"id": "0196c1d2-0000-7000-8000-000000000001", "subject": "s"}
    bad = {"id": "0196c1d2-0000-7000-8000-000000000002", "subject": "s", "at": ahead}
    err = error(api.post("/api/v1/decisions", json=[good, bad]), 422)
    assert err["field"] == "decisions[1].at" and "beyond clock_skew" in err["message"]
    lines = [orjson.dumps(good), orjson.dumps(bad)]
    with pytest.raises(ValidationError, match="line 2: at: .* beyond clock_skew"):
        decisions.import_jsonl(api.store, lines)
    assert _count(api.store) == 0


def test_an_alias_move_dated_in_the_future_is_refused(store):
    digest = artifacts.register_bytes(store, "model", b"w", name="m").artifact.digest
    with store.write() as conn:
        aliases.set_alias(conn, "chat/v1", digest)
    other = artifacts.register_bytes(store, "model", b"w2", name="m").artifact.digest
    with pytest.raises(ValidationError, match="is in the future") as exc, \
            store.write() as conn:
        aliases.set_alias(conn, "chat/v1", other, at=now_us() + DAY)
    assert exc.value.field == "at"
    # nothing was recorded: list and resolve agree on the current target
    with store.read() as conn:
        assert aliases.resolve_at(conn, "chat/v1").digest == digest
        assert [e.digest for e in aliases.list_aliases(conn)] == [digest]
