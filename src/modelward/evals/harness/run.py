"""The eval harness: resolve, render, call, score, record.

Every run resolves its aliases when it starts and records the digests it actually rendered
(prompt) and called (model), with the alias names. The template is read from the blob
store at the start of each run and rendered per item; nothing caches a template across
runs, so a long-running worker (:func:`modelward.evals.harness.watch.watch`) can never keep
scoring a prompt production has moved away from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from ..._version import __version__
from ...digest import is_digest, of_text
from ...endpoints import DEFAULT_TIMEOUT, Call, RunnerError, parse_runner, served_by
from ...errors import UnknownAliasError, ValidationError
from ...ledger import aliases as ledger_aliases
from ...ledger import artifacts as ledger_artifacts
from ...ledger import evals as ledger_evals
from ...ledger.artifacts import Artifact
from ...ledger.engine import Store
from ...ledger.evals import EvalRun, ItemResult
from ...timefmt import iso, now_us
from .evalsets import EvalItem, load_evalset
from .prompts import Prompt, load_prompt
from .scorers import ScoreError, Scorer, parse_scorers

HARNESS_VERSION = f"modelward {__version__}"
_BATCH = 200  # results written per transaction while a run goes on
Progress = Callable[[int, int], None]  # (items done, items in the run)


@dataclass(frozen=True)
class EvalSpec:
    """What ``modelward eval run`` was asked: names, not digests (those are resolved per run)."""

    evalset: str  # a file, a digest or an alias
    prompt: str  # an alias (or a digest)
    model: str  # an alias (or a digest)
    runner: str  # MODULE:FUNC or an http(s) URL
    scorers: tuple[str, ...] = ()
    limit: int | None = None
    concurrency: int = 1
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class Target:
    """The digests one run scores, and the names they were resolved from."""

    evalset_digest: str
    evalset_ref: str | None  # the alias or file it came from
    prompt_alias: str | None
    prompt_digest: str
    model_alias: str | None
    model_digest: str
    at: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.evalset_digest, self.prompt_digest, self.model_digest)


def _resolve(conn, ref: str, kinds: tuple[str, ...], option: str, at: int):
    """(alias or None, digest) of ``ref``; its artifact must be one of ``kinds``."""
    if is_digest(ref):
        alias, digest = None, ref
    else:
        alias, digest = ref, ledger_aliases.resolve_at(conn, ref, at).digest
    art = ledger_artifacts.get(conn, digest)
    if art.kind not in kinds:
        raise ValidationError(f"{ref} is a {art.kind} artifact, not a {' or '.join(kinds)}",
                              field=option)
    return alias, digest


class Harness:
    """A configured eval: the runner and scorers are checked once, at construction;
    aliases, the eval set and the template are read again for every run."""

    def __init__(self, store: Store, spec: EvalSpec) -> None:
        if spec.limit is not None and spec.limit < 1:
            raise ValidationError("must be at least 1", field="--limit")
        if not 1 <= spec.concurrency <= 256:
            raise ValidationError("must be from 1 to 256", field="--concurrency")
        if not spec.timeout > 0:
            raise ValidationError("must be more than 0 seconds", field="--timeout")
        self.store = store
        self.spec = spec
        self.runner = parse_runner(spec.runner, timeout=spec.timeout)
        self.scorers: list[Scorer] = parse_scorers(list(spec.scorers))

    # --- resolution -------------------------------------------------------------------
    def resolve(self) -> Target:
        """Resolve every name now, in one snapshot (an eval set file is registered first)."""
        spec = self.spec
        path = Path(spec.evalset)
        evalset_digest = None
        if not is_digest(spec.evalset) and path.is_file():
            reg = ledger_artifacts.register_path(self.store, "evalset", path, name=path.name)
            evalset_digest = reg.artifact.digest
        at = now_us()
        with self.store.read() as conn:
            if evalset_digest is None:
                try:
                    _, evalset_digest = _resolve(conn, spec.evalset, ("evalset",), "--evalset",
                                                 at)
                except (UnknownAliasError, ValidationError) as exc:
                    if isinstance(exc, ValidationError) and exc.field != "alias":
                        raise
                    raise ValidationError(
                        f"{spec.evalset!r} is not a file, a registered digest or an alias",
                        field="--evalset") from None
            prompt_alias, prompt_digest = _resolve(conn, spec.prompt, ("prompt",), "--prompt",
                                                   at)
            model_alias, model_digest = _resolve(conn, spec.model, ("model", "adapter"),
                                                 "--model", at)
        ref = None if is_digest(spec.evalset) else spec.evalset
        return Target(evalset_digest, ref, prompt_alias, prompt_digest, model_alias,
                      model_digest, at)

    def _load(self, target: Target) -> tuple[Prompt, list[EvalItem], Artifact]:
        with self.store.read() as conn:
            prompt_art = ledger_artifacts.get(conn, target.prompt_digest)
            evalset_art = ledger_artifacts.get(conn, target.evalset_digest)
            model = ledger_artifacts.get(conn, target.model_digest)
        for art, option in ((prompt_art, "--prompt"), (evalset_art, "--evalset")):
            if art.payload != "blob" or art.payload_deleted_at is not None:
                raise ValidationError(f"{art.kind} {art.name} ({art.digest}) has no stored "
                                      "payload to read", field=option,
                                      hint="register it again without --no-store")
        prompt = load_prompt(self.store, target.prompt_digest)  # fresh from the blob store
        items = load_evalset(self.store, target.evalset_digest)
        return prompt, items[:self.spec.limit] if self.spec.limit else items, model

    # --- one run ----------------------------------------------------------------------
    def run(self, target: Target | None = None, *, progress: Progress | None = None,
            started: Callable[[str, int], None] | None = None) -> EvalRun:
        """Score every item and record the run; returns it as stored (status ``completed``,
        or ``failed`` when every item failed or the run was interrupted)."""
        target = target or self.resolve()
        prompt, items, model = self._load(target)
        render = prompt.renderer()  # a template that does not compile fails before the run
        call = self.runner.bind(model)
        with self.store.write() as conn:
            run_id = ledger_evals.start_run(
                conn, evalset_digest=target.evalset_digest, prompt_alias=target.prompt_alias,
                prompt_digest=target.prompt_digest, model_alias=target.model_alias,
                model_digest=target.model_digest, runner=self.runner.spec,
                harness_version=HARNESS_VERSION, scorers=[s.name for s in self.scorers],
                meta={"evalset": target.evalset_ref, "resolved_at": iso(target.at),
                      "limit": self.spec.limit, "concurrency": self.spec.concurrency})
        if started is not None:
            started(run_id, len(items))
        t0 = time.perf_counter()
        results = record_results(self.store, run_id,
                                 self._execute(items, render, prompt.system, call),
                                 len(items), progress)
        summary = summarize(results, self.scorers, time.perf_counter() - t0)
        failed = bool(results) and summary["errors"] == len(results)
        first = min(results, key=lambda r: r.item_index) if failed else None
        with self.store.write() as conn:
            ledger_evals.finish_run(
                conn, run_id, status="failed" if failed else "completed", n_items=len(results),
                summary=summary,
                error=f"every item failed; the first: {first.error}" if first else None)
            return ledger_evals.get_run(conn, run_id)

    def _execute(self, items: list[EvalItem], render, system: str | None, call):
        if self.spec.concurrency == 1:
            for index, item in enumerate(items):
                yield self._one(render, system, call, index, item)
            return
        pool = ThreadPoolExecutor(self.spec.concurrency, thread_name_prefix="mw-eval")
        try:
            futures = [pool.submit(self._one, render, system, call, i, it)
                       for i, it in enumerate(items)]
            for future in as_completed(futures):
                yield future.result()
        finally:  # interrupted: start nothing new and do not wait for calls in flight
            pool.shutdown(wait=False, cancel_futures=True)

    def _one(self, render, system: str | None, call, index: int, item: EvalItem) -> ItemResult:
        data = asdict(item)
        rendered = output = latency = error = None
        scores: dict[str, float] = {}
        passed = False
        try:
            rendered = render(item.variables())
            t0 = time.perf_counter()
            output = call(Call(rendered, system, data))
            latency = round((time.perf_counter() - t0) * 1000, 3)
            problems, verdicts = [], []
            for scorer in self.scorers:
                try:
                    scores[scorer.name], ok = scorer.score(output, data)
                except ScoreError as exc:
                    ok = False
                    problems.append(f"{scorer.name}: {exc}")
                except Exception as exc:  # a custom scorer's own bug, named on the item
                    ok = False
                    problems.append(f"{scorer.name} raised {type(exc).__name__}: {exc}")
                verdicts.append(ok)
            passed = all(verdicts)
            error = "; ".join(problems) or None
        except (ValidationError, RunnerError) as exc:
            error = exc.message if isinstance(exc, ValidationError) else str(exc)
            passed = False
        model_id, fingerprint = served_by(output)
        output = None if output is None else str.__str__(output)
        return ItemResult(
            item_index=index, item_id=item.id,
            rendered_digest=of_text(rendered) if rendered is not None else None,
            rendered_text=rendered, output_text=output,
            output_digest=of_text(output) if output is not None else None,
            scores=scores, passed=passed, latency_ms=latency, error=error,
            served_model_id=model_id, served_fingerprint=fingerprint)



def record_results(store: Store, run_id: str, outcomes, total: int,
                   progress: Progress | None = None) -> list[ItemResult]:
    """Drain a generator of item results into the run, ``_BATCH`` per transaction. If it is
    interrupted or storage fails, keep what was scored, mark the run failed (never leave it
    "running") and re-raise."""
    results: list[ItemResult] = []
    pending: list[ItemResult] = []

    def save() -> None:
        if pending:
            with store.write() as conn:
                ledger_evals.add_results(conn, run_id, pending)
            pending.clear()

    try:
        for result in outcomes:
            results.append(result)
            pending.append(result)
            if len(pending) >= _BATCH:
                save()
            if progress is not None:
                progress(len(results), total)
        save()
    except BaseException as exc:
        outcomes.close()
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{exc}"
        try:
            with store.write() as conn:
                ledger_evals.add_results(conn, run_id, pending)
                ledger_evals.finish_run(conn, run_id, status="failed", n_items=len(results),
                                        summary={}, error=reason[:2000])
        except Exception:  # the original error is the one worth raising
            pass
        raise
    return results


def summarize(results: list[ItemResult], scorers: list[Scorer], seconds: float) -> dict:
    """n, passed, pass rate, errors, and per scorer the mean and pass rate over every item
    (an item whose call or scoring failed counts as 0 and not passed)."""
    n = len(results)
    out = {"n": n, "passed": sum(1 for r in results if r.passed),
           "errors": sum(1 for r in results if r.error), "seconds": round(seconds, 3),
           "scorers": {}}
    out["pass_rate"] = out["passed"] / n if n else None
    for s in scorers:
        values = [r.scores.get(s.name, 0.0) for r in results]
        passes = sum(1 for r in results if s.name in r.scores and s.passes(r.scores[s.name]))
        out["scorers"][s.name] = {"mean": sum(values) / n if n else None,
                                  "pass_rate": passes / n if n else None}
    out["served"] = ledger_evals.served_mix(results)
    return out
