"""The watch's in-memory window (``ledger.rollup_window``): the rollup reads the counting
guards make answer from it exactly as from the rollups in SQL and from the decisions
themselves, through random sequences of writes, alias moves and window slides, on SQLite and
PostgreSQL; and a trigger reads what is new, not the window."""

from __future__ import annotations

import random

from modelward.guards.incremental import Incremental
from modelward.guards.runner import run
from modelward.ledger import retention, rollup_window, usage
from modelward.ledger.rollup_window import WindowRollups

from .builders import HOUR, MIN, T0, move, put, put_hosted, record

GUARDS = {"MW101", "MW102", "MW104", "MW105", "MW301"}


class _Conn:
    """A connection carrying an in-memory window, as a guards' view does."""

    def __init__(self, conn, state):
        self._conn = conn
        self.rollup_window = state

    def execute(self, statement):
        return self._conn.execute(statement)


def _prompt_pairs(rows):
    return sorted(rows)


def _answers(conn, since):
    """Every aggregate read the counting guards make through ``rollup_usage``."""
    out = {}
    out["digests"] = usage.digest_usage(conn, since=since, rollups=True)
    out["references"] = retention.decision_references(conn, since=since, rollups=True)
    out["pairs"] = _prompt_pairs(usage.prompt_model_usage(conn, since=since, rollups=True))
    groups, _examples = usage.aliases_without_digest(conn, since=since, examples=0,
                                                     rollups=True)
    out["alias_groups"] = sorted(groups)
    for subject in usage.VENDOR_SUBJECTS:
        served = [tuple(r) for r in usage.served_ids(conn, since=since, subject=subject,
                                                     rollups=True)]
        out["served", subject] = served
        digests = {r[0] for r in served}
        out["counts", subject] = usage.vendor_value_counts(
            conn, "vendor_model_id", digests, since=since, subject=subject, rollups=True)
        out["changes", subject] = sorted(map(tuple, usage.vendor_changes(
            conn, "vendor_model_id", since=since, subject=subject, rollups=True)))
    return out


def _raw(conn, since):
    """The same reads from the decisions themselves (the reference)."""
    out = {}
    out["digests"] = usage.digest_usage(conn, since=since)
    out["references"] = retention.decision_references(conn, since=since)
    out["pairs"] = _prompt_pairs(usage.prompt_model_usage(conn, since=since))
    groups, _examples = usage.aliases_without_digest(conn, since=since, examples=0)
    out["alias_groups"] = sorted(groups)
    return out


def _world(store, rng):
    models = [put(store, "model", f"weights-{i}".encode(), "chat", f"v{i}") for i in range(3)]
    prompts = [put(store, "prompt", f"prompt {i}".encode(), "support", str(i)) for i in range(2)]
    hosted = put_hosted(store, "openai:gpt-4o-mini-2024-07-18", "mini")
    move(store, "chat/v1", models[0], T0 - 10 * HOUR)
    move(store, "prompt/p", prompts[0], T0 - 10 * HOUR)
    return models + ["sha256:" + "cd" * 32], prompts, hosted


def _decisions(rng, models, prompts, hosted, start, n):
    out = []
    for _ in range(n):
        at = start + rng.randrange(0, 3 * HOUR)
        kind = rng.random()
        if kind < 0.2:
            out.append(dict(at=at, alias="chat/mini", process=rng.choice(["api", "api-2"]),
                            model_digest=hosted,
                            vendor_model_id=rng.choice(["gpt-4o-mini-2024-07-18",
                                                        "gpt-4o-mini"])))
        elif kind < 0.3:
            out.append(dict(at=at, alias="chat/v1", process="hand"))  # no digest
        else:
            out.append(dict(at=at, alias=rng.choice(["chat/v1", None]),
                            process=rng.choice(["pod-a", "pod-b", "pod-c"]),
                            model_digest=rng.choice(models),
                            prompt_digest=rng.choice(prompts + [None])))
    return out


def _sequence(ledger, seed: int, steps: int, *, guards: bool):
    rng = random.Random(seed)
    store = ledger.store
    models, prompts, hosted = _world(store, rng)
    state = WindowRollups()
    since, clock, moved = None, T0, T0  # all history first, then a window that slides
    checked, fired = 0, set()
    for step in range(steps):
        action = rng.random()
        if action < 0.55:
            # mostly new traffic; sometimes a late back-fill reaching before the window
            start = clock if rng.random() < 0.8 else (since or T0) - rng.randrange(0, 3 * HOUR)
            record(store, _decisions(rng, models, prompts, hosted, start,
                                     rng.randrange(1, 40)), block=rng.choice([3, 7, 13, 40]))
            clock += rng.randrange(0, HOUR)
        elif action < 0.7:
            moved = max(moved + 1, clock + rng.randrange(0, HOUR))
            move(store, "chat/v1", rng.choice(models[:3]), moved)
        elif since is None:
            since = T0
        else:  # the window slides: sometimes onto an hour's edge, sometimes by a minute
            since += rng.choice([MIN, 17 * MIN, HOUR, 2 * HOUR + 1, -(since % HOUR) + HOUR])
        with store.read() as conn:
            want = _answers(conn, since)
            raw = _raw(conn, since)
            got = _answers(_Conn(conn, state), since)
        assert got == want, (seed, step)
        for k, v in raw.items():
            assert want[k] == v, (seed, step, k)
        checked += 1
        if guards and step % 5 == 4:
            fired |= _same_findings(ledger, since)
    return checked, state, fired


def _same_findings(ledger, since):
    now = (since or T0) + 30 * HOUR
    state = Incremental()
    plain = run(ledger.store, ledger.settings, only=GUARDS, since=since, now=now)
    kept = run(ledger.store, ledger.settings, only=GUARDS, since=since, now=now,
               incremental=state)
    assert [f.to_dict() for f in kept.findings] == [f.to_dict() for f in plain.findings]
    again = run(ledger.store, ledger.settings, only=GUARDS, since=since, now=now,
                incremental=state)  # from the state built by the run before
    assert [f.to_dict() for f in again.findings] == [f.to_dict() for f in plain.findings]
    return {f.code for f in plain.findings}


def test_the_window_in_memory_answers_as_sql_through_random_histories(ledger):
    checked, state, _ = _sequence(ledger, seed=7, steps=60, guards=False)
    assert checked == 60 and state.folded > 0


def test_a_second_random_history_with_the_guards_findings(ledger):
    _, _, fired = _sequence(ledger, seed=2026, steps=30, guards=True)
    assert {"MW101", "MW104", "MW105"} <= fired  # the comparison is of findings, not of none


def test_a_block_across_an_hour_and_a_late_back_fill(ledger):
    """A block whose decisions reach past its hour's end is kept as a spill and read from
    the database once the window's start passes its hour; a back-fill older than the
    window is left out; a block whose rows straddle the start is read from decisions."""
    store = ledger.store
    rng = random.Random(1)
    models, prompts, hosted = _world(store, rng)
    state = WindowRollups()
    # one block from 00:50 to 03:10 (one writer, slow traffic)
    record(store, [dict(at=T0 + 50 * MIN + i * 10 * MIN, alias="chat/v1", process="slow",
                        model_digest=models[0]) for i in range(15)], block=15)
    for since in (T0, T0 + HOUR, T0 + HOUR + 5 * MIN, T0 + 2 * HOUR + 59 * MIN,
                  T0 + 4 * HOUR):
        if since == T0 + 2 * HOUR + 59 * MIN:  # a back-fill from before the window
            record(store, [dict(at=T0 + i * MIN, alias="chat/v1", process="late",
                                model_digest=models[1]) for i in range(5)], block=5)
        with store.read() as conn:
            assert _answers(_Conn(conn, state), since) == _answers(conn, since), since
    assert state.spill == {} and state.size() == 0  # all of it left the window


def test_a_trigger_reads_the_new_blocks_not_the_window(ledger):
    """The rows a trigger reads follow the blocks sealed since the last one (plus the hour
    the window's start cuts), not the window: ten times the window, the same reads."""
    store = ledger.store
    rng = random.Random(3)
    models, prompts, hosted = _world(store, rng)
    state = WindowRollups()
    since = T0

    def batch(hour, n=40):  # one block per process and hour: 3 rollup rows per block
        return [dict(at=T0 + hour * HOUR + i * MIN, alias="chat/v1",
                     process=f"pod-{i % 3}", model_digest=models[0]) for i in range(n)]

    def trigger():
        before = rollup_window.Reads(state.reads.statements, state.reads.rows)
        with store.read() as conn:
            state.rows(_Conn(conn, state), since)
        return state.reads.rows - before.rows, state.reads.statements - before.statements

    for hour in range(1, 6):
        record(store, batch(hour), block=40)
    trigger()
    small = []
    for hour in range(6, 9):  # a window of 5 hours: one new block per trigger
        record(store, batch(hour), block=40)
        small.append(trigger())
    for hour in range(9, 60):  # the window grows tenfold
        record(store, batch(hour), block=40)
        trigger()
    large = []
    for hour in range(60, 63):
        record(store, batch(hour), block=40)
        large.append(trigger())
    assert large == small  # the same rows and statements at 10x the window
    assert all(rows <= 3 + 1 + 3 for rows, _ in large)  # new block, head, cut hour's block
    with store.read() as conn:  # and still the SQL answer
        assert _answers(_Conn(conn, state), since) == _answers(conn, since)


def test_a_window_that_grows_back_starts_afresh(ledger):
    store = ledger.store
    models, prompts, hosted = _world(store, random.Random(5))
    record(store, _decisions(random.Random(6), models, prompts, hosted, T0, 60), block=7)
    state = WindowRollups()
    for since in (T0 + 2 * HOUR, T0 + HOUR, None, T0 + 3 * HOUR):
        with store.read() as conn:
            assert _answers(_Conn(conn, state), since) == _answers(conn, since), since


def test_a_guard_run_from_the_state_reads_the_new_blocks_not_the_window(ledger):
    """The same through the guards: the counting guards run with a watch's state read, per
    trigger, the same rows at a window of 5 hours and of 50."""
    store = ledger.store
    models, prompts, hosted = _world(store, random.Random(4))
    state = Incremental()
    now = T0 + 100 * HOUR

    def batch(hour):
        return [dict(at=T0 + hour * HOUR + i * MIN, alias="chat/v1", process=f"pod-{i % 3}",
                     model_digest=models[i % 2], prompt_digest=prompts[0])
                for i in range(40)]

    def trigger():
        rows = state.window.reads.rows
        run(store, ledger.settings, only=GUARDS, since=T0, now=now, incremental=state)
        return state.window.reads.rows - rows

    for hour in range(1, 6):
        record(store, batch(hour), block=40)
    trigger()
    small = []
    for hour in range(6, 9):
        record(store, batch(hour), block=40)
        small.append(trigger())
    for hour in range(9, 55):
        record(store, batch(hour), block=40)
    trigger()
    large = []
    for hour in range(55, 58):
        record(store, batch(hour), block=40)
        large.append(trigger())
    assert large == small and max(large) < 20
