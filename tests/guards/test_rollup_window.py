"""The watch's in-memory window (``ledger.rollup_window``): the rollup reads the counting
guards make answer from it exactly as from the rollups in SQL and from the decisions
themselves, through random sequences of writes, alias moves and window slides, on SQLite and
PostgreSQL; and a trigger reads what is new, not the window."""

from __future__ import annotations

import random

from modelward.guards.incremental import Incremental
from modelward.guards.runner import run
from modelward.ledger import retention, rollup_usage, rollup_window, usage
from modelward.ledger.rollup_window import WindowRollups

from .builders import HOUR, MIN, T0, move, put, put_hosted, record

GUARDS = {"MW101", "MW102", "MW104", "MW105", "MW301", "MW502"}
UNREGISTERED = "sha256:" + "cd" * 32
EMBEDDERS = ["sha256:" + "e1" * 32, "sha256:" + "e2" * 32, None]
RERANKERS = ["sha256:" + "a1" * 32, None]


class _Conn:
    """A connection carrying an in-memory window, as a guards' view does."""

    def __init__(self, conn, state):
        self._conn = conn
        self.rollup_window = state

    def execute(self, statement):
        return self._conn.execute(statement)


def _prompt_pairs(rows):
    return sorted(rows)


def _ints(rows):
    return sorted((tuple(v if v is None or isinstance(v, str) else int(v) for v in r)
                   for r in rows), key=repr)


def _gates(conn, since, until, rollups):
    """MW502's reads (``until``: the check's now); the blocks of the latest cuts only
    from the rollups."""
    out = {"gates": _ints(usage.gate_substrates(conn, since=since, until=until,
                                                rollups=rollups)),
           "cuts": _ints(usage.latest_gate_cuts(conn, since=since, until=until,
                                                rollups=rollups))}
    if rollups:
        out["cut_blocks"] = rollup_usage.latest_cut_blocks(conn, since=since, until=until)
    return out


def _answers(conn, since, until=None):
    """Every aggregate read the counting guards make through ``rollup_usage``."""
    out = {}
    if until is not None:
        out.update(_gates(conn, since, until, True))
    out["digests"] = usage.digest_usage(conn, since=since, rollups=True)
    out["references"] = retention.decision_references(conn, since=since, rollups=True)
    out["pairs"] = _prompt_pairs(usage.prompt_model_usage(conn, since=since, rollups=True))
    groups, examples = usage.aliases_without_digest(conn, since=since, examples=3,
                                                    rollups=True)
    out["alias_groups"] = sorted(groups)
    out["alias_examples"] = examples
    out["unregistered"] = usage.unregistered_examples(
        conn, "model_digest", since=since, examples=3, digests=[UNREGISTERED])
    out["stale"] = usage.stale_counts(conn, _ranges(out["digests"]), since=since, rollups=True)
    for subject in usage.VENDOR_SUBJECTS:
        served = [tuple(r) for r in usage.served_ids(conn, since=since, subject=subject,
                                                     rollups=True)]
        out["served", subject] = served
        digests = {r[0] for r in served}
        out["counts", subject] = usage.vendor_value_counts(
            conn, "vendor_model_id", digests, since=since, subject=subject, rollups=True)
        out["changes", subject] = sorted(map(tuple, usage.vendor_changes(
            conn, "vendor_model_id", since=since, subject=subject, rollups=True)))
        out["fp_changes", subject] = sorted(map(tuple, usage.vendor_changes(
            conn, "vendor_fingerprint", since=since, subject=subject, rollups=True)))
    return out


def _raw(conn, since, until=None):
    """The same reads from the decisions themselves (the reference)."""
    out = {}
    if until is not None:
        out.update(_gates(conn, since, until, False))
    out["digests"] = usage.digest_usage(conn, since=since)
    out["references"] = retention.decision_references(conn, since=since)
    out["pairs"] = _prompt_pairs(usage.prompt_model_usage(conn, since=since))
    groups, examples = usage.aliases_without_digest(conn, since=since, examples=3)
    out["alias_groups"] = sorted(groups)
    out["alias_examples"] = examples
    out["unregistered"] = {k: v for k, v in usage.unregistered_examples(
        conn, "model_digest", since=since, examples=3).items() if k == UNREGISTERED}
    out["stale"] = usage.stale_counts(conn, _ranges(out["digests"]), since=since)
    for subject in usage.VENDOR_SUBJECTS:
        out["fp_changes", subject] = sorted(map(tuple, usage.vendor_changes(
            conn, "vendor_fingerprint", since=since, subject=subject)))
    return out


def _ranges(digests):
    """Stale ranges (MW105) over the models the window's decisions name: each its own
    span of hours, some open-ended, cutting through blocks at both ends."""
    models = sorted(d for f, d in digests if f == "model_digest")
    return [usage.StaleRange("chat/v1", d, "model_digest", T0 + i * HOUR + 7 * MIN,
                             None if i % 2 else T0 + (i + 3) * HOUR + 11 * MIN)
            for i, d in enumerate(models)] + [
        usage.StaleRange("chat/mini", d, "model_digest", T0 + 2 * HOUR, T0 + 2 * HOUR + 40 * MIN)
        for d in models]


def _world(store, rng):
    models = [put(store, "model", f"weights-{i}".encode(), "chat", f"v{i}") for i in range(3)]
    prompts = [put(store, "prompt", f"prompt {i}".encode(), "support", str(i)) for i in range(2)]
    hosted = put_hosted(store, "openai:gpt-4o-mini-2024-07-18", "mini")
    move(store, "chat/v1", models[0], T0 - 10 * HOUR)
    move(store, "prompt/p", prompts[0], T0 - 10 * HOUR)
    return models + [UNREGISTERED], prompts, hosted


def _decisions(rng, models, prompts, hosted, start, n):
    out = []
    for _ in range(n):
        at = start + rng.randrange(0, 3 * HOUR)
        kind = rng.random()
        if kind < 0.2:
            out.append(dict(at=at, alias="chat/mini", process=rng.choice(["api", "api-2"]),
                            model_digest=hosted,
                            vendor_model_id=rng.choice(["gpt-4o-mini-2024-07-18",
                                                        "gpt-4o-mini"]),
                            vendor_fingerprint=rng.choice(["fp_a", "fp_a", "fp_b", None])))
        elif kind < 0.3:
            out.append(dict(at=at, alias="chat/v1", process="hand"))  # no digest
        else:
            d = dict(at=at, alias=rng.choice(["chat/v1", "rag/a", None]),
                     process=rng.choice(["pod-a", "pod-b", "pod-c"]),
                     model_digest=rng.choice(models),
                     prompt_digest=rng.choice(prompts + [None]))
            if rng.random() < 0.6:  # retrieval gate figures (MW502), some partial
                gate = {"threshold": rng.choice([0.3, 0.4, None]),
                        "candidates": rng.choice([0, 5, 10, 20, None]),
                        "passed": rng.choice([0, 2, 5, None])}
                d.update(embedder_digest=rng.choice(EMBEDDERS),
                         reranker_digest=rng.choice(RERANKERS),
                         gate={k: v for k, v in gate.items() if v is not None})
                if (gate["candidates"] or 0) < (gate["passed"] or 0):
                    d["gate"]["candidates"] = gate["passed"]
            out.append(d)
    return out


_NULL_GATES = ", ".join(f"{c} = NULL" for c in ("gated", "gate_first_at", "gate_passed",
                                                "gate_candidates", "gate_xx", "gate_xn",
                                                "gate_nn", "cut_last_at"))


def _sequence(ledger, seed: int, steps: int, *, guards: bool):
    rng = random.Random(seed)
    store = ledger.store
    models, prompts, hosted = _world(store, rng)
    state = WindowRollups()
    since, clock, moved = None, T0, T0  # all history first, then a window that slides
    checked, fired, late, gated, stale, fp, examples = 0, set(), 0, 0, 0, 0, 0
    for step in range(steps):
        action = rng.random()
        if action < 0.55:
            # mostly new traffic; sometimes a late back-fill reaching before the window
            start = clock if rng.random() < 0.8 else (since or T0) - rng.randrange(0, 3 * HOUR)
            with store.read() as conn:
                head = conn.exec_driver_sql("SELECT MAX(block) FROM decision_rollups").scalar()
            record(store, _decisions(rng, models, prompts, hosted, start,
                                     rng.randrange(1, 40)), block=rng.choice([3, 7, 13, 40]))
            if rng.random() < 0.15:  # written by a modelward before the gate sums
                with store.write() as conn:
                    conn.exec_driver_sql(
                        f"UPDATE decision_rollups SET {_NULL_GATES} WHERE block > {head or 0}")
            clock += rng.randrange(0, HOUR)
        elif action < 0.7:
            moved = max(moved + 1, clock + rng.randrange(0, HOUR))
            move(store, "chat/v1", rng.choice(models[:3]), moved)
        elif since is None:
            since = T0
        else:  # the window slides: sometimes onto an hour's edge, sometimes by a minute
            since += rng.choice([MIN, 17 * MIN, HOUR, 2 * HOUR + 1, -(since % HOUR) + HOUR])
        until = clock + HOUR  # the check's now: later decisions are left out
        with store.read() as conn:
            want = _answers(conn, since, until)
            raw = _raw(conn, since, until)
            got = _answers(_Conn(conn, state), since, until)
        assert got == want, (seed, step)
        assert state.gate_until == until  # answered from the state, not in SQL
        late += bool(state.pending) and max(last for _b, last, _r in state.pending.values()) > until
        gated += bool(want["gates"])
        stale += bool(want["stale"])
        fp += bool(want["fp_changes", "model_digest"])
        examples += bool(want["unregistered"]) and bool(want["alias_examples"])
        for k, v in raw.items():
            assert want[k] == v, (seed, step, k)
        checked += 1
        if guards and step % 5 == 4:
            fired |= _same_findings(ledger, since)
    # decisions after the check's now, gates, stale counts and fingerprint changes compared
    assert late and gated and stale and fp and examples
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


def test_gate_sums_read_until_an_earlier_now_go_to_sql(ledger):
    """MW502's sums are kept up to the latest ``until`` read; a read until an earlier
    moment is answered in SQL, the same as the rollups' answer."""
    store = ledger.store
    models, prompts, hosted = _world(store, random.Random(8))
    record(store, _decisions(random.Random(9), models, prompts, hosted, T0, 80), block=7)
    state = WindowRollups()
    for until in (T0 + 3 * HOUR, T0 + HOUR, T0 + 2 * HOUR):
        with store.read() as conn:
            assert _answers(_Conn(conn, state), T0, until) == _answers(conn, T0, until)
            assert _gates(conn, T0, until, False) == {
                k: v for k, v in _answers(conn, T0, until).items()
                if k in ("gates", "cuts")}
    assert state.gate_until == T0 + 3 * HOUR


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


def test_with_a_state_no_read_goes_over_the_window_in_sql(ledger, monkeypatch):
    """Every rollup read the counting guards and MW502 make (gate sums, latest cuts, stale
    counts, change points, examples) answers from the state: the SQL window is never
    built, and the answers are still the SQL path's."""
    from modelward.ledger import rollups

    store = ledger.store
    rng = random.Random(12)
    models, prompts, hosted = _world(store, rng)
    record(store, _decisions(rng, models, prompts, hosted, T0, 300), block=13)
    state = WindowRollups()
    for since, until in ((None, T0 + 2 * HOUR), (T0 + HOUR + 7 * MIN, T0 + 3 * HOUR)):
        with store.read() as conn:
            want = _answers(conn, since, until)
            assert want["gates"] and want["stale"] and want["cut_blocks"]
            with monkeypatch.context() as m:
                def refused(*a, **k):
                    raise AssertionError("the window read in SQL")

                m.setattr(rollups, "window", refused)
                m.setattr(rollups, "raw_blocks", refused)
                assert _answers(_Conn(conn, state), since, until) == want


def _mw502(store, settings, since, now, state=None):
    from modelward.guards import registry
    from modelward.guards.config import CheckConfig
    from modelward.guards.view import View

    module = registry.load("MW502")
    opts = CheckConfig(options={"MW502": {"min_candidates": 50}}).guard_options(
        "MW502", module.OPTIONS, settings, "arguments")
    with View.open(store, settings, now=now, since=since, incremental=state) as view:
        return [f.to_dict() for f in module.check(view, opts)]


def test_MW502_fires_the_same_from_the_state(ledger, tmp_path):
    """Gates whose pass rate shifts and a stale cut (tests/guards/test_rollups.py's ledger):
    MW502 from a watch's state, at a now inside the traffic and then after it, finds what
    it finds from the rollups in SQL."""
    from .builders import NOW
    from .test_rollups import _gated

    _gated(ledger.store, tmp_path)
    fired: set = set()
    for since in (None, T0 + HOUR + 17_000_000, T0 + 2 * HOUR + 30 * MIN):
        state = Incremental()
        for now in (T0 + 4 * HOUR + 7 * MIN + 500_000, NOW):
            want = _mw502(ledger.store, ledger.settings, since, now)
            assert want or since is not None
            assert _mw502(ledger.store, ledger.settings, since, now, state) == want, (since, now)
            assert _mw502(ledger.store, ledger.settings, since, now, state) == want, (since, now)
            fired.update(f["evidence"]["kind"] for f in want)
        assert state.window.folded > 0  # the state answered
    assert {"pass-rate-shift", "stale-cut"} <= fired, fired
