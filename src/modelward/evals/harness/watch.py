"""The long-running eval worker behind ``modelward eval watch``.

Before every cycle it resolves the prompt, model and eval set again (an eval set file is
re-digested) and runs the eval when any of the three digests differs from its last
completed run, so a moved alias is scored within one interval. A cycle that fails (an
unreachable runner, a missing alias) is logged and retried on the next cycle.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ...display import short_digest
from ...errors import ModelwardError
from ...ledger.evals import EvalRun
from .run import Harness, Target

Log = Callable[[str, dict], None]  # (message, structured details)


def describe_run(run: EvalRun) -> str:
    """One line: what a run scored and how it did."""
    def name(alias, digest):
        return f"{alias}={short_digest(digest)}" if alias else short_digest(digest)

    parts = [f"prompt {name(run.prompt_alias, run.prompt_digest)}",
             f"model {name(run.model_alias, run.model_digest)}",
             f"evalset {short_digest(run.evalset_digest)}"]
    s = run.summary or {}
    scores = ", ".join(f"{k} mean {v['mean']:.3f} pass {v['pass_rate']:.1%}"
                       for k, v in (s.get("scorers") or {}).items() if v.get("mean") is not None)
    text = f"run {run.id} {run.status}: " + ", ".join(parts)
    if scores:
        text += f"; {scores}"
    text += f"; n={run.n_items}, errors={s.get('errors', 0)}"
    if run.error:
        text += f"; {run.error}"
    return text


def _moves(before: Target | None, now: Target) -> list[str]:
    if before is None:
        return []
    out = []
    for label, ref, old, new in (
            ("eval set", now.evalset_ref, before.evalset_digest, now.evalset_digest),
            ("prompt", now.prompt_alias, before.prompt_digest, now.prompt_digest),
            ("model", now.model_alias, before.model_digest, now.model_digest)):
        if old != new:
            out.append(f"{label} {ref or ''} moved {short_digest(old)} -> {short_digest(new)}".replace(
                "  ", " "))
    return out


def watch(harness: Harness, *, interval: float, max_runs: int | None = None,
          log: Log, sleep: Callable[[float], None] = time.sleep) -> list[EvalRun]:
    """Resolve, and run when something moved, every ``interval`` seconds; stop after
    ``max_runs`` runs (None: never). Returns the runs made."""
    runs: list[EvalRun] = []
    last: Target | None = None  # the target of the last completed run
    while max_runs is None or len(runs) < max_runs:
        try:
            target = harness.resolve()
            if last is None or target.key != last.key:
                for move in _moves(last, target):
                    log(move, {"event": "moved"})
                run = harness.run(target)
                runs.append(run)
                log(describe_run(run), {"event": "run", "run": run.to_dict()})
                if run.status == "completed":
                    last = target
        except ModelwardError as exc:  # transient (a server down, an alias not set yet)
            log(f"cycle failed: {exc.message}", {"event": "error", "error": exc.to_dict()})
        if max_runs is not None and len(runs) >= max_runs:
            break
        sleep(interval)
    return runs
