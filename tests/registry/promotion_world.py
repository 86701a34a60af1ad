"""A team, an alias and the evidence a promotion is judged on, built through the real
ledger API, for the promotion, CLI and MW201-MW203 tests."""

from __future__ import annotations

from types import SimpleNamespace

from modelward.ledger import aliases, artifacts, closures, people, promotions
from modelward.ledger import evals as ledger_evals
from modelward.ledger.closures import ClosureRow
from modelward.timefmt import parse_time

MIN = 60_000_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = parse_time("2026-03-01T12:00:00Z")  # the guard tests' builders.T0
ALICE, BOB, CAROL, DANA = (f"{n}@example.com" for n in ("alice", "bob", "carol", "dana"))
ROSTER = [  # alice requests, bob and carol review, dana left
    {"email": ALICE, "name": "Alice", "status": "active", "team": "ml"},
    {"email": BOB, "name": "Bob", "status": "active", "team": "ml"},
    {"email": CAROL, "name": "Carol", "status": "active", "team": "eval"},
    {"email": DANA, "name": "Dana", "status": "left", "team": "ml"},
]


def put(store, kind: str, content: bytes, name: str, version: str | None = None, **kw) -> str:
    return artifacts.register_bytes(store, kind, content, name=name, version=version,
                                    **kw).artifact.digest


def move(store, alias: str, digest: str, at: int, **kw) -> None:
    with store.write() as conn:
        aliases.set_alias(conn, alias, digest, at=at, actor="ops@example.com", **kw)


def eval_run(store, *, evalset: str, finished_at: int, model: str | None = None,
             prompt: str | None = None, kind: str = "task", status: str = "completed",
             summary: dict | None = None, model_alias: str | None = None,
             prompt_alias: str | None = None, meta: dict | None = None) -> str:
    """An eval run as the harness (or the safety suite, with ``meta={"base": …}``)
    records it."""
    with store.write() as conn:
        run_id = ledger_evals.start_run(
            conn, evalset_digest=evalset, prompt_alias=prompt_alias, prompt_digest=prompt,
            model_alias=model_alias, model_digest=model, runner="tests:answer",
            harness_version="test", scorers=["exact"], kind=kind, meta=meta,
            at=finished_at - MIN)
        if status != "running":
            ledger_evals.finish_run(conn, run_id, status=status, n_items=3,
                                    summary=summary if summary is not None else
                                    {"n": 3, "passed": 3, "pass_rate": 1.0, "errors": 0,
                                     "scorers": {}}, at=finished_at)
    return run_id


def opens(store, run_id: str, email: str, at: int) -> None:
    with store.write() as conn:
        promotions.record_open(conn, run_id, email, at=at)


def set_roles(store, alias: str, *, owners=None, reviewers=None, at: int = T0 - 10 * DAY):
    with store.write() as conn:
        return people.set_roles(conn, alias, owners=owners, reviewers=reviewers, at=at)


def closure(store, output: str, *, complete: bool, at: int, name: str = "train") -> str:
    digest = "sha256:" + output[7:-8] + ("c" * 8 if complete else "1" * 8)
    with store.write() as conn:
        closures.insert(conn, ClosureRow(digest=digest, output_digest=output, name=name,
                                         created_at=at, exit_code=0, complete=complete,
                                         gaps=[] if complete else ["code: not a git tree"]))
    return digest


def world(store) -> SimpleNamespace:
    """``chat/v1`` at chat@v3, a candidate chat@v4 scored (with the support prompt) by a
    completed task run that finished a day before T0; alice owns the alias, bob and carol
    review it, dana left."""
    v3 = put(store, "model", b"weights-v3", "chat", "v3", owner=ALICE)
    v4 = put(store, "model", b"weights-v4", "chat", "v4", owner=ALICE)
    prompt = put(store, "prompt", b"You are a support agent. v38", "support", "38")
    qa = put(store, "evalset", b'{"id": "a", "input": {"q": "2+2"}, "expected": "4"}\n',
              "qa", "1")
    move(store, "chat/v1", v3, T0 - 10 * DAY)
    people.sync(store, ROSTER, at=T0 - 20 * DAY)
    set_roles(store, "chat/v1", owners=[ALICE], reviewers=[BOB, CAROL])
    run = eval_run(store, evalset=qa, model=v4, prompt=prompt, finished_at=T0 - DAY)
    return SimpleNamespace(v3=v3, v4=v4, prompt=prompt, qa=qa, run=run, alias="chat/v1")
