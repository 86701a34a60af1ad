"""``modelward eval run|watch|show|list``."""

from __future__ import annotations

import signal

import orjson
import typer

from ..display import percent, short_digest
from ..errors import ValidationError
from ..ledger import evals as ledger_evals
from ..ledger.evals import EvalRun, ItemResult
from ..timefmt import iso, now_us, parse_duration
from ._common import JSON_OPTION, err, opened, out, print_json, write
from ._group import typer_app

eval_app = typer_app(help="Run evals that record exactly what they scored.",
                       no_args_is_help=True)

EVALSET = typer.Option(..., "--evalset", help="Eval set: a file (registered first), a digest "
                       "or an alias.")
PROMPT = typer.Option(..., "--prompt", help="Prompt alias (resolved when each run starts).")
MODEL = typer.Option(..., "--model", help="Model alias (resolved when each run starts).")
RUNNER = typer.Option(..., "--runner", help="MODULE:FUNC, or the URL of an OpenAI-compatible "
                      "server (http://host:8000/v1).")
SCORER = typer.Option(None, "--scorer", help="exact, contains, regex, numeric[:TOL], "
                      "json_field:PATH, or MODULE:FUNC with an optional pass mark (MODULE:FUNC@0.7); "
                      "repeatable (default exact).")
LIMIT = typer.Option(None, "--limit", help="Only the first N items.")
CONCURRENCY = typer.Option(1, "--concurrency", help="Items called at once.")
TIMEOUT = typer.Option(60.0, "--timeout", help="Seconds an HTTP runner call may take.")
FAILURES_SHOWN = 20


def _harness(store, evalset, prompt, model, runner, scorer, limit, concurrency, timeout):
    from ..evals.harness.run import EvalSpec, Harness

    return Harness(store, EvalSpec(evalset=evalset, prompt=prompt, model=model, runner=runner,
                                   scorers=tuple(scorer or ()), limit=limit,
                                   concurrency=concurrency, timeout=timeout))


def _named(alias: str | None, digest: str | None, *, brief: bool = False) -> str:
    if brief and digest:
        digest = short_digest(digest)
    return f"{alias} -> {digest}" if alias else str(digest)


def _clip(text: str | None, width: int = 100) -> str:
    if text is None:
        return "-"
    flat = text.replace("\n", "\\n")
    return repr(flat if len(flat) <= width else flat[:width] + "…")


def _item_line(r: ItemResult, order: list[str]) -> list[str]:
    verdict = "pass" if r.passed else "FAIL"
    # stored as canonical (sorted) JSON: show them in the order the run named them
    scores = "  ".join(f"{k}={r.scores[k]:g}" for k in order if k in r.scores)
    head = f"  #{r.item_index} {r.item_id}  {verdict}"
    if scores:
        head += f"  {scores}"
    if r.latency_ms is not None:
        head += f"  {r.latency_ms:g}ms"
    lines = [head, f"      output: {_clip(r.output_text)}"]
    if r.error:
        lines.append(f"      error: {r.error}")
    return lines


def _counts(found: dict) -> str:
    return ", ".join(f"{k} ({v})" for k, v in sorted(found.items(), key=lambda kv: -kv[1]))


def served_lines(served: dict | None) -> list[str]:
    """What the endpoint reported serving; a MIXED run scored more than one model or
    fingerprint (for a safety comparison, within the base or within the candidate)."""
    if not served:
        return []
    groups = ({"": served} if "model_ids" in served else
              {k: v for k, v in served.items() if isinstance(v, dict)})
    lines = []
    for label, g in groups.items():
        if not g["model_ids"] and not g["fingerprints"]:
            continue
        tag = f" {label}" if label else ""
        lines.append(f"served{tag}  {_counts(g['model_ids']) or '-'}"
                     + (f"  fingerprints {_counts(g['fingerprints'])}"
                        if g["fingerprints"] else ""))
        if g["mixed"]:
            lines.append(f"  MIXED: the calls{tag} were served by more than one model or "
                         "fingerprint, so the scores measure a mixture")
    return lines


def render_run(run: EvalRun, results: list[ItemResult], *, all_items: bool = False) -> str:
    """The text ``eval show`` (and ``eval run``) prints."""
    s = run.summary or {}
    ref = (run.meta or {}).get("evalset")
    lines = [f"run       {run.id}", f"status    {run.status}  ({run.kind})",
             f"evalset   {run.evalset_digest}" + (f"  ({ref})" if ref else ""),
             f"prompt    {_named(run.prompt_alias, run.prompt_digest)}",
             f"model     {_named(run.model_alias, run.model_digest)}",
             f"runner    {run.runner}", f"scorers   {', '.join(run.scorers)}",
             f"harness   {run.harness_version}", f"started   {iso(run.started_at)}"]
    if run.finished_at is not None:
        took = f"  ({s['seconds']:g}s)" if "seconds" in s else ""
        lines.append(f"finished  {iso(run.finished_at)}{took}")
    if run.error:
        lines.append(f"error     {run.error}")
    if s:
        lines.append(f"items     {s['n']}  passed {s['passed']} ({percent(s['pass_rate'])})  "
                     f"errors {s['errors']}")
        width = max([len("scorer")] + [len(k) for k in s["scorers"]])
        lines.append(f"{'scorer':<{width}}  {'mean':>7}  {'pass':>6}")
        for name in [n for n in run.scorers if n in s["scorers"]]:
            v = s["scorers"][name]
            mean = "-" if v["mean"] is None else f"{v['mean']:.3f}"
            lines.append(f"{name:<{width}}  {mean:>7}  {percent(v['pass_rate']):>6}")
        lines += served_lines(s.get("served"))
    if all_items:
        lines.append(f"items ({len(results)}):")
        for r in results:
            lines += _item_line(r, run.scorers)
    else:
        failed = [r for r in results if not r.passed]
        if failed:
            lines.append(f"failures ({len(failed)} of {len(results)}):")
            for r in failed[:FAILURES_SHOWN]:
                lines += _item_line(r, run.scorers)
            if len(failed) > FAILURES_SHOWN:
                lines.append(f"  … and {len(failed) - FAILURES_SHOWN} more (--items shows all)")
    return "\n".join(lines)


def _run_json(run: EvalRun, results: list[ItemResult] | None) -> dict:
    data = run.to_dict()
    if results is not None:
        data["items"] = [r.to_dict() for r in results]
    return data


@eval_app.command("run")
def run_cmd(evalset: str = EVALSET, prompt: str = PROMPT, model: str = MODEL,
            runner: str = RUNNER, scorer: list[str] = SCORER, limit: int = LIMIT,
            concurrency: int = CONCURRENCY, timeout: float = TIMEOUT,
            as_json: bool = JSON_OPTION) -> None:
    """Score an eval set with what the aliases point to now, and record the run.

    Exit 0 when the run completed, 1 when every item failed, 2 on bad input."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with opened() as store:
        harness = _harness(store, evalset, prompt, model, runner, scorer, limit, concurrency,
                           timeout)
        bar = None
        if err.is_terminal and not as_json:
            bar = Progress("[progress.description]{task.description}", BarColumn(),
                           MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                           transient=True)
        task = None

        def started(run_id: str, total: int) -> None:
            nonlocal task
            if bar is not None:
                bar.start()
                task = bar.add_task(f"eval {run_id[:8]}", total=total)

        def progress(done: int, total: int) -> None:
            if bar is not None and task is not None:
                bar.update(task, completed=done)

        try:
            run = harness.run(progress=progress, started=started)
        finally:
            if bar is not None:
                bar.stop()
        with store.read() as conn:
            results = ledger_evals.results(conn, run.id)
    if as_json:
        print_json(_run_json(run, results))
    else:
        out.print(render_run(run, results))
    if run.status != "completed":
        raise typer.Exit(1)


@eval_app.command("watch")
def watch_cmd(evalset: str = EVALSET, prompt: str = PROMPT, model: str = MODEL,
              runner: str = RUNNER, scorer: list[str] = SCORER, limit: int = LIMIT,
              concurrency: int = CONCURRENCY, timeout: float = TIMEOUT,
              interval: str = typer.Option("60s", "--interval", help="Time between cycles."),
              max_runs: int = typer.Option(None, "--max-runs", help="Stop after N runs."),
              as_json: bool = typer.Option(False, "--json", help="Log JSON lines.")) -> None:
    """Long-running worker: re-run the eval whenever an alias moves.

    Every --interval it resolves the aliases again and runs when the prompt, model or eval
    set digest differs from its last completed run."""
    from ..evals.harness.watch import watch

    seconds = parse_duration(interval, field="--interval") / 1e6
    if seconds <= 0:
        raise ValidationError("must be longer than 0s", field="--interval")
    if max_runs is not None and max_runs < 1:
        raise ValidationError("must be at least 1", field="--max-runs")

    def log(message: str, details: dict) -> None:
        if as_json:
            line = {"at": iso(now_us()), "message": message, **details}
            write(orjson.dumps(line).decode() + "\n", json=True)
        else:
            out.print(f"{iso(now_us())}  {message}")

    def stop(_signum, _frame):  # a container's SIGTERM: mark the current run failed, exit
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with opened() as store:
            harness = _harness(store, evalset, prompt, model, runner, scorer, limit,
                               concurrency, timeout)
            log(f"watching prompt {prompt}, model {model}, evalset {evalset} every {interval}",
                {"event": "start"})
            watch(harness, interval=seconds, max_runs=max_runs, log=log)
    finally:
        signal.signal(signal.SIGTERM, previous)


@eval_app.command("show")
def show_cmd(run_id: str = typer.Argument(..., help="Eval run id."),
             items: bool = typer.Option(False, "--items", help="Print every item, not only "
                                        "the failures."),
             viewer: str = typer.Option(None, "--as", help="Your e-mail: records that you "
                                        "opened this run (a promotion gate)."),
             as_json: bool = JSON_OPTION) -> None:
    """Print a run: what it scored (digests and aliases), its summary and its failures.

    With --as EMAIL the open is recorded: approving a promotion requires having opened its
    evidence."""
    from ..ledger import people, promotions

    email = people.check_email(viewer, "--as") if viewer is not None else None
    with opened() as store, (store.write() if email else store.read()) as conn:
        run = ledger_evals.get_run(conn, run_id)
        results = ledger_evals.results(conn, run_id)
        if email:
            promotions.record_open(conn, run_id, email, via="cli")
    if as_json:
        print_json(_run_json(run, results if items else None))
    else:
        out.print(render_run(run, results, all_items=items))
    if email:
        err.print(f"recorded that {email} opened eval run {run_id}")


@eval_app.command("list")
def list_cmd(limit: int = typer.Option(100, "--limit", help="Most recent N runs."),
             as_json: bool = JSON_OPTION) -> None:
    """Eval runs, newest first."""
    with opened() as store, store.read() as conn:
        runs = ledger_evals.list_runs(conn, limit=limit)
    if as_json:
        print_json([r.to_dict() for r in runs])
        return
    if not runs:
        out.print("no eval runs")
    for r in runs:
        rate = (r.summary or {}).get("pass_rate")
        out.print(f"{r.id}  {r.status:<9}  {iso(r.started_at)}  "
                  f"prompt {_named(r.prompt_alias, r.prompt_digest, brief=True)}  "
                  f"model {_named(r.model_alias, r.model_digest, brief=True)}  "
                  f"n={r.n_items}  pass {percent(rate)}")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
