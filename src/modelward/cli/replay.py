"""``modelward replay DECISION_ID --runner MODULE:FUNC|URL``."""

from __future__ import annotations

import typer

from ..timefmt import iso
from ._common import JSON_OPTION, opened, out, print_json


def _say(text: str) -> None:
    out.print(text)


def render_replay(rep) -> str:
    """The text ``modelward replay`` prints."""
    d = rep.decision
    lines = [f"decision  {d.id}  at {iso(d.at)}" + (f"  alias {d.alias}" if d.alias else "")]
    for what in ("model", "prompt"):
        info = getattr(rep, what)
        if info:
            line = f"{what:<9} {info['label']}  {info['payload']}"
            if "uses_input" in info:
                line += ("  (template uses input)" if info["uses_input"]
                         else "  (template does not use input: sent as the system text)")
            lines.append(line)
            if info.get("passed_as"):
                lines.append(f"{'':<9} passed to the runner as {info['passed_as']}")
    lines.append(f"runner    {rep.runner}")
    if rep.verdict == "not-retained":
        lines.append("verdict   NOT RETAINED: the decision cannot be replayed")
        lines += [f"  {m.what}: {m.message}" for m in rep.missing]
    elif rep.verdict == "error":
        lines.append(f"verdict   ERROR: {rep.error}")
    elif rep.verdict == "not-comparable":
        why = rep.text_note if rep.recorded_digest else \
            "the decision recorded no output text or digest"
        lines.append(f"verdict   NOT COMPARABLE: {why}; the replay produced "
                     f"{rep.output_digest}")
    else:
        how = ("its text" if rep.compared_by == "text"
               else f"its digest {rep.recorded_digest}; {rep.text_note}")
        word = "IDENTICAL" if rep.verdict == "identical" else "DIFFERENT"
        lines.append(f"verdict   {word}: the replayed output "
                     + ("matches" if rep.verdict == "identical" else "differs from")
                     + f" the recorded output (compared by {how})")
        if rep.verdict == "different" and rep.compared_by == "digest":
            lines.append(f"          replayed output digest {rep.output_digest}")
        if rep.diff:
            lines.append(rep.diff.rstrip("\n"))
    return "\n".join(lines)


def replay_cmd(
    decision_id: str = typer.Argument(..., help="The decision to re-run."),
    runner: str = typer.Option(..., "--runner", help="MODULE:FUNC, or the URL of an "
                               "OpenAI-compatible server (http://host:8000/v1)."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds an HTTP runner call may "
                                  "take."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Rehash the model and prompt "
                                  "payloads even when a recent verification is cached."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Re-run a decision with its exact retained model, prompt and stored input.

    Exit 0 when the output is identical to the recorded one; 1 when it differs, when an
    artifact or the input is no longer retained, or when the runner failed; 2 on bad
    input."""
    from ..errors import ValidationError
    from ..registry.replay import replay

    if not timeout > 0:
        raise ValidationError("must be more than 0 seconds", field="--timeout")
    with opened() as store:
        rep = replay(store, decision_id, runner, timeout=timeout, use_cache=not no_cache)
    if as_json:
        print_json(rep.to_dict())
    else:
        _say(render_replay(rep))
    raise typer.Exit(rep.exit_code)


def register(app: typer.Typer) -> None:
    app.command("replay")(replay_cmd)
