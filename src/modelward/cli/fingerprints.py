"""``modelward fingerprint run|compare|history``: embedder fingerprints on sentinel probes."""

from __future__ import annotations

import typer

from ..retrieval.fingerprints import basis
from ..timefmt import iso
from ._common import JSON_OPTION, opened, out, parse_at, print_json
from ._group import typer_app

fingerprint_app = typer_app(help="Embedder fingerprints: sentinel probes, noise floors, "
                              "substrate epochs.", no_args_is_help=True)


def _say(text: str) -> None:
    out.print(text)


def _verdict_line(result) -> str:
    run, cmp = result.run, result.comparison
    if cmp is None:
        return (f"baseline: epoch {run.epoch}, noise floor {run.noise_floor:.2e} "
                f"({run.repeats} repeats, {run.dims} dims)")
    median = "n/a (dimensions differ)" if cmp.median_cosine is None else f"{cmp.median_cosine:.6f}"
    head = {"changed": "CHANGED", "inconclusive": "INCONCLUSIVE"}.get(cmp.verdict, cmp.verdict)
    return (f"{head}: magnitude {cmp.magnitude:.2e} vs threshold {cmp.threshold:.2e} "
            f"(median per-probe cosine {median}, similarity-matrix correlation "
            f"{cmp.matrix_correlation:.6f}); {basis(cmp)}; epoch {run.epoch}")


def _print_result(result) -> None:
    run = result.run
    _say(f"{run.embedder_alias} -> {run.embedder_digest}")
    _say(f"run {run.id} at {iso(run.at)}: {len(result.probes)} probes x {run.repeats} repeats, "
         f"{run.dims} dims, noise floor {run.noise_floor:.2e}"
         + (f", vendor model {run.vendor_model_id}" if run.vendor_model_id else ""))
    if result.baseline is not None:
        b = result.baseline
        _say(f"compared with {b.id} at {iso(b.at)} (epoch {b.epoch}, {b.embedder_digest})")
    _say(_verdict_line(result))
    cmp = result.comparison
    if cmp is not None and cmp.worst and cmp.verdict == "changed":
        _say("lowest per-probe cosine: " + ", ".join(f"{p} {c:.4f}" for p, c in cmp.worst))


@fingerprint_app.command("run")
def run_cmd(
    alias: str = typer.Argument(..., metavar="EMBEDDER_ALIAS", help="Alias of the embedder."),
    runner: str = typer.Option(..., "--runner",
                               help="MODULE:FUNC(texts, *, model) or an OpenAI-compatible URL."),
    probes: str = typer.Option(None, "--probes", help="Probe file (default: the shipped "
                               "72 sentinel texts)."),
    repeats: int = typer.Option(3, "--repeats", help="Embed every probe this many times."),
    at: str = typer.Option(None, "--at", help="Record the run at this time (ISO 8601 or a "
                    "duration back from now)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Embed the sentinel probes, store the vectors and noise floor, compare with the baseline."""
    from ..retrieval import fingerprinting
    from ..retrieval.embedders import parse_embedder_runner
    from ..retrieval.probes import load_probes

    loaded = load_probes(probes)
    emb = parse_embedder_runner(runner)
    with opened() as store:
        result = fingerprinting.run(store, alias, emb, loaded, repeats=repeats,
                                    at=parse_at(at))
    if as_json:
        print_json(result.to_dict())
    else:
        _print_result(result)


@fingerprint_app.command("compare")
def compare_cmd(alias: str = typer.Argument(..., metavar="EMBEDDER_ALIAS"),
                as_json: bool = JSON_OPTION) -> None:
    """The latest run against the baseline it was compared with, from the stored vectors."""
    from ..retrieval import fingerprinting

    with opened() as store:
        result = fingerprinting.compare_latest(store, alias)
    if as_json:
        print_json(result.to_dict())
    else:
        _print_result(result)


@fingerprint_app.command("history")
def history_cmd(alias: str = typer.Argument(..., metavar="EMBEDDER_ALIAS"),
                as_json: bool = JSON_OPTION) -> None:
    """Every run of an embedder alias, oldest first, with its verdict and epoch."""
    from ..ledger import fingerprints as ledger_fp

    with opened() as store, store.read() as conn:
        runs = ledger_fp.history(conn, alias)
    if as_json:
        print_json([r.to_dict() for r in runs])
        return
    if not runs:
        _say(f"{alias} has no fingerprint runs")
    for r in runs:
        magnitude = "-" if r.magnitude is None else f"{r.magnitude:.2e}"
        _say(f"{iso(r.at)}  epoch {r.epoch}  {r.verdict:<8}  magnitude {magnitude:<8}  "
             f"noise {r.noise_floor:.2e}  {r.embedder_digest}"
             + (f"  vendor {r.vendor_model_id}" if r.vendor_model_id else ""))


def register(app: typer.Typer) -> None:
    app.add_typer(fingerprint_app, name="fingerprint")
