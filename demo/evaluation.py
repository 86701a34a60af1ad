"""Episodes of the evaluation issue: which prompt the evals scored, and what production ran.

Eval runs are recorded with ``modelward.ledger.evals`` (start, results, finish) at the
times the story gives them, exactly as ``modelward eval run`` records a run; the harness
itself always runs "now", and the story needs runs in the past.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from modelward.digest import of_text
from modelward.evals.harness.evalsets import load_evalset
from modelward.evals.representativeness import sampling
from modelward.ledger import evals as ledger_evals
from modelward.registry import protection

from . import artifacts, subjects
from .episodes import episode
from .world import CHAT_ALIAS, DAY, HOUR, MINUTE, PROMPT_ALIAS, SUMMARY_ALIAS, Expected, World

HARNESS = "modelward-demo 1"
STRATIFY = ("tier", "topic", "channel")
EVAL_RUNNER = "acme_eval_worker:generate"


def support_evalset(world: World) -> str:
    """The support eval set the eval worker scores: ``modelward evalset rebuild`` of the
    last 30 days, stratified by tier, topic and channel (registered once, when first used)."""
    if "evalset-support" not in world.digests:
        with tempfile.TemporaryDirectory(prefix="modelward-demo-evals-") as tmp:
            built = sampling.rebuild(
                world.store, size=60, stratify=list(STRATIFY), since=world.now - 30 * DAY,
                until=world.now, window="30d", name="support-evals",
                out=Path(tmp) / "support.jsonl", seed=world.seed)
        world.digests["evalset-support"] = built.digest
    return world.digests["evalset-support"]


def record_run(world: World, *, at: int, prompt_alias: str | None, prompt: str | None,
               model_alias: str | None, model: str, evalset: str | None = None,
               pass_rate: float = 0.83, kind: str = "task") -> str:
    """One completed eval run started at ``at`` that took four minutes."""
    evalset = evalset or support_evalset(world)
    items = load_evalset(world.store, evalset)
    n = len(items)
    passed = round(n * pass_rate)
    with world.store.write() as conn:
        run = ledger_evals.start_run(
            conn, evalset_digest=evalset, prompt_alias=prompt_alias, prompt_digest=prompt,
            model_alias=model_alias, model_digest=model, runner=EVAL_RUNNER,
            harness_version=HARNESS, scorers=["contains"], kind=kind, at=at)
        ledger_evals.add_results(conn, run, [ledger_evals.ItemResult(
            i, it.id, of_text(f"{prompt}:{it.id}"), None, None, of_text(f"{model}:{it.id}"),
            {"contains": float(i < passed)}, i < passed, 900.0, None)
            for i, it in enumerate(items)])
        ledger_evals.finish_run(conn, run, status="completed", n_items=n, at=at + 4 * MINUTE,
                                summary={"n": n, "passed": passed, "pass_rate": passed / n,
                                         "errors": 0})
    return run


# --- the eval worker that kept its start-up template -------------------------------------
STUCK_SINCE = 8 * HOUR + 10 * MINUTE  # prompt v4 shipped this long before now


@episode("evaluated-rollouts", "control",
         "every prompt rollout before today was scored by the eval before production used it")
def evaluated_rollouts(world: World) -> list[Expected]:
    """The v3 prompt was scored with v1.3.1 the day before it shipped, and the nightly eval
    kept scoring what production ran (the summariser's pair too): MW301 and MW202 stay
    silent for them."""
    world.after_write.append(_nightly_evals)
    return []


def _nightly_evals(world: World) -> None:
    d = world.digests
    v3 = world.move_labelled(f"{PROMPT_ALIAS}:prompt-v3").at
    record_run(world, at=v3 - 22 * HOUR, prompt_alias=None, prompt=d["prompt-v3"],
               model_alias=CHAT_ALIAS, model=d["chat-v1.3.1"])
    for days in range(35, 0, -7):  # weekly, through the aliases production resolves
        at = world.day(days, "02:00")
        if at < world.now - STUCK_SINCE - HOUR:
            record_run(world, at=at, prompt_alias=PROMPT_ALIAS, prompt=d["prompt-v3"],
                       model_alias=CHAT_ALIAS, model=d["chat-v1.3.1"])
        record_run(world, at=at + 10 * MINUTE, prompt_alias=None, prompt=d["summary-prompt"],
                   model_alias=SUMMARY_ALIAS, model=d["gpt-4o-mini"], pass_rate=0.92)


@episode("stuck-eval-worker", "incident",
         "the eval worker kept scoring prompt v3 for eight hours while production ran v4")
def stuck_eval_worker(world: World) -> list[Expected]:
    """Prompt v4 shipped this morning. The eval worker loaded the template at start-up and
    re-ran every two hours, scoring v3 each time under the alias's name: every dashboard
    said prompt/support@production was evaluated."""
    shipped = world.now - STUCK_SINCE
    artifacts.support_prompt(world, "v4", at=shipped - 3 * HOUR)
    # shipped as a hotfix with --break-glass: no promotion, so no gate asked for its eval
    move = world.move(PROMPT_ALIAS, "prompt-v4", shipped,
                      "v4: ask for the order number before answering billing questions",
                      artifacts.PROMPT_OWNER, break_glass=True)

    def hotfix(w: World) -> None:
        protection.move_alias(w.store, move.alias, move.digest, actor=move.actor,
                              reason=move.reason, at=move.at, break_glass=True, admin=True)
    world.after_write.append(hotfix)

    def runs(w: World) -> None:
        for k in range(4):  # the worker never re-read the alias
            record_run(w, at=shipped + 30 * MINUTE + 2 * k * HOUR, prompt_alias=PROMPT_ALIAS,
                       prompt=w.digests["prompt-v3"], model_alias=CHAT_ALIAS,
                       model=w.digests["chat-v1.3.1"])
    world.after_write.append(runs)
    v4 = world.digests["prompt-v4"]
    return [subjects.unscored_prompt("stuck-eval-worker", PROMPT_ALIAS, v4,
                                     world.digests["chat-v1.3.1"]),
            subjects.stale_evidence("stuck-eval-worker", PROMPT_ALIAS, "other-digest"),
            subjects.unreviewed_move("stuck-eval-worker", PROMPT_ALIAS, "break-glass")]

