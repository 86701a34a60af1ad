"""Aliases on every backend: append-only, time-indexed history with rollbacks."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from modelward.errors import UnknownAliasError, UnknownArtifactError, ValidationError
from modelward.ledger import aliases, artifacts
from modelward.ledger.schema import alias_events
from modelward.timefmt import iso, parse_time

T = parse_time("2026-01-01T00:00:00Z")
HOUR = 3_600_000_000
DAY = 24 * HOUR


def register(store, tmp_path, n: int) -> list[str]:
    digests = []
    for i in range(n):
        f = tmp_path / f"ckpt-{i}.bin"
        f.write_bytes(f"weights {i}".encode())
        digests.append(artifacts.register_path(store, "model", f, name=f"ckpt-{i}").artifact.digest)
    return digests


def events(store) -> int:
    with store.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(alias_events)).scalar()


@pytest.fixture
def rotated(store, tmp_path):
    """chat/v1: created on day 0, four rotations (days 30, 60, 90, 120), a six-hour incident
    move to ckpt-4 on day 121 rolled back to ckpt-3 six hours later."""
    d = register(store, tmp_path, 5)
    plan = [(T, d[0], None), (T + 30 * DAY, d[1], None), (T + 60 * DAY, d[2], None),
            (T + 90 * DAY, d[3], None), (T + 120 * DAY, d[4], None),
            (T + 121 * DAY, d[3], "incident: ckpt-4 refuses too much")]
    kinds = []
    with store.write() as conn:
        for at, digest, reason in plan:
            ev, moved = aliases.set_alias(conn, "chat/v1", digest, at=at, reason=reason,
                                          actor="oncall@acme.io")
            assert moved
            kinds.append(ev.kind)
    assert kinds == ["create", "move", "move", "move", "move", "rollback"]
    return d


POINTS = [(0, 0), (1, 0), (30 * DAY - 1, 0), (30 * DAY, 1), (45 * DAY, 1), (60 * DAY, 2),
          (90 * DAY - 1, 2), (90 * DAY, 3), (120 * DAY, 4), (121 * DAY - 1, 4), (121 * DAY, 3),
          (400 * DAY, 3)]


def test_resolve_at_every_point_of_the_history(store, rotated):
    with store.read() as conn:
        for offset, expected in POINTS:
            res = aliases.resolve_at(conn, "chat/v1", T + offset)
            assert (offset, res.digest) == (offset, rotated[expected])
            assert res.at == T + offset and res.artifact_kind == "model"


def test_resolution_names_the_event(store, rotated):
    with store.read() as conn:
        now = aliases.resolve_at(conn, "chat/v1")
        hist = aliases.history(conn, "chat/v1")
    assert now.digest == rotated[3] and now.kind == "rollback" and now.since == T + 121 * DAY
    assert now.event_id == hist[-1].id
    assert now.to_dict()["since"] == "2026-05-02T00:00:00Z"
    assert [e.digest for e in hist] == [rotated[i] for i in (0, 1, 2, 3, 4, 3)]
    assert [e.previous_digest for e in hist] == [None] + [rotated[i] for i in (0, 1, 2, 3, 4)]
    assert hist[-1].reason == "incident: ckpt-4 refuses too much"
    assert hist[-1].actor == "oncall@acme.io"
    assert hist[-1].to_dict()["at"] == iso(T + 121 * DAY)


def test_before_the_alias_existed(store, rotated):
    with store.read() as conn:
        with pytest.raises(UnknownAliasError) as exc:
            aliases.resolve_at(conn, "chat/v1", T - 1)
        assert exc.value.message == ("alias 'chat/v1' did not exist at 2025-12-31T23:59:59.999999Z; "
                                     "it was first set at 2026-01-01T00:00:00Z")
        with pytest.raises(UnknownAliasError, match="no alias named 'chat/v2'"):
            aliases.resolve_at(conn, "chat/v2")
        with pytest.raises(UnknownAliasError, match="no alias named 'chat/v2'"):
            aliases.history(conn, "chat/v2")


def test_unregistered_digest_is_refused(store, tmp_path):
    missing = "sha256:" + "ab" * 32
    with store.write() as conn:
        with pytest.raises(UnknownArtifactError, match=f"cannot point chat/v1 at {missing}"):
            aliases.set_alias(conn, "chat/v1", missing)
        with pytest.raises(ValidationError) as exc:
            aliases.set_alias(conn, "chat/v1", "chat/v0")
        assert exc.value.field == "digest"
    assert events(store) == 0


BAD_NAMES = ["", "/leading", "has space", "sha256:" + "a" * 64, "x" * 201, "tab\tname", None, 5]


def test_bad_alias_names(store, tmp_path):
    digest = register(store, tmp_path, 1)[0]
    with store.write() as conn:
        for name in BAD_NAMES:
            with pytest.raises(ValidationError, match="not a valid alias name") as exc:
                aliases.set_alias(conn, name, digest)
            assert exc.value.field == "alias"
    assert events(store) == 0


def test_history_is_append_only(store, rotated):
    with store.write() as conn:
        with pytest.raises(ValidationError) as exc:
            aliases.set_alias(conn, "chat/v1", rotated[0], at=T + 100 * DAY)
    assert exc.value.field == "at"
    assert exc.value.message == ("at: 2026-04-11T00:00:00Z is before the alias's last move at "
                                 "2026-05-02T00:00:00Z; history is append-only")
    assert events(store) == 6
    with store.write() as conn:  # at the same instant is not before it
        ev, moved = aliases.set_alias(conn, "chat/v1", rotated[4], at=T + 121 * DAY)
    assert moved and ev.kind == "rollback"
    with store.read() as conn:
        assert aliases.resolve_at(conn, "chat/v1", T + 121 * DAY).digest == rotated[4]


def test_same_digest_twice_records_nothing(store, rotated):
    with store.write() as conn:
        ev, moved = aliases.set_alias(conn, "chat/v1", rotated[3], at=T + 200 * DAY,
                                      reason="again")
    assert not moved and ev.at == T + 121 * DAY and ev.kind == "rollback"
    assert events(store) == 6


def test_aliases_are_independent_and_listed(store, tmp_path):
    a, b = register(store, tmp_path, 2)
    with store.write() as conn:
        aliases.set_alias(conn, "prompt/support@production", a, at=T)
        aliases.set_alias(conn, "chat/v1", b, at=T + 5, kind="promote",
                          evidence={"eval_run": "r-1", "score": 0.91})
        aliases.set_alias(conn, "chat/v1", a, at=T + 10)
    with store.read() as conn:
        listed = aliases.list_aliases(conn)
        assert [(e.alias, e.digest) for e in listed] == [("chat/v1", a), ("prompt/support@production", a)]
        first = aliases.history(conn, "chat/v1")[0]
        assert first.kind == "promote" and first.evidence == {"eval_run": "r-1", "score": 0.91}
        assert [e.alias for e in aliases.all_events(conn)] == ["chat/v1", "chat/v1",
                                                               "prompt/support@production"]
        with pytest.raises(UnknownAliasError):
            aliases.resolve_at(conn, "prompt/support@production", T - 1)
        assert aliases.resolve_at(conn, "chat/v1", T + 7).digest == b


def test_targets_at_agrees_with_resolve_at_for_every_alias_at_every_moment(store, rotated,
                                                                           tmp_path):
    """The one "where did each alias point at t" answers as resolve_at does, alias by
    alias, at every point of the history."""
    f = tmp_path / "support.txt"
    f.write_text("You are a support assistant.")
    prompt = artifacts.register_path(store, "prompt", f, name="support").artifact.digest
    with store.write() as conn:
        aliases.set_alias(conn, "prompt/support", prompt, at=T + 45 * DAY)
        aliases.set_alias(conn, "embed/prod", rotated[1], at=T + 45 * DAY)  # same moment
    with store.read() as conn:
        for offset, expected in POINTS:
            at = T + offset
            want = {"chat/v1": rotated[expected]}
            for name in ("prompt/support", "embed/prod"):
                try:
                    want[name] = aliases.resolve_at(conn, name, at).digest
                except UnknownAliasError:
                    pass
            assert aliases.targets_at(conn, at) == want
        assert aliases.targets_at(conn, T - 1) == {}
        assert aliases.targets_at(conn, None) == {e.alias: e.digest
                                                  for e in aliases.list_aliases(conn)}
        assert aliases.live_aliases(conn, T + 50 * DAY) == {
            rotated[1]: ["chat/v1", "embed/prod"], prompt: ["prompt/support"]}
        # every alias that ever named a digest, the latest to do so first
        assert aliases.names_of(conn)[rotated[1]] == ["embed/prod", "chat/v1"]
        assert aliases.names_of(conn)[rotated[3]] == ["chat/v1"]


def test_ledger_resolve_reads_fresh_every_call(ledger, tmp_path):
    a, b = register(ledger.store, tmp_path, 2)
    with ledger.store.write() as conn:
        aliases.set_alias(conn, "chat/v1", a, at=T)
    assert ledger.resolve("chat/v1").digest == a
    with ledger.store.write() as conn:
        aliases.set_alias(conn, "chat/v1", b, at=T + DAY)
    assert ledger.resolve("chat/v1").digest == b
    assert ledger.resolve("chat/v1", at="2026-01-01T12:00:00Z").digest == a
    with pytest.raises(ValidationError, match="has no UTC offset"):
        ledger.resolve("chat/v1", at="2026-01-01T12:00:00")


def test_concurrent_moves_keep_history_consistent(store, tmp_path):
    """Deploy jobs racing to move one alias: identical moves are recorded once, and every
    event's previous digest is the digest of the event before it."""
    import threading

    digests = register(store, tmp_path, 4)
    with store.write() as conn:
        aliases.set_alias(conn, "chat/v1", digests[0], at=T)
    errors: list[BaseException] = []

    def move(digest, barrier):
        barrier.wait()
        try:
            with store.write() as conn:
                aliases.set_alias(conn, "chat/v1", digest)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    barrier = threading.Barrier(8)
    threads = [threading.Thread(target=move, args=(digests[1], barrier)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and events(store) == 2
    barrier = threading.Barrier(9)
    threads = [threading.Thread(target=move, args=(digests[1 + i % 3], barrier)) for i in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.read() as conn:
        hist = aliases.history(conn, "chat/v1")
    for before, after in zip(hist, hist[1:], strict=False):
        assert after.previous_digest == before.digest and after.digest != before.digest
        assert after.at >= before.at
