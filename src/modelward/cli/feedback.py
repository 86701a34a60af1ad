"""``modelward feedback import`` and ``modelward curate``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..display import plural
from ..errors import ValidationError
from ._common import JSON_OPTION, err, opened, out, parse_at, print_json, read_input
from ._group import typer_app

feedback_app = typer_app(help="Feedback on decisions: rating, intent, surface, author kind.",
                           no_args_is_help=True)


@feedback_app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="JSON lines or CSV, one feedback event per line "
                                "('-' for stdin)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import feedback events; any bad line or unknown decision rejects the whole file."""
    from ..evals.curation.feedback import import_feedback

    if str(file) == "-":
        data, name = sys.stdin.buffer.read(), "stdin"
    else:
        data, name = read_input(file), str(file)
    with opened() as store:
        try:
            res = import_feedback(store, data, name=name)
        except ValidationError as exc:
            if as_json:
                print_json({"ok": False, "error": exc.to_dict()})
                raise SystemExit(2) from None
            for p in exc.problems[1:]:
                err.print(f"  {p.message}")
            raise
    if as_json:
        print_json({"ok": True, "imported": res.imported, "duplicates": res.duplicates})
    else:
        out.print(f"imported {plural(res.imported, 'feedback event')}"
                  + (f" ({res.duplicates} already recorded)" if res.duplicates else ""))


def curate_cmd(
    policy: str = typer.Option("sft-default", "--policy", help="Policy TOML file, or the name "
                               "of a shipped policy (sft-default)."),
    out_dir: Path = typer.Option(None, "--out", help="Directory to write dataset.jsonl to."),
    since: str = typer.Option(None, "--since", help="Only feedback at or after this time (ISO 8601 or "
                         "a duration back from now, e.g. 30d)."),
    until: str = typer.Option(None, "--until", help="Only feedback before this time (ISO 8601 or a "
                         "duration back from now)."),
    name: str = typer.Option(None, "--name", help="Dataset artifact name (default: the policy's)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Judge and report; write nothing."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Build a dataset from the feedback a policy admits; register it with its lineage
    (feedback ids, policy) and print what was excluded and why."""
    from ..evals.curation.curate import curate
    from ..evals.curation.policy import load_policy

    pol = load_policy(policy)
    if out_dir is None and not dry_run:
        raise ValidationError("name the directory to write the dataset to", field="--out",
                              hint="or judge only with --dry-run")
    with opened() as store:
        res = curate(store, pol, out_dir, since=parse_at(since, "--since"),
                     until=parse_at(until, "--until"), name=name, dry_run=dry_run)
    if as_json:
        print_json(res.to_dict())
        return
    t = res.tally
    verb = "would admit" if dry_run else "admitted"
    lines = [f"policy {pol.name} ({pol.digest}) {verb} {t.admitted:,} of {t.considered:,} "
             "feedback events"]
    if res.dataset:
        lines.append(f"dataset {res.dataset} written to {res.path}")
    reasons = t.reasons()
    if reasons:
        from ..evals.curation.policy import reason_label

        width = len(f"{reasons[0][1]:,}")
        lines.append(f"excluded {sum(n for _r, n in reasons):,}:")
        lines += [f"  {n:>{width},}  {reason_label(r)}" for r, n in reasons]
    if dry_run:
        lines.append("dry run: nothing written")
    out.print("\n".join(lines))


def register(app: typer.Typer) -> None:
    app.add_typer(feedback_app, name="feedback")
    app.command("curate")(curate_cmd)
