"""Incident 7 of the model-lifecycle issue: a bug report against an old output.

A customer's complaint quotes an answer chat/v1 gave while it served v1.1, the checkpoint
whose payload the clean-up deleted (the deleted-checkpoint incident). ``modelward replay``
cannot re-run it and says which artifact is no longer retained, and since when. The
control is a decision recorded this week with the demo's deterministic runner
(``demo.runner:generate``): its replay gives the recorded output back, identical.
"""

from __future__ import annotations

from modelward.evals.harness.prompts import load_prompt
from modelward.ledger import artifacts as ledger_artifacts
from modelward.ledger import decisions as ledger_decisions
from modelward.registry.replay import payload_path, render

from .episodes import episode
from .runner import generate
from .world import CHAT_ALIAS, CHAT_PODS, DAY, HOUR, MINUTE, Expected, World, decision_id

RUNNER = "demo.runner:generate"
QUESTION = "Can I restore a deleted project from last Friday?"


@episode("bug-report-replay", "incident",
         "a bug report quotes a v1.1 answer: `modelward replay` names the weights not retained")
def bug_report_replay(world: World) -> list[Expected]:
    """The replay itself is the evidence (MW102 is the deleted-checkpoint incident's):
    build.py runs ``modelward replay`` on the first v1.1 decision whose text was kept."""
    world.after_write.append(_pick_reported)
    return []


def _pick_reported(world: World) -> None:
    v11 = world.digests["chat-v1.1"]
    shipped = world.move_labelled(f"{CHAT_ALIAS}:chat-v1.1").at
    with world.store.read() as conn:
        found = ledger_decisions.search(conn, alias=CHAT_ALIAS, since=shipped + 20 * DAY,
                                        until=shipped + 22 * DAY, limit=500)
        for d in found:
            if d.model_digest == v11 and ledger_decisions.payload(conn, d.id) is not None:
                world.notes["replay_unretained"] = d.id
                return
    raise RuntimeError("no v1.1 decision with kept text to replay")


@episode("retained-replay", "control",
         "a decision recorded this week with the deterministic runner replays identical")
def retained_replay(world: World) -> list[Expected]:
    """Everything the replay needs is retained: model v1.3.1, prompt v4, the input text."""
    world.after_write.append(_record_replayable)
    return []


def _record_replayable(world: World) -> None:
    d = world.digests
    at = world.now - 2 * HOUR - 17 * MINUTE
    with world.store.read() as conn:
        model = ledger_artifacts.get(conn, d["chat-v1.3.1"])
    # exactly what the replay will send: the prompt (its template has no `input`) as the
    # system text, the stored question as the prompt
    rendered, system = render(load_prompt(world.store, d["prompt-v4"]), QUESTION)
    with payload_path(world.store, model) as path:
        answer = generate(rendered, model=path, item={}, system=system)
    did = decision_id(at, world.rng("replay-control"))
    row, payload = ledger_decisions.normalize({
        "id": did, "at": at, "alias": CHAT_ALIAS, "process": CHAT_PODS[1],
        "model_digest": d["chat-v1.3.1"], "prompt_digest": d["prompt-v4"],
        "embedder_digest": d["embedder"], "reranker_digest": d["reranker"],
        "config_digest": d["retrieval-config"], "subject": "u_5f0c1d2e3a4b",
        "segments": {"tier": "pro", "topic": "howto", "channel": "web"},
        "input_text": QUESTION, "output_text": answer})
    ledger_decisions.append(world.store, [row], [payload] if payload else [],
                            recorded_at=at + 50_000)
    world.notes["replay_retained"] = did
    world.notes["extra_decisions"] = int(world.notes.get("extra_decisions", 0)) + 1
