"""``modelward contamination``: which eval items appear in pools, prompts, corpora or data."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager

import typer

from ..display import plural
from ..errors import ConfigError, SchemaError, ValidationError
from ._common import JSON_OPTION, err, opened, out, parse_at, print_json, settings


def contamination_cmd(
    evalset: str = typer.Option(..., "--evalset", help="The eval set: a JSONL/JSON/CSV file or "
                                "the sha256: digest of a registered one."),
    against: list[str] = typer.Option(..., "--against", help="A source: a JSONL/CSV/text file, "
                                      "a directory, a dataset digest or a prompt alias (its "
                                      "few-shot examples included). Repeatable; more SOURCEs "
                                      "may follow it."),
    more: list[str] = typer.Argument(None, metavar="SOURCE", show_default=False,
                                     help="Further sources."),
    ngram: int = typer.Option(None, "--ngram", help="Words per n-gram of the n-gram method "
                              "(default 13)."),
    threshold: float = typer.Option(None, "--threshold", help="Jaccard for near-duplicates and "
                                    "share of the item for containment (default 0.8)."),
    shingle: int = typer.Option(None, "--shingle", help="Words per shingle of the "
                                "near-duplicate and containment methods (default 5)."),
    method: list[str] = typer.Option(None, "--method", help="exact, near-duplicate, "
                                     "containment or ngram; repeatable (default: all)."),
    max_matches: int = typer.Option(None, "--max-matches", help="Matches shown per item "
                                    "(default 10; all are counted)."),
    at: str = typer.Option(None, "--at", help="Resolve aliases as of this time (ISO 8601 or a "
                    "duration back from now, e.g. 7d)."),
    scheduler: str = typer.Option(None, "--scheduler", metavar="ADDRESS", help="Scan on the "
                                  "Dask distributed cluster whose scheduler is at ADDRESS "
                                  "(tcp://host:8786): its workers read the pool shard by "
                                  "shard (needs modelward[dask])."),
    workers: int = typer.Option(None, "--workers", min=1, max=64, help="Scan on a local Dask "
                                "cluster of N worker processes (needs modelward[dask])."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Find eval items in few-shot pools, prompts, corpora or training data: exact copies
    (after normalising case, punctuation and Unicode), near-duplicates, copies inside
    longer documents, and shared word n-grams.

    With --scheduler or --workers the pool is scanned on a Dask cluster; the report is
    the same as without.

    Exit 0 when no item is found, 1 when some are, 2 on bad input."""
    from dataclasses import replace

    from ..evals.contamination.corpus import load_items, needs_ledger, open_source
    from ..evals.contamination.scan import load_config, scan

    s = settings()
    params = load_config(s.section("contamination"), str(s.config_path or "modelward.toml")
                         ).params
    flags = {"ngram": ngram, "threshold": threshold, "shingle": shingle,
             "methods": tuple(method) if method else None, "max_matches": max_matches}
    try:
        params = replace(params, **{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        flag = "--method" if exc.field == "methods" else "--" + (exc.field or "").replace("_", "-")
        raise ValidationError(exc.detail, field=flag, hint=exc.hint) from None
    if scheduler is not None and workers is not None:
        raise ValidationError("choose one of --scheduler and --workers", field="--workers")
    refs = list(against) + list(more or [])
    when = parse_at(at)
    with ExitStack() as stack:
        store = conn = None
        if needs_ledger(evalset) or any(needs_ledger(r) for r in refs):
            store = _ledger(stack, [evalset, *refs])
            conn = stack.enter_context(store.read())
        items, _digest = load_items(evalset, store=store, field="--evalset")
        sources = [open_source(r, store=store, conn=conn, at=when, field="--against")
                   for r in refs]
        client = None
        if scheduler is not None or workers is not None:
            client = stack.enter_context(_cluster(scheduler, workers))
        report = _run(scan, items, sources, params, client,
                      bar=err.is_terminal and not as_json)
    if as_json:
        print_json({"evalset": evalset, "clean": report.clean, **report.to_dict()})
    else:
        _print(report)
    if not report.clean:
        raise typer.Exit(1)


def _ledger(stack: ExitStack, refs: list[str]):
    try:
        return stack.enter_context(opened())
    except SchemaError:
        from ..evals.contamination.corpus import needs_ledger

        ref = next(r for r in refs if needs_ledger(r))
        raise ValidationError(f"{ref!r} is not a file or directory, and there is no ledger to "
                              "resolve it as a digest or an alias",
                              hint="check the path, or pass --home") from None


@contextmanager
def _cluster(scheduler: str | None, workers: int | None):
    """A Dask client; its errors name the option they came from."""
    from ..evals.contamination.cluster import connect

    flag = "--scheduler" if scheduler is not None else "--workers"
    with ExitStack() as stack:
        try:
            client = stack.enter_context(connect(scheduler, workers))
        except ConfigError as exc:
            raise ConfigError(f"{flag}: {exc.message}", hint=exc.hint) from None
        yield client


def _run(scan, items, sources, params, client, *, bar: bool):
    if not bar:
        return scan(items, sources, params=params, client=client)
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                        DownloadColumn(), TextColumn("{task.fields[docs]:,} documents"),
                        TimeElapsedColumn(), console=err, transient=True)
    total = sum(s.size or 0 for s in sources) or None
    task = progress.add_task("scanning", total=total, docs=0)

    def update(done: int, _total, documents: int) -> None:
        progress.update(task, completed=done, docs=documents)

    with progress:
        return scan(items, sources, params=params, client=client, progress=update)


def _print(report) -> None:
    for hit in report.contaminated:
        for n, m in enumerate(hit.matches):
            where = f"{m.source} {m.locator}" if m.source not in m.locator else m.locator
            if m.doc_id:
                where += f" ({m.doc_id})"
            head = f"{hit.item_id}  " if n == 0 else " " * (len(hit.item_id) + 2)
            out.print(f"{head}{m.method} {m.score:.2f}  {where}")
            out.print(" " * (len(hit.item_id) + 4) + repr(m.span.replace("\n", " ")))
        if hit.documents > len(hit.matches):
            out.print(" " * (len(hit.item_id) + 4) + f"+ {hit.documents - len(hit.matches):,} "
                      "more documents")
    sources = (f"{plural(report.documents, 'document')} from "
               f"{plural(len(report.sources), 'source')}")
    if report.clean:
        line = f"clean: none of {report.items:,} eval items found in {sources}"
    else:
        methods = ", ".join(f"{k} {v:,}" for k, v in report.by_method().items() if v)
        line = (f"{len(report.contaminated):,} of {report.items:,} eval items contaminated "
                f"({methods}) in {sources}")
    out.print(line)
    if report.short_items:
        n = report.short_items
        out.print(f"{plural(n, 'item')} shorter than {report.params.shingle} words "
                  f"{'were' if n != 1 else 'was'} checked by exact match only")
    for src in report.sources:
        for skipped in src["skipped"]:
            err.print(f"skipped {skipped}", style="dim")


def register(app: typer.Typer) -> None:
    app.command("contamination")(contamination_cmd)
